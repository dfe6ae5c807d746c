"""The home-care visit: enrolment and deposited stock, the family's request with the
triage urgency, the station's board (assign, dispatch), the nurse's visit (vital signs
with NEWS2), the doctor's online consultation and prescription from the deposited stock,
the pharmacist's guidance, the administration, the outcome — and the handover to the
emergency flow when the doctor decides on transport.

Every step checks the caller's role and organisation (the care team of the enrolment),
moves the state machine of :mod:`phr.homecare.flows` by a compare-and-set in the
database, writes its clinical facts as FHIR through ``store_records`` (contributed by the
caller's organisation), and is in the resident's access log under ``HOMECARE``. A refused
step is logged too (again after the rollback). Reads of the record go through
``RecordReader`` with the staff member's own Actor: without the resident's home-care
consent, the care team sees nothing of it but what it wrote itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from consent import audit
from consent.actors import Actor, Purpose
from consent.models import Organization
from consent.staff.models import StaffUser
from fhir_gateway.ingest import SourceRecord, store_records
from phr.acp import keys
from phr.db import after_rollback
from phr.errors import Conflict, Forbidden, InvalidInput, NotFound, PHRError
from phr.homecare import fhir, flows, repository, schemas
from phr.homecare.models import Enrolment, Order, Request, Step, Stock, Visit
from phr.polypharmacy import repository as drugs
from phr.store import repository as repo
from phr.store.indexer import iso_instant, utcnow
from phr.store.models import Resident
from phr.store.reader import RecordReader
from phr.triage import schemas as triage_schemas
from phr.triage import scores
from phr.triage import service as triage

__all__ = [
    "administer",
    "arrive",
    "assign",
    "board",
    "close",
    "consult",
    "create_request",
    "deposit",
    "dispatch",
    "enrol",
    "guide",
    "prescribe",
    "record_call",
    "record_vitals",
    "request_read",
    "visit_read",
]

STATION_ROLES = frozenset({"nurse", "clerk"})
PURPOSE = Purpose.HOME_CARE


# ---- who may act -------------------------------------------------------------------------------


def _staff(actor: Actor) -> str:
    if actor.kind != "staff" or not actor.organization_id or not actor.user_id:
        raise Forbidden("home-care steps are taken by a signed-in staff member")
    return actor.organization_id


def _org(session: Session, org_id: str) -> Organization:
    org = session.get(Organization, org_id)
    if org is None or not org.active:
        raise InvalidInput(f"no active organisation {org_id!r}")
    return org


def _require(
    session: Session, actor: Actor, ok: bool, action: str, resident: str | None, why: str
) -> None:
    """Refuse (403) with an access-log entry that survives the rollback."""
    if ok:
        return
    entry = audit.Access(action, "deny", None, None, resident, count=0, detail=why[:200])
    audit.record(session, actor, PURPOSE, [entry])
    after_rollback(session, lambda s: audit.record(s, actor, PURPOSE, [entry]))
    raise Forbidden(why)


def _log(session: Session, actor: Actor, action: str, resident: str, detail: str = "") -> None:
    audit.record(
        session,
        actor,
        PURPOSE,
        [audit.Access(action, "permit", None, None, resident, count=1, detail=detail[:200])],
    )


def _enrolment_of(session: Session, req: Request) -> Enrolment:
    e = session.get(Enrolment, req.enrolment_id)
    assert e is not None
    return e


def _request(session: Session, actor: Actor, request_id: str) -> tuple[Request, Enrolment]:
    org = _staff(actor)
    req = repository.request_for_org(session, request_id, org)
    if req is None:
        raise NotFound(f"request {request_id} not found")
    return req, _enrolment_of(session, req)


def _visit(session: Session, actor: Actor, visit_id: str) -> tuple[Visit, Request, Enrolment]:
    org = _staff(actor)
    visit = session.get(Visit, visit_id)
    req = repository.request_for_org(session, visit.request_id, org) if visit else None
    if visit is None or req is None:
        raise NotFound(f"visit {visit_id} not found")
    return visit, req, _enrolment_of(session, req)


def _station_staff(session: Session, actor: Actor, e: Enrolment, action: str) -> None:
    _require(
        session,
        actor,
        actor.organization_id == e.station_id and actor.role in STATION_ROLES,
        action,
        e.resident_id,
        "only the patient's visiting-nurse station (nurse or clerk) does this",
    )


def _assigned_nurse(session: Session, actor: Actor, req: Request, action: str) -> None:
    _require(
        session,
        actor,
        actor.organization_id == req.station_id
        and actor.role == "nurse"
        and actor.user_id == req.nurse_id,
        action,
        req.resident_id,
        "only the nurse assigned to this request does this",
    )


def _doctor(session: Session, actor: Actor, e: Enrolment, action: str) -> None:
    _require(
        session,
        actor,
        actor.organization_id == e.clinic_id and actor.role == "doctor",
        action,
        e.resident_id,
        "only a doctor of the patient's family-doctor clinic does this",
    )


def _pharmacist(session: Session, actor: Actor, e: Enrolment, action: str) -> None:
    _require(
        session,
        actor,
        actor.organization_id == e.pharmacy_id and actor.role == "pharmacist",
        action,
        e.resident_id,
        "only a pharmacist of the patient's pharmacy does this",
    )


def _person(session: Session, actor: Actor) -> dict[str, Any]:
    user = session.get(StaffUser, actor.user_id) if actor.user_id else None
    return fhir.staff_ref(actor.user_id, user.display_name if user else actor.label)


# ---- FHIR writes and the step trail ----------------------------------------------------------


def _write(session: Session, org: str, key: str, resources: list[dict[str, Any]]) -> list[str]:
    """Write resources as contributions of ``org`` (one source key each: re-writing the
    same key makes a new version, e.g. the home visit Encounter when it finishes)."""
    result = store_records(
        session,
        organization_id=org,
        records=[SourceRecord(f"homecare:{key}:{i}", r) for i, r in enumerate(resources)],
    )
    return [f"{o.resource_type}/{o.id}" for o in result.outcomes]


def _step(
    session: Session,
    actor: Actor,
    req: Request,
    kind: str,
    refs: list[str] | None = None,
    detail: str = "",
) -> None:
    now = utcnow()
    session.add(
        Step(
            request_id=req.id,
            kind=kind,
            at=now,
            organization_id=actor.organization_id,
            actor=(actor.user_id or actor.label)[:80],
            role=actor.role,
            resource_refs=" ".join(refs or []),
            detail=detail[:255],
        )
    )
    req.updated_at = now
    session.flush()
    _log(
        session,
        actor,
        f"homecare-{kind}",
        req.resident_id,
        f"request {req.id} {' '.join(refs or [])} {detail}".strip(),
    )


def _now_text() -> str:
    return iso_instant(utcnow())


# ---- enrolment and deposited stock -------------------------------------------------------


def enrol(*, session: Session, actor: Actor, body: schemas.EnrolmentCreate) -> Enrolment:
    """The station enrols a home-care patient with their care team. The resident's
    home-care consent decides what the team may read; without it the team reads nothing
    (the enrolment is allowed: the consent may come later, and can be revoked)."""
    org = _staff(actor)
    station = _org(session, org)
    _require(
        session,
        actor,
        station.kind == "nurse_station" and actor.role in STATION_ROLES,
        "homecare-enrol",
        body.resident_id,
        "a visiting-nurse station's nurse or clerk enrols",
    )
    clinic = _org(session, body.clinic_id)
    pharmacy = _org(session, body.pharmacy_id)
    if clinic.kind not in ("clinic", "hospital"):
        raise InvalidInput(f"{clinic.id} is not a clinic")
    if pharmacy.kind != "pharmacy":
        raise InvalidInput(f"{pharmacy.id} is not a pharmacy")
    if body.doctor_id:
        doc = session.get(StaffUser, body.doctor_id)
        if doc is None or doc.organization_id != clinic.id or doc.role != "doctor":
            raise InvalidInput("the family doctor must be a doctor of that clinic")
    if session.get(Resident, body.resident_id) is None:
        raise NotFound(f"resident {body.resident_id} not found")
    if repository.active_enrolment(session, body.resident_id) is not None:
        raise Conflict("this resident is already enrolled")
    now = utcnow()
    eid = repo.new_id()
    team = fhir.care_team(
        body.resident_id,
        [
            (clinic.id, clinic.name, "かかりつけ医（オンライン診療）/ family doctor (online)"),
            (
                station.id,
                station.name,
                "24時間訪問看護ステーション / 24-hour visiting-nurse station",
            ),
            (pharmacy.id, pharmacy.name, "薬局（オンライン服薬指導）/ pharmacy (online guidance)"),
        ],
        iso_instant(now),
    )
    ref = _write(session, station.id, f"enrolment:{eid}:careteam", [team])[0]
    row = Enrolment(
        id=eid,
        resident_id=body.resident_id,
        station_id=station.id,
        clinic_id=clinic.id,
        doctor_id=body.doctor_id,
        pharmacy_id=pharmacy.id,
        care_team_ref=ref,
        active=True,
        enrolled_at=now,
        enrolled_by=actor.user_id or actor.label,
    )
    session.add(row)
    session.flush()
    _log(session, actor, "homecare-enrol", body.resident_id, f"enrolment {eid} {ref}")
    return row


def enrolment_read(e: Enrolment) -> schemas.EnrolmentRead:
    return schemas.EnrolmentRead(
        id=e.id,
        resident_id=e.resident_id,
        station_id=e.station_id,
        clinic_id=e.clinic_id,
        doctor_id=e.doctor_id,
        pharmacy_id=e.pharmacy_id,
        care_team=e.care_team_ref,
        active=e.active,
        enrolled_at=e.enrolled_at,
    )


def _enrolment(session: Session, actor: Actor, enrolment_id: str) -> Enrolment:
    org = _staff(actor)
    e = repository.enrolment_for_org(session, enrolment_id, org)
    if e is None:
        raise NotFound(f"enrolment {enrolment_id} not found")
    return e


def deposit(
    *, session: Session, actor: Actor, enrolment_id: str, body: schemas.StockCreate
) -> Stock:
    """The medical facility deposits medicines (預かり薬): the clinic or the pharmacy of
    the care team. The drug must be in the national drug master."""
    e = _enrolment(session, actor, enrolment_id)
    _require(
        session,
        actor,
        actor.organization_id in (e.clinic_id, e.pharmacy_id)
        and actor.role in ("doctor", "pharmacist", "nurse"),
        "homecare-deposit",
        e.resident_id,
        "the care team's clinic or pharmacy deposits medicines",
    )
    product = drugs.products_by_codes(session, [body.drug_code]).get(body.drug_code)
    if product is None:
        raise InvalidInput(
            f"{body.drug_code} is not in the national drug master (phr drugs import)"
        )
    row = Stock(
        id=repo.new_id(),
        enrolment_id=e.id,
        resident_id=e.resident_id,
        drug_code=product.code,
        drug_name=product.name,
        quantity=body.quantity,
        unit=body.unit,
        lot=body.lot,
        expiry=body.expiry,
        deposited_by_org=actor.organization_id or "",
        deposited_by=actor.user_id or actor.label,
        deposited_at=utcnow(),
    )
    session.add(row)
    session.flush()
    _log(
        session,
        actor,
        "homecare-deposit",
        e.resident_id,
        f"stock {row.id} {product.code} x{body.quantity} lot {body.lot}",
    )
    return row


def _today() -> date:
    return datetime.now(UTC).date()


def stock_read(session: Session, s: Stock) -> schemas.StockRead:
    return schemas.StockRead(
        id=s.id,
        drug_code=s.drug_code,
        drug_name=s.drug_name,
        quantity=s.quantity,
        reserved=repository.pending_quantity(session, s.id),
        unit=s.unit,
        lot=s.lot,
        expiry=s.expiry,
        expired=repository.expired(s, _today()),
        deposited_by_org=s.deposited_by_org,
        deposited_by=s.deposited_by,
        deposited_at=s.deposited_at,
    )


def stock_of(*, session: Session, actor: Actor, enrolment_id: str) -> list[schemas.StockRead]:
    e = _enrolment(session, actor, enrolment_id)
    return [stock_read(session, s) for s in repository.stock(session, e.id)]


# ---- the request -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Triaged:
    urgency: str
    label_ja: str
    label_en: str


def _triage(session: Session, body: schemas.RequestCreate) -> Triaged:
    """The triage engine's urgency for the complaint and the red-flag answers (the
    protocols of phr.triage; anonymous: the record is not read for it)."""
    out = triage.evaluate(
        session,
        None,
        triage_schemas.EvaluateIn(
            complaint=body.complaint,
            answers=body.answers,
            age=None,
            at=None,
            subject="other",
            record=False,
        ),
    )
    return Triaged(out.urgency, out.urgency_label.ja, out.urgency_label.en)


def _new_request(
    session: Session, actor: Actor, e: Enrolment, body: schemas.RequestCreate, channel: str
) -> Request:
    t = _triage(session, body)
    now = utcnow()
    rid = repo.new_id()
    row = Request(
        id=rid,
        enrolment_id=e.id,
        resident_id=e.resident_id,
        station_id=e.station_id,
        channel=channel,
        complaint=body.complaint,
        urgency=t.urgency,
        sealed=keys.seal_json(
            {"what": body.what, "since": body.since}, context=f"homecare-request:{rid}"
        ),
        status=flows.OPEN,
        created_at=now,
        created_by=(actor.user_id or actor.resident_id or actor.label)[:80],
        updated_at=now,
    )
    session.add(row)
    session.flush()
    _step(session, actor, row, "request", detail=f"{channel} {body.complaint} urgency={t.urgency}")
    if t.urgency == "red":
        # Red: the caller is told to call 119 at once; the station does not visit.
        repository.advance_request(
            session, row.id, flows.OPEN, flows.REFERRED, closed_at=now, updated_at=now
        )
        session.refresh(row)
        _step(session, actor, row, "referred-119", detail="triage red")
    return row


def create_request(*, session: Session, actor: Actor, body: schemas.RequestCreate) -> Request:
    """The patient or family asks for help from the web app (signed in as the resident)."""
    if actor.kind != "resident" or not actor.resident_id:
        raise Forbidden("the resident (or their family on the resident's account) asks")
    e = repository.active_enrolment(session, actor.resident_id)
    if e is None:
        raise NotFound("you are not enrolled with a visiting-nurse station")
    _no_open_request(session, e)
    return _new_request(session, actor, e, body, "web")


def _no_open_request(session: Session, e: Enrolment) -> None:
    if any(
        r.status in flows.ACTIVE for r in repository.requests_of_resident(session, e.resident_id)
    ):
        raise Conflict("a request for this patient is already open")


def record_call(*, session: Session, actor: Actor, body: schemas.PhoneRequestCreate) -> Request:
    """The station records a phone call."""
    _staff(actor)
    e = repository.active_enrolment(session, body.resident_id)
    if e is None or e.station_id != actor.organization_id:
        raise NotFound(f"no enrolment of {body.resident_id} at this station")
    _station_staff(session, actor, e, "homecare-request")
    _no_open_request(session, e)
    return _new_request(
        session,
        actor,
        e,
        schemas.RequestCreate(**body.model_dump(exclude={"resident_id"})),
        "phone",
    )


def _minutes(start: datetime, end: datetime | None) -> int:
    return max(0, int(((end or utcnow()) - start).total_seconds() // 60))


def request_read(session: Session, r: Request) -> schemas.RequestRead:
    words = keys.open_json(r.sealed, context=f"homecare-request:{r.id}")
    assert isinstance(words, dict)
    visit = repository.visit_of_request(session, r.id)
    return schemas.RequestRead(
        id=r.id,
        resident_id=r.resident_id,
        station_id=r.station_id,
        channel=r.channel,
        complaint=r.complaint,
        urgency=r.urgency,  # type: ignore[arg-type]
        status=r.status,
        what=words["what"],  # type: ignore[arg-type]
        since=words["since"],
        created_at=r.created_at,
        waiting_minutes=_minutes(r.created_at, r.arrived_at or r.closed_at),
        nurse_id=r.nurse_id,
        assigned_at=r.assigned_at,
        dispatched_at=r.dispatched_at,
        arrived_at=r.arrived_at,
        closed_at=r.closed_at,
        outcome=r.outcome,
        call_119=r.status == flows.REFERRED,
        visit_id=visit.id if visit else None,
    )


def my_requests(*, session: Session, actor: Actor) -> list[Request]:
    if actor.kind != "resident" or not actor.resident_id:
        raise Forbidden("for the resident")
    return repository.requests_of_resident(session, actor.resident_id)


# ---- the station's board --------------------------------------------------------------------


def _station_actor(session: Session, actor: Actor) -> str:
    org = _staff(actor)
    station = _org(session, org)
    if station.kind != "nurse_station" or actor.role not in STATION_ROLES:
        raise Forbidden("the station board is for a visiting-nurse station's nurses and clerks")
    return org


def board(*, session: Session, actor: Actor) -> list[Request]:
    """The station's requests not yet closed, oldest first (waiting time)."""
    return repository.board(session, _station_actor(session, actor), sorted(flows.ACTIVE))


def nurses(session: Session, station_id: str) -> list[StaffUser]:
    from sqlalchemy import select

    return list(
        session.scalars(
            select(StaffUser)
            .where(
                StaffUser.organization_id == station_id,
                StaffUser.role == "nurse",
                StaffUser.active.is_(True),
            )
            .order_by(StaffUser.display_name)
        )
    )


def assign(*, session: Session, actor: Actor, request_id: str, body: schemas.Assign) -> Request:
    req, e = _request(session, actor, request_id)
    _station_staff(session, actor, e, "homecare-assign")
    nurse = session.get(StaffUser, body.nurse_id)
    if (
        nurse is None
        or nurse.organization_id != e.station_id
        or nurse.role != "nurse"
        or not nurse.active
    ):
        raise InvalidInput("the nurse must be an active nurse of this station")
    flows.check_request(req.status, flows.ASSIGNED)
    now = utcnow()
    repository.advance_request(
        session,
        req.id,
        req.status,
        flows.ASSIGNED,
        nurse_id=nurse.id,
        assigned_at=now,
        updated_at=now,
    )
    session.refresh(req)
    _step(session, actor, req, "assign", detail=f"nurse {nurse.id}")
    return req


def dispatch(*, session: Session, actor: Actor, request_id: str) -> Request:
    req, e = _request(session, actor, request_id)
    _station_staff(session, actor, e, "homecare-dispatch")
    flows.check_request(req.status, flows.DISPATCHED)
    now = utcnow()
    repository.advance_request(
        session, req.id, flows.ASSIGNED, flows.DISPATCHED, dispatched_at=now, updated_at=now
    )
    session.refresh(req)
    _step(session, actor, req, "dispatch", detail=f"nurse {req.nurse_id}")
    return req


# ---- the visit ---------------------------------------------------------------------------------


def arrive(*, session: Session, actor: Actor, request_id: str) -> Visit:
    """The assigned nurse arrives: the visit opens (a home-health Encounter)."""
    req, e = _request(session, actor, request_id)
    _assigned_nurse(session, actor, req, "homecare-arrive")
    flows.check_request(req.status, flows.VISITING)
    now = utcnow()
    repository.advance_request(
        session, req.id, flows.DISPATCHED, flows.VISITING, arrived_at=now, updated_at=now
    )
    session.refresh(req)
    station = _org(session, e.station_id)
    vid = repo.new_id()
    enc = fhir.home_visit(
        req.resident_id, (station.id, station.name), req.complaint, iso_instant(now)
    )
    ref = _write(session, station.id, f"visit:{vid}:encounter", [enc])[0]
    visit = Visit(
        id=vid,
        request_id=req.id,
        resident_id=req.resident_id,
        station_id=req.station_id,
        nurse_id=req.nurse_id or "",
        step=flows.ARRIVED,
        started_at=now,
        encounter_ref=ref,
    )
    session.add(visit)
    session.flush()
    _step(session, actor, req, "arrive", [ref])
    return visit


def record_vitals(
    *, session: Session, actor: Actor, visit_id: str, body: schemas.Vitals
) -> schemas.VitalsRead:
    """Vital signs as Observations and NEWS2 computed by ``phr.triage.scores.news2``."""
    visit, req, e = _visit(session, actor, visit_id)
    _assigned_nurse(session, actor, req, "homecare-vitals")
    flows.check_step(visit.step, flows.MEASUREMENTS)
    result = scores.news2(
        respiratory_rate=body.respiratory_rate,
        spo2=body.spo2,
        spo2_scale=body.spo2_scale,
        on_oxygen=body.on_oxygen,
        systolic_bp=body.systolic,
        pulse=body.pulse,
        consciousness=body.consciousness,
        temperature=body.temperature,
    )
    at = _now_text()
    n = len(repository.steps(session, req.id))
    refs = _write(
        session,
        e.station_id,
        f"visit:{visit.id}:vitals:{n}",
        fhir.vital_signs(visit.resident_id, visit.encounter_ref, at, body),
    )
    refs += _write(
        session,
        e.station_id,
        f"visit:{visit.id}:news2:{n}",
        [fhir.news2_observation(visit.resident_id, visit.encounter_ref, at, result, refs)],
    )
    repository.advance_visit(
        session,
        visit.id,
        visit.step,
        flows.MEASUREMENTS,
        news2=result.score,
        news2_risk=result.risk,
    )
    session.refresh(visit)
    _step(session, actor, req, "vitals", refs, f"NEWS2 {result.score} {result.risk}")
    return schemas.VitalsRead(
        news2=result.score,
        risk=result.risk,
        response=result.response,
        points=result.points,
        references=refs,
    )


def consult(*, session: Session, actor: Actor, visit_id: str, body: schemas.Consultation) -> Visit:
    """The doctor's online consultation: a virtual Encounter with the findings and
    instructions. Transport hands the case over to the emergency flow at once."""
    visit, req, e = _visit(session, actor, visit_id)
    _doctor(session, actor, e, "homecare-consult")
    flows.check_step(visit.step, flows.CONSULTATION)
    clinic = _org(session, e.clinic_id)
    doctor = _person(session, actor)
    at = _now_text()
    enc = fhir.consultation(
        visit.resident_id, (clinic.id, clinic.name), doctor, visit.encounter_ref, at
    )
    ref = _write(session, clinic.id, f"visit:{visit.id}:consultation", [enc])[0]
    imp = _write(
        session,
        clinic.id,
        f"visit:{visit.id}:impression",
        [fhir.impression(visit.resident_id, ref, doctor, at, body)],
    )
    repository.advance_visit(
        session,
        visit.id,
        flows.MEASUREMENTS,
        flows.CONSULTATION,
        consultation_ref=ref,
        doctor_org=clinic.id,
        decision=body.decision,
    )
    session.refresh(visit)
    _step(session, actor, req, "consultation", [ref, *imp], f"decision={body.decision}")
    if body.decision == "transport":
        _hand_over(session, actor, visit, req, body)
    return visit


def _hand_over(
    session: Session, actor: Actor, visit: Visit, req: Request, body: schemas.Consultation
) -> None:
    """Transport: the case goes to the emergency flow — the city's EMS gets an incident
    for this resident, identified by the visiting nurse at the bedside (confirmed by the
    birth date on the record), with the nurse's last vital signs and the doctor's
    findings as the crew's first finding. All through phr.emergency.service."""
    from sqlalchemy import select

    from phr.emergency import schemas as es
    from phr.emergency import service as emergency

    ems = session.scalars(
        select(Organization)
        .where(Organization.kind == "ems", Organization.active.is_(True))
        .order_by(Organization.id)
    ).first()
    if ems is None:
        raise Conflict("no EMS organisation is registered: call 119 by phone")
    dispatcher = Actor(
        kind="organization",
        organization_id=ems.id,
        organization_kind="ems",
        client_id=f"homecare-handover:{req.station_id}"[:80],
    )
    incident = emergency.open_incident(
        session=session, actor=dispatcher, body=es.IncidentCreate(district=None)
    )
    cands = emergency.add_candidates(
        session,
        incident.id,
        "demographic",
        [emergency.Proposed(req.resident_id, 1.0)],
        actor=dispatcher,
    )
    reader = RecordReader(session, actor, PURPOSE)
    birth = None
    try:
        patient = repo.load_json(reader.read("Patient", req.resident_id).content)
        birth = patient.get("birthDate")
    except NotFound:
        pass
    confirmed = False
    if birth and len(birth) == 10:
        try:
            emergency.confirm(
                session=session,
                actor=dispatcher,
                incident_id=incident.id,
                body=es.Confirm(
                    candidate_id=cands[0].pk,
                    method="birth_date",
                    birth_date=date.fromisoformat(birth),
                ),
            )
            confirmed = True
        except PHRError:
            # Not confirmed here (the emergency service could not check it): the incident
            # stays open with its candidate, and the crew confirms at the bedside.
            pass
    if confirmed:
        text = (
            "在宅療養支援からの引継ぎ / home-care handover: "
            f"NEWS2 {visit.news2} ({visit.news2_risk}). "
            f"医師所見 / doctor's findings: {body.findings} "
            f"指示 / instructions: {body.instructions}"
        )
        emergency.record_finding(
            session=session,
            actor=dispatcher,
            incident_id=incident.id,
            body=es.Finding(text=text[:2000]),
        )
    visit.incident_id = incident.id
    session.flush()
    _step(
        session,
        actor,
        req,
        "handover",
        detail=f"incident {incident.id} at {ems.id}" + ("" if confirmed else " (to confirm)"),
    )


def prescribe(
    *, session: Session, actor: Actor, visit_id: str, body: schemas.Prescription
) -> list[Order]:
    """Only from this patient's deposited, unexpired stock with enough left (what other
    lines of this visit have not yet used); anything else is refused, nothing written."""
    visit, req, e = _visit(session, actor, visit_id)
    _doctor(session, actor, e, "homecare-prescribe")
    if visit.decision != "home":
        raise Conflict("the doctor decided on transport: nothing is prescribed at home")
    if actor.organization_id != visit.doctor_org:
        raise Forbidden("the consulting clinic prescribes")
    flows.check_step(visit.step, flows.PRESCRIPTION)
    today = _today()
    wanted: dict[str, int] = {}
    lots: dict[str, Stock] = {}
    for line in body.lines:
        s = session.get(Stock, line.stock_id)
        if s is None or s.enrolment_id != e.id or s.resident_id != visit.resident_id:
            _require(
                session,
                actor,
                False,
                "homecare-prescribe",
                visit.resident_id,
                f"{line.stock_id} is not this patient's deposited stock: "
                "only deposited medicines can be prescribed",
            )
            raise AssertionError
        if repository.expired(s, today):
            _require(
                session,
                actor,
                False,
                "homecare-prescribe",
                visit.resident_id,
                f"{s.drug_name} lot {s.lot} expired on {s.expiry.isoformat()}: "
                "expired stock cannot be prescribed",
            )
        wanted[s.id] = wanted.get(s.id, 0) + line.quantity
        lots[s.id] = s
    for sid, n in wanted.items():
        s = lots[sid]
        left = s.quantity - repository.pending_quantity(session, sid)
        if n > left:
            _require(
                session,
                actor,
                False,
                "homecare-prescribe",
                visit.resident_id,
                f"{s.drug_name} lot {s.lot}: {left} {s.unit} left, {n} prescribed",
            )
    doctor = _person(session, actor)
    at = _now_text()
    resources = [
        fhir.medication_request(
            visit.resident_id,
            visit.consultation_ref or "",
            doctor,
            at,
            lots[line.stock_id],
            line.quantity,
            line.dosage,
        )
        for line in body.lines
    ]
    refs = _write(session, e.clinic_id, f"visit:{visit.id}:prescription", resources)
    now = utcnow()
    rows = [
        Order(
            id=repo.new_id(),
            visit_id=visit.id,
            stock_id=line.stock_id,
            quantity=line.quantity,
            dosage=line.dosage,
            status=flows.PRESCRIBED,
            request_ref=ref,
            prescribed_at=now,
        )
        for line, ref in zip(body.lines, refs, strict=True)
    ]
    session.add_all(rows)
    repository.advance_visit(session, visit.id, flows.CONSULTATION, flows.PRESCRIPTION)
    session.refresh(visit)
    _step(
        session,
        actor,
        req,
        "prescription",
        refs,
        ", ".join(f"{lots[line.stock_id].drug_code} x{line.quantity}" for line in body.lines),
    )
    return rows


def guide(*, session: Session, actor: Actor, visit_id: str, body: schemas.Guidance) -> str:
    """The pharmacist's online medication guidance (服薬指導) on every prescribed line."""
    visit, req, e = _visit(session, actor, visit_id)
    _pharmacist(session, actor, e, "homecare-guidance")
    flows.check_step(visit.step, flows.GUIDANCE)
    pending = [o for o in repository.orders(session, visit.id) if o.status == flows.PRESCRIBED]
    if not pending:
        raise Conflict("nothing prescribed to guide on")
    pharmacy = _org(session, e.pharmacy_id)
    proc = fhir.guidance(
        visit.resident_id,
        visit.consultation_ref or "",
        _person(session, actor),
        (pharmacy.id, pharmacy.name),
        _now_text(),
        [o.request_ref for o in pending],
        body.text,
    )
    ref = _write(session, pharmacy.id, f"visit:{visit.id}:guidance", [proc])[0]
    for o in pending:
        repository.advance_order(session, o.id, flows.PRESCRIBED, flows.GUIDED, guidance_ref=ref)
    repository.advance_visit(session, visit.id, flows.PRESCRIPTION, flows.GUIDANCE)
    session.refresh(visit)
    _step(session, actor, req, "guidance", [ref])
    return ref


def administer(*, session: Session, actor: Actor, visit_id: str, body: schemas.Administer) -> Order:
    """The nurse gives a prescribed, guided medicine. Decided in the database: the order
    moves guided → administered by compare-and-set (a second tablet finds nothing to
    update and is refused), and the lot's quantity goes down only if enough is left."""
    visit, req, e = _visit(session, actor, visit_id)
    _assigned_nurse(session, actor, req, "homecare-administer")
    order = session.get(Order, body.order_id)
    if order is None or order.visit_id != visit.id:
        _require(
            session,
            actor,
            False,
            "homecare-administer",
            visit.resident_id,
            "this medicine was not prescribed in this consultation",
        )
        raise AssertionError
    if order.status == flows.PRESCRIBED:
        raise Conflict("the pharmacist's guidance comes first")
    if order.status != flows.GUIDED:
        raise Conflict(f"this medicine is already {order.status}")
    flows.check_step(visit.step, flows.ADMINISTRATION)
    now = utcnow()
    # The race is decided here, before anything else is written.
    repository.advance_order(
        session,
        order.id,
        flows.GUIDED,
        flows.ADMINISTERED,
        administered_at=now,
        administered_by=actor.user_id,
    )
    repository.take_stock(session, order.stock_id, order.quantity)
    stock = session.get(Stock, order.stock_id)
    assert stock is not None
    session.refresh(stock)
    session.refresh(order)
    adm = fhir.administration(
        visit.resident_id,
        visit.encounter_ref,
        _person(session, actor),
        iso_instant(now),
        stock,
        order.quantity,
        order.dosage,
        order.request_ref,
    )
    ref = _write(session, e.station_id, f"visit:{visit.id}:administration:{order.id}", [adm])[0]
    order.administration_ref = ref
    if visit.step != flows.ADMINISTRATION:
        repository.advance_visit(session, visit.id, visit.step, flows.ADMINISTRATION)
    session.refresh(visit)
    _step(
        session,
        actor,
        req,
        "administration",
        [ref],
        f"{stock.drug_code} x{order.quantity} lot {stock.lot}; left {stock.quantity}",
    )
    return order


def close(*, session: Session, actor: Actor, visit_id: str, body: schemas.Outcome) -> Visit:
    """The visit's outcome; the request closes. Transport only when the doctor decided it
    (the handover was made); lines prescribed but not given are marked not given."""
    visit, req, e = _visit(session, actor, visit_id)
    _assigned_nurse(session, actor, req, "homecare-outcome")
    flows.check_step(visit.step, flows.OUTCOME)
    if (visit.decision == "transport") != (body.outcome == "transported"):
        raise Conflict("the outcome must follow the doctor's decision (transport or not)")
    now = utcnow()
    not_given = 0
    for o in repository.orders(session, visit.id):
        if o.status in (flows.PRESCRIBED, flows.GUIDED):
            repository.advance_order(session, o.id, o.status, flows.NOT_GIVEN)
            not_given += 1
    station = _org(session, e.station_id)
    enc = fhir.home_visit(
        visit.resident_id,
        (station.id, station.name),
        req.complaint,
        iso_instant(visit.started_at),
        end=iso_instant(now),
        outcome=body.outcome,
    )
    ref = _write(session, station.id, f"visit:{visit.id}:encounter", [enc])[0]
    repository.advance_visit(
        session, visit.id, visit.step, flows.OUTCOME, outcome=body.outcome, closed_at=now
    )
    repository.advance_request(
        session,
        req.id,
        flows.VISITING,
        flows.CLOSED,
        outcome=body.outcome,
        closed_at=now,
        updated_at=now,
    )
    session.refresh(visit)
    session.refresh(req)
    _step(
        session,
        actor,
        req,
        "outcome",
        [ref],
        f"{body.outcome}" + (f"; {not_given} not given" if not_given else ""),
    )
    return visit


# ---- reading ------------------------------------------------------------------------------------


def get_visit(*, session: Session, actor: Actor, visit_id: str) -> Visit:
    visit, _, _ = _visit(session, actor, visit_id)
    _require(
        session,
        actor,
        actor.role in ("nurse", "doctor", "pharmacist", "clerk"),
        "homecare-read",
        visit.resident_id,
        "for the care team's clinical staff",
    )
    _log(session, actor, "homecare-read", visit.resident_id, f"visit {visit.id}")
    return visit


def visit_read(session: Session, v: Visit) -> schemas.VisitRead:
    lines = []
    for o in repository.orders(session, v.id):
        s = session.get(Stock, o.stock_id)
        assert s is not None
        lines.append(
            schemas.OrderRead(
                id=o.id,
                stock_id=s.id,
                drug_code=s.drug_code,
                drug_name=s.drug_name,
                lot=s.lot,
                quantity=o.quantity,
                unit=s.unit,
                dosage=o.dosage,
                status=o.status,
                request_ref=o.request_ref,
                guidance_ref=o.guidance_ref,
                administration_ref=o.administration_ref,
            )
        )
    steps = [
        schemas.StepRead(
            kind=s.kind,
            at=s.at,
            organization_id=s.organization_id,
            actor=s.actor,
            role=s.role,
            references=s.resource_refs.split(),
            detail=s.detail,
        )
        for s in repository.steps(session, v.request_id)
    ]
    return schemas.VisitRead(
        id=v.id,
        request_id=v.request_id,
        resident_id=v.resident_id,
        nurse_id=v.nurse_id,
        step=v.step,
        started_at=v.started_at,
        encounter=v.encounter_ref,
        news2=v.news2,
        news2_risk=v.news2_risk,
        consultation=v.consultation_ref,
        decision=v.decision,
        incident_id=v.incident_id,
        outcome=v.outcome,
        closed_at=v.closed_at,
        orders=lines,
        steps=steps,
    )


def waiting(r: Request) -> timedelta:
    return (r.arrived_at or utcnow()) - r.created_at
