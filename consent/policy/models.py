"""Tables of the consent engine.

``consent_rule`` holds the provisions of residents' active Consent resources, flattened
so that the engine can decide in SQL. The Consent resources themselves (FHIR R4, owned by
the resident) stay in the record store; rules are rebuilt whenever one changes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base
from phr.store.models import PK

ANY = "*"


class ConsentRule(Base):
    __tablename__ = "consent_rule"
    __table_args__ = (
        Index("ix_consent_rule_match", "resident_id", "decision", "actor_kind", "actor_value"),
        Index("ix_consent_rule_consent", "consent_id"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    resident_id: Mapped[str] = mapped_column(String(64))
    consent_id: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(8))  # permit | deny
    # organization (id) | org_kind (ems, hospital, ...) | role (doctor, ...) |
    # person (staff or trusted-person id) | any
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_value: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16))  # Purpose code or *
    resource_type: Mapped[str] = mapped_column(String(64))  # or *
    # * = ordinary data; a sensitive category (phr.store.sensitivity) only when named
    category: Mapped[str] = mapped_column(String(32))
    period_start: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    period_end: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The emergency pre-consent: only in force during an open emergency episode.
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    depth: Mapped[int] = mapped_column(Integer, default=0)


class EmergencyEpisode(Base):
    """An emergency in progress: an EMS organisation attends the resident and may hand
    over to a receiving hospital. The emergency pre-consent applies only while open."""

    __tablename__ = "emergency_episode"
    __table_args__ = (Index("ix_emergency_episode_resident", "resident_id", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resident_id: Mapped[str] = mapped_column(String(64))
    ems_organization_id: Mapped[str] = mapped_column(String(64))
    receiving_organization_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    opened_by: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class BreakGlass(Base):
    """Life-protection exception (APPI art. 27(1)(ii)): off unless the deployment enables
    it; time-limited, with a reason, flagged for review, the resident notified — and
    never where the resident said no."""

    __tablename__ = "break_glass"
    __table_args__ = (Index("ix_break_glass_resident", "resident_id", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resident_id: Mapped[str] = mapped_column(String(64))
    organization_id: Mapped[str] = mapped_column(String(64))
    opened_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    review_status: Mapped[str] = mapped_column(String(16), default="pending")
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
