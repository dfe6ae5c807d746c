"""Consent API: residents manage their consents; EMS open emergency episodes."""

from __future__ import annotations

from fastapi import APIRouter, Query

from consent.actors import Purpose
from consent.identity.oauth import ActorDep
from consent.policy import schemas, service
from phr.db import SessionDep
from phr.errors import InvalidInput

router = APIRouter(tags=["consent"])


@router.get("/api/me/consents", response_model=list[schemas.ConsentRead])
def list_consents(session: SessionDep, actor: ActorDep) -> list[schemas.ConsentRead]:
    """My consents, newest first, each with a one-line summary in Japanese and English."""
    return service.list_consents(session, actor)


@router.post("/api/me/consents", response_model=schemas.ConsentRead, status_code=201)
def create_consent(
    body: schemas.ConsentCreate, session: SessionDep, actor: ActorDep
) -> schemas.ConsentRead:
    return service.create_consent(session, actor, body)


@router.put("/api/me/consents/{consent_id}", response_model=schemas.ConsentRead)
def update_consent(
    consent_id: str, body: schemas.ConsentCreate, session: SessionDep, actor: ActorDep
) -> schemas.ConsentRead:
    return service.update_consent(session, actor, consent_id, body)


@router.delete("/api/me/consents/{consent_id}", response_model=schemas.ConsentRead)
def revoke_consent(consent_id: str, session: SessionDep, actor: ActorDep) -> schemas.ConsentRead:
    """Revoke: the consent becomes inactive and stops applying on the next request."""
    return service.revoke_consent(session, actor, consent_id)


@router.put("/api/me/emergency-consent", response_model=schemas.ConsentRead | None)
def emergency_consent(
    body: schemas.EmergencyConsentIn, session: SessionDep, actor: ActorDep
) -> schemas.ConsentRead | None:
    """The emergency pre-consent switch (緊急時の情報開示に係る事前同意)."""
    return service.set_emergency_consent(session, actor, body)


@router.put("/api/me/disaster-consent", response_model=schemas.ConsentRead | None)
def disaster_consent(
    body: schemas.EmergencyConsentIn, session: SessionDep, actor: ActorDep
) -> schemas.ConsentRead | None:
    """The disaster-time consent switch (災害時の情報提供に係る同意): evacuation shelters
    see the disaster set while the resident is checked in at one (ADR 0006)."""
    return service.set_disaster_consent(session, actor, body)


@router.get("/api/me/consents/preview", response_model=schemas.PreviewRead)
def preview(
    session: SessionDep,
    actor: ActorDep,
    as_kind: str = Query("ems", alias="as", description="organisation kind, e.g. ems"),
    purpose: str = Query(Purpose.EMERGENCY.value),
    organization: str | None = None,
) -> schemas.PreviewRead:
    """What would a paramedic (or any recipient) see of my record?"""
    try:
        p = Purpose(purpose)
    except ValueError:
        raise InvalidInput(f"unknown purpose {purpose!r}") from None
    return service.preview(session, actor, as_kind=as_kind, purpose=p, organization_id=organization)


@router.post("/api/emergency/episodes", response_model=schemas.EpisodeRead, status_code=201)
def open_episode(
    body: schemas.EpisodeCreate, session: SessionDep, actor: ActorDep
) -> schemas.EpisodeRead:
    """An EMS crew attends a resident: the emergency pre-consent applies while open."""
    ep = service.open_episode(session, actor, body)
    return schemas.EpisodeRead.model_validate(ep, from_attributes=True)


@router.post("/api/emergency/episodes/{episode_id}/handover", response_model=schemas.EpisodeRead)
def handover(
    episode_id: str, body: schemas.HandoverIn, session: SessionDep, actor: ActorDep
) -> schemas.EpisodeRead:
    ep = service.handover(session, actor, episode_id, body)
    return schemas.EpisodeRead.model_validate(ep, from_attributes=True)


@router.post("/api/emergency/episodes/{episode_id}/close", response_model=schemas.EpisodeRead)
def close_episode(episode_id: str, session: SessionDep, actor: ActorDep) -> schemas.EpisodeRead:
    ep = service.close_episode(session, actor, episode_id)
    return schemas.EpisodeRead.model_validate(ep, from_attributes=True)


@router.post("/api/emergency/break-glass", response_model=schemas.BreakGlassRead, status_code=201)
def break_glass(
    body: schemas.BreakGlassCreate, session: SessionDep, actor: ActorDep
) -> schemas.BreakGlassRead:
    """Life-protection exception (off unless the deployment enables it)."""
    bg = service.break_glass(session, actor, body)
    return schemas.BreakGlassRead.model_validate(bg, from_attributes=True)
