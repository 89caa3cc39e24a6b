"""The errors the edge answers by itself, each carrying its HTTP status and the contract's error kind.

EdgeError                 500 InternalError      a bug in the edge (never with a traceback)
+-- BadRequest            400 ValidationError    malformed HTTP, or a target we will not route
+-- Unauthorized          401 Unauthorized       no bearer token on a protected route
|   +-- TokenRejected     401 Unauthorized       a token that is invalid, expired or not Bearer
+-- Forbidden             403 Forbidden          a CORS preflight from an origin not on the list
+-- NotFound              404 NotFound           no route for the path
+-- RequestTimeout        408 RequestTimeout     the client was too slow sending its head or body
+-- PayloadTooLarge       413 PayloadTooLarge    body over the limit
+-- UriTooLong            414 RequestTooLarge    request target over the limit
+-- HeadersTooLarge       431 RequestTooLarge    header block over the limit
+-- RateLimited           429 RateLimited        over a rate limit (with Retry-After and RateLimit headers)
+-- UnsupportedCoding     501 NotImplemented     a transfer coding other than chunked
+-- BadGateway            502 BadGateway         the upstream refused, reset or spoke bad HTTP
+-- ServiceUnavailable    503 ServiceUnavailable no destination of the cluster is reachable
+-- GatewayTimeout        504 GatewayTimeout     the upstream did not answer in time
"""

from __future__ import annotations

import math

import orjson


class EdgeError(Exception):
    status = 500
    kind = "InternalError"
    default_message = "The gateway failed to handle the request."
    # Extra response header lines, already encoded, e.g. the challenge of a 401.
    headers = b""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def body(self) -> bytes:
        return orjson.dumps({"error": self.kind, "message": self.message, "details": []})


class BadRequest(EdgeError):
    status = 400
    kind = "ValidationError"
    default_message = "Malformed HTTP request."


class Unauthorized(EdgeError):
    status = 401
    kind = "Unauthorized"
    default_message = "A valid bearer token is required."
    headers = b"www-authenticate: Bearer\r\n"


class TokenRejected(Unauthorized):
    # RFC 6750 section 3: tell the client the token it sent is the problem, not its absence.
    headers = b'www-authenticate: Bearer error="invalid_token"\r\n'


class Forbidden(EdgeError):
    status = 403
    kind = "Forbidden"
    default_message = "This origin may not call the API."


class NotFound(EdgeError):
    status = 404
    kind = "NotFound"
    default_message = "No route matches the request."


class RequestTimeout(EdgeError):
    status = 408
    kind = "RequestTimeout"
    default_message = "The request body did not arrive in time."


class PayloadTooLarge(EdgeError):
    status = 413
    kind = "PayloadTooLarge"
    default_message = "The request body is too large."


class UriTooLong(EdgeError):
    status = 414
    kind = "RequestTooLarge"
    default_message = "The request target is too long."


class HeadersTooLarge(EdgeError):
    status = 431
    kind = "RequestTooLarge"
    default_message = "The request headers are too large."


class RateLimited(EdgeError):
    status = 429
    kind = "RateLimited"
    default_message = "Too many requests; retry later."

    def __init__(self, policy_header: bytes, name: bytes, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(f"Too many requests; retry in {seconds} s.")
        self.headers = b'retry-after: %d\r\n%sratelimit: "%s";r=0;t=%d\r\n' % (
            seconds,
            policy_header,
            name,
            seconds,
        )


class UnsupportedCoding(EdgeError):
    status = 501
    kind = "NotImplemented"
    default_message = "Only the chunked transfer coding is supported."


class BadGateway(EdgeError):
    status = 502
    kind = "BadGateway"
    default_message = "The upstream service failed to answer."


class ServiceUnavailable(EdgeError):
    status = 503
    kind = "ServiceUnavailable"
    default_message = "The upstream service is unavailable."


class GatewayTimeout(EdgeError):
    status = 504
    kind = "GatewayTimeout"
    default_message = "The upstream service did not answer in time."
