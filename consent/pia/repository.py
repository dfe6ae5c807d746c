"""SQL of the PIA register. Nothing here commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import ColumnElement, and_, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from consent.models import Organization
from consent.pia.models import IN_FORCE, OPEN, PiaAssessment

__all__ = [
    "approved_clause",
    "get",
    "get_for_update",
    "in_force",
    "in_force_exists",
    "latest_version",
    "list_all",
    "open_version",
    "organization_names",
    "published",
    "published_for_service",
    "today_jst",
]

JST = timezone(timedelta(hours=9), "JST")


def today_jst(now: datetime | None = None) -> date:
    """Today's date in Japan: review dates are calendar dates of the city's register."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:  # naive UTC, as phr.store.indexer.utcnow() returns
        now = now.replace(tzinfo=UTC)
    return now.astimezone(JST).date()


def _in_force_condition(today: date) -> ColumnElement[bool]:
    return and_(
        PiaAssessment.status.in_(IN_FORCE),
        or_(PiaAssessment.review_due.is_(None), PiaAssessment.review_due >= today),
    )


def in_force_exists(session: Session, service_id: str, today: date) -> bool:
    """One indexed probe on (service_id, status)."""
    stmt = (
        select(literal(1))
        .where(PiaAssessment.service_id == service_id, _in_force_condition(today))
        .limit(1)
    )
    return session.execute(stmt).first() is not None


def approved_clause(
    service: ColumnElement[str] | str, today: date | None = None
) -> ColumnElement[bool]:
    """SQL condition: the service (a column or a literal id) has a PIA in force.

    For embedding the gate in a larger statement (``WHERE ... AND approved_clause(col)``).
    """
    today = today or today_jst()
    service_expr = literal(service) if isinstance(service, str) else service
    return exists(
        select(literal(1)).where(
            PiaAssessment.service_id == service_expr, _in_force_condition(today)
        )
    )


def get(session: Session, pia_id: str) -> PiaAssessment | None:
    return session.get(PiaAssessment, pia_id)


def get_for_update(session: Session, pia_id: str) -> PiaAssessment | None:
    """Lock the row (PostgreSQL) so two approvers cannot both move it."""
    stmt = select(PiaAssessment).where(PiaAssessment.id == pia_id).with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def latest_version(session: Session, service_id: str) -> int:
    stmt = select(func.max(PiaAssessment.version)).where(PiaAssessment.service_id == service_id)
    return session.execute(stmt).scalar_one_or_none() or 0


def open_version(session: Session, service_id: str) -> PiaAssessment | None:
    stmt = select(PiaAssessment).where(
        PiaAssessment.service_id == service_id, PiaAssessment.status.in_(OPEN)
    )
    return session.execute(stmt).scalars().first()


def in_force(
    session: Session, service_id: str, *, exclude_id: str | None = None
) -> Sequence[PiaAssessment]:
    """Approved or published versions of a service, whatever their review date."""
    stmt = select(PiaAssessment).where(
        PiaAssessment.service_id == service_id, PiaAssessment.status.in_(IN_FORCE)
    )
    if exclude_id is not None:
        stmt = stmt.where(PiaAssessment.id != exclude_id)
    return session.execute(stmt).scalars().all()


def list_all(
    session: Session,
    *,
    service_id: str | None = None,
    status: str | None = None,
    organization_id: str | None = None,
) -> Sequence[PiaAssessment]:
    stmt = select(PiaAssessment)
    if service_id is not None:
        stmt = stmt.where(PiaAssessment.service_id == service_id)
    if status is not None:
        stmt = stmt.where(PiaAssessment.status == status)
    if organization_id is not None:
        stmt = stmt.where(PiaAssessment.organization_id == organization_id)
    stmt = stmt.order_by(PiaAssessment.service_id, PiaAssessment.version)
    return session.execute(stmt).scalars().all()


def published(session: Session) -> Sequence[PiaAssessment]:
    stmt = (
        select(PiaAssessment)
        .where(PiaAssessment.status == "published")
        .order_by(PiaAssessment.service_id, PiaAssessment.version.desc())
    )
    return session.execute(stmt).scalars().all()


def published_for_service(session: Session, service_id: str) -> PiaAssessment | None:
    stmt = (
        select(PiaAssessment)
        .where(PiaAssessment.service_id == service_id, PiaAssessment.status == "published")
        .order_by(PiaAssessment.version.desc())
        .limit(1)
    )
    return session.execute(stmt).scalars().first()


def organization_names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    stmt = select(Organization.id, Organization.name).where(Organization.id.in_(ids))
    return {row.id: row.name for row in session.execute(stmt)}
