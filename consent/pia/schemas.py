"""Request and response shapes of the PIA register."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from consent.actors import Purpose
from consent.pia import questionnaire
from phr.jsontypes import UtcDateTime

__all__ = [
    "SERVICE_ID_PATTERN",
    "ApproveRequest",
    "LevelRead",
    "PiaCreate",
    "PiaPublic",
    "PiaRead",
    "PiaUpdate",
    "ReasonRequest",
    "RiskEntry",
    "RiskRead",
    "ScaleRead",
]

SERVICE_ID_PATTERN = r"^[a-z][a-z0-9-]{1,63}$"

Scale = Annotated[int, Field(ge=1, le=4)]
ShortText = Annotated[str, Field(max_length=255)]
LongText = Annotated[str, Field(max_length=4000)]
TextList = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=500)]], Field(max_length=50)
]


class RiskEntry(BaseModel):
    """One privacy risk, rated after its mitigation (residual risk)."""

    model_config = ConfigDict(extra="forbid")

    description: Annotated[str, Field(min_length=1, max_length=2000)]
    description_en: Annotated[str, Field(max_length=2000)] = ""
    impact_financial: Scale  # 財産
    impact_mental: Scale  # 精神
    impact_physical: Scale  # 身体
    likelihood: Scale  # 起こりやすさ, as the assessor rates it
    mitigation: Annotated[str, Field(max_length=4000)] = ""
    mitigation_en: Annotated[str, Field(max_length=4000)] = ""
    # Questionnaire items the likelihood depends on ("I21"); their "no" answers set a floor.
    items: Annotated[list[str], Field(max_length=22)] = []

    @field_validator("items")
    @classmethod
    def _known_items(cls, value: list[str]) -> list[str]:
        known = set(questionnaire.item_ids())
        for item in value:
            if item not in known:
                raise ValueError(f"unknown questionnaire item {item!r}")
        return list(dict.fromkeys(value))


def _check_purpose_codes(value: list[str] | None) -> list[str] | None:
    if value is None:
        return value
    allowed = {p.value for p in Purpose}
    for code in value:
        if code not in allowed:
            raise ValueError(f"unknown purpose code {code!r}; expected one of {sorted(allowed)}")
    return list(dict.fromkeys(value))


def _check_resource_types(value: list[str] | None) -> list[str] | None:
    if value is None:
        return value
    for rtype in value:
        if not rtype[:1].isupper() or not rtype.isalnum() or len(rtype) > 64:
            raise ValueError(f"not a FHIR resource type: {rtype!r}")
    return list(dict.fromkeys(value))


def _check_answers(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return value
    return questionnaire.normalise_answers(value)


class _Content(BaseModel):
    """What the operator writes; every field optional so PUT can change a part."""

    model_config = ConfigDict(extra="forbid")

    service_name: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    service_name_en: ShortText | None = None
    description: LongText | None = None
    purposes: TextList | None = None
    purpose_codes: list[str] | None = None
    data_categories: TextList | None = None
    resource_types: Annotated[list[str], Field(max_length=150)] | None = None
    recipients: TextList | None = None
    retention: LongText | None = None
    answers: dict[str, Any] | None = None
    risks: Annotated[list[RiskEntry], Field(max_length=100)] | None = None

    @field_validator("purpose_codes")
    @classmethod
    def _purpose_codes(cls, value: list[str] | None) -> list[str] | None:
        return _check_purpose_codes(value)

    @field_validator("resource_types")
    @classmethod
    def _resource_types(cls, value: list[str] | None) -> list[str] | None:
        return _check_resource_types(value)

    @field_validator("answers")
    @classmethod
    def _answers(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check_answers(value)


class PiaCreate(_Content):
    """A new draft; for a service that already has versions, a new version.

    Fields left out are copied from the service's latest version when ``copy_previous``
    is true (the default), so a re-assessment starts from what was approved.
    """

    service_id: Annotated[str, Field(pattern=SERVICE_ID_PATTERN)]
    organization_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    copy_previous: bool = True


class PiaUpdate(_Content):
    """Changes to a draft: the fields given replace the stored ones."""


class ApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # In force through this date (Japan time); default one year after approval.
    review_due: date | None = None


class ReasonRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class LevelRead(BaseModel):
    value: int
    code: str
    ja: str
    en: str


class RiskRead(BaseModel):
    description: str
    description_en: str
    impact_financial: int
    impact_mental: int
    impact_physical: int
    impact: int  # the worst of the three
    likelihood_declared: int
    likelihood_floor: int  # from the answers to the items named
    likelihood: int  # the one rated: max(declared, floor)
    level: LevelRead
    mitigation: str
    mitigation_en: str
    items: list[str]


class PiaRead(BaseModel):
    id: str
    service_id: str
    version: int
    status: str
    service_name: str
    service_name_en: str
    organization_id: str
    organization_name: str | None
    description: str
    purposes: list[str]
    purpose_codes: list[str]
    data_categories: list[str]
    resource_types: list[str]
    recipients: list[str]
    retention: str
    answers: dict[str, Any]
    unanswered: list[str]
    risks: list[RiskRead]
    overall: LevelRead | None
    in_force: bool
    created_by: str
    created_at: UtcDateTime
    updated_at: UtcDateTime
    submitted_by: str | None
    submitted_at: UtcDateTime | None
    approved_by: str | None
    approved_at: UtcDateTime | None
    published_by: str | None
    published_at: UtcDateTime | None
    withdrawn_by: str | None
    withdrawn_at: UtcDateTime | None
    superseded_at: UtcDateTime | None
    status_reason: str
    review_due: date | None


class AreaSummary(BaseModel):
    area: str
    ja: str
    en: str
    yes: int
    no: int
    na: int


class ScaleRead(BaseModel):
    value: int
    ja: str
    en: str


class PublicRisk(BaseModel):
    description: str
    description_en: str
    impact_financial: int
    impact_mental: int
    impact_physical: int
    impact: ScaleRead
    likelihood: ScaleRead
    level: LevelRead
    mitigation: str
    mitigation_en: str


class PiaPublic(BaseModel):
    """What the city publishes (評価報告 概要版): no answers' notes, no staff names."""

    service_id: str
    service_name: str
    service_name_en: str
    operator: str
    version: int
    overall: LevelRead | None
    description: str
    purposes: list[str]
    data_categories: list[str]
    resource_types: list[str]
    recipients: list[str]
    retention: str
    risks: list[PublicRisk]
    questionnaire: list[AreaSummary]
    approved_at: UtcDateTime | None
    published_at: UtcDateTime | None
    review_due: date | None
