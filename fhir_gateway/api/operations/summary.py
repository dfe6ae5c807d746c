"""``Patient/{id}/$summary``: an International Patient Summary document of one resident.

Builds the document Bundle described by the HL7 International Patient Summary
implementation guide (IPS, http://hl7.org/fhir/uv/ips/ — the ``$summary`` operation,
the Bundle and Composition profiles, and "Empty Sections and Missing Data"):

- ``Bundle.type = document`` with ``identifier`` and ``timestamp``; the first entry is the
  ``Composition`` (status final, LOINC 60591-5 "Patient summary Document"), the second the
  ``Patient``, then the author, then every resource the sections refer to and what those
  refer to in turn, each a full entry with its ``fullUrl``;
- sections with LOINC codes and a generated XHTML narrative: Medication Summary
  (10160-0), Allergies and Intolerances (48765-2) and Problem List (11450-4) — the three
  IPS requires — plus Immunizations (11369-6), Results (30954-2) and Vital Signs (8716-3),
  always present; History of Procedures (47519-4) and History of Past Illness (11348-0)
  only when the record has any;
- a section with nothing to list carries ``emptyReason`` from
  http://terminology.hl7.org/CodeSystem/list-empty-reason: ``unavailable`` when the
  record holds nothing for it (the IPS recommendation when the source system has no
  information), ``withheld`` when the caller's scopes do not cover its resource types
  (a fact about the caller, not about the resident's record). ``nilknown`` is never
  asserted here: by its definition it is a clinician's positive statement after
  investigation, not a default a computer draws from silence; a recorded "no known
  allergy" style resource is listed as an entry instead, as the IPS recommends.

All resident data is read through :class:`~phr.store.reader.RecordReader` — the
compartment with ``action="summary"``, referenced reference data by ``_id`` search — so
what the caller's consent does not cover is simply absent and every look is in the access
log. A Patient the caller may not see is a 404.

The resources are sent as stored. They come from many sources and are not checked against
the IPS resource profiles, so the document does not claim ``meta.profile``.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from consent.actors import Actor, scope_allows
from consent.identity.oauth import check_scope
from fhir_gateway.api import render
from fhir_gateway.api.deps import ActorDep, PurposeDep, SessionDep
from fhir_gateway.validation import known_type
from phr import __version__
from phr.errors import InvalidInput, NotFound
from phr.store import repository as repo
from phr.store.indexer import date_range, iso_instant, utcnow
from phr.store.models import Resource
from phr.store.reader import RecordReader

__all__ = [
    "IPS_BUNDLE_PROFILE",
    "ExtraSection",
    "build_document",
    "describe_entry",
    "document_from_rows",
    "read_rows",
    "router",
]

router = APIRouter(prefix="/fhir", tags=["FHIR R4"])

IPS_BUNDLE_PROFILE = "http://hl7.org/fhir/uv/ips/StructureDefinition/Bundle-uv-ips"
LOINC = "http://loinc.org"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
XHTML_NS = "http://www.w3.org/1999/xhtml"
TITLE = "International Patient Summary / 患者サマリー"

# A dispense counts as current medication for this long after it was handed over
# (Japanese long-term prescriptions run up to 90 days).
RECENT_DISPENSE = timedelta(days=90)
# How many hops of references (Observation -> hasMember -> ...) the document follows.
MAX_REFERENCE_DEPTH = 3
_ID_CHUNK = 100

_EMPTY_DISPLAY = {"unavailable": "Unavailable", "withheld": "Information Withheld"}
_EMPTY_TEXT = {
    "unavailable": "記録がありません / No information is recorded.",
    "withheld": (
        "この利用者の権限では表示できません / Not available with the caller's access rights."
    ),
}

_INACTIVE_CLINICAL = {"inactive", "resolved", "remission"}
_BAD_VERIFICATION = {"entered-in-error", "refuted"}


# ---- what goes in each section -----------------------------------------------------------------


@dataclass(frozen=True)
class SectionSpec:
    key: str
    code: str
    display: str  # LOINC display
    title: str
    types: tuple[str, ...]
    always: bool  # present (with emptyReason) even when empty


SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec(
        "medications",
        "10160-0",
        "History of Medication use Narrative",
        "服薬情報 / Medication Summary",
        ("MedicationRequest", "MedicationStatement", "MedicationDispense"),
        True,
    ),
    SectionSpec(
        "allergies",
        "48765-2",
        "Allergies and adverse reactions Document",
        "アレルギー・不耐性 / Allergies and Intolerances",
        ("AllergyIntolerance",),
        True,
    ),
    SectionSpec(
        "problems",
        "11450-4",
        "Problem list - Reported",
        "問題リスト / Problem List",
        ("Condition",),
        True,
    ),
    SectionSpec(
        "procedures",
        "47519-4",
        "History of Procedures Document",
        "処置・手術歴 / History of Procedures",
        ("Procedure",),
        False,
    ),
    SectionSpec(
        "immunizations",
        "11369-6",
        "History of Immunization Narrative",
        "予防接種歴 / Immunizations",
        ("Immunization",),
        True,
    ),
    SectionSpec(
        "results",
        "30954-2",
        "Relevant diagnostic tests/laboratory data Narrative",
        "検査結果 / Results",
        ("Observation",),
        True,
    ),
    SectionSpec(
        "vitals",
        "8716-3",
        "Vital signs",
        "バイタルサイン / Vital Signs",
        ("Observation",),
        True,
    ),
    SectionSpec(
        "past_illness",
        "11348-0",
        "History of Past illness Narrative",
        "既往歴 / History of Past Illness",
        ("Condition",),
        False,
    ),
)

SECTION_TYPES: tuple[str, ...] = tuple(dict.fromkeys(t for s in SECTIONS for t in s.types))


@dataclass(frozen=True)
class ExtraSection:
    """A section another service adds to the document (e.g. the advance directives of the
    emergency summary): the Composition section, and the full Bundle entries it refers to
    (``fullUrl`` + ``resource``)."""

    section: dict[str, Any]
    entries: Sequence[dict[str, Any]] = ()


@dataclass
class _Item:
    row: Resource
    body: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return (self.row.resource_type, self.row.id)


# ---- the route -------------------------------------------------------------------------------


@router.get("/Patient/{id}/$summary")
def summary(
    id: str, request: Request, session: SessionDep, actor: ActorDep, purpose: PurposeDep
) -> Response:
    check_scope(actor, "Patient", "r")
    profile = request.query_params.get("profile")
    if profile and profile.split("|")[0] != IPS_BUNDLE_PROFILE:
        raise InvalidInput(f"profile {profile!r} is not supported; only {IPS_BUNDLE_PROFILE}")
    reader = RecordReader(session, actor, purpose)
    if not reader.resident_exists(id):
        reader.read("Patient", id)  # logs the miss and raises NotFound (or Gone)
        raise NotFound(f"Patient/{id} not found")
    return render.FHIRResponse(build_document(reader, id))


def build_document(
    reader: RecordReader,
    patient_id: str,
    *,
    now: datetime | None = None,
    extra: Sequence[ExtraSection] = (),
) -> bytes:
    """The IPS document Bundle of one resident, as JSON bytes (``extra`` sections last)."""
    rows = read_rows(reader, patient_id)
    return document_from_rows(reader, patient_id, rows, now=now, extra=extra)


def read_rows(reader: RecordReader, patient_id: str, *, also: Sequence[str] = ()) -> list[Resource]:
    """The one logged read a document is built from: the Patient and the section types
    the caller's scopes cover, plus ``also`` (types another service needs alongside)."""
    readable = {t for t in SECTION_TYPES if _may_read(reader.actor, t)}
    types = ["Patient", *sorted(readable), *(t for t in also if t not in readable)]
    return list(reader.compartment(patient_id, types=types, action="summary"))


def document_from_rows(
    reader: RecordReader,
    patient_id: str,
    rows: Sequence[Resource],
    *,
    now: datetime | None = None,
    extra: Sequence[ExtraSection] = (),
) -> bytes:
    """The document from rows :func:`read_rows` returned (types beyond the sections are
    only used to resolve references)."""
    now = now or utcnow()
    actor = reader.actor
    readable = {t for t in SECTION_TYPES if _may_read(actor, t)}
    patient: _Item | None = None
    by_type: dict[str, list[_Item]] = {}
    loaded: dict[tuple[str, str], _Item] = {}
    for row in rows:
        item = _Item(row, repo.load_json(row.content))
        loaded[item.key] = item
        if row.resource_type == "Patient":
            if row.id == patient_id:
                patient = item
            continue
        by_type.setdefault(row.resource_type, []).append(item)
    if patient is None:  # visible a moment ago; deleted in between
        raise NotFound(f"Patient/{patient_id} not found")

    chosen: dict[str, list[_Item]] = {
        "medications": _medications(by_type, now),
        "allergies": _allergies(by_type.get("AllergyIntolerance", [])),
        "problems": _conditions(by_type.get("Condition", []), active=True),
        "procedures": _sorted(
            [
                i
                for i in by_type.get("Procedure", [])
                if i.body.get("status") not in ("entered-in-error", "not-done")
            ]
        ),
        "immunizations": _sorted(
            [
                i
                for i in by_type.get("Immunization", [])
                if i.body.get("status") not in ("entered-in-error", "not-done")
            ]
        ),
        "results": _latest_per_code(by_type.get("Observation", []), "laboratory"),
        "vitals": _latest_per_code(by_type.get("Observation", []), "vital-signs"),
        "past_illness": _conditions(by_type.get("Condition", []), active=False),
    }

    entries: dict[tuple[str, str], _Item] = {patient.key: patient}
    for spec in SECTIONS:
        for item in chosen[spec.key]:
            entries.setdefault(item.key, item)
    _add_referenced(reader, entries, loaded)

    base = render.fhir_base()

    def url(key: tuple[str, str]) -> str:
        return f"{base}/{key[0]}/{key[1]}"

    bodies = {k: v.body for k, v in entries.items()}
    device_id = str(uuid.uuid5(uuid.NAMESPACE_URL, base + "#phr-platform"))
    device_url = f"urn:uuid:{device_id}"
    sections = []
    for spec in SECTIONS:
        items = chosen[spec.key]
        withheld = not any(t in readable for t in spec.types)
        if not items and not spec.always:
            continue
        sections.append(_section(spec, items, bodies, url, withheld=withheld))
    sections += [x.section for x in extra]

    composition_id = str(uuid.uuid4())
    stamp = iso_instant(now)
    patient_name = _person_name(patient.body)
    born = f" ({patient.body['birthDate']})" if patient.body.get("birthDate") else ""
    composition: dict[str, Any] = {
        "resourceType": "Composition",
        "id": composition_id,
        "text": {
            "status": "generated",
            "div": _div(
                f"<p><b>{_e(TITLE)}</b></p>"
                f"<p>{_e(patient_name or 'Patient')}{_e(born)} — {_e(stamp)}</p>"
            ),
        },
        "status": "final",
        "type": {
            "coding": [{"system": LOINC, "code": "60591-5", "display": "Patient summary Document"}]
        },
        "subject": {
            "reference": url(patient.key),
            **({"display": patient_name} if patient_name else {}),
        },
        "date": stamp,
        "author": [{"reference": device_url, "display": "Tsukuba PHR"}],
        "title": TITLE,
        "confidentiality": "N",
        "section": sections,
    }
    device: dict[str, Any] = {
        "resourceType": "Device",
        "id": device_id,
        "text": {
            "status": "generated",
            "div": _div(
                f"<p>Tsukuba PHR {_e(__version__)} — つくば生涯健康記録プラットフォーム</p>"
            ),
        },
        "deviceName": [{"name": "Tsukuba PHR", "type": "user-friendly-name"}],
        "version": [{"value": __version__}],
    }
    out_entries: list[dict[str, Any]] = [
        {"fullUrl": f"urn:uuid:{composition_id}", "resource": composition},
        render.entry("Patient", patient.row.id, patient.row.content),
        {"fullUrl": device_url, "resource": device},
    ]
    out_entries += [
        render.entry(item.row.resource_type, item.row.id, item.row.content)
        for key, item in entries.items()
        if key != patient.key
    ]
    out_entries += [e for x in extra for e in x.entries]
    return render.bundle(
        btype="document",
        entries=out_entries,
        extra={
            "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
            "timestamp": stamp,
        },
    )


def _may_read(actor: Actor, resource_type: str) -> bool:
    return scope_allows(actor.scopes, resource_type, "r")


# ---- selection --------------------------------------------------------------------------------


def _codes(cc: Any) -> set[str]:
    if not isinstance(cc, dict):
        return set()
    return {str(c.get("code")) for c in cc.get("coding") or [] if isinstance(c, dict)}


def _verification_ok(body: dict[str, Any]) -> bool:
    return not (_codes(body.get("verificationStatus")) & _BAD_VERIFICATION)


def _allergies(items: Sequence[_Item]) -> list[_Item]:
    return _sorted(
        [
            i
            for i in items
            if _verification_ok(i.body)
            and not (_codes(i.body.get("clinicalStatus")) & _INACTIVE_CLINICAL)
        ]
    )


def _conditions(items: Sequence[_Item], *, active: bool) -> list[_Item]:
    """Active problems (active, recurrence, relapse or unstated) or past ones."""
    out = []
    for i in items:
        if not _verification_ok(i.body):
            continue
        inactive = bool(_codes(i.body.get("clinicalStatus")) & _INACTIVE_CLINICAL) or bool(
            i.body.get("abatementDateTime") or i.body.get("abatementPeriod")
        )
        if inactive != active:
            out.append(i)
    return _sorted(out)


def _medications(by_type: dict[str, list[_Item]], now: datetime) -> list[_Item]:
    out = [i for i in by_type.get("MedicationRequest", []) if i.body.get("status") == "active"]
    out += [
        i
        for i in by_type.get("MedicationStatement", [])
        if i.body.get("status") in ("active", "intended")
    ]
    recent: dict[str, _Item] = {}
    for i in by_type.get("MedicationDispense", []):
        if i.body.get("status") in ("entered-in-error", "cancelled", "declined", "stopped"):
            continue
        when = _when(i.body)
        if when is None or when < now - RECENT_DISPENSE:
            continue
        key = _medication_key(i.body)
        if key not in recent or _order_key(i) > _order_key(recent[key]):
            recent[key] = i
    return _sorted(out) + _sorted(list(recent.values()))


def _medication_key(body: dict[str, Any]) -> str:
    cc = body.get("medicationCodeableConcept")
    if isinstance(cc, dict):
        return _concept_key(cc)
    ref = body.get("medicationReference")
    if isinstance(ref, dict):
        return str(ref.get("reference") or ref.get("display") or "")
    return ""


def _concept_key(cc: dict[str, Any]) -> str:
    codings = [c for c in cc.get("coding") or [] if isinstance(c, dict) and c.get("code")]
    loinc = [c for c in codings if c.get("system") == LOINC]
    picks = loinc or codings
    if picks:
        return f"{picks[0].get('system') or ''}|{picks[0]['code']}"
    return "text:" + str(cc.get("text") or "")


def _has_category(body: dict[str, Any], code: str) -> bool:
    for cat in body.get("category") or []:
        for c in (cat or {}).get("coding") or []:
            if c.get("code") == code and c.get("system") in (OBSERVATION_CATEGORY, None):
                return True
    return False


def _latest_per_code(items: Sequence[_Item], category: str) -> list[_Item]:
    latest: dict[str, _Item] = {}
    for i in items:
        if i.body.get("status") in ("entered-in-error", "cancelled"):
            continue
        if not _has_category(i.body, category):
            continue
        key = _concept_key(i.body.get("code") or {})
        if key not in latest or _order_key(i) > _order_key(latest[key]):
            latest[key] = i
    return _sorted(list(latest.values()))


_DATE_FIELDS = (
    "effectiveDateTime",
    "effectiveInstant",
    "effectivePeriod",
    "occurrenceDateTime",
    "performedDateTime",
    "performedPeriod",
    "whenHandedOver",
    "whenPrepared",
    "onsetDateTime",
    "onsetPeriod",
    "authoredOn",
    "dateAsserted",
    "recordedDate",
    "recorded",
    "issued",
    "date",
)


def _date_text(body: dict[str, Any]) -> str | None:
    for f in _DATE_FIELDS:
        v = body.get(f)
        if isinstance(v, dict):
            v = v.get("start") or v.get("end")
        if isinstance(v, str) and v:
            return v
    return None


def _when(body: dict[str, Any]) -> datetime | None:
    text = _date_text(body)
    rng = date_range(text) if text else None
    return rng[0] if rng else None


def _order_key(i: _Item) -> tuple[datetime, datetime, int]:
    return (_when(i.body) or datetime.min, i.row.last_updated, i.row.pk)


def _sorted(items: list[_Item]) -> list[_Item]:
    return sorted(items, key=_order_key, reverse=True)


# ---- references -----------------------------------------------------------------------------


def _references(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "reference" and isinstance(v, str):
                yield v
            else:
                yield from _references(v)
    elif isinstance(node, list):
        for v in node:
            yield from _references(v)


def _local_key(ref: str, base: str) -> tuple[str, str] | None:
    """``Type/id`` of a reference to this server, or None (contained, urn, external)."""
    if ref.startswith(base + "/"):
        ref = ref[len(base) + 1 :]
    elif ref.startswith(("#", "urn:")) or "://" in ref or "?" in ref:
        return None
    parts = ref.split("/")
    if len(parts) not in (2, 4) or (len(parts) == 4 and parts[2] != "_history"):
        return None
    rtype, rid = parts[0], parts[1]
    if not rtype or not rid or not known_type(rtype):
        return None
    return (rtype, rid)


def _add_referenced(
    reader: RecordReader,
    entries: dict[tuple[str, str], _Item],
    loaded: dict[tuple[str, str], _Item],
) -> None:
    """Add, in place, what the entries refer to and the caller may see (a few hops deep).

    References to other Patients are not followed: an IPS document has one Patient.
    """
    base = render.fhir_base()
    frontier = list(entries.values())
    for _ in range(MAX_REFERENCE_DEPTH):
        wanted: dict[tuple[str, str], None] = {}
        for item in frontier:
            for ref in _references(item.body):
                key = _local_key(ref, base)
                if key and key[0] != "Patient" and key not in entries:
                    wanted[key] = None
        if not wanted:
            return
        frontier = []
        fetch: dict[str, list[str]] = {}
        for key in wanted:
            if key in loaded:
                entries[key] = loaded[key]
                frontier.append(loaded[key])
            elif _may_read(reader.actor, key[0]):
                fetch.setdefault(key[0], []).append(key[1])
        keys = [(rtype, i) for rtype, ids in fetch.items() for i in ids]
        for n in range(0, len(keys), _ID_CHUNK):
            chunk = keys[n : n + _ID_CHUNK]
            detail = " ".join(sorted({t for t, _ in chunk})) + " referenced by the summary"
            for row in reader.read_keys(chunk, detail=detail):
                item = _Item(row, repo.load_json(row.content))
                entries.setdefault(item.key, item)
                frontier.append(item)


# ---- narrative ------------------------------------------------------------------------------


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _div(inner: str) -> str:
    return f'<div xmlns="{XHTML_NS}">{inner}</div>'


def _concept(cc: Any) -> str:
    if not isinstance(cc, dict):
        return ""
    if cc.get("text"):
        return str(cc["text"])
    for c in cc.get("coding") or []:
        if isinstance(c, dict) and c.get("display"):
            return str(c["display"])
    for c in cc.get("coding") or []:
        if isinstance(c, dict) and c.get("code"):
            return str(c["code"])
    return ""


def _concepts(ccs: Any) -> str:
    return ", ".join(t for t in (_concept(c) for c in ccs or []) if t)


def _quantity(q: Any) -> str:
    if not isinstance(q, dict) or q.get("value") is None:
        return ""
    comparator = q.get("comparator") or ""
    unit = q.get("unit") or q.get("code") or ""
    return f"{comparator}{q['value']} {unit}".strip()


def _value(body: dict[str, Any]) -> str:
    if "valueQuantity" in body:
        return _quantity(body["valueQuantity"])
    if "valueCodeableConcept" in body:
        return _concept(body["valueCodeableConcept"])
    for k in ("valueString", "valueInteger", "valueBoolean", "valueDateTime", "valueTime"):
        if k in body:
            v = body[k]
            return ("true" if v else "false") if isinstance(v, bool) else str(v)
    if "valueRange" in body:
        r = body["valueRange"]
        return f"{_quantity(r.get('low'))} – {_quantity(r.get('high'))}"
    if "dataAbsentReason" in body:
        return _concept(body["dataAbsentReason"])
    return ""


def _observation_details(body: dict[str, Any]) -> str:
    parts = [_value(body)]
    comps = [
        f"{_concept(c.get('code'))}: {_value(c)}"
        for c in body.get("component") or []
        if isinstance(c, dict)
    ]
    if comps:
        parts.append("; ".join(comps))
    interp = _concepts(body.get("interpretation"))
    if interp:
        parts.append(f"({interp})")
    return " ".join(p for p in parts if p)


def _medication(body: dict[str, Any], bodies: dict[tuple[str, str], dict[str, Any]]) -> str:
    if "medicationCodeableConcept" in body:
        return _concept(body["medicationCodeableConcept"])
    ref = body.get("medicationReference") or {}
    key = _local_key(str(ref.get("reference") or ""), render.fhir_base())
    if key and key in bodies:
        return _concept(bodies[key].get("code"))
    return str(ref.get("display") or "")


def _dosage(body: dict[str, Any]) -> str:
    dosages = body.get("dosageInstruction") or body.get("dosage") or []
    return " / ".join(str(d["text"]) for d in dosages if isinstance(d, dict) and d.get("text"))


def _status(body: dict[str, Any]) -> str:
    return _concept(body.get("clinicalStatus")) or str(body.get("status") or "")


def _row(item: _Item, bodies: dict[tuple[str, str], dict[str, Any]]) -> tuple[str, ...]:
    return describe_entry(item.row.resource_type, item.body, bodies)


def describe_entry(
    rtype: str, b: dict[str, Any], bodies: dict[tuple[str, str], dict[str, Any]]
) -> tuple[str, str, str, str]:
    """(item, status, date, details) of one resource, as the section tables show them."""
    date = (_date_text(b) or "")[:10]
    if rtype == "AllergyIntolerance":
        reactions = _concepts(
            m for r in b.get("reaction") or [] for m in (r or {}).get("manifestation") or []
        )
        details = " ".join(x for x in (b.get("criticality") or "", reactions) if x)
        return (_concept(b.get("code")), _status(b), date, details)
    if rtype == "Condition":
        abated = b.get("abatementDateTime") or (b.get("abatementPeriod") or {}).get("start")
        details = _concept(b.get("severity"))
        if abated:
            details = f"{details} ～{str(abated)[:10]}".strip()
        return (_concept(b.get("code")), _status(b), date, details)
    if rtype in ("MedicationRequest", "MedicationStatement", "MedicationDispense"):
        details = _dosage(b)
        if rtype == "MedicationDispense":
            extra = [_quantity(b.get("quantity")), _quantity(b.get("daysSupply"))]
            details = " ".join(x for x in [*extra, details] if x)
        return (_medication(b, bodies), str(b.get("status") or ""), date, details)
    if rtype == "Immunization":
        dose = next(
            (
                str(p.get("doseNumberPositiveInt") or p.get("doseNumberString") or "")
                for p in b.get("protocolApplied") or []
                if isinstance(p, dict)
            ),
            "",
        )
        date = (b.get("occurrenceDateTime") or b.get("occurrenceString") or date)[:10]
        return (_concept(b.get("vaccineCode")), str(b.get("status") or ""), date, dose)
    if rtype == "Observation":
        return (_concept(b.get("code")), str(b.get("status") or ""), date, _observation_details(b))
    return (_concept(b.get("code")), str(b.get("status") or ""), date, "")


_HEADER = ("項目 / Item", "状態 / Status", "日付 / Date", "詳細 / Details")


def _table(rows: Iterable[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in _HEADER)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(
    spec: SectionSpec,
    items: Sequence[_Item],
    bodies: dict[tuple[str, str], dict[str, Any]],
    url: Callable[[tuple[str, str]], str],
    *,
    withheld: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "title": spec.title,
        "code": {"coding": [{"system": LOINC, "code": spec.code, "display": spec.display}]},
    }
    if items:
        out["text"] = {
            "status": "generated",
            "div": _div(_table(_row(i, bodies) for i in items)),
        }
        out["entry"] = [{"reference": url(i.key)} for i in items]
        return out
    reason = "withheld" if withheld else "unavailable"
    out["text"] = {"status": "generated", "div": _div(f"<p>{_e(_EMPTY_TEXT[reason])}</p>")}
    out["emptyReason"] = {
        "coding": [{"system": EMPTY_REASON, "code": reason, "display": _EMPTY_DISPLAY[reason]}],
        "text": _EMPTY_TEXT[reason],
    }
    return out


def _person_name(patient: dict[str, Any]) -> str:
    for name in patient.get("name") or []:
        if not isinstance(name, dict):
            continue
        # JP Core: the first official name is the kanji one; kana names carry an extension.
        if name.get("extension"):
            continue
        if name.get("text"):
            return str(name["text"])
        parts = [name.get("family") or "", " ".join(name.get("given") or [])]
        text = " ".join(p for p in parts if p)
        if text:
            return text
    return ""
