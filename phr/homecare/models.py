"""Operational tables of the home-care visit: workflow state only.

The clinical facts (CareTeam, vital signs, the online consultation, prescriptions, the
pharmacist's guidance, administrations, the visit's outcome) are FHIR resources in the
record store; these rows say who may do what next and point at them.

- ``homecare_enrolment``: a home-care patient (在宅療養患者) and their care team.
- ``homecare_stock``: medicines deposited in advance (預かり薬), one row per lot.
- ``homecare_request``: a call for help and its state (``flows.REQUEST_TRANSITIONS``).
- ``homecare_visit``: the nurse's visit and its current step (``flows.VISIT_STEPS``).
- ``homecare_order``: one prescribed line from the stock (prescribed → guided →
  administered); the compare-and-set on its status is what makes a double
  administration impossible.
- ``homecare_step``: the trail of every step (who, which organisation, when, which FHIR
  resources), shown on the screens; the access log has the same steps.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base
from phr.store.models import PK

__all__ = ["Enrolment", "Order", "Request", "Step", "Stock", "Visit"]


class Enrolment(Base):
    __tablename__ = "homecare_enrolment"
    __table_args__ = (Index("ix_homecare_enrolment_station", "station_id", "active"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resident_id: Mapped[str] = mapped_column(String(64), index=True)
    station_id: Mapped[str] = mapped_column(String(64))  # 24-hour visiting-nurse station
    clinic_id: Mapped[str] = mapped_column(String(64))  # the family doctor's clinic
    doctor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # staff id
    pharmacy_id: Mapped[str] = mapped_column(String(64))
    care_team_ref: Mapped[str] = mapped_column(String(80))  # CareTeam/<id>
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    enrolled_at: Mapped[datetime] = mapped_column(DateTime)
    enrolled_by: Mapped[str] = mapped_column(String(80))


class Stock(Base):
    """A deposited lot (預かり薬). ``quantity`` goes down only on administration, by a
    compare-and-set that never lets it below zero."""

    __tablename__ = "homecare_stock"
    __table_args__ = (CheckConstraint("quantity >= 0", name="quantity_not_negative"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    enrolment_id: Mapped[str] = mapped_column(
        ForeignKey("homecare_enrolment.id", ondelete="CASCADE"), index=True
    )
    resident_id: Mapped[str] = mapped_column(String(64), index=True)
    drug_code: Mapped[str] = mapped_column(String(12))  # 薬価基準収載医薬品コード (drug_product)
    drug_name: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(16))
    lot: Mapped[str] = mapped_column(String(64))
    expiry: Mapped[date] = mapped_column(Date)
    deposited_by_org: Mapped[str] = mapped_column(String(64))
    deposited_by: Mapped[str] = mapped_column(String(80))
    deposited_at: Mapped[datetime] = mapped_column(DateTime)


class Request(Base):
    __tablename__ = "homecare_request"
    __table_args__ = (Index("ix_homecare_request_station", "station_id", "status"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    enrolment_id: Mapped[str] = mapped_column(ForeignKey("homecare_enrolment.id"), index=True)
    resident_id: Mapped[str] = mapped_column(String(64), index=True)
    station_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(8))  # web | phone
    complaint: Mapped[str] = mapped_column(String(64))  # triage protocol id
    urgency: Mapped[str] = mapped_column(String(8))  # red orange yellow green white
    # What is wrong and since when, in the caller's words: sealed (envelope encryption).
    sealed: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(80))
    nurse_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    arrived_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class Visit(Base):
    __tablename__ = "homecare_visit"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(
        ForeignKey("homecare_request.id"), unique=True, index=True
    )
    resident_id: Mapped[str] = mapped_column(String(64), index=True)
    station_id: Mapped[str] = mapped_column(String(64))
    nurse_id: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(16))  # flows.VISIT_STEPS
    started_at: Mapped[datetime] = mapped_column(DateTime)
    encounter_ref: Mapped[str] = mapped_column(String(80))  # the home visit (class HH)
    news2: Mapped[int | None] = mapped_column(Integer, nullable=True)
    news2_risk: Mapped[str | None] = mapped_column(String(16), nullable=True)
    consultation_ref: Mapped[str | None] = mapped_column(String(80), nullable=True)  # class VR
    doctor_org: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decision: Mapped[str | None] = mapped_column(String(16), nullable=True)  # home | transport
    incident_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Order(Base):
    """One prescribed line of a consultation, from one deposited lot."""

    __tablename__ = "homecare_order"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    visit_id: Mapped[str] = mapped_column(ForeignKey("homecare_visit.id"), index=True)
    stock_id: Mapped[str] = mapped_column(ForeignKey("homecare_stock.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    dosage: Mapped[str] = mapped_column(String(255))
    # prescribed -> guided -> administered; or not_given when the visit closes without it
    status: Mapped[str] = mapped_column(String(16))
    request_ref: Mapped[str] = mapped_column(String(80))  # MedicationRequest/<id>
    guidance_ref: Mapped[str | None] = mapped_column(String(80), nullable=True)
    administration_ref: Mapped[str | None] = mapped_column(String(80), nullable=True)
    prescribed_at: Mapped[datetime] = mapped_column(DateTime)
    administered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    administered_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Step(Base):
    __tablename__ = "homecare_step"
    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("homecare_request.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(DateTime)
    organization_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    actor: Mapped[str] = mapped_column(String(80))
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    resource_refs: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(String(255), default="")
