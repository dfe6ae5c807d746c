"""Tables of the trust service: organisations, their OAuth2 clients, the access log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base
from phr.store.models import PK

ORGANIZATION_KINDS = (
    "hospital",
    "clinic",
    "pharmacy",
    "ems",
    "nurse_station",
    "municipality",
    "insurer",
    "service_provider",
    "platform",
)


class Organization(Base):
    __tablename__ = "organization"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    # e.g. 医療機関コード, 保険者番号, 全国地方公共団体コード
    identifier_system: Mapped[str | None] = mapped_column(String(255), nullable=True)
    identifier_value: Mapped[str | None] = mapped_column(String(64), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    @property
    def source_uri(self) -> str:
        return f"urn:phr:organization:{self.id}"


class OAuthClient(Base):
    __tablename__ = "oauth_client"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # scrypt hash "scrypt$<salt hex>$<hash hex>"; the secret itself is never stored.
    client_secret_hash: Mapped[str] = mapped_column(String(255))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[str] = mapped_column(Text)  # space separated
    grant_types: Mapped[str] = mapped_column(String(255), default="client_credentials")
    token_endpoint_auth_method: Mapped[str] = mapped_column(
        String(64), default="client_secret_basic"
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class AuditEntry(Base):
    """One access to a resident's data (or an attempt), permitted or not."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_resident_at", "resident_id", "at"),
        Index("ix_audit_entry_at", "at"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor_kind: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    organization_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    purpose: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))  # read vread search history operation ...
    resource_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resource_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resident_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))  # permit | deny | not-found | error
    count: Mapped[int] = mapped_column(Integer, default=0)
    # What was asked and what was returned (query string, resource references); never
    # clinical text.
    detail: Mapped[str] = mapped_column(Text, default="")
    consent_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
