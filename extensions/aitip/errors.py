"""Domain errors. Each carries the HTTP status and stable code that every face reports."""

from __future__ import annotations

from typing import Any


class AitipError(Exception):
    """Base of errors a caller can act on; ``detail`` is JSON-safe extra context."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, detail: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "detail": self.detail}}


class BadRequest(AitipError):
    status = 400
    code = "bad_request"


class InvalidInput(AitipError):
    status = 422
    code = "invalid_input"


class NotAuthenticated(AitipError):
    status = 401
    code = "not_authenticated"


class PermissionDenied(AitipError):
    status = 403
    code = "forbidden"


class NotFound(AitipError):
    status = 404
    code = "not_found"


class Conflict(AitipError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AitipError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(AitipError):
    status = 415
    code = "unsupported_media_type"


class ServiceUnavailable(AitipError):
    status = 503
    code = "service_unavailable"
