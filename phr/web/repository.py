"""The web app's own SQL: sessions, organisation names, counts for the home page.

Nothing here reads health records (those go through ``RecordReader`` in ``service``):
only the sign-in sessions, the organisation registry, the resident's access-log entries
(through :mod:`consent.audit`) and inbox.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consent import audit, notifications
from consent.identity.models import ResidentSession
from consent.models import Notification, Organization

__all__ = [
    "accesses_since",
    "organization_names",
    "organizations",
    "previous_visit",
    "unread_notifications",
]


def organization_names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(Organization.id, Organization.name).where(Organization.id.in_(wanted))
    )
    return {i: n for i, n in rows}


def organizations(session: Session) -> list[Organization]:
    """Active organisations a consent can name, by kind then name."""
    return list(
        session.scalars(
            select(Organization)
            .where(Organization.active.is_(True))
            .order_by(Organization.kind, Organization.name)
        )
    )


def previous_visit(session: Session, resident_id: str) -> datetime | None:
    """When the resident was last here before this sign-in: the last activity of their
    previous web session (None on a first visit)."""
    rows = list(
        session.scalars(
            select(ResidentSession.last_seen_at)
            .where(ResidentSession.resident_id == resident_id)
            .order_by(ResidentSession.created_at.desc())
            .limit(2)
        )
    )
    return rows[1] if len(rows) == 2 else None


def accesses_since(session: Session, resident_id: str, since: datetime | None) -> int:
    """Looks at my record by others (not my own) since then (all, on a first visit)."""
    return audit.access_log_total(session, audit.LogFilter(resident_id=resident_id, since=since))


def unread_notifications(session: Session, resident_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(
                Notification.recipient == notifications.resident_ref(resident_id),
                Notification.read_at.is_(None),
            )
        )
        or 0
    )
