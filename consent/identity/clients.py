"""Organisations and their OAuth2 clients: registration and secret hashing.

Client secrets are stored as scrypt hashes ``scrypt$<salt hex>$<hash hex>``; the
plaintext is returned once, at registration, and never stored. Services here only
``flush``: the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from sqlalchemy.orm import Session

from consent.models import ORGANIZATION_KINDS, OAuthClient, Organization
from phr.errors import Conflict, InvalidInput
from phr.store.indexer import utcnow

__all__ = [
    "SCOPE_RE",
    "hash_secret",
    "register_client",
    "register_organization",
    "verify_secret",
]

_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_DKLEN = 32
_SALT_BYTES = 16

# SMART scopes a client may be registered with: v2 (``system/Observation.rs``,
# ``system/*.cruds``, optionally with a ``?param=value`` filter) and v1
# (``system/*.read``, ``system/Patient.write``, ``system/*.*``).
SCOPE_RE = re.compile(
    r"^(system|user|patient)/(\*|[A-Z][A-Za-z]{0,63})\."
    r"(\*|read|write|(?=[cruds])c?r?u?d?s?)(\?\S+)?$"
)


def _scrypt(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"),
        salt=salt,
        n=_SCRYPT_N,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        dklen=_SCRYPT_DKLEN,
    )


def hash_secret(secret: str) -> str:
    """``scrypt$<salt hex>$<hash hex>`` with a random 16-byte salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    return f"scrypt${salt.hex()}${_scrypt(secret, salt).hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches the stored hash (constant-time comparison)."""
    try:
        scheme, salt_hex, hash_hex = stored.split("$")
        salt = bytes.fromhex(salt_hex)
        expected = bytes.fromhex(hash_hex)
    except ValueError:
        return False
    if scheme != "scrypt" or not salt or not expected:
        return False
    return hmac.compare_digest(_scrypt(secret, salt), expected)


def register_organization(
    session: Session,
    *,
    id: str,
    name: str,
    kind: str,
    identifier_system: str | None = None,
    identifier_value: str | None = None,
) -> Organization:
    """Create an organisation, or return the existing one with this id unchanged."""
    existing = session.get(Organization, id)
    if existing is not None:
        return existing
    if kind not in ORGANIZATION_KINDS:
        raise InvalidInput(
            f"unknown organization kind {kind!r}; expected one of {', '.join(ORGANIZATION_KINDS)}"
        )
    org = Organization(
        id=id,
        name=name,
        kind=kind,
        identifier_system=identifier_system,
        identifier_value=identifier_value,
        active=True,
        created_at=utcnow(),
    )
    session.add(org)
    session.flush()
    return org


def register_client(
    session: Session,
    *,
    organization_id: str,
    name: str,
    scopes: list[str],
    client_id: str | None = None,
) -> tuple[OAuthClient, str]:
    """Register a confidential client-credentials client of an organisation.

    Returns the client and its plaintext secret, which is shown only this once.
    """
    if session.get(Organization, organization_id) is None:
        raise InvalidInput(f"unknown organization {organization_id!r}")
    if not scopes:
        raise InvalidInput("a client needs at least one scope")
    bad = [s for s in scopes if not SCOPE_RE.match(s)]
    if bad:
        raise InvalidInput(f"not SMART scopes: {' '.join(bad)}")
    client_id = client_id or f"c-{secrets.token_urlsafe(16)}"
    if session.get(OAuthClient, client_id) is not None:
        raise Conflict(f"client {client_id!r} already exists")
    secret = secrets.token_urlsafe(32)
    client = OAuthClient(
        client_id=client_id,
        client_secret_hash=hash_secret(secret),
        organization_id=organization_id,
        name=name,
        scopes=" ".join(dict.fromkeys(scopes)),
        grant_types="client_credentials",
        token_endpoint_auth_method="client_secret_basic",
        active=True,
        created_at=utcnow(),
    )
    session.add(client)
    session.flush()
    return client, secret
