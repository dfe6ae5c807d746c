"""One error base class carrying its HTTP status; FHIR routes render OperationOutcome."""

from __future__ import annotations

from typing import Any


class PHRError(Exception):
    status_code = 400
    code = "invalid"  # FHIR issue-type code
    error = "bad_request"  # short machine name for non-FHIR JSON errors

    def __init__(
        self,
        message: str,
        *,
        issues: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.issues = issues or []
        self.headers = headers or {}

    def operation_outcome(self) -> dict[str, Any]:
        issues = self.issues or [
            {"severity": "error", "code": self.code, "diagnostics": self.message}
        ]
        return {"resourceType": "OperationOutcome", "issue": issues}

    def json_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.issues:
            body["details"] = self.issues
        return body


class InvalidInput(PHRError):
    status_code = 400
    code = "invalid"
    error = "invalid_input"


class UnprocessableResource(PHRError):
    status_code = 422
    code = "processing"
    error = "unprocessable"


class NotAuthenticated(PHRError):
    status_code = 401
    code = "login"
    error = "not_authenticated"

    def __init__(self, message: str = "authentication required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="phr"'})
        super().__init__(message, **kw)


class Forbidden(PHRError):
    status_code = 403
    code = "forbidden"
    error = "forbidden"


class NotFound(PHRError):
    status_code = 404
    code = "not-found"
    error = "not_found"


class Gone(PHRError):
    status_code = 410
    code = "deleted"
    error = "gone"


class Conflict(PHRError):
    status_code = 409
    code = "conflict"
    error = "conflict"


class PreconditionFailed(PHRError):
    status_code = 412
    code = "conflict"
    error = "precondition_failed"


class PayloadTooLarge(PHRError):
    status_code = 413
    code = "too-costly"
    error = "payload_too_large"


class UnsupportedMediaType(PHRError):
    status_code = 415
    code = "not-supported"
    error = "unsupported_media_type"


class NotSupported(PHRError):
    status_code = 400
    code = "not-supported"
    error = "not_supported"


class ServiceUnavailable(PHRError):
    status_code = 503
    code = "transient"
    error = "unavailable"

    def __init__(self, message: str = "database unavailable, retry shortly", **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": "5"})
        super().__init__(message, **kw)


class InsufficientStorage(PHRError):
    """The database has no room left (disk full): the unit of work was rolled back whole."""

    status_code = 507
    code = "exception"
    error = "insufficient_storage"

    def __init__(
        self, message: str = "the database is out of space; nothing was written", **kw: Any
    ) -> None:
        super().__init__(message, **kw)


def issue(
    diagnostics: str,
    *,
    code: str = "invalid",
    severity: str = "error",
    expression: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        out["expression"] = [expression]
    return out
