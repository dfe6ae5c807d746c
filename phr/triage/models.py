"""Operational table of the triage domain: the receiving-hospital registry.

Not clinical data (no resident key): where each hospital is, what it can do, and what it
can take right now, as the hospital last reported.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base, JSONType


class ReceivingHospital(Base):
    __tablename__ = "triage_hospital"

    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    # ct mri cath_lab dialysis obstetrics paediatrics psychiatry burns stroke trauma
    capabilities: Mapped[list[str]] = mapped_column(JSONType)
    accepts_24h: Mapped[bool] = mapped_column(Boolean, default=False)
    # Current availability, updated by the hospital's own client.
    accepting: Mapped[bool] = mapped_column(Boolean, default=True)
    free_beds: Mapped[int] = mapped_column(Integer, default=0)
    unavailable: Mapped[list[str]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
