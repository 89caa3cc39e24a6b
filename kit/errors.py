"""One error tree for every service and the edge.

Each class carries its HTTP status and the contract's error kind (CONTRACT.md section 2); the app
factory turns any of them into `{"error": kind, "message": ..., "details": [...]}`, with the class's
`headers`. Driver errors (asyncpg, redis) are translated into these once, in `kit.outage` (HTTP) and
`kit.grpc`, never in handlers; `DEPENDENCY_ERRORS` below says which failures are a dependency's.

    ShopError                      500 InternalError
    ├── ValidationError            400 ValidationError
    ├── Unauthorized               401 Unauthorized
    ├── Forbidden                  403 Forbidden
    ├── NotFound                   404 NotFound
    ├── MethodNotAllowed           405 MethodNotAllowed
    ├── Conflict                   409 Conflict
    ├── PayloadTooLarge            413 PayloadTooLarge
    ├── UnsupportedMediaType       415 UnsupportedMediaType
    ├── BusinessRuleViolation      422 BusinessRuleViolation
    ├── RateLimited                429 RateLimited
    └── ServiceUnavailable         503 ServiceUnavailable
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import asyncpg
import msgspec
import redis.exceptions

# A dependency that failed or could not be reached, rather than a request that was wrong: a 503
# (UNAVAILABLE over gRPC) that the caller may retry, never a 500. asyncpg's InternalClientError is a
# connection the server cut mid-operation (e.g. "cannot switch to state 12" after a restart).
DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,  # TimeoutError and ConnectionError among them
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str


class ErrorBody(msgspec.Struct, frozen=True):
    error: str
    message: str
    details: list[FieldError] = []


class ShopError(Exception):
    status: int = 500
    kind: str = "InternalError"
    headers: Mapping[str, str] = _NO_HEADERS

    def __init__(self, message: str, details: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def body(self) -> ErrorBody:
        return ErrorBody(self.kind, self.message, self.details)


class ValidationError(ShopError):
    status, kind = 400, "ValidationError"


class Unauthorized(ShopError):
    status, kind = 401, "Unauthorized"


class Forbidden(ShopError):
    status, kind = 403, "Forbidden"


class NotFound(ShopError):
    status, kind = 404, "NotFound"


class MethodNotAllowed(ShopError):
    status, kind = 405, "MethodNotAllowed"


class Conflict(ShopError):
    status, kind = 409, "Conflict"


class PayloadTooLarge(ShopError):
    status, kind = 413, "PayloadTooLarge"


class UnsupportedMediaType(ShopError):
    status, kind = 415, "UnsupportedMediaType"


class BusinessRuleViolation(ShopError):
    status, kind = 422, "BusinessRuleViolation"


class RateLimited(ShopError):
    status, kind = 429, "RateLimited"


class ServiceUnavailable(ShopError):
    status, kind = 503, "ServiceUnavailable"
    # Outages we answer for are short (a restart, a failover, a reload): worth a retry soon.
    headers = MappingProxyType({"Retry-After": "1"})


def invalid(field: str, message: str) -> ValidationError:
    """A 400 about one field, the most common case."""
    return ValidationError(message, [FieldError(field, message)])
