"""ACP API: the resident's plan and its versions, conversations and trusted persons; the
trusted person's sign-in and reading."""

from __future__ import annotations

from fastapi import APIRouter, Request

from consent.actors import Purpose
from consent.identity.oauth import ActorDep
from phr.acp import schemas, service
from phr.acp.auth import TrustedDep
from phr.db import SessionDep
from phr.errors import NotAuthenticated, NotFound
from phr.security import limiter

router = APIRouter(tags=["acp"])


@router.get("/api/me/acp", response_model=schemas.AcpRead | None)
def current(session: SessionDep, actor: ActorDep) -> schemas.AcpRead | None:
    """My current ACP (null when none is recorded yet)."""
    return service.mine(session=session, actor=actor)


@router.put("/api/me/acp", response_model=schemas.AcpRead)
def save(body: schemas.AcpSave, session: SessionDep, actor: ActorDep) -> schemas.AcpRead:
    """Save: always a new version; earlier versions stay readable."""
    return service.save(session=session, actor=actor, body=body)


@router.get("/api/me/acp/versions", response_model=list[schemas.VersionInfo])
def versions(session: SessionDep, actor: ActorDep) -> list[schemas.VersionInfo]:
    return service.versions(session=session, actor=actor)


@router.get("/api/me/acp/versions/{version}", response_model=schemas.AcpRead)
def version(
    version: schemas.VersionNumber, session: SessionDep, actor: ActorDep
) -> schemas.AcpRead:
    return service.read_version(session=session, actor=actor, version=version)


@router.get("/api/me/acp/conversations", response_model=list[schemas.ConversationRead])
def conversations(session: SessionDep, actor: ActorDep) -> list[schemas.ConversationRead]:
    return service.conversations(session=session, actor=actor)


@router.post("/api/me/acp/conversations", response_model=schemas.ConversationRead, status_code=201)
def record_conversation(
    body: schemas.ConversationIn, session: SessionDep, actor: ActorDep
) -> schemas.ConversationRead:
    """A conversation that confirmed the plan without changing it."""
    return service.record_conversation(session=session, actor=actor, body=body)


@router.get("/api/me/acp/trusted", response_model=list[schemas.InvitationRead])
def invitations(session: SessionDep, actor: ActorDep) -> list[schemas.InvitationRead]:
    return service.list_invitations(session=session, actor=actor)


@router.post("/api/me/acp/trusted", response_model=schemas.InvitationRead, status_code=201)
def invite(
    body: schemas.InvitationCreate, session: SessionDep, actor: ActorDep
) -> schemas.InvitationRead:
    """Invite a trusted person: the code in the answer is shown once; hand it over."""
    return service.invite(session=session, actor=actor, body=body)


@router.delete("/api/me/acp/trusted/{invitation_id}", response_model=schemas.InvitationRead)
def revoke(invitation_id: str, session: SessionDep, actor: ActorDep) -> schemas.InvitationRead:
    return service.revoke_invitation(session=session, actor=actor, invitation_id=invitation_id)


# A wrong invitation code (404) is a guess as much as a wrong passphrase (401).
GUESSES = (NotAuthenticated, NotFound)


@router.post("/api/acp/trusted/accept", response_model=schemas.TrustedSessionRead, status_code=201)
def accept(
    body: schemas.AcceptInvitation, request: Request, session: SessionDep
) -> schemas.TrustedSessionRead:
    with limiter.guarded_sign_in(
        session, request, "trusted-accept", account=body.login, failures=GUESSES
    ):
        return service.accept_invitation(session=session, body=body)


@router.post("/api/acp/trusted/sign-in", response_model=schemas.TrustedSessionRead)
def sign_in(
    body: schemas.SignIn, request: Request, session: SessionDep
) -> schemas.TrustedSessionRead:
    with limiter.guarded_sign_in(session, request, "trusted-sign-in", account=body.login):
        return service.sign_in(session=session, body=body)


@router.get("/api/acp/trusted/residents", response_model=list[schemas.SharedResident])
def shared(session: SessionDep, actor: TrustedDep) -> list[schemas.SharedResident]:
    return service.shared_with(session=session, actor=actor)


@router.get("/api/acp/trusted/residents/{resident_id}/acp", response_model=schemas.AcpRead)
def trusted_read(resident_id: str, session: SessionDep, actor: TrustedDep) -> schemas.AcpRead:
    """The current ACP of a resident who shares it with me."""
    found = service.current(
        session=session, actor=actor, resident_id=resident_id, purpose=Purpose.PATIENT_ACCESS
    )
    assert found is not None  # a trusted person without access gets 404 from the service
    return found
