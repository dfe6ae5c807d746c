"""Request and response shapes of the triage API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from phr.jsontypes import UtcDateTime

Urgency = Literal["white", "green", "yellow", "orange", "red"]
Capability = Literal[
    "ct",
    "mri",
    "cath_lab",
    "dialysis",
    "obstetrics",
    "paediatrics",
    "psychiatry",
    "burns",
    "stroke",
    "trauma",
]
CAPABILITIES: tuple[str, ...] = Capability.__args__  # type: ignore[attr-defined]


class Text(BaseModel):
    ja: str
    en: str


class ComplaintSummary(BaseModel):
    id: str
    version: str
    title: Text
    population: str


class QuestionRead(BaseModel):
    id: str
    type: str
    text: Text
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    options: list[dict[str, Any]] = Field(default_factory=list)


class ComplaintRead(ComplaintSummary):
    questions: list[QuestionRead]
    sources: dict[str, str]
    risk_factors: list[str]


class EvaluateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    complaint: str
    answers: dict[str, bool | float | int | str] = Field(default_factory=dict)
    age: float | None = Field(None, ge=0, le=130, description="years; from the PHR if consented")
    sex: Literal["male", "female", "other", "unknown"] | None = None
    risk_factors: list[str] = Field(
        default_factory=list, description="risk factors the user reports themselves"
    )
    subject: Literal["self", "other"] = Field(
        "self", description="'other': asking for someone else (a child, a neighbour)"
    )
    at: UtcDateTime | None = Field(None, description="when (decides night/holiday advice)")
    record: bool = Field(
        True, description="signed in: keep the result in my record (false: do not)"
    )


class FindingRead(BaseModel):
    level: Urgency
    kind: str
    reason: Text
    source: str
    factor: str | None = None
    raised: bool = False


class NextStep(BaseModel):
    id: str
    label: Text
    contact: str | None = None


class PhrUse(BaseModel):
    status: Literal["anonymous", "used", "not_permitted", "not_self"]
    reason: Text
    factors: dict[str, list[str]] = Field(default_factory=dict)


class EvaluateOut(BaseModel):
    complaint: str
    urgency: Urgency
    urgency_label: Text
    base_urgency: Urgency
    findings: list[FindingRead]
    next_steps: list[NextStep]
    self_care: Text | None = None
    unanswered: list[str]
    needs: list[str] = Field(
        default_factory=list, description="what a receiving hospital should have (ct, ...)"
    )
    phr: PhrUse
    recorded: dict[str, str] | None = None
    disclaimer: Text


class PastResult(BaseModel):
    risk_assessment: str
    questionnaire_response: str | None
    complaint: str
    urgency: Urgency
    at: str
    rationale: str


class ConsentSwitch(BaseModel):
    enabled: bool


class News2In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    respiratory_rate: int = Field(ge=0, le=120)
    spo2: int = Field(ge=0, le=100)
    spo2_scale: Literal[1, 2]
    on_oxygen: bool
    systolic_bp: int = Field(ge=0, le=350)
    pulse: int = Field(ge=0, le=300)
    consciousness: Literal["A", "C", "V", "P", "U"]
    temperature: float = Field(ge=25, le=45)


class News2Out(BaseModel):
    score: int
    points: dict[str, int]
    risk: Literal["low", "low-medium", "medium", "high"]


class QsofaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    respiratory_rate: int = Field(ge=0, le=120)
    systolic_bp: int = Field(ge=0, le=350)
    gcs: int | None = Field(None, ge=3, le=15)
    altered_mentation: bool | None = None


class ShockIndexIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pulse: int = Field(ge=0, le=300)
    systolic_bp: int = Field(gt=0, le=350)


class JtasIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    complaint: str | None = Field(None, description="a protocol id; its urgency sets the level")
    answers: dict[str, bool | float | int | str] = Field(default_factory=dict)
    complaint_level: int | None = Field(None, ge=1, le=5)
    respiratory_rate: int | None = Field(None, ge=0, le=120)
    spo2: int | None = Field(None, ge=0, le=100)
    systolic_bp: int | None = Field(None, gt=0, le=350)
    pulse: int | None = Field(None, ge=0, le=300)
    gcs: int | None = Field(None, ge=3, le=15)
    temperature: float | None = Field(None, ge=25, le=45)
    immunocompromised: bool = False


# ---- hospitals and transport ----------------------------------------------------------------


class HospitalRead(BaseModel):
    id: str
    name: str
    latitude: float
    longitude: float
    capabilities: list[str]
    unavailable: list[str]
    accepts_24h: bool
    accepting: bool
    free_beds: int
    updated_at: UtcDateTime


class AvailabilityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accepting: bool
    free_beds: int = Field(ge=0, le=500)
    unavailable: list[Capability] = Field(
        default_factory=list, description="capabilities not available right now"
    )


class PatientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    urgency: Urgency
    needs: list[Capability] = Field(default_factory=list)


class RankIn(PatientIn):
    limit: int = Field(5, ge=1, le=50)


class RankedHospital(BaseModel):
    hospital: str
    name: str
    minutes: float
    km: float
    reason: str


class McIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patients: list[PatientIn] = Field(min_length=1, max_length=500)


class Assignment(BaseModel):
    patient: str
    hospital: str | None
    minutes: float | None
    reason: str


class McOut(BaseModel):
    assignments: list[Assignment]
    weighted_minutes: float
    unassigned: int
    seconds: float
