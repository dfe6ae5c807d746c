"""Operational tables of the polypharmacy service.

- ``drug_product``: the national drug master (薬価基準収載品目リスト), reference data about
  products, not about any resident.
- ``polypharmacy_finding``: the pharmacist's workflow state of a finding (open,
  acknowledged, resolved; who and when). It holds no clinical text: the finding is
  identified by a fingerprint (a hash of the rule and the ingredients), and its wording is
  recomputed from the record through the consent-checked reader whenever it is shown.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base

__all__ = ["FINDING_STATES", "DrugProduct", "FindingState"]

FINDING_STATES = ("open", "acknowledged", "resolved")


class DrugProduct(Base):
    __tablename__ = "drug_product"
    __table_args__ = (
        Index("ix_drug_product_ingredient", "ingredient"),
        Index("ix_drug_product_category", "category"),
    )

    code: Mapped[str] = mapped_column(String(12), primary_key=True)  # 薬価基準収載医薬品コード
    name: Mapped[str] = mapped_column(String(255))  # 品名
    ingredient: Mapped[str] = mapped_column(String(255))  # 成分名 (NFKC)
    strength: Mapped[str] = mapped_column(String(255))  # 規格 (NFKC)
    form: Mapped[str] = mapped_column(String(32))  # dosage unit of the 規格: 錠, カプセル, g, ...
    route: Mapped[str] = mapped_column(String(16))  # 区分: 内用薬 注射薬 外用薬 歯科用薬剤
    category: Mapped[str] = mapped_column(String(4))  # 薬効分類 (first 4 digits)
    brand: Mapped[str] = mapped_column(String(16))  # brand | quasi-brand | generic | other
    narcotic: Mapped[bool] = mapped_column(Boolean, default=False)
    price: Mapped[float | None] = mapped_column(Float, nullable=True)
    delisting: Mapped[str | None] = mapped_column(String(32), nullable=True)  # 経過措置期限
    source: Mapped[str] = mapped_column(String(255))
    imported_at: Mapped[datetime] = mapped_column(DateTime)


class FindingState(Base):
    __tablename__ = "polypharmacy_finding"
    __table_args__ = (
        UniqueConstraint("owner", "resident_id", "fingerprint", name="uq_polypharmacy_finding_key"),
        Index("ix_polypharmacy_finding_owner_state", "owner", "state"),
        Index("ix_polypharmacy_finding_resident", "resident_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Whose worklist: the organisation that ran the review, or "municipal" for screening.
    owner: Mapped[str] = mapped_column(String(64))
    resident_id: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(String(16))  # v3 ActCode
    severity: Mapped[str] = mapped_column(String(16))  # high | moderate | low
    state: Mapped[str] = mapped_column(String(16), default="open")
    first_seen: Mapped[datetime] = mapped_column(DateTime)
    last_seen: Mapped[datetime] = mapped_column(DateTime)
    acted_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    acted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
