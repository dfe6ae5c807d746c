"""Tables of the gateway: the master patient index, its review queue, import jobs."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base
from phr.store.models import PK


class IdentityLink(Base):
    """One source identifier of a resident.

    kinds: ``mynumber`` (value is an HMAC of the number, never the number), ``insurance``
    (system names the insurer, value the insured-person number 記号・番号・枝番, with the
    period it was valid), ``mrn`` (a clinic's patient number; system names the clinic).
    """

    __tablename__ = "identity_link"
    __table_args__ = (
        UniqueConstraint("kind", "system", "value", "resident_id", name="uq_identity_link_key"),
        Index("ix_identity_link_lookup", "kind", "system", "value"),
        Index("ix_identity_link_resident", "resident_id"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    resident_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    system: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    organization_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    valid_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class MatchReview(Base):
    """A weak or conflicting match waiting for a person to decide; never merged alone."""

    __tablename__ = "match_review"
    __table_args__ = (Index("ix_match_review_status", "status", "created_at"),)

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    # resident_id: the record the incoming data was filed under; candidate_id: the
    # existing resident it may be the same person as.
    resident_id: Mapped[str] = mapped_column(String(64))
    candidate_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")
    organization_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open merged rejected
    created_at: Mapped[datetime] = mapped_column(DateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ImportJob(Base):
    """One file or bundle received, for provenance and idempotent re-import."""

    __tablename__ = "import_job"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # bundle, vaccination-csv, ...
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16))  # completed | rejected
    summary: Mapped[str] = mapped_column(Text, default="")
