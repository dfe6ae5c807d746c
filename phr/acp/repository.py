"""SQL of the ACP tables (never of residents' FHIR data: that is the reader's)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from phr.acp.models import (
    AcpConversation,
    AcpVersion,
    TrustedInvitation,
    TrustedPerson,
    TrustedSession,
)


def consent_id_of(session: Session, resident_id: str) -> str | None:
    """The id of the resident's advance-directive Consent (one per resident), if any."""
    return session.scalar(
        select(AcpVersion.consent_id).where(AcpVersion.resident_id == resident_id).limit(1)
    )


def latest_version(session: Session, consent_id: str) -> int:
    """The highest sealed version of this ACP (0 when none)."""
    return int(
        session.scalar(
            select(func.max(AcpVersion.version)).where(AcpVersion.consent_id == consent_id)
        )
        or 0
    )


def version_row(session: Session, consent_id: str, version: int) -> AcpVersion | None:
    return session.scalars(
        select(AcpVersion).where(AcpVersion.consent_id == consent_id, AcpVersion.version == version)
    ).first()


def conversations(session: Session, resident_id: str) -> list[AcpConversation]:
    return list(
        session.scalars(
            select(AcpConversation)
            .where(AcpConversation.resident_id == resident_id)
            .order_by(AcpConversation.held_at.desc(), AcpConversation.recorded_at.desc())
        )
    )


def invitation_by_code(session: Session, code_hash: str) -> TrustedInvitation | None:
    return session.scalars(
        select(TrustedInvitation).where(TrustedInvitation.code_hash == code_hash)
    ).first()


def invitations_of(session: Session, resident_id: str) -> list[TrustedInvitation]:
    return list(
        session.scalars(
            select(TrustedInvitation)
            .where(TrustedInvitation.resident_id == resident_id)
            .order_by(TrustedInvitation.invited_at)
        )
    )


def accepted_invitations(session: Session, person_id: str) -> list[TrustedInvitation]:
    return list(
        session.scalars(
            select(TrustedInvitation)
            .where(
                TrustedInvitation.person_id == person_id,
                TrustedInvitation.accepted_at.is_not(None),
                TrustedInvitation.revoked_at.is_(None),
            )
            .order_by(TrustedInvitation.accepted_at)
        )
    )


def trusted_of(session: Session, resident_id: str) -> list[str]:
    """Ids of the trusted persons who accepted the resident's invitation (not revoked)."""
    return [
        p
        for p in session.scalars(
            select(TrustedInvitation.person_id).where(
                TrustedInvitation.resident_id == resident_id,
                TrustedInvitation.accepted_at.is_not(None),
                TrustedInvitation.revoked_at.is_(None),
            )
        )
        if p
    ]


def person_by_login(session: Session, login_hash: str) -> TrustedPerson | None:
    return session.scalars(
        select(TrustedPerson).where(TrustedPerson.login_hash == login_hash)
    ).first()


def session_row(session: Session, token_hash: str) -> TrustedSession | None:
    return session.get(TrustedSession, token_hash)
