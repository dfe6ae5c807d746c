"""Tables of opt-in biometric enrollment (face templates and a reference photo).

Templates and photos are sealed with envelope encryption (:mod:`phr.biometrics.keys`),
bound to their row, so neither the vector nor the image is ever stored in clear.

Every change (enrollment, re-enrollment, deletion) takes the next value of the single
``biometric_state.generation`` counter with ``UPDATE ... RETURNING``; the row stays
locked until the transaction commits, so generations are committed in order. Each
process's in-memory index remembers the generation it has applied and, on every search,
applies what came after it: new templates (``biometric_template.generation``) and
deletions (``biometric_tombstone``, template ids only — nothing about whose they were).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base

__all__ = [
    "BiometricEnrollment",
    "BiometricPhoto",
    "BiometricState",
    "BiometricTemplate",
    "BiometricTombstone",
]


class BiometricEnrollment(Base):
    """A resident's opt-in to identification at the scene, and what it was given for.

    The narrowing attributes (sex, birth date, home postal code) are copied from the
    resident's golden Patient at enrollment; they are what a paramedic may narrow by.
    A withdrawn enrollment keeps only the record of the consent and its withdrawal.
    """

    __tablename__ = "biometric_enrollment"

    resident_id: Mapped[str] = mapped_column(ForeignKey("resident.id"), primary_key=True)
    # active | withdrawn
    status: Mapped[str] = mapped_column(String(16))
    consent_version: Mapped[str] = mapped_column(String(32))
    photo_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consented_at: Mapped[datetime] = mapped_column(DateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    sex: Mapped[str | None] = mapped_column(String(16), nullable=True)
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    district: Mapped[str | None] = mapped_column(String(16), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class BiometricTemplate(Base):
    """One face template: a unit-length float32 vector, sealed."""

    __tablename__ = "biometric_template"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    resident_id: Mapped[str] = mapped_column(
        ForeignKey("biometric_enrollment.resident_id"), index=True
    )
    generation: Mapped[int] = mapped_column(BigInteger, index=True)
    dim: Mapped[int] = mapped_column(Integer)
    sealed: Mapped[str] = mapped_column(Text)
    # vector (sent as numbers) | image (extracted here from a photo)
    source: Mapped[str] = mapped_column(String(16))
    extractor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class BiometricPhoto(Base):
    """The one reference photo a resident agreed to show for visual confirmation."""

    __tablename__ = "biometric_photo"

    resident_id: Mapped[str] = mapped_column(
        ForeignKey("biometric_enrollment.resident_id"), primary_key=True
    )
    content_type: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class BiometricState(Base):
    """The single row (id 1) whose generation orders every change of the gallery."""

    __tablename__ = "biometric_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)
    # Tombstones (an id and a number each) are kept. A pruning job, if one is ever needed,
    # records here up to which generation it removed them: an older index reloads whole.
    pruned_through: Mapped[int] = mapped_column(BigInteger, default=0)


class BiometricTombstone(Base):
    """A deleted template's id and the generation that deleted it."""

    __tablename__ = "biometric_tombstone"

    template_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, index=True)
