"""The master key that seals face templates and reference photos.

The envelope encryption itself is :mod:`consent.staff.crypto` (a fresh AES-GCM data key
per value, wrapped by the master key, both bound to the row). The master key comes from
``PHR_BIOMETRIC_ENCRYPTION_KEY`` (base64 of 32 bytes; required in production) or, in
development and tests, from ``keys_dir/biometric.key``, generated on first use (0600).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
import threading

from consent.staff.crypto import DecryptionError, StaticKeyProvider, open_sealed, seal
from phr.settings import ConfigurationError, Settings, get_settings

__all__ = ["DecryptionError", "biometric_keys", "open_sealed", "reset_biometric_keys", "seal"]

KEY_ENV = "PHR_BIOMETRIC_ENCRYPTION_KEY"
KEY_FILE = "biometric.key"

_lock = threading.Lock()
_cache: dict[str, StaticKeyProvider] = {}


def _decode(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigurationError(f"{KEY_ENV} must be base64 of 32 bytes")
    return key


def _development_key(settings: Settings) -> bytes:
    settings.ensure_dirs()
    path = settings.keys_dir / KEY_FILE
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(32)).decode("ascii"))
    return _decode(path.read_text())


def biometric_keys(settings: Settings | None = None) -> StaticKeyProvider:
    settings = settings or get_settings()
    configured = settings.biometric_encryption_key
    if not configured and settings.env == "production":
        raise ConfigurationError(f"{KEY_ENV} is required in production")
    source = f"env:{configured}" if configured else f"file:{settings.keys_dir.resolve()}"
    with _lock:
        provider = _cache.get(source)
        if provider is None:
            key = _decode(configured) if configured else _development_key(settings)
            provider = _cache[source] = StaticKeyProvider(key)
        return provider


def reset_biometric_keys() -> None:
    with _lock:
        _cache.clear()
