"""Operational tables of ACP: sealed versions and conversations, trusted persons.

The FHIR record store holds each resident's advance-directive ``Consent`` (scope ``adr``)
as the index card everybody's read is gated on; the content of every version (the ADI
document Bundle) and of every conversation lives here sealed with envelope encryption
(see ``docs/adr/0001-encrypted-acp.md``). Nothing in these tables is readable without the
master key; nothing in them is searchable.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base
from phr.store.models import PK


class AcpVersion(Base):
    """Version ``version`` of a resident's ACP: the sealed ADI document of the advance-
    directive Consent ``consent_id`` at that FHIR version."""

    __tablename__ = "acp_version"
    __table_args__ = (
        UniqueConstraint("consent_id", "version", name="uq_acp_version_consent_version"),
        Index("ix_acp_version_resident", "resident_id", "version"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    resident_id: Mapped[str] = mapped_column(String(64))
    consent_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(80))
    sealed: Mapped[str] = mapped_column(Text)


class AcpConversation(Base):
    """An ACP conversation (話し合い): when, with whom, what changed — sealed."""

    __tablename__ = "acp_conversation"
    __table_args__ = (Index("ix_acp_conversation_resident", "resident_id", "held_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resident_id: Mapped[str] = mapped_column(String(64))
    held_at: Mapped[datetime] = mapped_column(DateTime)
    recorded_at: Mapped[datetime] = mapped_column(DateTime)
    version_before: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version_after: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sealed: Mapped[str] = mapped_column(Text)


class TrustedPerson(Base):
    """An account of a trusted person (家族・信頼できる人). The login is kept only as a
    hash; the name they gave is sealed."""

    __tablename__ = "trusted_person"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    login_hash: Mapped[str] = mapped_column(String(64), unique=True)
    passphrase_hash: Mapped[str] = mapped_column(String(255))
    name_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class TrustedInvitation(Base):
    """A resident's invitation of a trusted person to read their ACP.

    The code is handed to the person outside the platform and kept only as a hash; on
    acceptance the resident's sharing Consent naming the person is written."""

    __tablename__ = "trusted_invitation"
    __table_args__ = (Index("ix_trusted_invitation_resident", "resident_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resident_id: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label_sealed: Mapped[str] = mapped_column(Text)
    invited_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    person_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    consent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class TrustedSession(Base):
    """A signed-in trusted person (bearer token, kept hashed)."""

    __tablename__ = "trusted_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
