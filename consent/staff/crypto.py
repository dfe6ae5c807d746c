"""Envelope encryption of small secrets at rest (staff TOTP seeds).

Each value gets its own random 256-bit data key; the value is sealed with it (AES-GCM) and
the data key is wrapped by the master key (AES-GCM too). Both seals are bound to a context
string (``aad``, e.g. the staff account id), so a ciphertext copied onto another row does
not open. The stored text names the master key by a short id, so keys can be rotated
later by keeping the old one readable::

    v1.<kid>.<b64url wrapped data key>.<b64url sealed value>

Where the master key comes from (:func:`totp_key_provider`):

* ``PHR_TOTP_ENCRYPTION_KEY`` — base64 of 32 random bytes; required in production.
* otherwise (development, test) ``keys_dir/staff-totp.key``, generated on first use
  (mode 0600).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from phr.settings import ConfigurationError, Settings, get_settings

__all__ = [
    "DecryptionError",
    "KeyProvider",
    "StaticKeyProvider",
    "open_sealed",
    "reset_key_cache",
    "seal",
    "totp_key_provider",
]

TOTP_KEY_ENV = "PHR_TOTP_ENCRYPTION_KEY"
TOTP_KEY_FILE = "staff-totp.key"
_VERSION = "v1"
_KEY_BYTES = 32
_NONCE_BYTES = 12


class DecryptionError(ValueError):
    """The sealed value is malformed, was sealed with an unknown key, or was tampered with."""


class KeyProvider(Protocol):
    """Master keys by id; ``current`` wraps new data keys."""

    def current(self) -> tuple[str, bytes]: ...

    def get(self, kid: str) -> bytes | None: ...


def key_id(key: bytes) -> str:
    """A short, stable, non-secret name for a master key."""
    return hashlib.sha256(b"phr-master-key-id:" + key).hexdigest()[:16]


@dataclass(frozen=True)
class StaticKeyProvider:
    """One current master key and, optionally, older ones that can still open values."""

    key: bytes
    previous: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        for k in (self.key, *self.previous):
            if len(k) != _KEY_BYTES:
                raise ConfigurationError("an encryption master key must be 32 bytes")

    def current(self) -> tuple[str, bytes]:
        return key_id(self.key), self.key

    def get(self, kid: str) -> bytes | None:
        for k in (self.key, *self.previous):
            if key_id(k) == kid:
                return k
        return None


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(plaintext: bytes, *, aad: bytes, keys: KeyProvider) -> str:
    """Encrypt ``plaintext`` under a fresh data key wrapped by the current master key."""
    kid, master = keys.current()
    data_key = AESGCM.generate_key(bit_length=256)
    wrap_nonce = secrets.token_bytes(_NONCE_BYTES)
    wrapped = wrap_nonce + AESGCM(master).encrypt(wrap_nonce, data_key, b"dek|" + aad)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = nonce + AESGCM(data_key).encrypt(nonce, plaintext, b"val|" + aad)
    return ".".join((_VERSION, kid, _b64e(wrapped), _b64e(sealed)))


def open_sealed(text: str, *, aad: bytes, keys: KeyProvider) -> bytes:
    """Decrypt what :func:`seal` produced with the same ``aad``."""
    parts = text.split(".")
    if len(parts) != 4 or parts[0] != _VERSION:
        raise DecryptionError("not a sealed value")
    _, kid, wrapped_b64, sealed_b64 = parts
    master = keys.get(kid)
    if master is None:
        raise DecryptionError("sealed with an unknown master key")
    try:
        wrapped, sealed = _b64d(wrapped_b64), _b64d(sealed_b64)
        data_key = AESGCM(master).decrypt(
            wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], b"dek|" + aad
        )
        return AESGCM(data_key).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], b"val|" + aad)
    except (InvalidTag, ValueError, binascii.Error) as exc:
        raise DecryptionError("sealed value does not open (tampered or wrong context)") from exc


# --------------------------------------------------------------------------- the TOTP key

_cache: dict[tuple[str, str], StaticKeyProvider] = {}
_cache_lock = threading.Lock()


def _configured_key(settings: Settings) -> str | None:
    # Read from Settings once it has the field; the environment variable otherwise.
    value = getattr(settings, "totp_encryption_key", None) or os.environ.get(TOTP_KEY_ENV)
    return value or None


def _decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{TOTP_KEY_ENV} must be base64 of 32 bytes") from None
    if len(key) != _KEY_BYTES:
        raise ConfigurationError(f"{TOTP_KEY_ENV} must be base64 of 32 bytes")
    return key


def _key_file(settings: Settings) -> bytes:
    """The development key in ``keys_dir``, created on first use."""
    settings.ensure_dirs()
    path: Path = settings.keys_dir / TOTP_KEY_FILE
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode("ascii"))
    return _decode_key(path.read_text())


def totp_key_provider(settings: Settings | None = None) -> StaticKeyProvider:
    """The master key that protects staff TOTP seeds (see the module docstring)."""
    settings = settings or get_settings()
    configured = _configured_key(settings)
    if not configured and settings.env == "production":
        raise ConfigurationError(f"{TOTP_KEY_ENV} is required in production")
    source = ("env", configured) if configured else ("file", str(settings.keys_dir.resolve()))
    with _cache_lock:
        provider = _cache.get(source)
        if provider is None:
            key = _decode_key(configured) if configured else _key_file(settings)
            provider = _cache[source] = StaticKeyProvider(key)
        return provider


def reset_key_cache() -> None:
    """Forget loaded keys (tests that change the key source)."""
    with _cache_lock:
        _cache.clear()
