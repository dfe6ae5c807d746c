"""Shapes of the paramedic flow API."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from phr.biometrics.schemas import SearchCreate
from phr.jsontypes import UtcDateTime

Method = Literal["face", "card", "demographic"]
ConfirmMethod = Literal["card", "birth_date", "visual"]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentCreate(_Shape):
    district: str | None = Field(default=None, max_length=64)


class CandidateRead(BaseModel):
    id: int
    method: str
    score: float | None
    status: str
    # No name, no birth date: a candidate is a key until confirmed.
    resident_ref: str


class IncidentRead(BaseModel):
    id: str
    status: str
    ems_organization_id: str
    opened_at: UtcDateTime
    district: str | None
    confirmed: bool
    confirmed_method: str | None
    hospital_id: str | None
    closed_at: UtcDateTime | None
    candidates: list[CandidateRead] = []


class DemographicQuery(_Shape):
    """All given fields must match exactly; birth date and sex are required, and a name
    or its kana reading."""

    family: str | None = Field(default=None, max_length=64)
    given: str | None = Field(default=None, max_length=64)
    family_kana: str | None = Field(default=None, max_length=64)
    given_kana: str | None = Field(default=None, max_length=64)
    birth_date: date
    sex: Literal["male", "female", "other", "unknown"]


class CardQuery(_Shape):
    certificate: str = Field(min_length=1, max_length=16 * 1024)  # PEM or base64 DER


class FaceProbe(SearchCreate):
    """A face probe for an incident: a template (vector) or a tablet photo, and what the
    crew sees (sex, apparent age range, the incident's postal code)."""


class IdentifyResult(BaseModel):
    identified: bool
    message: str
    candidates: list[CandidateRead]


class Confirm(_Shape):
    candidate_id: int
    method: ConfirmMethod
    birth_date: date | None = None  # from a bystander
    certificate: str | None = Field(default=None, max_length=16 * 1024)
    photo_checked: bool = False  # the reference photo was compared side by side


class Vitals(_Shape):
    systolic: int | None = Field(default=None, ge=20, le=300)
    diastolic: int | None = Field(default=None, ge=10, le=200)
    pulse: int | None = Field(default=None, ge=0, le=300)
    respiratory_rate: int | None = Field(default=None, ge=0, le=80)
    spo2: int | None = Field(default=None, ge=30, le=100)
    temperature: float | None = Field(default=None, ge=25, le=45)
    jcs: Literal[0, 1, 2, 3, 10, 20, 30, 100, 200, 300] | None = None
    measured_at: UtcDateTime | None = None


class Finding(_Shape):
    text: str = Field(min_length=1, max_length=2000)


class StatusReport(_Shape):
    """状態報告 to the chosen hospital."""

    hospital_id: str = Field(min_length=1, max_length=64)
    chief_complaint: str = Field(min_length=1, max_length=500)
    summary: str = Field(default="", max_length=4000)
    eta_minutes: int | None = Field(default=None, ge=0, le=600)


class RecordedRead(BaseModel):
    incident_id: str
    kind: str
    references: list[str]


class Item(BaseModel):
    text: str
    detail: str = ""
    date: str | None = None
    source: str | None = None
    reference: str | None = None


class Person(BaseModel):
    name: str
    relationship: str = ""
    phone: str = ""
    source: str
    date: str | None = None


class AcpBlock(BaseModel):
    version: int
    recorded_at: UtcDateTime
    do: list[str]
    do_not: list[str]
    undecided: list[str]
    place_of_care: str
    place_of_death: str
    own_words: str
    what_matters: str
    religious_cultural: str
    spokesperson: str | None


class PatientBlock(BaseModel):
    name: str
    kana: str
    birth_date: str | None
    age: int | None
    sex: str | None


class EmergencySummary(BaseModel):
    """The scannable screen's data: each item with its source and date."""

    incident_id: str
    consent: Literal["granted", "none"]
    message: str
    generated_at: UtcDateTime
    patient: PatientBlock | None = None
    allergies: list[Item] = []
    medications: list[Item] = []
    problems: list[Item] = []
    results: list[Item] = []
    vitals: list[Item] = []
    acp: AcpBlock | None = None
    contacts: list[Person] = []
    family_doctor: list[Person] = []
    care_and_disability: list[Item] = []


class Handover(BaseModel):
    incident: IncidentRead
    status_reports: list[dict[str, object]]
    summary: EmergencySummary
