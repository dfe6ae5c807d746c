"""Request and response shapes of the biometric identification API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from phr.jsontypes import UtcDateTime

__all__ = [
    "CandidateRead",
    "EnrollmentCreate",
    "EnrollmentRead",
    "SearchCreate",
    "SearchRead",
    "TemplateRead",
]

Sex = Literal["male", "female", "other"]


class EnrollmentCreate(BaseModel):
    """Opt in (or add templates): vectors and/or base64 images, optionally one photo."""

    model_config = ConfigDict(extra="forbid")

    consent: bool = Field(
        description="true: I agree that paramedics may identify me by my face "
        "(docs/biometrics.md, consent text version in the response)"
    )
    vectors: list[list[float]] = Field(default_factory=list, max_length=5)
    images: list[str] = Field(default_factory=list, max_length=5, description="base64")
    photo: str | None = Field(default=None, description="base64 JPEG or PNG")
    photo_consent: bool = Field(
        default=False, description="true: paramedics may see this photo to confirm who I am"
    )


class TemplateRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    source: str
    extractor: str | None
    created_at: UtcDateTime


class EnrollmentRead(BaseModel):
    resident_id: str
    status: str
    consent_version: str
    consented_at: UtcDateTime
    withdrawn_at: UtcDateTime | None
    photo_consent: bool
    has_photo: bool
    templates: list[TemplateRead]


class SearchCreate(BaseModel):
    """A probe (vector or base64 image) and what the paramedic sees or knows."""

    model_config = ConfigDict(extra="forbid")

    embedding: list[float] | None = None
    image: str | None = Field(default=None, description="base64 JPEG or PNG")
    sex: Sex | None = None
    age_min: int | None = Field(default=None, ge=0, le=130)
    age_max: int | None = Field(default=None, ge=0, le=130)
    district: str | None = Field(
        default=None, max_length=16, description="postal code of the incident's area"
    )
    limit: int = Field(default=3, ge=1, le=3)


class CandidateRead(BaseModel):
    rank: int
    resident_id: str
    score: float


class SearchRead(BaseModel):
    """Candidate ids and scores only: the record opens after the paramedic confirms one."""

    identified: bool
    candidates: list[CandidateRead]
    threshold: float
