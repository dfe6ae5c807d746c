"""The medication review: read one resident's medicines through the consent-checked reader
(purpose MEDREVIEW, acting as the ``polypharmacy`` platform service, which needs its
approved privacy impact assessment), reconcile them, run the checks, and present the result
as FHIR (a List and DetectedIssues), as the pharmacist's worklist, or in plain words for
the resident.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose, scope_allows
from phr.errors import Forbidden, InvalidInput, NotFound
from phr.polypharmacy import repository
from phr.polypharmacy.kb import ICD10_SYSTEMS, SNOMED, KnowledgeBase, knowledge_base
from phr.polypharmacy.master import YJ
from phr.polypharmacy.models import FINDING_STATES, FindingState
from phr.polypharmacy.reconcile import (
    MEDICATION_TYPES,
    Medicine,
    ProductInfo,
    as_of,
    medication_codes,
    reconcile,
)
from phr.polypharmacy.rules import (
    ConditionFact,
    Finding,
    KidneyFunction,
    Patient,
    jsn_egfr,
    named_by,
    run_checks,
)
from phr.store import repository as store_repo
from phr.store.indexer import iso_instant, utcnow
from phr.store.reader import RecordReader, RecordRow

__all__ = [
    "MUNICIPAL_OWNER",
    "SERVICE",
    "Review",
    "act_on_finding",
    "all_products",
    "complete",
    "condition_facts",
    "condition_reader",
    "draft",
    "finding_json",
    "forget_products",
    "kidney_reader",
    "medicine_json",
    "needs_conditions",
    "needs_kidney",
    "patient_context",
    "products_for",
    "record_findings",
    "resident_view",
    "review",
    "review_from_rows",
    "service_actor",
    "store_findings",
    "worklist",
]

SERVICE = "polypharmacy"
MUNICIPAL_OWNER = "municipal"
LOINC = "http://loinc.org"
# Latest eGFR: LOINC codes of reported eGFR (any equation) and the 特定健診 eGFR item.
EGFR_CODES = frozenset(
    {
        "69405-9",
        "33914-3",
        "62238-1",
        "98979-8",
        "48642-3",
        "48643-1",
        "50044-7",
        "50210-4",
        "8A065000002391901",
    }
)
# Serum creatinine: LOINC and the 特定健診 / JLAC10 analyte 3C015 (any method).
CREATININE_CODES = frozenset({"2160-0", "38483-4", "3C015000002399901", "3C015000002327101"})
_OBS_HINTS = (*(f'"{c}"' for c in sorted(EGFR_CODES | CREATININE_CODES)), '"3C015')
REVIEW_TYPES = ("Patient", *MEDICATION_TYPES)
KIDNEY_CODES = tuple(sorted(EGFR_CODES | CREATININE_CODES))


def service_actor(actor: Actor) -> Actor:
    """The caller, acting through the polypharmacy service (its PIA gates every read)."""
    return dataclasses.replace(actor, service=SERVICE)


@dataclass
class Review:
    patient: Patient
    patient_row: RowLike | None
    medicines: list[Medicine]
    findings: list[Finding]
    rows: dict[tuple[str, str], RowLike]
    kb_version: str
    at: datetime


def _age(birth: date | None, on: date) -> int | None:
    if birth is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _day(text: Any) -> date | None:
    if isinstance(text, str) and len(text) >= 10:
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            return None
    if isinstance(text, str) and len(text) == 4 and text.isdigit():
        return date(int(text), 7, 1)
    return None


def _obs_codes(body: Mapping[str, Any]) -> set[str]:
    return {
        str(c.get("code"))
        for c in (body.get("code") or {}).get("coding") or []
        if isinstance(c, Mapping)
    }


def _obs_value(body: Mapping[str, Any]) -> tuple[float, str] | None:
    q = body.get("valueQuantity")
    if not isinstance(q, Mapping) or q.get("value") is None:
        return None
    try:
        return float(q["value"]), str(q.get("code") or q.get("unit") or "")
    except (TypeError, ValueError):
        return None


_NOT_A_CONDITION = {"entered-in-error", "refuted"}
_ACTIVE = {"active", "recurrence", "relapse"}


def _status(body: Mapping[str, Any], field: str) -> str:
    cc = body.get(field)
    if not isinstance(cc, Mapping):
        return ""
    return next((str(c.get("code")) for c in cc.get("coding") or [] if isinstance(c, Mapping)), "")


def condition_facts(rows: Iterable[tuple[str, Mapping[str, Any]]]) -> tuple[ConditionFact, ...]:
    """The resident's coded conditions (ICD-10, SNOMED CT): active, or past (history)."""
    out = []
    for cid, body in rows:
        if _status(body, "verificationStatus") in _NOT_A_CONDITION:
            continue
        clinical = _status(body, "clinicalStatus")
        active = clinical in _ACTIVE or (clinical == "" and not body.get("abatementDateTime"))
        when = body.get("onsetDateTime") or body.get("recordedDate")
        code = body.get("code")
        if not isinstance(code, Mapping):
            continue
        for c in code.get("coding") or []:
            if not isinstance(c, Mapping) or not c.get("code"):
                continue
            system = str(c.get("system") or "").lower()
            kind = (
                "sct"
                if system == SNOMED
                else "icd10"
                if any(k in system for k in ICD10_SYSTEMS)
                else None
            )
            if kind is None:
                continue
            out.append(
                ConditionFact(
                    kind,
                    str(c["code"]).strip().upper() if kind == "icd10" else str(c["code"]),
                    active,
                    str(when)[:10] if isinstance(when, str) else None,
                    f"Condition/{cid}",
                    str(code.get("text") or c.get("display") or ""),
                )
            )
    return tuple(out)


def patient_context(
    patient_id: str,
    patient: Mapping[str, Any] | None,
    observations: Iterable[tuple[str, Mapping[str, Any]]],
    today: date,
    conditions: Iterable[tuple[str, Mapping[str, Any]]] = (),
) -> Patient:
    """Age, sex and kidney function (latest eGFR, else eGFR from the latest creatinine)."""
    birth = _day((patient or {}).get("birthDate"))
    sex = (patient or {}).get("gender")
    egfr: tuple[str, float, str] | None = None
    creat: tuple[str, float, str] | None = None
    for oid, body in observations:
        if body.get("status") in ("entered-in-error", "cancelled", "preliminary"):
            continue
        codes = _obs_codes(body)
        when = str(body.get("effectiveDateTime") or body.get("issued") or "")
        value = _obs_value(body)
        if value is None:
            continue
        if codes & EGFR_CODES:
            if egfr is None or when > egfr[0]:
                egfr = (when, value[0], oid)
        elif codes & CREATININE_CODES or any(c.startswith("3C015") for c in codes):
            number, unit = value
            if unit.lower().replace("µ", "u") in ("umol/l", "μmol/l"):
                number = number / 88.4
            if creat is None or when > creat[0]:
                creat = (when, number, oid)
    kidney = None
    if egfr is not None:
        kidney = KidneyFunction(egfr[1], "measured", egfr[0][:10] or None, f"Observation/{egfr[2]}")
    elif creat is not None and birth is not None and sex in ("male", "female") and creat[1] > 0:
        on = _day(creat[0]) or today
        age_then = _age(birth, on)
        if age_then is not None and age_then >= 18:  # the JSN equation is for adults
            kidney = KidneyFunction(
                jsn_egfr(creat[1], age_then, sex == "female"),
                "computed",
                creat[0][:10] or None,
                f"Observation/{creat[2]}",
            )
    return Patient(patient_id, _age(birth, today), sex, kidney, condition_facts(conditions))


# Products by code, remembered in this process: a product's ingredient, route and category
# do not change under its code, and a code not seen yet is always looked up (so a product
# imported by another process is recognised at once). ``forget_products`` after an import.
_PRODUCT_CACHE: dict[str, ProductInfo] = {}
_PRODUCT_CACHE_MAX = 50_000


def forget_products() -> None:
    _PRODUCT_CACHE.clear()


def products_for(session: Session, bodies: Iterable[Mapping[str, Any]]) -> dict[str, ProductInfo]:
    codes = {c for b in bodies for s, c, _ in medication_codes(b) if s == YJ and c}
    missing = codes - _PRODUCT_CACHE.keys()
    if missing:
        if len(_PRODUCT_CACHE) > _PRODUCT_CACHE_MAX:
            _PRODUCT_CACHE.clear()
        for code, p in repository.products_by_codes(session, missing).items():
            _PRODUCT_CACHE[code] = ProductInfo(
                p.code, p.name, p.ingredient, p.route, p.category, p.form, p.brand, p.strength
            )
    return {c: _PRODUCT_CACHE[c] for c in codes if c in _PRODUCT_CACHE}


def needs_conditions(medicines: Sequence[Medicine], kb: KnowledgeBase) -> bool:
    """Are the resident's conditions worth reading (a current medicine is named by a
    drug–disease rule)?"""
    return any(m.active and named_by(m, kb, rule.ref) for m in medicines for rule in kb.disease)


def needs_kidney(medicines: Sequence[Medicine], kb: KnowledgeBase) -> bool:
    """Is kidney function worth reading (a current medicine has a kidney limit)?"""
    refs = {ref for rule in kb.renal for ref in rule.ref}
    return any(m.active and not m.refs.isdisjoint(refs) for m in medicines)


def all_products(session: Session) -> dict[str, ProductInfo]:
    """The whole drug master in memory (about 12,000 products), for batch screening."""
    return {row[0]: ProductInfo(*row) for row in repository.product_rows(session)}


class RowLike(Protocol):
    """A stored resource as the reader returns it (ORM row or plain row)."""

    @property
    def resource_type(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def content(self) -> str: ...


KidneyRows = Callable[[], Iterable[RowLike]]


@dataclass
class Draft:
    """A resident's medicines, reconciled, before kidney function is known."""

    patient_id: str
    patient_row: RowLike | None
    patient_body: dict[str, Any] | None
    medicines: list[Medicine]
    rows: dict[tuple[str, str], RowLike]
    observation_rows: list[RowLike]
    condition_rows: list[RowLike] = dataclasses.field(default_factory=list)


def draft(
    session: Session | None,
    patient_id: str,
    rows: Iterable[RowLike],
    *,
    today: date,
    kb: KnowledgeBase,
    products: Mapping[str, ProductInfo] | None = None,
) -> Draft:
    patient_row: RowLike | None = None
    patient_body: dict[str, Any] | None = None
    meds: list[dict[str, Any]] = []
    observation_rows: list[RowLike] = []
    condition_rows: list[RowLike] = []
    by_key: dict[tuple[str, str], RowLike] = {}
    for row in rows:
        if row.resource_type == "Patient":
            if row.id == patient_id:
                patient_row, patient_body = row, store_repo.load_json(row.content)
            continue
        if row.resource_type == "Observation":
            observation_rows.append(row)
            continue
        if row.resource_type == "Condition":
            condition_rows.append(row)
            continue
        body = store_repo.load_json(row.content)
        body.setdefault("id", row.id)
        meds.append(body)
        by_key[(row.resource_type, row.id)] = row
    if products is None:
        if session is None:
            raise ValueError("products or a session to look them up")
        products = products_for(session, meds)
    medicines = reconcile(meds, products, kb, today=today)
    return Draft(
        patient_id, patient_row, patient_body, medicines, by_key, observation_rows, condition_rows
    )


def complete(
    d: Draft,
    *,
    now: datetime,
    kb: KnowledgeBase,
    observation_rows: Iterable[RowLike] = (),
    condition_rows: Iterable[RowLike] = (),
) -> Review:
    observations = [
        (row.id, store_repo.load_json(row.content))
        for row in [*d.observation_rows, *observation_rows]
        if any(h in row.content for h in _OBS_HINTS)
    ]
    conditions = [
        (row.id, store_repo.load_json(row.content)) for row in [*d.condition_rows, *condition_rows]
    ]
    patient = patient_context(d.patient_id, d.patient_body, observations, as_of(now), conditions)
    findings = run_checks(d.medicines, patient, kb)
    return Review(patient, d.patient_row, d.medicines, findings, d.rows, kb.version, now)


def review_from_rows(
    session: Session,
    patient_id: str,
    rows: Iterable[RowLike],
    *,
    now: datetime,
    kb: KnowledgeBase | None = None,
    products: Mapping[str, ProductInfo] | None = None,
    kidney_rows: KidneyRows | None = None,
    condition_rows: KidneyRows | None = None,
) -> Review:
    """The review of one resident from the rows the reader returned.

    Observations among ``rows`` are used for kidney function; ``kidney_rows`` is called
    (once, and only when a current medicine has a kidney limit) to read them otherwise.
    Conditions likewise: ``condition_rows`` is called only when a current medicine is
    named by a drug–disease rule.
    """
    kb = kb or knowledge_base()
    d = draft(session, patient_id, rows, today=as_of(now), kb=kb, products=products)
    extra: Iterable[RowLike] = ()
    if kidney_rows is not None and needs_kidney(d.medicines, kb):
        extra = kidney_rows()
    conditions: Iterable[RowLike] = ()
    if condition_rows is not None and needs_conditions(d.medicines, kb):
        conditions = condition_rows()
    return complete(d, now=now, kb=kb, observation_rows=extra, condition_rows=conditions)


def kidney_reader(reader: RecordReader, patient_id: str) -> KidneyRows:
    """The resident's eGFR and creatinine results, read only when a kidney limit may apply
    (one query on the token index; a token *search* on these codes built ~20 ms of SQL)."""

    def read() -> list[RecordRow]:
        return reader.compartments(
            [patient_id], types=["Observation"], action="medication-review", codes=KIDNEY_CODES
        )

    return read


def condition_reader(reader: RecordReader, patient_id: str) -> KidneyRows:
    """The resident's conditions that a drug–disease rule looks for (token index)."""

    def read() -> list[RecordRow]:
        return reader.compartments(
            [patient_id],
            types=["Condition"],
            action="medication-review",
            codes=knowledge_base().disease_codes(),
        )

    return read


def review(
    session: Session, actor: Actor, patient_id: str, *, now: datetime | None = None
) -> Review:
    """Read through the choke point (MEDREVIEW) and review; 404 when not visible.

    An API client reads only the resource types its scopes allow (a client without
    Observation scopes gets no kidney check; one without MedicationDispense, no dispensings).
    """
    reader = RecordReader(session, service_actor(actor), Purpose.MEDICATION_REVIEW)
    if not reader.resident_exists(patient_id):
        reader.read("Patient", patient_id)  # logs the miss and raises NotFound
        raise NotFound(f"Patient/{patient_id} not found")
    scoped = actor.kind in ("organization", "staff")
    types = [t for t in REVIEW_TYPES if not scoped or scope_allows(actor.scopes, t, "r")]
    rows = list(reader.compartment(patient_id, types=types, action="medication-review"))
    kidney = not scoped or scope_allows(actor.scopes, "Observation", "r")
    conditions = not scoped or scope_allows(actor.scopes, "Condition", "r")
    return review_from_rows(
        session,
        patient_id,
        rows,
        now=now or utcnow(),
        kidney_rows=kidney_reader(reader, patient_id) if kidney else None,
        condition_rows=condition_reader(reader, patient_id) if conditions else None,
    )


def owner_of(actor: Actor) -> str:
    if actor.kind == "system":
        return MUNICIPAL_OWNER
    if actor.organization_id:
        return actor.organization_id
    raise Forbidden("only organisations and the platform keep a worklist")


class FindingKey(Protocol):
    """What the worklist keeps of a finding (a Finding, or a screening result row)."""

    @property
    def fingerprint(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def severity(self) -> str: ...


def store_findings(session: Session, owner: str, found: Iterable[tuple[str, FindingKey]]) -> int:
    """Put (resident, finding) pairs on the owner's worklist."""
    rows = [
        {
            "id": str(uuid.uuid4()),
            "resident_id": resident_id,
            "fingerprint": f.fingerprint,
            "rule": f.rule,
            "code": f.code,
            "severity": f.severity,
        }
        for resident_id, f in found
    ]
    if not rows:
        return 0
    return repository.upsert_findings(session, owner, rows, utcnow())


def record_findings(session: Session, owner: str, reviews: Sequence[Review]) -> int:
    return store_findings(session, owner, ((r.patient.id, f) for r in reviews for f in r.findings))


# ---- presentations ----------------------------------------------------------------------------


def medicine_json(m: Medicine) -> dict[str, Any]:
    return {
        "name": m.name,
        "ingredients": list(m.ingredients),
        "recognised": m.recognised,
        "matched_by": m.how,
        "therapeutic_category": m.category,
        "classes": sorted(m.classes),
        "active": m.active,
        "prescribers": m.prescribers,
        "pharmacies": m.pharmacies,
        "sources": [
            {
                "reference": s.reference(),
                "status": s.status,
                "date": s.date.isoformat() if s.date else None,
                "current_until": s.until.isoformat() if s.until else None,
                "active": s.active,
                "prescriber": s.prescriber,
                "pharmacy": s.pharmacy,
                "code": {"system": s.system, "code": s.code, "display": s.display},
                "days_supply": s.days,
            }
            for s in m.sources
        ],
    }


def finding_json(
    f: Finding, state: FindingState | None = None, *, lang: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "fingerprint": f.fingerprint,
        "rule": f.rule,
        "rule_id": f.rule_id,
        "code": f.code,
        "severity": f.severity,
        "medicines": [m.name for m in f.medicines],
        "implicated": [s.reference() for m in f.medicines for s in m.active_sources],
        "prescribers": f.prescribers,
        "pharmacies": f.pharmacies,
        "title": {"ja": f.title_ja, "en": f.title_en},
        "reason": {"ja": f.reason_ja, "en": f.reason_en},
        "action": {"ja": f.action_ja, "en": f.action_en},
        "source": f.source,
        "facts": f.facts,
    }
    if state is not None:
        out["finding_id"] = state.id
        out["state"] = state.state
        out["acted_by"] = state.acted_by
        out["acted_at"] = iso_instant(state.acted_at) if state.acted_at else None
        out["note"] = state.note
    return out


def resident_view(
    session: Session, actor: Actor, patient_id: str, *, lang: str = "ja"
) -> dict[str, Any]:
    """Plain-language findings for the resident (the resident web app shows these)."""
    if lang not in ("ja", "en"):
        raise InvalidInput("lang must be ja or en")
    r = review(session, actor, patient_id)
    return {
        "patient": patient_id,
        "checked_at": iso_instant(r.at),
        "knowledge_base": r.kb_version,
        "medicines": [
            {
                "name": m.name,
                "prescribers": m.prescribers,
                "pharmacies": m.pharmacies,
                "recognised": m.recognised,
            }
            for m in r.medicines
            if m.active
        ],
        "findings": [
            {
                "severity": f.severity,
                "title": f.title_ja if lang == "ja" else f.title_en,
                "text": f.plain_ja if lang == "ja" else f.plain_en,
                "medicines": [m.name for m in f.medicines],
            }
            for f in r.findings
        ],
    }


def worklist(
    session: Session, actor: Actor, *, states: Sequence[str], limit: int, offset: int
) -> list[dict[str, Any]]:
    """The owner's findings; each re-read through the reader so that a resident who has
    withdrawn consent disappears from the list (and no clinical text is stored)."""
    bad = [s for s in states if s not in FINDING_STATES]
    if bad:
        raise InvalidInput(f"unknown state(s) {bad}; use {list(FINDING_STATES)}")
    owner = owner_of(actor)
    rows = repository.worklist(session, owner, states, limit, offset)
    out = []
    cache: dict[str, Review | None] = {}
    for row in rows:
        if row.resident_id not in cache:
            try:
                cache[row.resident_id] = review(session, actor, row.resident_id)
            except NotFound:
                cache[row.resident_id] = None
        rv = cache[row.resident_id]
        if rv is None:
            continue
        current = next((f for f in rv.findings if f.fingerprint == row.fingerprint), None)
        item: dict[str, Any] = {
            "finding_id": row.id,
            "patient": row.resident_id,
            "rule": row.rule,
            "code": row.code,
            "severity": row.severity,
            "state": row.state,
            "first_seen": iso_instant(row.first_seen),
            "last_seen": iso_instant(row.last_seen),
            "acted_by": row.acted_by,
            "acted_at": iso_instant(row.acted_at) if row.acted_at else None,
            "note": row.note,
            "still_present": current is not None,
        }
        if current is not None:
            item["detail"] = finding_json(current)
        out.append(item)
    return out


def act_on_finding(
    session: Session, actor: Actor, finding_id: str, *, state: str, note: str | None
) -> dict[str, Any]:
    if state not in ("acknowledged", "resolved", "open"):
        raise InvalidInput("state must be acknowledged, resolved or open")
    row = repository.finding(session, owner_of(actor), finding_id)
    if row is None:
        raise NotFound(f"finding {finding_id} not found")
    # The resident's record must still be visible to the caller (consent may be withdrawn).
    review(session, actor, row.resident_id)
    row.state = state
    row.acted_by = actor.user_id or actor.client_id or actor.label
    row.acted_at = utcnow()
    if note is not None:
        row.note = note[:2000]
    session.flush()
    return {
        "finding_id": row.id,
        "state": row.state,
        "acted_by": row.acted_by,
        "acted_at": iso_instant(row.acted_at),
        "note": row.note,
    }
