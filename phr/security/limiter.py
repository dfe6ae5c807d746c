"""A small limiter shared by every sign-in and identification route, counted in the
database so that every server process sees the same counts.

Two uses:

- **Failures** (sign-in): :func:`refuse_if_locked` before checking credentials,
  :func:`record_failure` when they are wrong. A failure is counted per account (the login,
  card, client id) and per client address; once either reaches its limit within the
  window, every attempt is refused with 429 and ``Retry-After`` until the window ends —
  even with the right credentials, so that guessing cannot go on. The count survives the
  failed request's rollback (:func:`phr.db.after_rollback`).
- **Lookups** (identification at the scene): :func:`count_lookup` counts every lookup of
  an actor and refuses once the limit is passed within the window.

Windows are fixed (``floor(now / window)``); keys are hashed, so no login, card number or
address is stored. Limits and windows are settings (``docs/security.md``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import NamedTuple

from fastapi import Request
from sqlalchemy.orm import Session

from consent.actors import Actor
from phr.db import after_rollback
from phr.errors import NotAuthenticated, PHRError
from phr.security import repository as repo
from phr.settings import get_settings
from phr.store.indexer import utcnow

__all__ = [
    "Counter",
    "TooManyAttempts",
    "actor_key",
    "client_address",
    "count_lookup",
    "guarded_sign_in",
    "record_failure",
    "refuse_if_locked",
    "sign_in_counters",
]

_EPOCH = datetime(2000, 1, 1)


class TooManyAttempts(PHRError):
    status_code = 429
    code = "throttled"
    error = "too_many_attempts"


class Counter(NamedTuple):
    """One thing counted: ``kind`` names the route family and what is counted
    (``staff-sign-in/account``), ``value`` the account or address."""

    kind: str
    value: str
    limit: int
    window_seconds: int

    @property
    def key(self) -> str:
        digest = hashlib.sha256(f"{self.kind}\x00{self.value}".encode()).hexdigest()
        return digest[:64]

    def window(self, now: datetime) -> tuple[datetime, int]:
        """The window's start and the seconds left in it (at least 1)."""
        elapsed = int((now - _EPOCH).total_seconds())
        start = elapsed - elapsed % self.window_seconds
        left = self.window_seconds - (elapsed - start)
        return _EPOCH + timedelta(seconds=start), max(1, left)


def actor_key(actor: Actor) -> str:
    """Who is counted for a lookup: the person (or client) within the organisation."""
    return f"{actor.organization_id}|{actor.user_id or actor.client_id or actor.kind}"


def sign_in_counters(what: str, *, account: str | None, address: str | None) -> list[Counter]:
    """The counters of one sign-in route: per account (when the request names one) and per
    client address."""
    s = get_settings()
    out = []
    if account:
        out.append(
            Counter(
                f"{what}/account", account, s.signin_failures_per_account, s.signin_window_seconds
            )
        )
    if address:
        out.append(
            Counter(
                f"{what}/address", address, s.signin_failures_per_address, s.signin_window_seconds
            )
        )
    return out


def _refuse(counter: Counter, left: int) -> TooManyAttempts:
    return TooManyAttempts(
        f"too many attempts; try again in {left} s", headers={"Retry-After": str(left)}
    )


def refuse_if_locked(session: Session, counters: Sequence[Counter]) -> None:
    """429 with ``Retry-After`` if any counter has reached its limit in this window."""
    now = utcnow()
    for counter in counters:
        start, left = counter.window(now)
        if repo.count(session, counter.key, start) >= counter.limit:
            raise _refuse(counter, left)


def record_failure(session: Session, counters: Sequence[Counter]) -> None:
    """Count a failed attempt on every counter, whether the request then commits or is
    rolled back."""
    now = utcnow()
    keys = [(c.key, c.window(now)[0]) for c in counters]

    def write(s: Session) -> None:
        for key, start in keys:
            if repo.add(s, key, start) == 1:
                repo.prune(s, start - timedelta(days=1))

    write(session)
    after_rollback(session, write)


def count_lookup(session: Session, counter: Counter) -> None:
    """Count one lookup; 429 with ``Retry-After`` once more than ``limit`` in the window
    (the refused lookup is rolled back with its request, so waiting is enough)."""
    start, left = counter.window(utcnow())
    seen = repo.add(session, counter.key, start)
    if seen == 1:
        repo.prune(session, start - timedelta(days=1))
    if seen > counter.limit:
        raise _refuse(counter, left)


def client_address(request: Request) -> str | None:
    """The client's address as the server sees it (behind a proxy, run uvicorn with
    ``--proxy-headers`` so that this is the browser's, not the proxy's)."""
    return request.client.host if request.client else None


@contextmanager
def guarded_sign_in(
    session: Session,
    request: Request,
    what: str,
    *,
    account: str | None,
    failures: tuple[type[PHRError], ...] = (NotAuthenticated,),
) -> Iterator[list[Counter]]:
    """Refuse (429) while the account or the address is locked out; count the attempt as
    failed if the block raises one of ``failures`` (routes that answer a failure
    instead of raising call :func:`record_failure` with the counters themselves)."""
    counters = sign_in_counters(what, account=account, address=client_address(request))
    refuse_if_locked(session, counters)
    try:
        yield counters
    except failures:
        record_failure(session, counters)
        raise
