"""Master keys of the platform's own services: configured, or generated once in keys_dir.

A configured value (base64 of 32 bytes, from the environment or a secret store through
:class:`phr.settings.Settings`) is required in production; in development and tests a
random key is created on first use in ``keys_dir`` (mode 0600) and kept.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets

from phr.settings import ConfigurationError, get_settings

__all__ = ["master_key"]


def master_key(configured: str | None, filename: str, env_name: str) -> bytes:
    settings = get_settings()
    if configured:
        return _decode(configured, env_name)
    if settings.env == "production":
        raise ConfigurationError(f"{env_name} is required in production")
    settings.ensure_dirs()
    path = settings.keys_dir / filename
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(32)).decode("ascii"))
    return _decode(path.read_text(), env_name)


def _decode(text: str, env_name: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{env_name} must be base64 of 32 bytes") from None
    if len(key) != 32:
        raise ConfigurationError(f"{env_name} must be base64 of 32 bytes")
    return key
