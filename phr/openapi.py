"""The OpenAPI document, with the error answers every route can give.

FastAPI documents a route's success and its 422; the answers of the shared handlers are
not in it: 4xx from :mod:`phr.errors` (bad input, authentication, scopes, not found, too
large, too many attempts — in the route family's one error shape) and 503 when the
database is unavailable. They are added here to every operation, so that clients (and the
schema tests, ``tests/security/test_schemathesis.py``) know every status they may get."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["install"]

ERROR = {
    "title": "Error",
    "type": "object",
    "description": "The JSON error of the non-FHIR APIs (OAuth endpoints: RFC 6749 §5.2).",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "error_description": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}
OPERATION_OUTCOME = {
    "title": "OperationOutcome",
    "type": "object",
    "description": "FHIR R4 OperationOutcome.",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {"type": "array", "items": {"type": "object"}},
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_OUTCOME_REF = {"$ref": "#/components/schemas/OperationOutcome"}


def _error_content(path: str, operation: dict[str, Any]) -> dict[str, Any]:
    if _errors_are_fhir(path):
        return {"application/fhir+json": {"schema": _OUTCOME_REF}}
    content: dict[str, Any] = {"application/json": {"schema": _ERROR_REF}}
    for status, response in operation.get("responses", {}).items():
        if str(status).startswith("2") and "text/html" in response.get("content", {}):
            # pages answer their refusals as pages
            content["text/html"] = {"schema": {"type": "string"}}
    return content


def _answers_fhir(path: str) -> bool:
    """Routes whose answers are FHIR resources (not the SMART discovery document)."""
    return (path.startswith("/fhir") and "/.well-known/" not in path) or path.endswith(".fhir")


def _errors_are_fhir(path: str) -> bool:
    """The error handlers answer OperationOutcome under /fhir (``phr.app``)."""
    return path.startswith("/fhir")


def _fhir_media_type(operation: dict[str, Any]) -> None:
    """FHIR routes answer ``application/fhir+json`` (FastAPI says ``application/json``)."""
    for status, response in operation.get("responses", {}).items():
        content = response.get("content", {})
        if str(status).startswith("2") and "application/json" in content:
            content["application/fhir+json"] = content.pop("application/json")


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the shared error answers (4XX, 503) to every operation of ``schema``; FHIR
    routes answer in FHIR's media type."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Error", ERROR)
    components.setdefault("OperationOutcome", OPERATION_OUTCOME)
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if _answers_fhir(path):
                _fhir_media_type(operation)
            content = _error_content(path, operation)
            responses = operation["responses"]
            responses.setdefault(
                "4XX", {"description": "refused: see the error", "content": content}
            )
            responses.setdefault(
                "503", {"description": "the database is unavailable", "content": content}
            )
    return schema


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
