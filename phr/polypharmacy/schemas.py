"""Request shapes of the polypharmacy JSON API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["FindingUpdate"]


class FindingUpdate(BaseModel):
    state: Literal["acknowledged", "resolved", "open"]
    note: str | None = Field(default=None, max_length=2000)
