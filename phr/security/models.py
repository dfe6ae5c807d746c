"""The limiter's counters: one row per key and fixed window, shared by every process."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base

__all__ = ["RateLimitWindow"]


class RateLimitWindow(Base):
    """Events (failed sign-ins, lookups) counted for one key in one window. The key is a
    hash: what is counted (a login, a card, an address) is not kept in clear."""

    __tablename__ = "rate_limit_window"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime, primary_key=True, index=True)
    count: Mapped[int] = mapped_column(Integer)
