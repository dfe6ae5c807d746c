"""What the care team sees of the patient's record for the visit: the IPS document of
``fhir_gateway`` (allergies, medicines, problems, results, vital signs), read through the
choke point with the staff member's own Actor under ``HOMECARE`` — so only under the
resident's home-care consent (what the team's own organisation wrote is visible anyway:
its own chart)."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from fhir_gateway.api.operations.summary import build_document, describe_entry
from phr.emergency.summary import _patient_block as patient_block
from phr.store.reader import RecordReader

__all__ = ["CareSummary", "build"]


class Entry(BaseModel):
    text: str
    detail: str
    date: str | None


class Section(BaseModel):
    title: str
    entries: list[Entry]


class CareSummary(BaseModel):
    consent: bool
    name: str | None = None
    kana: str | None = None
    birth_date: str | None = None
    age: int | None = None
    sex: str | None = None
    sections: list[Section] = []


def build(session: Session, actor: Actor, resident_id: str, *, today: date) -> CareSummary:
    reader = RecordReader(session, actor, Purpose.HOME_CARE)
    if not reader.resident_exists(resident_id):
        return CareSummary(consent=False)
    bundle = orjson.loads(build_document(reader, resident_id))
    entries = {e["fullUrl"]: e["resource"] for e in bundle.get("entry") or []}
    bodies = {(r["resourceType"], r["id"]): r for r in entries.values() if r.get("id")}
    patient: dict[str, Any] = next(
        (r for r in entries.values() if r.get("resourceType") == "Patient"), {}
    )
    composition = bundle["entry"][0]["resource"]
    sections = []
    for sec in composition.get("section") or []:
        items = []
        for ref in sec.get("entry") or []:
            body = entries.get(ref.get("reference", ""))
            if body is None or body.get("resourceType") == "Patient":
                continue
            text, status, when, details = describe_entry(body["resourceType"], body, bodies)
            items.append(
                Entry(
                    text=text, detail=" ".join(x for x in (status, details) if x), date=when or None
                )
            )
        sections.append(Section(title=str(sec.get("title") or ""), entries=items))
    block = patient_block(patient, today)
    return CareSummary(
        consent=True,
        name=block.name,
        kana=block.kana,
        birth_date=block.birth_date,
        age=block.age,
        sex=block.sex,
        sections=sections,
    )
