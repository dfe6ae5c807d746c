"""The master key that seals ACP documents, conversations and status reports.

Envelope encryption itself is :mod:`consent.staff.crypto` (a fresh AES-GCM data key per
value, wrapped by the master key, both bound to a context string). The master key:

* ``PHR_ACP_ENCRYPTION_KEY`` — base64 of 32 random bytes; required in production;
* otherwise (development, test) ``keys_dir/acp-content.key``, generated on first use
  (mode 0600).

It is a different key from the staff TOTP key, so that one can be rotated or handed to
a hardware module without the other.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
import threading

import orjson

from consent.staff.crypto import StaticKeyProvider, open_sealed, seal
from phr.settings import ConfigurationError, Settings, get_settings

__all__ = ["ACP_KEY_ENV", "content_keys", "open_json", "reset", "seal_json"]

ACP_KEY_ENV = "PHR_ACP_ENCRYPTION_KEY"
KEY_FILE = "acp-content.key"
_KEY_BYTES = 32

_cache: dict[str, StaticKeyProvider] = {}
_lock = threading.Lock()


def _decode(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{ACP_KEY_ENV} must be base64 of 32 bytes") from None
    if len(key) != _KEY_BYTES:
        raise ConfigurationError(f"{ACP_KEY_ENV} must be base64 of 32 bytes")
    return key


def content_keys(settings: Settings | None = None) -> StaticKeyProvider:
    settings = settings or get_settings()
    configured = os.environ.get(ACP_KEY_ENV)
    if not configured and settings.env == "production":
        raise ConfigurationError(f"{ACP_KEY_ENV} is required in production")
    source = "env:" + configured if configured else "file:" + str(settings.keys_dir.resolve())
    with _lock:
        provider = _cache.get(source)
        if provider is None:
            if configured:
                key = _decode(configured)
            else:
                settings.ensure_dirs()
                path = settings.keys_dir / KEY_FILE
                with contextlib.suppress(FileExistsError):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "w") as fh:
                        fh.write(base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode())
                key = _decode(path.read_text())
            provider = _cache[source] = StaticKeyProvider(key)
        return provider


def seal_json(value: object, *, context: str) -> str:
    """Seal a JSON value; ``context`` (e.g. ``acp:<consent id>:3``) binds it to its row."""
    return seal(orjson.dumps(value), aad=context.encode(), keys=content_keys())


def open_json(text: str, *, context: str) -> object:
    return orjson.loads(open_sealed(text, aad=context.encode(), keys=content_keys()))


def reset() -> None:
    with _lock:
        _cache.clear()
