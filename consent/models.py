"""Tables of the trust service: organisations, their OAuth2 clients, the access log
(hash-chained and sealed), notifications and their outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base, JSONType
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
    "shelter",  # 避難所: an evacuation shelter (the shelter module, docs/shelter.md)
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
    """One access to a resident's data (or an attempt), permitted or not.

    Entries form a hash chain (see :mod:`consent.audit`): ``seq`` numbers them without
    gaps in the order they were chained, ``prev_hash`` is the ``entry_hash`` of the entry
    before, and ``entry_hash`` is SHA-256 over the entry's canonical form (every column but
    ``pk`` and ``entry_hash``). Rows are written only by :func:`consent.audit.record`, with
    the three chain columns empty; the chainer (:func:`consent.audit.chain_pending`) fills
    them in shortly after the commit (ADR 0004).
    """

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_resident_at", "resident_id", "at"),
        Index("ix_audit_entry_at", "at"),
        Index("ix_audit_entry_seq", "seq", unique=True),
        # The resident's own log, newest first, paged by pk (insertion order).
        Index("ix_audit_entry_resident_pk", "resident_id", "pk"),
        # What the chainer has still to do.
        Index(
            "ix_audit_entry_unchained",
            "pk",
            postgresql_where=text("seq IS NULL"),
            sqlite_where=text("seq IS NULL"),
        ),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    entry_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor_kind: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    organization_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The platform service or module that acted for the actor (acp, triage, ...).
    service: Mapped[str | None] = mapped_column(String(64), nullable=True)
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


class AuditChainHead(Base):
    """The last appended entry of the chain: one row (id 1).

    Appending locks this row (``UPDATE ... RETURNING``) until the transaction commits, so
    concurrent appends take turns and ``seq`` stays gap-free.
    """

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class AuditSeal(Base):
    """An Ed25519 signature over the chain's head hash at ``seq_to``.

    A seal fixes everything up to ``seq_to``: rewriting any earlier entry (even
    recomputing every later hash) no longer matches ``head_hash``.
    """

    __tablename__ = "audit_seal"
    __table_args__ = (Index("ix_audit_seal_seq_from", "seq_from", unique=True),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    seq_from: Mapped[int] = mapped_column(BigInteger)
    seq_to: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(DateTime)
    # SHA-256 (hex) of the raw Ed25519 public key
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))  # base64


class Notification(Base):
    """A message in someone's in-app inbox: the resident's, or a trusted person's about
    the resident (``recipient`` ``resident:<id>`` or ``trusted:<id>``)."""

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_recipient_created", "recipient", "created_at"),
        Index("ix_notification_dedupe", "recipient", "dedupe_key", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resident_id: Mapped[str] = mapped_column(String(64), index=True)  # whom it is about
    recipient: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    read_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Structured content (template and parameters) so the inbox can render it in the
    # reader's language; never clinical text.
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Repeated events (e.g. many reads during one emergency) update one notification.
    dedupe_key: Mapped[str | None] = mapped_column(String(128), nullable=True)


class OutboxMessage(Base):
    """A notification waiting to go out by mail or SMS.

    ``recipient`` is a reference (``resident:<id>``, ``trusted:<id>``), never an address:
    the delivery adapter resolves it when sending, so no address sits in this table.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(
        ForeignKey("notification.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(8))  # mail | sms
    recipient: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(8), default="pending")  # pending sent failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Exception class name of the last failure (no message: it might hold an address).
    last_error: Mapped[str | None] = mapped_column(String(255), nullable=True)


class NotificationWatcher(Base):
    """A trusted person the resident chose to be told about some events about them
    (by default, emergency accesses)."""

    __tablename__ = "notification_watcher"
    __table_args__ = (
        UniqueConstraint(
            "resident_id", "trusted_person_id", name="uq_notification_watcher_resident_person"
        ),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    resident_id: Mapped[str] = mapped_column(String(64), index=True)
    trusted_person_id: Mapped[str] = mapped_column(String(64))
    kinds: Mapped[str] = mapped_column(String(255), default="emergency_access")  # space separated
    channels: Mapped[str] = mapped_column(String(32), default="mail")  # space separated
    created_at: Mapped[datetime] = mapped_column(DateTime)
