"""The review as FHIR R4: a collection Bundle with the reconciled ``List``, the medicine
records it was built from (as stored), and one ``DetectedIssue`` per finding.

Generated resources are validated with ``fhir.resources`` (R4B models) before they leave.
"""

from __future__ import annotations

import html
import uuid
from datetime import date
from typing import Any

from fhir_gateway.api import render
from fhir_gateway.validation import validate_resource
from phr.errors import PHRError
from phr.polypharmacy.rules import ACTCODE_DISPLAY, Finding
from phr.polypharmacy.service import Review
from phr.store.indexer import iso_instant

__all__ = ["ACTCODE", "RULE_SYSTEM", "bundle", "detected_issue", "reconciled_list"]

ACTCODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
RULE_SYSTEM = "urn:phr:codesystem:polypharmacy-rule"
LOINC = "http://loinc.org"
_NS = uuid.UUID("0b1f3a52-8f5e-4d0e-9a55-6f1d3c2b7e10")
XHTML = "http://www.w3.org/1999/xhtml"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"


def _div(text: str) -> str:
    return f'<div xmlns="{XHTML}"><p>{html.escape(text)}</p></div>'


def _url(ref: str) -> str:
    return f"{render.fhir_base()}/{ref}"


def _evidence(f: Finding) -> list[dict[str, Any]]:
    """The source of the rule, and the record that triggered it where there is one (the
    condition of a drug–disease finding, the eGFR or creatinine of a kidney finding)."""
    out: list[dict[str, Any]] = [{"display": f.source[:1000]}]
    condition = f.facts.get("condition")
    if isinstance(condition, str) and condition.startswith("Condition/"):
        out.append({"reference": condition, "display": str(f.facts.get("condition_code"))})
    return out


def detected_issue(r: Review, f: Finding) -> dict[str, Any]:
    refs = [s for m in f.medicines for s in m.active_sources]
    body: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": str(uuid.uuid5(_NS, f"{r.patient.id}:{f.fingerprint}")),
        "text": {"status": "generated", "div": _div(f"{f.title_ja} — {f.reason_ja}")},
        "status": "preliminary",
        "code": {
            "coding": [
                {"system": ACTCODE, "code": f.code, "display": ACTCODE_DISPLAY[f.code]},
                {"system": RULE_SYSTEM, "code": f.rule, "display": f.rule_id},
            ],
            "text": f.title_ja,
        },
        "severity": f.severity,
        "patient": {"reference": f"Patient/{r.patient.id}"},
        "identifiedDateTime": iso_instant(r.at),
        "author": {"display": "Tsukuba PHR polypharmacy check"},
        "implicated": [
            {"reference": s.reference(), "display": m.name}
            for m in f.medicines
            for s in m.active_sources
        ][:100],
        "detail": f"{f.reason_ja}\n{f.reason_en}",
        "evidence": [{"detail": _evidence(f)}],
        "mitigation": [
            {"action": {"text": f"{f.action_ja} / {f.action_en}"}, "date": iso_instant(r.at)}
        ],
    }
    if not refs:
        del body["implicated"]
    return body


def reconciled_list(r: Review) -> dict[str, Any]:
    entries = []
    for m in r.medicines:
        if not m.active:
            continue
        latest = max(m.active_sources, key=lambda s: (s.date or date.min, s.id))
        who = "、".join(m.prescribers + m.pharmacies)
        entries.append(
            {
                "item": {
                    "reference": latest.reference(),
                    "display": f"{m.name}（{len(m.active_sources)}件; {who}）" if who else m.name,
                },
                **({"date": latest.date.isoformat()} if latest.date else {}),
                **(
                    {}
                    if m.recognised
                    else {"flag": {"text": "unrecognised / 未同定（マスタに該当なし）"}}
                ),
            }
        )
    body: dict[str, Any] = {
        "resourceType": "List",
        "id": str(uuid.uuid5(_NS, f"{r.patient.id}:list:{iso_instant(r.at)}")),
        "text": {
            "status": "generated",
            "div": _div("、".join(m.name for m in r.medicines if m.active) or "なし"),
        },
        "status": "current",
        "mode": "snapshot",
        "title": "統合服薬リスト / Reconciled medication list",
        "code": {"coding": [{"system": LOINC, "code": "10160-0"}], "text": "服薬情報"},
        "subject": {"reference": f"Patient/{r.patient.id}"},
        "date": iso_instant(r.at),
    }
    if entries:
        body["entry"] = entries
    else:
        body["emptyReason"] = {
            "coding": [{"system": EMPTY_REASON, "code": "nilknown"}],
            "text": "現在の薬の記録はありません / no current medicine on record",
        }
    return body


def _checked(resource: dict[str, Any]) -> dict[str, Any]:
    issues = validate_resource(resource)
    if issues:  # our own output: a bug, not the caller's fault
        err = PHRError(f"generated {resource['resourceType']} is not valid FHIR: {issues[0]}")
        err.status_code, err.code, err.error = 500, "exception", "internal_error"
        raise err
    return resource


def bundle(r: Review) -> bytes:
    lst = _checked(reconciled_list(r))
    entries: list[dict[str, Any]] = [{"fullUrl": _url(f"List/{lst['id']}"), "resource": lst}]
    if r.patient_row is not None:
        entries.append(render.entry("Patient", r.patient_row.id, r.patient_row.content))
    wanted = {(s.resource_type, s.id) for m in r.medicines if m.active for s in m.active_sources}
    for key in sorted(wanted):
        row = r.rows.get(key)
        if row is not None:
            entries.append(render.entry(row.resource_type, row.id, row.content))
    for f in r.findings:
        di = _checked(detected_issue(r, f))
        entries.append({"fullUrl": _url(f"DetectedIssue/{di['id']}"), "resource": di})
    return render.bundle(
        btype="collection",
        entries=entries,
        extra={
            "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
            "timestamp": iso_instant(r.at),
        },
    )
