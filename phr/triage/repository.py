"""All SQL of the triage domain (the hospital registry; no resident data here)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from phr.store.indexer import utcnow
from phr.triage.models import ReceivingHospital

__all__ = ["get_hospital", "hospitals", "set_availability", "upsert_hospital"]


def hospitals(session: Session) -> Sequence[ReceivingHospital]:
    return session.scalars(
        select(ReceivingHospital).order_by(ReceivingHospital.organization_id)
    ).all()


def get_hospital(session: Session, organization_id: str) -> ReceivingHospital | None:
    return session.get(ReceivingHospital, organization_id)


def upsert_hospital(
    session: Session,
    *,
    organization_id: str,
    name: str,
    latitude: float,
    longitude: float,
    capabilities: list[str],
    accepts_24h: bool,
    free_beds: int,
) -> ReceivingHospital:
    """Register or update the static part; a new entry starts accepting with these beds."""
    h = session.get(ReceivingHospital, organization_id)
    if h is None:
        h = ReceivingHospital(
            organization_id=organization_id,
            accepting=True,
            free_beds=free_beds,
            unavailable=[],
            updated_at=utcnow(),
        )
        session.add(h)
    h.name, h.latitude, h.longitude = name, latitude, longitude
    h.capabilities = sorted(capabilities)
    h.accepts_24h = accepts_24h
    session.flush()
    return h


def set_availability(
    session: Session,
    h: ReceivingHospital,
    *,
    accepting: bool,
    free_beds: int,
    unavailable: list[str],
) -> None:
    h.accepting, h.free_beds, h.unavailable = accepting, free_beds, sorted(unavailable)
    h.updated_at = utcnow()
    session.flush()
