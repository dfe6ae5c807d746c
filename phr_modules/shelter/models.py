"""The shelter's operational table: one intake (受付) per person who arrives.

An intake starts unidentified; an identification method proposes a candidate (kept here,
never shown); only a confirmation checks the person in (``resident_id`` set, the
episode of the disaster consent opened). Health data is never copied here: it is read
through the module's reader each time, under the resident's consent.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base


class ShelterIntake(Base):
    __tablename__ = "shelter_intake"
    __table_args__ = (Index("ix_shelter_intake_shelter", "shelter_id", "status"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    shelter_id: Mapped[str] = mapped_column(String(64))  # the shelter organisation
    number: Mapped[int] = mapped_column(Integer)  # 受付番号, per shelter
    opened_by: Mapped[str] = mapped_column(String(80))
    opened_at: Mapped[datetime] = mapped_column(DateTime)
    # open -> checked_in -> left
    status: Mapped[str] = mapped_column(String(16))
    # Proposed by an identification method, not confirmed: unlocks nothing, never shown.
    candidate_resident_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    candidate_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    identify_attempts: Mapped[int] = mapped_column(Integer, default=0)
    resident_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    confirmed_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    left_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    episode_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
