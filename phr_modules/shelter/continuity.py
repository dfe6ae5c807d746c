"""医療の継続: what a shelter needs to know of one checked-in evacuee, from the rows the
module's reader returned (under the resident's disaster consent): who they are, the
medicines to continue (the reconciled list of :mod:`phr.polypharmacy`: dose, prescribers,
last dispensed, days' supply remaining), allergies, active problems, whether an ACP is on
file — each with its source and date — and the needs that put them on the support list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from fhir_gateway.api.operations.summary import describe_entry
from phr.polypharmacy import service as polypharmacy
from phr.polypharmacy.kb import knowledge_base
from phr.polypharmacy.reconcile import Medicine, SourceRecord
from phr.store import repository as store_repo
from phr_modules.shelter import needs as need_rules
from phr_modules.shelter import schemas

__all__ = ["Continuity", "build"]

SOURCE_PREFIX = "urn:phr:organization:"
ADVANCE_DIRECTIVE = ("http://loinc.org", "42348-3")  # the ACP's advance-directive Consent
_INACTIVE = {"inactive", "resolved", "remission"}
_ORDER = ("insulin", "dialysis", "oxygen", "anticoagulant", "disability", "allergy", "acp")


@dataclass
class Continuity:
    patient: schemas.PatientBlock | None
    medicines: list[schemas.MedicineToContinue] = field(default_factory=list)
    allergies: list[schemas.Item] = field(default_factory=list)
    problems: list[schemas.Item] = field(default_factory=list)
    needs: list[schemas.Need] = field(default_factory=list)
    acp_on_file: bool = False
    acp_date: str | None = None


def _source(body: Mapping[str, Any], orgs: Mapping[str, str]) -> str | None:
    src = (body.get("meta") or {}).get("source")
    if not isinstance(src, str):
        return None
    sid = src.removeprefix(SOURCE_PREFIX)
    return orgs.get(sid, sid)


def _age(birth: str | None, today: date) -> int | None:
    if not birth or len(birth) < 10:
        return None
    b = date.fromisoformat(birth[:10])
    return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


def patient_block(p: Mapping[str, Any], today: date) -> schemas.PatientBlock:
    """Name (kanji) and kana (the name with the SYL representation), birth date, age, sex."""
    names: dict[bool, str] = {}
    for n in p.get("name") or []:
        text = n.get("text") or f"{n.get('family', '')} {' '.join(n.get('given') or [])}".strip()
        kana = "SYL" in {x.get("valueCode") for x in n.get("extension") or []}
        names.setdefault(kana, text)
    return schemas.PatientBlock(
        name=names.get(False, ""),
        kana=names.get(True, ""),
        birth_date=p.get("birthDate"),
        age=_age(p.get("birthDate"), today),
        sex=p.get("gender"),
    )


def _latest(m: Medicine, rtype: str) -> SourceRecord | None:
    found = [s for s in m.sources if s.resource_type == rtype and s.date]
    return max(found, key=lambda s: (s.date or date.min, s.id), default=None)


def _medicine(
    m: Medicine, bodies: Mapping[tuple[str, str], Mapping[str, Any]], orgs: Mapping[str, str],
    today: date,
) -> schemas.MedicineToContinue:  # fmt: skip
    latest = m.latest
    request = _latest(m, "MedicationRequest")
    dispense = _latest(m, "MedicationDispense")
    # The dose as prescribed (or as taken, for a self-reported medicine).
    dose_from = request or _latest(m, "MedicationStatement") or latest
    body = bodies.get((dose_from.resource_type, dose_from.id)) or {}
    dose = describe_entry(dose_from.resource_type, dict(body), {})[3] if body else ""
    until = remaining = None
    if dispense is not None and dispense.date is not None and dispense.days is not None:
        until = dispense.date + timedelta(days=dispense.days)
        remaining = max(0, (until - today).days)
    latest_body = bodies.get((latest.resource_type, latest.id)) or {}
    return schemas.MedicineToContinue(
        name=m.name,
        dose=dose,
        prescribers=m.prescribers,
        pharmacies=m.pharmacies,
        last_prescribed=request.date if request else None,
        last_dispensed=dispense.date if dispense else None,
        days_supply=dispense.days if dispense else None,
        supply_until=until,
        days_remaining=remaining,
        needs=sorted(need_rules.medicine_needs(m), key=_ORDER.index),
        source=_source(latest_body, orgs),
        date=latest.date,
        reference=latest.reference(),
    )


def _is_acp(body: Mapping[str, Any]) -> bool:
    return any(
        (c.get("system"), c.get("code")) == ADVANCE_DIRECTIVE
        for cat in body.get("category") or []
        for c in cat.get("coding") or []
    )


def build(
    session: Any,
    patient_id: str,
    rows: Iterable[polypharmacy.RowLike],
    *,
    today: date,
    orgs: Mapping[str, str],
) -> Continuity:
    """The evacuee's view from the reader's rows (nothing read = no consent: empty)."""
    rows = list(rows)
    bodies = {(r.resource_type, r.id): store_repo.load_json(r.content) for r in rows}
    patient = bodies.get(("Patient", patient_id))
    out = Continuity(patient=patient_block(patient, today) if patient else None)
    if patient is None:
        return out
    found: set[str] = set()
    for (rtype, _), body in sorted(bodies.items()):
        if rtype not in ("AllergyIntolerance", "Condition", "Consent"):
            continue
        if rtype == "Consent":
            if _is_acp(body) and body.get("status") == "active":
                out.acp_on_file = True
                out.acp_date = str(body.get("dateTime") or "")[:10] or None
            continue
        status = str(((body.get("clinicalStatus") or {}).get("coding") or [{}])[0].get("code"))
        if status in _INACTIVE:
            continue
        text, _, when, details = describe_entry(rtype, body, {})
        item = schemas.Item(
            text=text, detail=details, date=when or None, source=_source(body, orgs)
        )
        if rtype == "AllergyIntolerance":
            out.allergies.append(item)
            found.add("allergy")
        else:
            out.problems.append(item)
            found |= need_rules.condition_needs(body)
    meds = [r for r in rows if r.resource_type.startswith("Medication")]
    draft = polypharmacy.draft(session, patient_id, meds, today=today, kb=knowledge_base())
    for m in draft.medicines:
        if m.active:
            med = _medicine(m, bodies, orgs, today)
            out.medicines.append(med)
            found |= set(med.needs)
    if out.acp_on_file:
        found.add("acp")
    labels = {
        **need_rules.labels(),
        "allergy": ("アレルギー", "allergies"),
        "acp": ("ACPあり", "ACP on file"),
    }
    out.needs = [
        schemas.Need(code=c, label_ja=labels[c][0], label_en=labels[c][1])
        for c in _ORDER
        if c in found
    ]
    return out
