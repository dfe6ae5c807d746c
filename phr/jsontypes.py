"""Types shared by the JSON shapes of every API.

Times are stored as naive UTC (``phr.store.indexer.utcnow``); in JSON they must carry
their offset (RFC 3339 ``date-time``, as the OpenAPI documents them), or a client in
Japan reads them nine hours off."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema

__all__ = ["UtcDateTime"]


def _rfc3339(at: datetime) -> str:
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.isoformat().replace("+00:00", "Z")


UtcDateTime = Annotated[
    datetime,
    PlainSerializer(_rfc3339, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
