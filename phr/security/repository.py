"""All SQL of the limiter."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from phr.security.models import RateLimitWindow

__all__ = ["add", "count", "prune"]

_rate = cast(Table, RateLimitWindow.__table__)


def add(session: Session, key: str, window_start: datetime) -> int:
    """Count one event for ``key`` in its window (an upsert, so concurrent processes add
    up); returns the window's count so far."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_rate).values(key=key, window_start=window_start, count=1)
    upsert = stmt.on_conflict_do_update(
        index_elements=[_rate.c.key, _rate.c.window_start],
        set_={"count": _rate.c.count + 1},
    )
    return int(session.execute(upsert.returning(_rate.c.count)).scalar() or 0)


def count(session: Session, key: str, window_start: datetime) -> int:
    found = session.scalar(
        select(RateLimitWindow.count).where(
            RateLimitWindow.key == key, RateLimitWindow.window_start == window_start
        )
    )
    return int(found or 0)


def prune(session: Session, before: datetime) -> None:
    session.execute(delete(RateLimitWindow).where(RateLimitWindow.window_start < before))
