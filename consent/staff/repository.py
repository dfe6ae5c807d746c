"""All SQL of staff accounts, their sessions, and the registry lists the admin API shows.

Counters that concurrent requests touch (failed sign-ins, the last TOTP step) are changed
with single conditional UPDATE statements, so two requests racing cannot both slip through.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from consent.models import OAuthClient, Organization
from consent.staff.models import StaffSession, StaffUser

__all__ = [
    "count_active_administrators",
    "delete_expired_sessions",
    "delete_session",
    "delete_sessions_of",
    "get_client",
    "get_session_row",
    "get_staff",
    "get_staff_by_username",
    "list_clients",
    "list_organizations",
    "list_staff",
    "record_failed_attempt",
    "record_success",
]


def get_staff(session: Session, staff_id: str) -> StaffUser | None:
    return session.get(StaffUser, staff_id)


def get_staff_by_username(
    session: Session, *, organization_id: str, username: str
) -> StaffUser | None:
    return session.scalars(
        select(StaffUser).where(
            StaffUser.organization_id == organization_id, StaffUser.username == username
        )
    ).one_or_none()


def list_staff(session: Session, organization_id: str) -> Sequence[StaffUser]:
    return session.scalars(
        select(StaffUser)
        .where(StaffUser.organization_id == organization_id)
        .order_by(StaffUser.username)
    ).all()


def count_active_administrators(
    session: Session, organization_id: str, *, excluding: str | None = None
) -> int:
    stmt = select(func.count()).where(
        StaffUser.organization_id == organization_id,
        StaffUser.role == "administrator",
        StaffUser.active.is_(True),
    )
    if excluding is not None:
        stmt = stmt.where(StaffUser.id != excluding)
    return int(session.scalar(stmt) or 0)


def record_failed_attempt(
    session: Session, staff_id: str, *, max_attempts: int, locked_until: datetime
) -> None:
    """Count one failed sign-in; the ``max_attempts``-th locks the account.

    The lock starts a fresh count, so after it ends the account again gets
    ``max_attempts`` tries.
    """
    reaches = StaffUser.failed_attempts + 1 >= max_attempts
    session.execute(
        update(StaffUser)
        .where(StaffUser.id == staff_id)
        .values(
            failed_attempts=case((reaches, 0), else_=StaffUser.failed_attempts + 1),
            locked_until=case((reaches, locked_until), else_=StaffUser.locked_until),
        )
        .execution_options(synchronize_session=False)
    )


def record_success(session: Session, staff_id: str, *, step: int, at: datetime) -> bool:
    """Accept TOTP ``step`` for the account unless it (or a later one) was already used.

    Returns False when another request used this step first: the code is a replay.
    """
    result = session.execute(
        update(StaffUser)
        .where(
            StaffUser.id == staff_id,
            (StaffUser.totp_last_step.is_(None)) | (StaffUser.totp_last_step < step),
        )
        .values(totp_last_step=step, failed_attempts=0, locked_until=None, last_login_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


# --------------------------------------------------------------------------- sessions


def get_session_row(session: Session, id_hash: str) -> StaffSession | None:
    return session.get(StaffSession, id_hash)


def delete_session(session: Session, id_hash: str) -> None:
    session.execute(
        delete(StaffSession)
        .where(StaffSession.id_hash == id_hash)
        .execution_options(synchronize_session=False)
    )


def delete_sessions_of(session: Session, staff_id: str) -> None:
    session.execute(
        delete(StaffSession)
        .where(StaffSession.staff_id == staff_id)
        .execution_options(synchronize_session=False)
    )


def delete_expired_sessions(session: Session, *, now: datetime, idle_since: datetime) -> int:
    result = session.execute(
        delete(StaffSession)
        .where((StaffSession.expires_at <= now) | (StaffSession.last_seen_at < idle_since))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --------------------------------------------------------------------------- registry


def list_organizations(session: Session, *, only: str | None = None) -> Sequence[Organization]:
    stmt = select(Organization).order_by(Organization.id)
    if only is not None:
        stmt = stmt.where(Organization.id == only)
    return session.scalars(stmt).all()


def list_clients(session: Session, organization_id: str) -> Sequence[OAuthClient]:
    return session.scalars(
        select(OAuthClient)
        .where(OAuthClient.organization_id == organization_id)
        .order_by(OAuthClient.created_at, OAuthClient.client_id)
    ).all()


def get_client(session: Session, organization_id: str, client_id: str) -> OAuthClient | None:
    client = session.get(OAuthClient, client_id)
    if client is None or client.organization_id != organization_id:
        return None
    return client
