"""Request and response shapes of the consent API (plain words, not FHIR)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from consent.actors import Purpose
from phr.jsontypes import UtcDateTime
from phr.store.sensitivity import CATEGORIES

RecipientKind = Literal["organization", "org_kind", "role", "person", "any"]


class Recipient(BaseModel):
    kind: RecipientKind
    value: str = Field(default="*", max_length=64)


class ProvisionIn(BaseModel):
    """Who may (or may not) see what, why, and until when. Empty lists mean "any"."""

    recipients: list[Recipient] = Field(default_factory=lambda: [Recipient(kind="any")])
    purposes: list[Purpose] = Field(default_factory=list)
    data_classes: list[str] = Field(default_factory=list, description="FHIR resource types")
    sensitive_categories: list[str] = Field(
        default_factory=list, description=f"explicitly shared sensitive data: {CATEGORIES}"
    )
    period_start: UtcDateTime | None = None
    period_end: UtcDateTime | None = None


class ConsentCreate(ProvisionIn):
    decision: Literal["permit", "deny"] = "permit"
    exceptions: list[ProvisionIn] = Field(
        default_factory=list, description="nested exceptions, with the opposite decision"
    )


class ConsentRead(BaseModel):
    id: str
    version: int
    status: str
    decision: str
    emergency: bool
    disaster: bool = False  # the disaster-time consent (shelters, ADR 0006)
    summary_ja: str
    summary_en: str
    resource: dict  # type: ignore[type-arg]


class EmergencyConsentIn(BaseModel):
    enabled: bool
    sensitive_categories: list[str] = Field(default_factory=list)


class EpisodeCreate(BaseModel):
    patient: str
    receiving_organization_id: str | None = None


class EpisodeRead(BaseModel):
    id: str
    resident_id: str
    ems_organization_id: str
    receiving_organization_id: str | None
    opened_at: UtcDateTime
    expires_at: UtcDateTime
    closed_at: UtcDateTime | None


class HandoverIn(BaseModel):
    receiving_organization_id: str


class BreakGlassCreate(BaseModel):
    patient: str
    reason: str = Field(min_length=10, max_length=2000)


class BreakGlassRead(BaseModel):
    id: str
    resident_id: str
    organization_id: str
    reason: str
    opened_at: UtcDateTime
    expires_at: UtcDateTime
    review_status: str


class PreviewItem(BaseModel):
    resource_type: str
    count: int
    examples: list[str]


class PreviewRead(BaseModel):
    as_actor: str
    purpose: str
    decision_note: str
    items: list[PreviewItem]
