"""The keys that sign access tokens (ES256, P-256) and the JWKS that publishes them.

Where the keys come from:

* ``PHR_JWT_PRIVATE_KEY_FILE`` set (required in production): that PEM key signs. Its
  ``kid`` is its RFC 7638 thumbprint, so it stays the same across restarts and hosts.
  Retired keys may be left in ``keys_dir`` as ``jwt-signing-<kid>.pem``: they are still
  published, so tokens they signed stay valid until they expire.
* Otherwise (development, test): the keys in ``keys_dir`` named ``jwt-signing-<kid>.pem``.
  The first start generates one (mode 0600); later starts reuse it.
  :func:`rotate_signing_key` adds a newer one.

Generated ``kid`` values start with a UTC timestamp, so the newest key is the one whose
``kid`` sorts last. The newest key signs; every key is published in :func:`jwks` so that a
token signed just before a rotation still verifies.

Loaded keys are cached in-process. A token whose ``kid`` is unknown makes the cache reload
from disk (at most every few seconds), so a rotation done by another process is picked up
without a restart. :func:`reset_key_cache` drops the cache (tests).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from phr.settings import ConfigurationError, Settings, get_settings

__all__ = [
    "ALGORITHM",
    "SigningKey",
    "jwks",
    "load_pem_key",
    "reset_key_cache",
    "retire_signing_keys",
    "rotate_signing_key",
    "signing_key",
    "verification_key",
    "verification_keys",
]

ALGORITHM = "ES256"
CURVE = "P-256"
KEY_FILE_PREFIX = "jwt-signing-"
KEY_FILE_SUFFIX = ".pem"
_KID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# An unknown kid reloads the key ring from disk at most this often (seconds).
RELOAD_INTERVAL = 5.0


@dataclass(frozen=True)
class SigningKey:
    """One ES256 key pair with its key id."""

    kid: str
    key: ECKey
    path: Path | None = None

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK (``kty crv x y kid alg use``)."""
        return dict(self.key.as_dict(private=False, kid=self.kid, alg=ALGORITHM, use="sig"))


@dataclass
class _KeyRing:
    source: tuple[str, str | None]
    signing: SigningKey
    keys: dict[str, SigningKey]
    loaded_at: float = field(default_factory=time.monotonic)


_ring: _KeyRing | None = None
_ring_lock = threading.RLock()


# --------------------------------------------------------------------------- loading


def load_pem_key(path: Path, kid: str | None = None) -> SigningKey:
    """Load an unencrypted PEM EC P-256 private key; ``kid`` defaults to its thumbprint."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read signing key {path}: {exc}") from exc
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
        private.curve, ec.SECP256R1
    ):
        raise ConfigurationError(f"{path} must hold an EC P-256 key (ES256)")
    kid = kid or ECKey.import_key(data).thumbprint()
    return SigningKey(kid=kid, key=ECKey.import_key(data, {"kid": kid}), path=path)


def _key_files(keys_dir: Path) -> list[tuple[str, Path]]:
    """``(kid, path)`` of the generated keys in ``keys_dir``, oldest first."""
    if not keys_dir.is_dir():
        return []
    found = []
    for path in keys_dir.iterdir():
        name = path.name
        if not (name.startswith(KEY_FILE_PREFIX) and name.endswith(KEY_FILE_SUFFIX)):
            continue
        kid = name[len(KEY_FILE_PREFIX) : -len(KEY_FILE_SUFFIX)]
        if _KID_RE.match(kid) and path.is_file():
            found.append((kid, path))
    return sorted(found)


def _source(settings: Settings) -> tuple[str, str | None]:
    # Called on every request: abspath is string work, resolve() would hit the filesystem.
    explicit = settings.jwt_private_key_file
    return (
        os.path.abspath(settings.keys_dir),
        os.path.abspath(explicit) if explicit is not None else None,
    )


def _load(settings: Settings) -> _KeyRing:
    stored = [load_pem_key(path, kid) for kid, path in _key_files(settings.keys_dir)]
    keys = {k.kid: k for k in stored}
    if settings.jwt_private_key_file is not None:
        signing = load_pem_key(settings.jwt_private_key_file)
        keys[signing.kid] = signing
    elif settings.env == "production":
        raise ConfigurationError("PHR_JWT_PRIVATE_KEY_FILE is required in production")
    else:
        if not stored:
            with _directory_lock(settings):
                # Another process may have generated one while we waited for the lock.
                stored = [load_pem_key(p, kid) for kid, p in _key_files(settings.keys_dir)]
                if not stored:
                    stored = [_generate(settings)]
            keys = {k.kid: k for k in stored}
        signing = stored[-1]
    return _KeyRing(source=_source(settings), signing=signing, keys=keys)


def _ring_for(settings: Settings | None = None, *, reload: bool = False) -> _KeyRing:
    global _ring
    settings = settings or get_settings()
    with _ring_lock:
        if reload or _ring is None or _ring.source != _source(settings):
            _ring = _load(settings)
        return _ring


# --------------------------------------------------------------------------- generation


@contextlib.contextmanager
def _directory_lock(settings: Settings) -> Iterator[None]:
    """Serialise key generation between processes sharing ``keys_dir`` (POSIX)."""
    settings.ensure_dirs()
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(settings.keys_dir / ".jwt-signing.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _generate(settings: Settings) -> SigningKey:
    """Write a new P-256 key to ``keys_dir`` (0600) and return it."""
    settings.ensure_dirs()
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    thumbprint = ECKey.import_key(pem).thumbprint()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    kid = f"{stamp}-{thumbprint[:8]}"
    path = settings.keys_dir / f"{KEY_FILE_PREFIX}{kid}{KEY_FILE_SUFFIX}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return SigningKey(kid=kid, key=ECKey.import_key(pem, {"kid": kid}), path=path)


# --------------------------------------------------------------------------- public API


def signing_key(settings: Settings | None = None) -> SigningKey:
    """The key that signs new tokens (the newest one)."""
    return _ring_for(settings).signing


def verification_keys(settings: Settings | None = None) -> list[SigningKey]:
    """Every published key: the signing key first, then the others newest first."""
    ring = _ring_for(settings)
    others = [k for kid, k in sorted(ring.keys.items(), reverse=True) if kid != ring.signing.kid]
    return [ring.signing, *others]


def verification_key(kid: str, settings: Settings | None = None) -> SigningKey | None:
    """The published key with this ``kid``, or None.

    An unknown kid reloads the keys from disk (rate limited), so that keys rotated by
    another process are found.
    """
    ring = _ring_for(settings)
    found = ring.keys.get(kid)
    if found is None and time.monotonic() - ring.loaded_at >= RELOAD_INTERVAL:
        found = _ring_for(settings, reload=True).keys.get(kid)
    return found


def jwks(settings: Settings | None = None) -> dict[str, Any]:
    """The JSON Web Key Set of all published public keys."""
    return {"keys": [k.public_jwk() for k in verification_keys(settings)]}


def rotate_signing_key(settings: Settings | None = None) -> SigningKey:
    """Generate a new signing key in ``keys_dir``; it signs from now on.

    Older keys stay published until :func:`retire_signing_keys` removes them (wait at
    least ``access_token_ttl_seconds`` after rotating). With an explicit
    ``PHR_JWT_PRIVATE_KEY_FILE`` rotation is done by replacing that file instead.
    """
    settings = settings or get_settings()
    if settings.jwt_private_key_file is not None:
        raise ConfigurationError(
            "the signing key comes from PHR_JWT_PRIVATE_KEY_FILE: rotate it by pointing the "
            "setting at a new key (keep the old one in keys_dir until its tokens expire)"
        )
    if settings.env == "production":
        raise ConfigurationError("PHR_JWT_PRIVATE_KEY_FILE is required in production")
    with _ring_lock:
        with _directory_lock(settings):
            new = _generate(settings)
        ring = _ring_for(settings, reload=True)
    if ring.signing.kid != new.kid:  # pragma: no cover - clock went backwards
        raise RuntimeError(f"new key {new.kid} does not sort after {ring.signing.kid}")
    return new


def retire_signing_keys(keep: int = 2, settings: Settings | None = None) -> list[str]:
    """Delete all but the ``keep`` newest generated keys in ``keys_dir``; return their kids.

    The key that currently signs is never deleted.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    settings = settings or get_settings()
    current = signing_key(settings).kid
    removed = []
    with _ring_lock:
        with _directory_lock(settings):
            files = _key_files(settings.keys_dir)
            for kid, path in files[: max(len(files) - keep, 0)]:
                if kid == current:
                    continue
                path.unlink(missing_ok=True)
                removed.append(kid)
        _ring_for(settings, reload=True)
    return removed


def reset_key_cache() -> None:
    """Forget the loaded keys; the next call reads them from disk again."""
    global _ring
    with _ring_lock:
        _ring = None
