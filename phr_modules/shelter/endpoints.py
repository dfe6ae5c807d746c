"""The shelter's JSON API under ``/modules/shelter/api`` (bearer token of a shelter's
client or staff member; errors in the platform's JSON error shape)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from consent.identity.oauth import ActorDep
from phr.db import SessionDep
from phr_modules.shelter import readers, schemas, service

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["module: shelter"])


@router.post("/intakes", response_model=schemas.IntakeRead, status_code=201)
def open_intake(session: SessionDep, actor: ActorDep) -> schemas.IntakeRead:
    """受付: someone arrives at the shelter."""
    return service.intake_read(service.open_intake(session, actor))


@router.get("/intakes/{intake_id}", response_model=schemas.EvacueeView)
def evacuee(
    intake_id: str, request: Request, session: SessionDep, actor: ActorDep
) -> schemas.EvacueeView:
    """The intake; once checked in, the medicines to continue, allergies, problems and
    needs (only under the resident's disaster-time consent)."""
    reader = readers.record(request, session, actor)
    return service.evacuee(session, actor, reader, intake_id)


@router.post("/intakes/{intake_id}/identify/demographic", response_model=schemas.IdentifyResult)
def identify_demographic(
    intake_id: str,
    body: schemas.DemographicQuery,
    request: Request,
    session: SessionDep,
    actor: ActorDep,
) -> schemas.IdentifyResult:
    lookup = readers.lookup(request, session, actor)
    return service.identify_by_demographics(session, actor, lookup, intake_id, body)


@router.post("/intakes/{intake_id}/identify/card", response_model=schemas.IdentifyResult)
def identify_card(
    intake_id: str, body: schemas.CardQuery, session: SessionDep, actor: ActorDep
) -> schemas.IdentifyResult:
    return service.identify_by_card(session, actor, intake_id, body)


@router.post("/intakes/{intake_id}/confirm", response_model=schemas.IntakeRead)
def confirm(
    intake_id: str, body: schemas.Confirm, request: Request, session: SessionDep, actor: ActorDep
) -> schemas.IntakeRead:
    lookup = readers.lookup(request, session, actor)
    return service.intake_read(service.confirm(session, actor, lookup, intake_id, body))


@router.post("/intakes/{intake_id}/leave", response_model=schemas.IntakeRead)
def leave(intake_id: str, session: SessionDep, actor: ActorDep) -> schemas.IntakeRead:
    return service.intake_read(service.leave(session, actor, intake_id))


@router.get("/evacuees", response_model=list[schemas.ListEntry])
def shelter_list(
    request: Request, session: SessionDep, actor: ActorDep, needs_support: bool = False
) -> list[schemas.ListEntry]:
    """Everyone checked in here with their needs; ``?needs_support=true`` for only those
    who need support."""
    reader = readers.record(request, session, actor)
    return service.shelter_list(session, actor, reader, needs_only=needs_support)
