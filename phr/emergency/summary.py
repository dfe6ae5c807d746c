"""The emergency summary: what a paramedic (and the receiving hospital) see of a
confirmed patient, only under the resident's emergency pre-consent.

One read through the choke point (``ETREAT``, service ``emergency``) builds the IPS
document of :mod:`fhir_gateway.api.operations.summary` with one more section, the
advance directives (LOINC 42348-3, as the IPS "Advance Directives" section), holding the
current ACP; the scannable JSON view is taken from that very document, so the screen and
the FHIR Bundle cannot disagree. Without the consent (never given, revoked, or the
episode closed) the choke point returns nothing and so does this: "no emergency consent
on file".
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from consent.models import Organization
from fhir_gateway.api import render
from fhir_gateway.api.operations.summary import (
    ExtraSection,
    describe_entry,
    document_from_rows,
    read_rows,
)
from fhir_gateway.sources.codes import DISABILITY_CERTIFICATE
from phr.acp import fhir as acp_fhir
from phr.acp import repository as acp_repository
from phr.acp import service as acp_service
from phr.acp.schemas import TREATMENTS
from phr.emergency import flows, schemas
from phr.emergency.models import Incident
from phr.errors import Conflict, NotFound
from phr.store import repository as repo
from phr.store.indexer import iso_instant, utcnow
from phr.store.reader import RecordReader

__all__ = ["NO_CONSENT", "build"]

SERVICE = "emergency"
NO_CONSENT = "緊急時の情報開示の事前同意がありません / no emergency consent on file"
LOINC = "http://loinc.org"
SOURCE_PREFIX = "urn:phr:organization:"
EN_REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
ALSO = ("Consent", "RelatedPerson", "CareTeam")
SECTION_KEYS = {
    "48765-2": "allergies",
    "10160-0": "medications",
    "11450-4": "problems",
    "30954-2": "results",
    "8716-3": "vitals",
}


def _reader(session: Session, actor: Actor) -> RecordReader:
    return RecordReader(session, dataclasses.replace(actor, service=SERVICE), Purpose.EMERGENCY)


def build(
    session: Session, actor: Actor, incident: Incident
) -> tuple[schemas.EmergencySummary, bytes | None]:
    """The JSON view and the FHIR document (None when there is no consent)."""
    flows.require(incident.status, flows.UNLOCKED, "the emergency summary")
    if not incident.resident_id:
        raise Conflict("the patient is not confirmed")
    rid = incident.resident_id
    now = utcnow()
    reader = _reader(session, actor)
    if not reader.resident_exists(rid):
        with contextlib.suppress(NotFound):
            reader.read("Patient", rid)  # logs the refused look
        return (
            schemas.EmergencySummary(
                incident_id=incident.id, consent="none", message=NO_CONSENT, generated_at=now
            ),
            None,
        )
    # One logged read: the IPS sections, the advance directive and the people around the
    # resident.
    rows = read_rows(reader, rid, also=ALSO)
    acp_id = acp_repository.consent_id_of(session, rid)
    card = next((r for r in rows if r.resource_type == "Consent" and r.id == acp_id), None)
    acp = acp_service.open_card(session, card) if card is not None else None
    related = [
        repo.load_json(r.content) for r in rows if r.resource_type in ("RelatedPerson", "CareTeam")
    ]
    extra, acp_block = _advance_directives(rid, acp)
    document = document_from_rows(reader, rid, rows, now=now, extra=[extra])
    bundle = orjson.loads(document)
    patient = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Patient" and e["resource"].get("id") == rid
    )
    view = _view(session, incident, bundle, patient, related, acp_block, now)
    if acp is not None:
        _add_acp_people(view, acp_fhir.content_of(acp.document), acp.recorded_at)
    return view, document


# ---- the advance-directives section ------------------------------------------------------------


def _advance_directives(
    rid: str, acp: acp_service.CurrentAcp | None
) -> tuple[ExtraSection, schemas.AcpBlock | None]:
    code = {"coding": [{"system": LOINC, "code": "42348-3", "display": "Advance directives"}]}
    title = "もしもの時の意向（ACP）/ Advance Directives"
    if acp is None:
        section: dict[str, Any] = {
            "title": title,
            "code": code,
            "text": {
                "status": "generated",
                "div": '<div xmlns="http://www.w3.org/1999/xhtml">'
                "記録なし、または共有されていません / None recorded or shared</div>",
            },
            "emptyReason": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                        "code": "unavailable",
                    }
                ]
            },
        }
        return ExtraSection(section), None
    version, recorded_at, document = acp.version, acp.recorded_at, acp.document
    content = acp_fhir.content_of(document)
    do, dont = acp_fhir.plan_lines(content)
    undecided = [
        acp_fhir.TREATMENT_LABELS[k][0]
        for k in TREATMENTS
        if getattr(content.treatments, k) == "undecided"
    ]
    block = schemas.AcpBlock(
        version=version,
        recorded_at=recorded_at,
        do=do,
        do_not=dont,
        undecided=undecided,
        place_of_care=acp_fhir.PLACE_LABELS[content.place_of_care][0],
        place_of_death=acp_fhir.PLACE_LABELS[content.place_of_death][0],
        own_words=content.own_words,
        what_matters=content.what_matters,
        religious_cultural=content.religious_cultural,
        spokesperson=(
            f"{content.spokesperson.name}（{content.spokesperson.relationship}）"
            if content.spokesperson
            else None
        ),
    )
    entries = [
        e
        for e in document.get("entry") or []
        if (e.get("resource") or {}).get("resourceType") != "Composition"
    ]
    consent_id = acp.consent_id
    card_url = f"{render.fhir_base()}/Consent/{consent_id}"
    stamp = iso_instant(recorded_at)
    text = (
        f"第{version}版 {stamp[:10]} 記録 / version {version} of {stamp[:10]}. "
        f"希望しない: {'、'.join(dont) or 'なし'}. 希望する: {'、'.join(do) or 'なし'}."
    )
    section = {
        "title": title,
        "code": code,
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{html.escape(text)}</div>',
        },
        "entry": [{"reference": card_url}] + [{"reference": e["fullUrl"]} for e in entries],
    }
    return ExtraSection(section, [{"fullUrl": card_url, "resource": acp.card}, *entries]), block


# ---- the JSON view -------------------------------------------------------------------------


def _org_names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(Organization.id, Organization.name).where(Organization.id.in_(sorted(ids)))
    ).all()
    return {i: n for i, n in rows}


def _source_id(body: dict[str, Any]) -> str | None:
    src = (body.get("meta") or {}).get("source")
    if isinstance(src, str) and src.startswith(SOURCE_PREFIX):
        return src[len(SOURCE_PREFIX) :]
    return src if isinstance(src, str) else None


def _age(birth: str | None, today: date) -> int | None:
    if not birth or len(birth) < 10:
        return None
    b = date.fromisoformat(birth[:10])
    return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


def _patient_block(p: dict[str, Any], today: date) -> schemas.PatientBlock:
    name = kana = ""
    for n in p.get("name") or []:
        text = n.get("text") or f"{n.get('family', '')} {' '.join(n.get('given') or [])}".strip()
        rep = {x.get("valueCode") for x in n.get("extension") or []}
        if "SYL" in rep:
            kana = kana or text
        else:
            name = name or text
    return schemas.PatientBlock(
        name=name,
        kana=kana,
        birth_date=p.get("birthDate"),
        age=_age(p.get("birthDate"), today),
        sex=p.get("gender"),
    )


def _is_disability(body: dict[str, Any]) -> bool:
    return any(
        c.get("system") == DISABILITY_CERTIFICATE
        for cat in body.get("category") or []
        for c in (cat or {}).get("coding") or []
    )


def _view(
    session: Session,
    incident: Incident,
    bundle: dict[str, Any],
    patient: dict[str, Any],
    related: list[dict[str, Any]],
    acp: schemas.AcpBlock | None,
    now: datetime,
) -> schemas.EmergencySummary:
    entries = {e["fullUrl"]: e["resource"] for e in bundle.get("entry") or []}
    base = render.fhir_base() + "/"
    bodies = {
        (r["resourceType"], r["id"]): r for r in entries.values() if r.get("id") and "meta" in r
    }
    composition = bundle["entry"][0]["resource"]
    orgs = _org_names(
        session,
        {s for s in (_source_id(r) for r in [*entries.values(), *related, patient]) if s},
    )

    def source(body: dict[str, Any]) -> str | None:
        sid = _source_id(body)
        return orgs.get(sid or "", sid)

    out: dict[str, list[schemas.Item]] = {k: [] for k in SECTION_KEYS.values()}
    care: list[schemas.Item] = []
    for sec in composition.get("section") or []:
        codes = {c.get("code") for c in (sec.get("code") or {}).get("coding") or []}
        key = next((SECTION_KEYS[c] for c in codes if c in SECTION_KEYS), None)
        if key is None:
            continue
        for ref in sec.get("entry") or []:
            url = ref.get("reference", "")
            body = entries.get(url)
            if body is None:
                continue
            text, status, when, details = describe_entry(body["resourceType"], body, bodies)
            item = schemas.Item(
                text=text,
                detail=" ".join(x for x in (status, details) if x),
                date=when or None,
                source=source(body),
                reference=url.removeprefix(base),
            )
            (care if key == "problems" and _is_disability(body) else out[key]).append(item)
    contacts: list[schemas.Person] = []
    doctors: list[schemas.Person] = []
    patient_source = source(patient) or "患者情報"
    for c in patient.get("contact") or []:
        name = (c.get("name") or {}).get("text") or ""
        rel = ", ".join(
            (r.get("text") or next((x.get("display", "") for x in r.get("coding") or []), ""))
            for r in c.get("relationship") or []
        )
        phone = next((t.get("value", "") for t in c.get("telecom") or []), "")
        if name or phone:
            contacts.append(
                schemas.Person(name=name, relationship=rel, phone=phone, source=patient_source)
            )
    for r in related:
        if r.get("resourceType") != "RelatedPerson":
            continue
        contacts.append(
            schemas.Person(
                name=(r.get("name") or [{}])[0].get("text", ""),
                relationship=", ".join(
                    x.get("text", "") for x in r.get("relationship") or [] if x.get("text")
                ),
                phone=next((t.get("value", "") for t in r.get("telecom") or []), ""),
                source=source(r) or "",
                date=(r.get("meta") or {}).get("lastUpdated"),
            )
        )
    for gp in patient.get("generalPractitioner") or []:
        if gp.get("display"):
            doctors.append(schemas.Person(name=gp["display"], source=patient_source))
    summary = schemas.EmergencySummary(
        incident_id=incident.id,
        consent="granted",
        message="緊急時の情報開示の事前同意あり / emergency consent on file",
        generated_at=now,
        patient=_patient_block(patient, now.date()),
        acp=acp,
        contacts=contacts,
        family_doctor=doctors,
        care_and_disability=care,
        **out,
    )
    return summary


def _add_acp_people(summary: schemas.EmergencySummary, content: Any, recorded_at: datetime) -> None:
    """Contacts and the family doctor the resident named in the ACP, in their order."""
    stamp = iso_instant(recorded_at)
    for p in content.contacts:
        summary.contacts.insert(
            len([c for c in summary.contacts if c.source == "ACP"]),
            schemas.Person(
                name=p.name, relationship=p.relationship, phone=p.phone, source="ACP", date=stamp
            ),
        )
    d = content.family_doctor
    if d and (d.name or d.clinic):
        summary.family_doctor.insert(
            0,
            schemas.Person(
                name=" ".join(x for x in (d.name, d.clinic) if x),
                relationship="かかりつけ医",
                phone=d.phone,
                source="ACP",
                date=stamp,
            ),
        )
