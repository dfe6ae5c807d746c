"""Validate resources at the edge with fhir.resources (R4B models, wire-compatible with R4)."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from phr.errors import issue

__all__ = ["known_type", "validate_resource"]


def known_type(resource_type: str) -> bool:
    try:
        get_fhir_model_class(resource_type)
    except (KeyError, ValueError, AttributeError, ImportError):
        return False
    return True


def validate_resource(resource: Any, *, expression: str = "") -> list[dict[str, Any]]:
    """OperationOutcome issues for an invalid resource; empty when valid."""
    prefix = f"{expression}." if expression else ""
    if not isinstance(resource, dict):
        return [issue("resource must be a JSON object", expression=expression or None)]
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not known_type(rtype):
        return [
            issue(
                f"unknown resourceType {rtype!r}",
                code="not-supported",
                expression=f"{prefix}resourceType",
            )
        ]
    try:
        get_fhir_model_class(rtype).model_validate(resource)
    except ValidationError as exc:
        out = []
        for err in exc.errors()[:20]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
            out.append(
                issue(
                    f"{rtype}: {err.get('msg')}",
                    code="structure",
                    expression=f"{prefix}{loc}".rstrip(".") or rtype,
                )
            )
        return out
    except (TypeError, ValueError) as exc:
        return [issue(f"{rtype}: {exc}", code="structure", expression=expression or rtype)]
    return _required_bindings(resource, prefix)


# Elements bound to a *required* value set in FHIR R4 (fhir.resources checks structure and
# datatypes but not bindings). Source: the R4 resource definitions, e.g.
# http://hl7.org/fhir/R4/valueset-observation-status.html
_STATUS = {
    "Observation": {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    "DiagnosticReport": {
        "registered",
        "partial",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "appended",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    "MedicationRequest": {
        "active",
        "on-hold",
        "cancelled",
        "completed",
        "entered-in-error",
        "stopped",
        "draft",
        "unknown",
    },
    "MedicationDispense": {
        "preparation",
        "in-progress",
        "cancelled",
        "on-hold",
        "completed",
        "entered-in-error",
        "stopped",
        "declined",
        "unknown",
    },
    "MedicationStatement": {
        "active",
        "completed",
        "entered-in-error",
        "intended",
        "stopped",
        "on-hold",
        "unknown",
        "not-taken",
    },
    "Immunization": {"completed", "entered-in-error", "not-done"},
    "Encounter": {
        "planned",
        "arrived",
        "triaged",
        "in-progress",
        "onleave",
        "finished",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    "Procedure": {
        "preparation",
        "in-progress",
        "not-done",
        "on-hold",
        "stopped",
        "completed",
        "entered-in-error",
        "unknown",
    },
    "DocumentReference": {"current", "superseded", "entered-in-error"},
    "Consent": {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"},
}
_GENDER = {"male", "female", "other", "unknown"}


def _required_bindings(resource: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    rtype = resource["resourceType"]
    out = []
    allowed = _STATUS.get(rtype)
    if allowed is not None and "status" in resource and resource["status"] not in allowed:
        out.append(
            issue(
                f"{rtype}.status {resource['status']!r} is not in the required value set",
                code="code-invalid",
                expression=f"{prefix}status",
            )
        )
    if (
        rtype in ("Patient", "Practitioner", "RelatedPerson")
        and "gender" in resource
        and resource["gender"] not in _GENDER
    ):
        out.append(
            issue(
                f"gender {resource['gender']!r} is not male, female, other or unknown",
                code="code-invalid",
                expression=f"{prefix}gender",
            )
        )
    return out
