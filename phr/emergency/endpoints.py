"""Paramedic flow API (EMS crews, organisation clients or staff) and the receiving
hospital's view of the handover."""

from __future__ import annotations

from fastapi import APIRouter, Response

from consent.identity.oauth import ActorDep
from fhir_gateway.api import render
from phr.db import SessionDep
from phr.emergency import schemas, service, summary
from phr.errors import InvalidInput, NotFound

router = APIRouter(prefix="/api/emergency", tags=["emergency"])


@router.post("/incidents", response_model=schemas.IncidentRead, status_code=201)
def open_incident(
    body: schemas.IncidentCreate, session: SessionDep, actor: ActorDep
) -> schemas.IncidentRead:
    row = service.open_incident(session=session, actor=actor, body=body)
    return service.incident_read(session, row)


@router.get("/incidents/{incident_id}", response_model=schemas.IncidentRead)
def get_incident(incident_id: str, session: SessionDep, actor: ActorDep) -> schemas.IncidentRead:
    row = service.get(session=session, actor=actor, incident_id=incident_id)
    return service.incident_read(session, row)


@router.post("/incidents/{incident_id}/identify/demographic", response_model=schemas.IdentifyResult)
def identify_demographic(
    incident_id: str, body: schemas.DemographicQuery, session: SessionDep, actor: ActorDep
) -> schemas.IdentifyResult:
    """Name and/or kana, birth date and sex: a candidate only when exactly one resident
    matches exactly."""
    return service.identify_by_demographics(
        session=session, actor=actor, incident_id=incident_id, query=body
    )


@router.post("/incidents/{incident_id}/identify/face", response_model=schemas.IdentifyResult)
def identify_face(
    incident_id: str, body: schemas.FaceProbe, session: SessionDep, actor: ActorDep
) -> schemas.IdentifyResult:
    """1:N face search over enrolled residents (a template or a photo), narrowed by what
    the crew sees: at most three candidates, to be confirmed before anything is shown."""
    if (body.embedding is None) == (body.image is None):
        raise InvalidInput("send either embedding or image")
    return service.identify_by_face(
        session=session, actor=actor, incident_id=incident_id, probe=body
    )


@router.post("/incidents/{incident_id}/identify/card", response_model=schemas.IdentifyResult)
def identify_card(
    incident_id: str, body: schemas.CardQuery, session: SessionDep, actor: ActorDep
) -> schemas.IdentifyResult:
    """The digital-ID card's certificate (verified as at card sign-in)."""
    return service.identify_by_card(
        session=session, actor=actor, incident_id=incident_id, query=body
    )


@router.post("/incidents/{incident_id}/confirm", response_model=schemas.IncidentRead)
def confirm(
    incident_id: str, body: schemas.Confirm, session: SessionDep, actor: ActorDep
) -> schemas.IncidentRead:
    row = service.confirm(session=session, actor=actor, incident_id=incident_id, body=body)
    return service.incident_read(session, row)


@router.get("/incidents/{incident_id}/summary", response_model=schemas.EmergencySummary)
def emergency_summary(incident_id: str, session: SessionDep, actor: ActorDep) -> Response:
    """The emergency summary (only a confirmed patient, only under emergency consent)."""
    incident = service.get(session=session, actor=actor, incident_id=incident_id)
    view, _ = summary.build(session, actor, incident)
    # Serialised once, here: the view was just built and validated (response_model only
    # documents the shape).
    return Response(view.model_dump_json(), media_type="application/json")


@router.get("/incidents/{incident_id}/summary/$document")
def emergency_document(
    incident_id: str, session: SessionDep, actor: ActorDep
) -> render.FHIRResponse:
    """The same as an IPS-shaped FHIR document Bundle with the advance-directives
    section."""
    incident = service.get(session=session, actor=actor, incident_id=incident_id)
    _, document = summary.build(session, actor, incident)
    if document is None:
        raise NotFound(summary.NO_CONSENT)
    return render.FHIRResponse(document)


@router.post("/incidents/{incident_id}/vitals", response_model=schemas.RecordedRead)
def vitals(
    incident_id: str, body: schemas.Vitals, session: SessionDep, actor: ActorDep
) -> schemas.RecordedRead:
    return service.record_vitals(session=session, actor=actor, incident_id=incident_id, body=body)


@router.post("/incidents/{incident_id}/findings", response_model=schemas.RecordedRead)
def finding(
    incident_id: str, body: schemas.Finding, session: SessionDep, actor: ActorDep
) -> schemas.RecordedRead:
    return service.record_finding(session=session, actor=actor, incident_id=incident_id, body=body)


@router.post("/incidents/{incident_id}/status-report", response_model=schemas.IncidentRead)
def status_report(
    incident_id: str, body: schemas.StatusReport, session: SessionDep, actor: ActorDep
) -> schemas.IncidentRead:
    """状態報告: the chosen hospital receives the patient (and sees the handover)."""
    row = service.status_report(session=session, actor=actor, incident_id=incident_id, body=body)
    return service.incident_read(session, row)


@router.post("/incidents/{incident_id}/close", response_model=schemas.IncidentRead)
def close(incident_id: str, session: SessionDep, actor: ActorDep) -> schemas.IncidentRead:
    row = service.close(session=session, actor=actor, incident_id=incident_id)
    return service.incident_read(session, row)


@router.get("/incoming", response_model=list[schemas.IncidentRead])
def incoming(session: SessionDep, actor: ActorDep) -> list[schemas.IncidentRead]:
    """A hospital's incoming patients (status reports sent to it, not yet closed)."""
    return [
        service.incident_read(session, r) for r in service.incoming(session=session, actor=actor)
    ]


@router.get("/incidents/{incident_id}/handover", response_model=schemas.Handover)
def handover(incident_id: str, session: SessionDep, actor: ActorDep) -> schemas.Handover:
    """The receiving hospital's view before arrival: the incident, the status reports,
    the emergency summary and the ACP — for its own incidents only."""
    incident = service.handover_incident(session=session, actor=actor, incident_id=incident_id)
    view, _ = summary.build(session, actor, incident)
    return schemas.Handover(
        incident=service.incident_read(session, incident),
        status_reports=service.status_reports(session, incident),
        summary=view,
    )
