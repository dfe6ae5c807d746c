"""SQL of the shelter's intakes (operational rows only; no health data)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from phr_modules.shelter.models import ShelterIntake

__all__ = ["checked_in", "get", "next_number", "open_and_present"]


def get(session: Session, intake_id: str, shelter_id: str) -> ShelterIntake | None:
    return session.scalars(
        select(ShelterIntake).where(
            ShelterIntake.id == intake_id, ShelterIntake.shelter_id == shelter_id
        )
    ).first()


def next_number(session: Session, shelter_id: str) -> int:
    top = session.scalar(
        select(func.max(ShelterIntake.number)).where(ShelterIntake.shelter_id == shelter_id)
    )
    return int(top or 0) + 1


def checked_in(session: Session, shelter_id: str) -> list[ShelterIntake]:
    return list(
        session.scalars(
            select(ShelterIntake)
            .where(ShelterIntake.shelter_id == shelter_id, ShelterIntake.status == "checked_in")
            .order_by(ShelterIntake.number)
        )
    )


def open_and_present(session: Session, shelter_id: str, limit: int = 200) -> list[ShelterIntake]:
    """Intakes not yet identified (the reception's queue), newest first."""
    return list(
        session.scalars(
            select(ShelterIntake)
            .where(ShelterIntake.shelter_id == shelter_id, ShelterIntake.status == "open")
            .order_by(ShelterIntake.number.desc())
            .limit(limit)
        )
    )
