"""Shapes of the ACP API (もしもの時の話し合い)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from phr.jsontypes import UtcDateTime

Choice = Literal["want", "do_not_want", "trial", "undecided"]
Place = Literal["home", "hospital", "care_facility", "palliative_unit", "undecided", "other"]

TREATMENTS = (
    "resuscitation",
    "intubation",
    "intensive_care",
    "tube_feeding",
    "dialysis",
    "transfusion",
)


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Treatments(_Shape):
    """心肺蘇生・気管挿管/人工呼吸・集中治療・経管栄養・透析・輸血 — each wanted, not
    wanted, a time-limited trial, or not decided yet."""

    resuscitation: Choice = "undecided"
    intubation: Choice = "undecided"
    intensive_care: Choice = "undecided"
    tube_feeding: Choice = "undecided"
    dialysis: Choice = "undecided"
    transfusion: Choice = "undecided"


class Person(_Shape):
    name: str = Field(min_length=1, max_length=100)
    relationship: str = Field(default="", max_length=50)
    phone: str = Field(default="", max_length=30)


class FamilyDoctor(_Shape):
    name: str = Field(default="", max_length=100)
    clinic: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=30)


class AcpContent(_Shape):
    """What the resident records, in their own words and as structured choices."""

    own_words: str = Field(default="", max_length=4000)
    treatments: Treatments = Treatments()
    place_of_care: Place = "undecided"
    place_of_death: Place = "undecided"
    place_note: str = Field(default="", max_length=1000)
    what_matters: str = Field(default="", max_length=2000)
    religious_cultural: str = Field(default="", max_length=1000)
    contacts: list[Person] = Field(default_factory=list, max_length=10)  # in order
    trusted_persons: list[Person] = Field(default_factory=list, max_length=10)
    spokesperson: Person | None = None  # 代弁者 (healthcare agent)
    family_doctor: FamilyDoctor | None = None


class ConversationIn(_Shape):
    held_on: date
    participants: list[Person] = Field(min_length=1, max_length=20)
    note: str = Field(default="", max_length=4000)


class AcpSave(_Shape):
    content: AcpContent
    conversation: ConversationIn | None = None


class AcpRead(BaseModel):
    resident_id: str
    version: int
    current: bool
    current_version: int
    recorded_at: UtcDateTime
    consent: str  # Consent/<id>/_history/<version>
    content: AcpContent


# A version in a path: bounded, so that no number reaches the database it cannot hold.
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]


class VersionInfo(BaseModel):
    version: int
    current: bool
    recorded_at: UtcDateTime


class ConversationRead(BaseModel):
    id: str
    held_on: date
    recorded_at: UtcDateTime
    participants: list[Person]
    note: str
    version_before: int | None
    version_after: int | None
    changes: list[str]


class InvitationCreate(_Shape):
    label: str = Field(min_length=1, max_length=100)  # how the resident names them
    relationship: str = Field(default="", max_length=50)


class InvitationRead(BaseModel):
    id: str
    label: str
    relationship: str
    invited_at: UtcDateTime
    expires_at: UtcDateTime
    accepted: bool
    revoked: bool
    code: str | None = None  # shown once, when the invitation is made


class AcceptInvitation(_Shape):
    code: str = Field(min_length=8, max_length=100)
    login: str = Field(min_length=3, max_length=200)
    passphrase: str = Field(min_length=12, max_length=200)
    name: str = Field(min_length=1, max_length=100)


class SignIn(_Shape):
    login: str = Field(min_length=3, max_length=200)
    passphrase: str = Field(min_length=1, max_length=200)


class TrustedSessionRead(BaseModel):
    token: str
    token_type: str = "Bearer"
    expires_at: UtcDateTime
    person_id: str


class SharedResident(BaseModel):
    resident_id: str
    invitation_id: str
