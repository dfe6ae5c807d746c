"""Time-based one-time passwords (RFC 6238 TOTP over RFC 4226 HOTP).

The profile every authenticator app understands: HMAC-SHA-1, 6 digits, 30-second steps
counted from the Unix epoch. A code is accepted in the current step or one step either side
(clock drift between the phone and the server), and only for a step later than the last
one accepted for the account, so a code that was used once cannot be replayed — not even
within its own window. The caller stores the step :func:`verify` returns.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

__all__ = [
    "DIGITS",
    "PERIOD",
    "SECRET_BYTES",
    "WINDOW",
    "b32_secret",
    "generate_secret",
    "hotp",
    "provisioning_uri",
    "time_step",
    "totp",
    "verify",
]

DIGITS = 6
PERIOD = 30  # seconds per step (RFC 6238 X)
WINDOW = 1  # steps accepted either side of the current one
SECRET_BYTES = 20  # 160 bits, the HMAC-SHA-1 block-friendly size RFC 4226 recommends


def generate_secret() -> bytes:
    """A new random shared secret."""
    return secrets.token_bytes(SECRET_BYTES)


def b32_secret(secret: bytes) -> str:
    """The secret as authenticator apps take it: base32 without padding."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def hotp(secret: bytes, counter: int, *, digits: int = DIGITS) -> str:
    """RFC 4226 HOTP value of ``counter`` (dynamic truncation), zero-padded to ``digits``."""
    if not 6 <= digits <= 10:
        raise ValueError("digits must be between 6 and 10")
    if counter < 0:
        raise ValueError("counter must not be negative")
    mac = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    code = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(code % 10**digits).zfill(digits)


def time_step(at: float | None = None, *, period: int = PERIOD) -> int:
    """The RFC 6238 time step ``T = floor((at - T0) / X)`` with ``T0 = 0``."""
    return int((time.time() if at is None else at) // period)


def totp(
    secret: bytes, at: float | None = None, *, digits: int = DIGITS, period: int = PERIOD
) -> str:
    """The TOTP value at Unix time ``at`` (now by default)."""
    return hotp(secret, time_step(at, period=period), digits=digits)


def verify(
    secret: bytes,
    code: str,
    *,
    at: float | None = None,
    last_step: int | None = None,
    digits: int = DIGITS,
    period: int = PERIOD,
    window: int = WINDOW,
) -> int | None:
    """The time step ``code`` belongs to, or None when it is wrong, stale or replayed.

    Only steps after ``last_step`` (the last one accepted for this account) count. Every
    candidate step is compared in constant time, and all of them are always compared, so
    the answer takes the same time whichever step (if any) matched.
    """
    code = code.strip().replace(" ", "")
    if len(code) != digits or not code.isascii() or not code.isdigit():
        return None
    current = time_step(at, period=period)
    matched: int | None = None
    for step in range(current - window, current + window + 1):
        ok = hmac.compare_digest(hotp(secret, max(step, 0), digits=digits), code)
        fresh = last_step is None or step > last_step
        if ok and fresh and step >= 0 and matched is None:
            matched = step
    return matched


def provisioning_uri(
    secret: bytes,
    *,
    account: str,
    issuer: str,
    digits: int = DIGITS,
    period: int = PERIOD,
) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads (as text or a QR code).

    Key URI format of Google Authenticator, which the other apps follow: the label is
    ``issuer:account`` and the issuer is repeated as a parameter.
    """
    label = quote(issuer, safe="") + ":" + quote(account, safe="@")
    params = urlencode(
        {
            "secret": b32_secret(secret),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": str(digits),
            "period": str(period),
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{params}"
