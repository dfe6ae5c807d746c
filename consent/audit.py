"""The access log: every read of a resident's data, permitted or denied."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from consent.models import AuditEntry
from phr.store.indexer import utcnow


@dataclass
class Access:
    action: str
    outcome: str
    resource_type: str | None = None
    resource_id: str | None = None
    resident_id: str | None = None
    count: int = 0
    detail: str = ""
    consent_ref: str | None = None


def record(
    session: Session,
    actor: Actor,
    purpose: Purpose,
    accesses: Iterable[Access],
    *,
    at: datetime | None = None,
) -> None:
    """Write the entries in the caller's transaction (so no read goes unlogged)."""
    at = at or utcnow()
    rows = [
        {
            "at": at,
            "actor_kind": actor.kind,
            "client_id": actor.client_id,
            "organization_id": actor.organization_id,
            "user_id": actor.user_id,
            "role": actor.role,
            "purpose": purpose.value,
            "action": a.action,
            "resource_type": a.resource_type,
            "resource_id": a.resource_id,
            "resident_id": a.resident_id,
            "outcome": a.outcome,
            "count": a.count,
            "detail": a.detail[:4000],
            "consent_ref": a.consent_ref,
        }
        for a in accesses
    ]
    if rows:
        session.execute(insert(AuditEntry), rows)
