"""The consent engine: turns (actor, purpose) into a SQL condition on the store.

Authorization is part of the query, never an ``if`` after it: what the caller may not
see does not exist for them. This is the foundation's policy; the trust-service issue
adds Consent resources, roles, emergency pre-consent and the PIA gate here, behind the
same two calls.

Today's rules:
- the platform itself (CLI jobs) sees everything;
- a resident sees their own record;
- an organisation sees shared reference data (Organization, Practitioner, ...; rows
  with no resident key) and the records it contributed itself (its own chart).
  What came from any other source needs the resident's consent, which until the
  consent issue lands means it is not visible: opt-in only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, exists, false, or_, true

from consent.actors import Actor, Purpose
from phr.store.models import Resource, ResourceSource


@dataclass(frozen=True)
class Decision:
    permit: bool
    reason: str
    consent_ref: str | None = None


def access_clause(actor: Actor, purpose: Purpose) -> ColumnElement[bool]:
    """Condition on :class:`Resource` rows the actor may see for this purpose."""
    if actor.kind == "system":
        return true()
    if actor.kind == "resident":
        if not actor.resident_id:
            return false()
        return Resource.resident_id == actor.resident_id
    if actor.kind in ("organization", "staff") and actor.organization_id:
        own = exists().where(
            ResourceSource.resource_pk == Resource.pk,
            ResourceSource.organization_id == actor.organization_id,
        )
        return or_(Resource.resident_id.is_(None), own)
    return false()


def basis(actor: Actor, purpose: Purpose) -> str:
    """Short label of the rule that lets this actor read (for the access log)."""
    if actor.kind == "system":
        return "platform"
    if actor.kind == "resident":
        return "self"
    return "own-records"
