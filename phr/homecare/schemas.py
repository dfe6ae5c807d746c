"""Request and response shapes of the home-care API (plain words, not FHIR)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Urgency = Literal["red", "orange", "yellow", "green", "white"]


class EnrolmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resident_id: str = Field(max_length=64)
    clinic_id: str = Field(max_length=64, description="the family doctor's clinic")
    doctor_id: str | None = Field(None, max_length=64, description="the family doctor (staff id)")
    pharmacy_id: str = Field(max_length=64)


class EnrolmentRead(BaseModel):
    id: str
    resident_id: str
    station_id: str
    clinic_id: str
    doctor_id: str | None
    pharmacy_id: str
    care_team: str
    active: bool
    enrolled_at: datetime


class StockCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    drug_code: str = Field(min_length=12, max_length=12, description="薬価基準収載医薬品コード")
    quantity: int = Field(gt=0, le=10000)
    unit: str = Field(min_length=1, max_length=16)
    lot: str = Field(min_length=1, max_length=64)
    expiry: date


class StockRead(BaseModel):
    id: str
    drug_code: str
    drug_name: str
    quantity: int
    reserved: int
    unit: str
    lot: str
    expiry: date
    expired: bool
    deposited_by_org: str
    deposited_by: str
    deposited_at: datetime


class RequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    complaint: str = Field(
        max_length=64, description="a triage protocol id (GET /api/triage/complaints)"
    )
    answers: dict[str, bool | float | int | str] = Field(default_factory=dict)
    what: str = Field(min_length=1, max_length=2000, description="what is wrong, in words")
    since: str = Field(min_length=1, max_length=200, description="since when")


class PhoneRequestCreate(RequestCreate):
    resident_id: str = Field(max_length=64)


class RequestRead(BaseModel):
    id: str
    resident_id: str
    station_id: str
    channel: str
    complaint: str
    urgency: Urgency
    status: str
    what: str
    since: str
    created_at: datetime
    waiting_minutes: int
    nurse_id: str | None
    assigned_at: datetime | None
    dispatched_at: datetime | None
    arrived_at: datetime | None
    closed_at: datetime | None
    outcome: str | None
    call_119: bool
    visit_id: str | None = None


class Assign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nurse_id: str = Field(max_length=64)


class Vitals(BaseModel):
    """A full set for NEWS2 (RCP 2017): every parameter is needed for the score."""

    model_config = ConfigDict(extra="forbid")

    respiratory_rate: int = Field(ge=0, le=80)
    spo2: int = Field(ge=50, le=100)
    spo2_scale: Literal[1, 2] = 1
    on_oxygen: bool = False
    systolic: int = Field(ge=30, le=300)
    diastolic: int | None = Field(None, ge=10, le=200)
    pulse: int = Field(ge=10, le=250)
    consciousness: Literal["A", "C", "V", "P", "U"] = "A"
    temperature: float = Field(ge=30, le=44)
    note: str | None = Field(None, max_length=2000, description="observations in words")


class VitalsRead(BaseModel):
    news2: int
    risk: str
    response: str
    points: dict[str, int]
    references: list[str]


class Consultation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    findings: str = Field(min_length=1, max_length=4000)
    instructions: str = Field(min_length=1, max_length=4000)
    decision: Literal["home", "transport"]


class PrescriptionLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stock_id: str = Field(max_length=64)
    quantity: int = Field(gt=0, le=100)
    dosage: str = Field(min_length=1, max_length=255, description="用法・用量 in words")


class Prescription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[PrescriptionLine] = Field(min_length=1, max_length=10)


class Guidance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000, description="服薬指導 in words")


class Administer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(max_length=64)


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["treated_at_home", "transported", "follow_up"]
    note: str | None = Field(None, max_length=2000)


class OrderRead(BaseModel):
    id: str
    stock_id: str
    drug_code: str
    drug_name: str
    lot: str
    quantity: int
    unit: str
    dosage: str
    status: str
    request_ref: str
    guidance_ref: str | None
    administration_ref: str | None


class StepRead(BaseModel):
    kind: str
    at: datetime
    organization_id: str | None
    actor: str
    role: str | None
    references: list[str]
    detail: str


class VisitRead(BaseModel):
    id: str
    request_id: str
    resident_id: str
    nurse_id: str
    step: str
    started_at: datetime
    encounter: str
    news2: int | None
    news2_risk: str | None
    consultation: str | None
    decision: str | None
    incident_id: str | None
    outcome: str | None
    closed_at: datetime | None
    orders: list[OrderRead]
    steps: list[StepRead]


class FiguresRow(BaseModel):
    month: str
    station_id: str
    requests: int
    referred_119: int
    visits: int
    median_minutes_to_visit: float | None
    p90_minutes_to_visit: float | None
    treated_at_home: int
    transported: int
    follow_up: int
    share_treated_at_home: float | None
    share_transported: float | None
