"""Shapes of the shelter module's API and pages."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from phr.emergency.schemas import CardQuery, DemographicQuery, Item, PatientBlock

__all__ = [
    "CardQuery",
    "Confirm",
    "DemographicQuery",
    "EvacueeView",
    "IdentifyResult",
    "IntakeRead",
    "Item",
    "ListEntry",
    "MedicineToContinue",
    "Need",
    "PatientBlock",
]


class Confirm(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    method: Literal["birth_date", "card"]
    birth_date: date | None = None  # told by the evacuee or a companion
    certificate: str | None = Field(default=None, max_length=16 * 1024)


class IntakeRead(BaseModel):
    id: str
    number: int
    status: str  # open | checked_in | left
    opened_at: datetime
    candidate_waiting: bool  # a candidate was proposed and awaits confirmation
    candidate_method: str | None
    confirmed_method: str | None
    checked_in_at: datetime | None
    left_at: datetime | None


class IdentifyResult(BaseModel):
    identified: bool
    message: str
    intake: IntakeRead


class Need(BaseModel):
    code: str  # insulin anticoagulant dialysis oxygen disability allergy acp
    label_ja: str
    label_en: str


class MedicineToContinue(BaseModel):
    """One current medicine from the reconciled list (prescriptions, dispensings,
    self-reported), what the shelter's doctor or pharmacist needs to continue it."""

    name: str
    dose: str = ""
    prescribers: list[str]
    pharmacies: list[str]
    last_prescribed: date | None
    last_dispensed: date | None
    days_supply: int | None  # of the last dispensing
    supply_until: date | None  # last dispensing + days' supply
    days_remaining: int | None  # from today; 0 = ran out
    needs: list[str]
    source: str | None  # the organisation of the latest record
    date: date | None  # of the latest record
    reference: str  # the latest record (Type/id)


class EvacueeView(BaseModel):
    intake: IntakeRead
    consent: Literal["granted", "none"]
    message: str = ""
    patient: PatientBlock | None = None
    needs: list[Need] = []
    allergies: list[Item] = []
    problems: list[Item] = []
    medicines: list[MedicineToContinue] = []
    acp_on_file: bool = False
    acp_date: str | None = None
    generated_at: datetime


class ListEntry(BaseModel):
    """One line of the shelter list: who, and which needs — no details."""

    intake_id: str
    number: int
    checked_in_at: datetime | None
    consent: Literal["granted", "none"]
    name: str | None = None
    age: int | None = None
    sex: str | None = None
    needs: list[Need] = []
