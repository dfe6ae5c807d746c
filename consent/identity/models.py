"""Tables of resident sign-in and the OpenID Connect provider (digital ID, つくパス).

Sign-in with the My Number card (JPKI):

* ``card_challenge`` — one-time nonces the card signs; stored as SHA-256 hashes.
* ``card_link`` — which resident a card certificate (issuer + serial number) belongs to.
  JPKI's user-authentication certificate (利用者証明用電子証明書) carries no name or
  platform id, so the link is made when a card is issued (demo) or registered.
* ``resident_session`` — the resident's web session after signing in; the cookie holds a
  random id, the table only its hash.

OpenID Connect / SMART App Launch:

* ``oauth_app_client`` — patient-facing and staff apps (public or confidential) using the
  authorization-code flow; organisations' backend clients stay in ``oauth_client``.
* ``oauth_authorization_code`` — short-lived single-use codes (hashed).
* ``oauth_token_family`` — one approval of an app by a user; every access and refresh
  token issued from it carries its id (``sid``) and dies with it.
* ``oauth_refresh_token`` — rotating refresh tokens of a family (hashed).

No secret is stored in clear: nonces, session ids, codes and refresh tokens are random
values of 256 bits or more, kept as SHA-256 hex digests.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base
from phr.store.models import PK

__all__ = [
    "AppClient",
    "AuthorizationCode",
    "CardChallenge",
    "CardLink",
    "RefreshToken",
    "ResidentSession",
    "TokenFamily",
]


class CardChallenge(Base):
    """A nonce handed out by ``POST /auth/card/challenge``; used at most once."""

    __tablename__ = "card_challenge"
    __table_args__ = (Index("ix_card_challenge_expires_at", "expires_at"),)

    nonce_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class CardLink(Base):
    """A card certificate (issuer fingerprint + serial number) → the resident it belongs to."""

    __tablename__ = "card_link"
    __table_args__ = (
        UniqueConstraint("issuer_fingerprint", "serial", name="uq_card_link_issuer_serial"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    # SHA-256 (hex) of the DER of the CA certificate that issued the card certificate.
    issuer_fingerprint: Mapped[str] = mapped_column(String(64))
    # The certificate serial number, lowercase hex without leading zeros.
    serial: Mapped[str] = mapped_column(String(64))
    resident_id: Mapped[str] = mapped_column(String(64), index=True)
    # SHA-256 (hex) of the card certificate itself (informational).
    certificate_fingerprint: Mapped[str] = mapped_column(String(64))
    not_after: Mapped[datetime] = mapped_column(DateTime)
    source: Mapped[str] = mapped_column(String(16))  # demo | registered
    # Demo cards only: where ``phr card issue`` wrote the card's private key, so that the
    # demo-card picker can sign on the resident's behalf.
    demo_key_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Set by ``phr card revoke`` (the CRL is the authority; this refuses at once).
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ResidentSession(Base):
    """A resident's web session (cookie ``phr_session``)."""

    __tablename__ = "resident_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    resident_id: Mapped[str] = mapped_column(String(64), index=True)
    card_link_pk: Mapped[int | None] = mapped_column(PK, nullable=True)
    auth_method: Mapped[str] = mapped_column(String(16))  # jpki | jpki-demo
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)  # absolute limit
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AppClient(Base):
    """An app that signs people in with the authorization-code flow (SMART App Launch)."""

    __tablename__ = "oauth_app_client"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    public: Mapped[bool] = mapped_column(Boolean)
    # scrypt hash (consent.identity.clients.hash_secret); None for public clients.
    client_secret_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    redirect_uris: Mapped[str] = mapped_column(Text)  # one per line, matched exactly
    scopes: Mapped[str] = mapped_column(Text)  # space separated
    grant_types: Mapped[str] = mapped_column(String(255))  # space separated
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class AuthorizationCode(Base):
    __tablename__ = "oauth_authorization_code"
    __table_args__ = (Index("ix_oauth_authorization_code_client_nonce", "client_id", "nonce"),)

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    # Who approved: kind resident | staff, and the claims their tokens will carry.
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(64))
    resident_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    organization_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    nonce: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)
    code_challenge_method: Mapped[str | None] = mapped_column(String(8), nullable=True)
    auth_time: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The token family issued for this code: revoked if the code is presented again.
    family_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class TokenFamily(Base):
    """One approval of an app by a user; its tokens carry ``sid`` = this id."""

    __tablename__ = "oauth_token_family"
    __table_args__ = (Index("ix_oauth_token_family_subject", "subject_kind", "subject_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(Text)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(64))
    resident_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    organization_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    auth_time: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # revoked | refresh_token_reuse | code_reuse | subject_signed_out | ...
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)


class RefreshToken(Base):
    __tablename__ = "oauth_refresh_token"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(ForeignKey("oauth_token_family.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    # Set when rotated (exchanged for a new one); presenting it again revokes the family.
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
