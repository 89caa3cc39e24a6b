"""One error tree for every service and the edge.

Each class carries its HTTP status and the contract's error kind (CONTRACT.md section 2); the app
factory turns any of them into `{"error": kind, "message": ..., "details": [...]}`. Driver errors
(asyncpg, redis, aiormq) are translated into these once, in `kit.app`, never in handlers.

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

import msgspec


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


def invalid(field: str, message: str) -> ValidationError:
    """A 400 about one field, the most common case."""
    return ValidationError(message, [FieldError(field, message)])
