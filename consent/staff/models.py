"""Tables of organisations' staff accounts and roles."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base

__all__ = ["StaffSession", "StaffUser"]


class StaffUser(Base):
    """A person who works for an organisation and signs in with password plus TOTP.

    ``username`` is unique within the organisation (stored lower-case). Neither secret is
    stored in clear: ``password_hash`` is argon2id, ``totp_secret`` is sealed with the
    staff TOTP master key (:mod:`consent.staff.crypto`) and bound to the account id.
    """

    __tablename__ = "staff_user"
    __table_args__ = (
        UniqueConstraint("organization_id", "username", name="uq_staff_user_org_username"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(255))
    # doctor nurse pharmacist paramedic clerk analyst administrator
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    totp_secret: Mapped[str] = mapped_column(String(512))
    # The last TOTP time step accepted: codes of this step or earlier are refused (replay).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class StaffSession(Base):
    """A signed-in browser: the cookie holds a random id, the table only its SHA-256."""

    __tablename__ = "staff_session"
    __table_args__ = (Index("ix_staff_session_expires_at", "expires_at"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[str] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Absolute end of the session, whatever the activity.
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    # Idle timeout: the session ends when unused for longer than the idle limit.
    last_seen_at: Mapped[datetime] = mapped_column(DateTime)
