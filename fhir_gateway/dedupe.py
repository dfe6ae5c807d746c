"""Fact keys: the clinical identity of a record, to recognise one fact from two sources.

A municipality and a clinic may both report the same vaccination; an insurer's claims
and a pharmacy may both report the same dispensing. Records with the same fact key
for the same resident, from different sources, are stored once (with both sources).
Records whose type has no key here are never merged.
"""

from __future__ import annotations

import hashlib
from typing import Any


def _code(cc: Any) -> str | None:
    if isinstance(cc, dict):
        for c in cc.get("coding", []) or []:
            if c.get("code"):
                return f"{c.get('system', '')}|{c['code']}"
    return None


def _day(value: Any) -> str | None:
    if isinstance(value, str) and len(value) >= 10:
        return value[:10]
    if isinstance(value, dict):
        return _day(value.get("start"))
    return None


def _minute(value: Any) -> str | None:
    if isinstance(value, str):
        return value[:16]
    if isinstance(value, dict):
        return _minute(value.get("start"))
    return None


def _value(obs: dict[str, Any]) -> str:
    q = obs.get("valueQuantity")
    if isinstance(q, dict) and "value" in q:
        return f"{float(q['value']):g}{q.get('code') or q.get('unit') or ''}"
    c = _code(obs.get("valueCodeableConcept"))
    if c:
        return c
    comps = obs.get("component") or []
    parts = []
    for comp in comps:
        cq = comp.get("valueQuantity") or {}
        parts.append(f"{_code(comp.get('code'))}={cq.get('value')}")
    return ";".join(parts)


def fact_key(resource: dict[str, Any]) -> str | None:
    t = resource.get("resourceType")
    key: list[Any]
    if t == "Immunization":
        key = [_code(resource.get("vaccineCode")), _day(resource.get("occurrenceDateTime"))]
    elif t == "Observation":
        when = resource.get("effectiveDateTime") or resource.get("effectivePeriod")
        key = [_code(resource.get("code")), _minute(when), _value(resource)]
    elif t == "Condition":
        key = [
            _code(resource.get("code")),
            _day(resource.get("onsetDateTime") or resource.get("recordedDate")),
        ]
    elif t == "MedicationDispense":
        qty = (resource.get("quantity") or {}).get("value")
        key = [
            _code(resource.get("medicationCodeableConcept")),
            _day(resource.get("whenHandedOver")),
            qty,
        ]
    elif t == "AllergyIntolerance":
        key = [_code(resource.get("code"))]
    elif t == "DiagnosticReport":
        # The same report groups the same results. Result references are platform ids by
        # now (results merged across sources share ids), so a report whose results differ
        # in any value is a different report.
        results = sorted(r.get("reference", "") for r in resource.get("result", []) or [])
        digest = hashlib.sha256("\n".join(results).encode()).hexdigest()[:32]
        key = [
            _code(resource.get("code")),
            _day(resource.get("effectiveDateTime") or resource.get("effectivePeriod")),
            digest,
        ]
    elif t == "Procedure":
        key = [
            _code(resource.get("code")),
            _minute(resource.get("performedDateTime") or resource.get("performedPeriod")),
        ]
    else:
        return None
    if any(k is None for k in key):
        return None
    return (t + ":" + "/".join(str(k) for k in key))[:255]
