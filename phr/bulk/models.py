"""The bulk export job: operational workflow state (the exported data are files)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base, JSONType

__all__ = ["BulkExportJob"]


class BulkExportJob(Base):
    __tablename__ = "bulk_export_job"
    __table_args__ = (Index("ix_bulk_export_job_status", "status"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # accepted -> in-progress -> completed | failed
    status: Mapped[str] = mapped_column(String(16), default="accepted")
    level: Mapped[str] = mapped_column(String(16))  # system | patient | group
    group_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    types: Mapped[list[str]] = mapped_column(JSONType, default=list)
    since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    request_url: Mapped[str] = mapped_column(Text)
    # Who asked and why: the job reads as that actor, for that purpose.
    actor: Mapped[dict[str, Any]] = mapped_column(JSONType)
    purpose: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(255))  # kind:client:user — who may poll
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The database time the export's snapshot was taken (manifest transactionTime).
    transaction_time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # [{"type": ..., "file": ..., "count": ...}]
    output: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    resources: Mapped[int] = mapped_column(Integer, default=0)
    residents: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
