"""Operational tables of the paramedic flow: incidents, identification candidates, and
the crew's notes (the status report is sealed). Vital signs and findings are FHIR
Observations in the record store, contributed by the EMS organisation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base
from phr.store.models import PK


class Incident(Base):
    """One emergency call attended by an EMS crew (see ``phr.emergency.flows``)."""

    __tablename__ = "incident"
    __table_args__ = (
        Index("ix_incident_ems", "ems_organization_id", "opened_at"),
        Index("ix_incident_hospital", "hospital_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ems_organization_id: Mapped[str] = mapped_column(String(64))
    opened_by: Mapped[str] = mapped_column(String(80))
    opened_at: Mapped[datetime] = mapped_column(DateTime)
    district: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # open -> identified -> reported -> closed (flows.TRANSITIONS)
    status: Mapped[str] = mapped_column(String(16))
    resident_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    confirmed_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    confirmed_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    episode_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hospital_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Card and demographic lookups made for this incident (rate limit, service.py).
    identify_attempts: Mapped[int] = mapped_column(Integer, default=0)


class IncidentCandidate(Base):
    """A resident some identification method proposed; unlocks nothing until confirmed."""

    __tablename__ = "incident_candidate"

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incident.id", ondelete="CASCADE"), index=True
    )
    resident_id: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))  # face | card | demographic
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(
        String(16), default="candidate"
    )  # candidate|confirmed|rejected


class IncidentNote(Base):
    """What the crew recorded: vitals / finding (pointing at the FHIR Observation) or the
    status report (状態報告) to the hospital, sealed."""

    __tablename__ = "incident_note"

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incident.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # vitals | finding | status_report
    created_at: Mapped[datetime] = mapped_column(DateTime)
    author: Mapped[str] = mapped_column(String(80))
    resource_refs: Mapped[str] = mapped_column(Text, default="")  # space separated Type/id
    sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
