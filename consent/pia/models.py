"""Tables of the privacy impact assessment register (つくばPIA).

One row per version of the assessment of one platform service or module. Versions of a
service form a line: at most one version is *in force* (approved or published, not past its
review date) and at most one is *open* (draft or submitted). Approving a new version
supersedes the one in force, so a service is never without its approved PIA while the next
version is being written.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base, JSONType

__all__ = ["IN_FORCE", "OPEN", "STATUSES", "PiaAssessment"]

# draft → submitted → approved → published; submitted → draft (returned for changes);
# any but the terminal ones → withdrawn; approved/published → superseded when the next
# version is approved.
STATUSES = ("draft", "submitted", "approved", "published", "withdrawn", "superseded")
IN_FORCE = ("approved", "published")
OPEN = ("draft", "submitted")


class PiaAssessment(Base):
    __tablename__ = "pia_assessment"
    __table_args__ = (
        UniqueConstraint("service_id", "version", name="uq_pia_assessment_service_version"),
        # The gate: WHERE service_id = ? AND status IN ('approved', 'published').
        Index("ix_pia_assessment_service_status", "service_id", "status"),
        Index("ix_pia_assessment_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(64))  # "acp", "triage", "fhir-api", ...
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    service_name: Mapped[str] = mapped_column(String(255))  # Japanese
    service_name_en: Mapped[str] = mapped_column(String(255), default="")
    # The service operator (サービス提供事業者), whose administrators draft and submit.
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Data handled (データの取扱い)
    purposes: Mapped[list[str]] = mapped_column(JSONType, default=list)  # plain-language
    purpose_codes: Mapped[list[str]] = mapped_column(JSONType, default=list)  # Purpose values
    data_categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    resource_types: Mapped[list[str]] = mapped_column(JSONType, default=list)  # FHIR types
    recipients: Mapped[list[str]] = mapped_column(JSONType, default=list)
    retention: Mapped[str] = mapped_column(Text, default="")
    # {question id: {"answer": "yes"|"no"|"na", "note": "..."}}
    answers: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # [{"description", "description_en", "impact_financial", "impact_mental",
    #   "impact_physical", "likelihood", "mitigation", "mitigation_en", "items"}]
    # rated after mitigation (residual risk); see consent.pia.rating.
    risks: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    overall_level: Mapped[int | None] = mapped_column(Integer, nullable=True)

    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    submitted_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    published_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    withdrawn_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    superseded_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Why it was withdrawn or returned for changes, shown to the operator.
    status_reason: Mapped[str] = mapped_column(Text, default="")
    # In force through this date (Japan time); re-assess before (再評価).
    review_due: Mapped[date | None] = mapped_column(Date, nullable=True)
