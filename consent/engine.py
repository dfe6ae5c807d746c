"""The consent engine: (who, which organisation, role, purpose, resident, data) -> permit
or deny, as a SQL condition that the choke point puts into every query.

Authorization is part of the query, never an ``if`` after it: what the caller may not
see does not exist for them, and totals and paging cannot leak it.

Rules, in order:
1. The platform's own jobs (CLI, migrations) see everything; a service or module without
   an approved privacy impact assessment sees nothing.
2. A resident sees their own record.
3. Shared reference data (Organization, Practitioner, ...: no resident key) is visible to
   every authenticated organisation.
4. An organisation always sees the records it contributed itself (its own chart).
   A staff member reads residents' data only as far as their role allows
   (:data:`ROLE_PURPOSES`, :data:`ROLE_TYPES`): own chart and consents alike.
5. Anything else needs the resident's consent (opt-in only): an active permit rule for
   this actor (organisation, organisation kind, role or person), purpose, resource type and
   — for sensitive categories — the category named explicitly, within its period, and no
   deny rule that matches. Emergency pre-consent rules apply only while an emergency
   episode involving the actor's organisation is open.
6. The life-protection exception, when the deployment enables it: an open break-glass
   record lets an EMS or hospital read the emergency set for emergency treatment — but
   never where a deny rule of the resident applies.

Rules come from residents' Consent resources (``consent.policy.service``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import DateTime

from consent.actors import Actor, Purpose
from consent.policy.models import ANY, BreakGlass, ConsentRule, EmergencyEpisode
from phr.settings import get_settings
from phr.store.indexer import utcnow
from phr.store.models import Resource, ResourceSource

__all__ = [
    "ADMINISTRATIVE_TYPES",
    "CLINICAL_PURPOSES",
    "DISASTER_SET",
    "EMERGENCY_SET",
    "ROLE_PURPOSES",
    "ROLE_TYPES",
    "Decision",
    "access_clause",
    "basis",
    "consent_refs",
    "decide",
    "role_allows",
]

# Purposes a consent "for any purpose" covers; research and public health must be named.
CLINICAL_PURPOSES = frozenset(
    {
        Purpose.TREATMENT,
        Purpose.EMERGENCY,
        Purpose.HOME_CARE,
        Purpose.TRIAGE,
        Purpose.MEDICATION_REVIEW,
    }
)

# What each staff role may read of residents' records at all — before any consent, and
# whatever a consent names (least privilege; a consent cannot widen it). Clinical roles
# read for care; a nurse also for public health (保健師 at the municipality); a clerk
# (医療事務) only the administrative record; analysts work on de-identified data
# (population analytics), administrators manage accounts: neither reads a record.
ADMINISTRATIVE_TYPES = frozenset(
    {"Patient", "Coverage", "RelatedPerson", "Organization", "Practitioner", "PractitionerRole",
     "Location", "Appointment"}
)  # fmt: skip
ROLE_PURPOSES: dict[str, frozenset[Purpose]] = {
    "doctor": CLINICAL_PURPOSES,
    "nurse": CLINICAL_PURPOSES | {Purpose.PUBLIC_HEALTH},
    "pharmacist": CLINICAL_PURPOSES,
    "paramedic": frozenset({Purpose.EMERGENCY, Purpose.TREATMENT, Purpose.TRIAGE}),
    # Shelter staff read only for disaster relief, and only under the resident's
    # disaster-time consent while the evacuee is checked in (ADR 0006).
    "shelter_staff": frozenset({Purpose.DISASTER}),
    "clerk": frozenset({Purpose.TREATMENT, Purpose.HOME_CARE}),
    "analyst": frozenset(),
    "administrator": frozenset(),
}
ROLE_TYPES: dict[str, frozenset[str]] = {"clerk": ADMINISTRATIVE_TYPES}


def role_allows(role: str | None, purpose: Purpose, resource_type: str | None = None) -> bool:
    """May a staff member in this role read residents' data for this purpose (and type)?"""
    if purpose not in ROLE_PURPOSES.get(role or "", frozenset()):
        return False
    types = ROLE_TYPES.get(role or "")
    return types is None or resource_type is None or resource_type in types


# 緊急時の情報開示: the defined emergency set — allergies, current medicines, problems,
# ACP (advance-directive Consents), contacts, family doctor (Patient.generalPractitioner,
# CareTeam), alerts, and key recent results and vital signs (Observation; sensitive ones
# stay out unless the resident names their category).
EMERGENCY_SET = (
    "Patient",
    "AllergyIntolerance",
    "MedicationRequest",
    "MedicationDispense",
    "MedicationStatement",
    "Condition",
    "Consent",
    "RelatedPerson",
    "CareTeam",
    "Flag",
    "Observation",
)


# 災害時の情報提供: what a shelter needs to continue a resident's care — who they are,
# allergies, medicines from every source, problems (including disability certificates),
# and the advance-directive Consent (only whether an ACP exists is shown).
DISASTER_SET = (
    "Patient",
    "AllergyIntolerance",
    "MedicationRequest",
    "MedicationDispense",
    "MedicationStatement",
    "Condition",
    "Consent",
)


@dataclass(frozen=True)
class Decision:
    permit: bool
    reason: str
    consent_ref: str | None = None


def _actor_keys(actor: Actor) -> list[tuple[str, str]]:
    keys = [("any", ANY)]
    if actor.organization_id:
        keys.append(("organization", actor.organization_id))
    if actor.organization_kind:
        keys.append(("org_kind", actor.organization_kind))
    if actor.role:
        keys.append(("role", actor.role))
    if actor.user_id:
        keys.append(("person", actor.user_id))
    return keys


def _purposes(purpose: Purpose) -> list[str]:
    return [purpose.value, ANY] if purpose in CLINICAL_PURPOSES else [purpose.value]


def _rule_match(
    rule: Any,
    actor: Actor,
    purpose: Purpose,
    resident: Any,
    rtype: Any,
    sensitivity: Any,
    now: Any,
    decision: str,
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [
        rule.resident_id == resident,
        rule.decision == decision,
        tuple_(rule.actor_kind, rule.actor_value).in_(_actor_keys(actor)),
        rule.purpose.in_(_purposes(purpose)),
        or_(rule.resource_type == rtype, rule.resource_type == ANY),
        or_(rule.period_start.is_(None), rule.period_start <= now),
        or_(rule.period_end.is_(None), rule.period_end > now),
    ]
    if decision == "permit":
        # Ordinary data needs a general rule; sensitive data a rule naming its category.
        conds.append(rule.category == _coalesce(sensitivity))
        episode = exists().where(
            EmergencyEpisode.resident_id == rule.resident_id,
            EmergencyEpisode.closed_at.is_(None),
            EmergencyEpisode.expires_at > now,
            or_(
                EmergencyEpisode.ems_organization_id == actor.organization_id,
                EmergencyEpisode.receiving_organization_id == actor.organization_id,
            ),
        )
        conds.append(or_(rule.emergency.is_(False), episode))
    else:
        conds.append(or_(rule.category == ANY, rule.category == _coalesce(sensitivity)))
    return conds


def _coalesce(sensitivity: Any) -> Any:
    if sensitivity is None:
        return ANY
    if isinstance(sensitivity, str):
        return sensitivity
    return func.coalesce(sensitivity, literal(ANY))


def _consent_clause(
    actor: Actor,
    purpose: Purpose,
    resident: Any,
    rtype: Any,
    sensitivity: Any,
    now: Any,
    *,
    life_protection: bool | None = None,
) -> ColumnElement[bool]:
    permit = exists().where(
        *_rule_match(ConsentRule, actor, purpose, resident, rtype, sensitivity, now, "permit")
    )
    deny = _deny(actor, purpose, resident, rtype, sensitivity, now)
    allowed: ColumnElement[bool] = and_(permit, not_(deny))
    if life_protection is None:
        life_protection = get_settings().life_protection_exception
    if (
        life_protection
        and purpose == Purpose.EMERGENCY
        and actor.organization_kind in ("ems", "hospital")
    ):
        glass = exists().where(
            BreakGlass.resident_id == resident,
            BreakGlass.organization_id == actor.organization_id,
            BreakGlass.expires_at > now,
        )
        in_set = (
            rtype.in_(EMERGENCY_SET)
            if not isinstance(rtype, str)
            else (true() if rtype in EMERGENCY_SET else false())
        )
        ordinary = (
            sensitivity.is_(None)
            if not isinstance(sensitivity, str | None)
            else (true() if sensitivity is None else false())
        )
        allowed = or_(allowed, and_(glass, in_set, ordinary, not_(deny)))
    return allowed


def _deny(
    actor: Actor, purpose: Purpose, resident: Any, rtype: Any, sensitivity: Any, now: Any
) -> ColumnElement[bool]:
    return exists().where(
        *_rule_match(ConsentRule, actor, purpose, resident, rtype, sensitivity, now, "deny")
    )


def withheld(
    session: Session, actor: Actor, purpose: Purpose, resident_id: str
) -> set[tuple[str, str]]:
    """The resident's records (type, id) their own deny rules withhold from this actor for
    this purpose now — what a preview must leave out to show exactly what they would see."""
    rows = session.execute(
        select(Resource.resource_type, Resource.id).where(
            Resource.resident_id == resident_id,
            Resource.deleted.is_(False),
            _deny(
                actor,
                purpose,
                Resource.resident_id,
                Resource.resource_type,
                Resource.sensitivity,
                UtcNow(),
            ),
        )
    )
    return {(t, i) for t, i in rows}


def access_clause(
    actor: Actor, purpose: Purpose, session: Session | None = None
) -> ColumnElement[bool]:
    """Condition on :class:`Resource` rows the actor may see for this purpose.

    The condition reads the clock in the database (:class:`UtcNow`), so it depends only
    on who asks and why: it is built once per (actor, purpose) and reused (building it is
    a third of a search's Python time otherwise). The PIA gate is checked on every call.
    """
    if actor.service and not _pia_ok(session, actor.service):
        return false()
    if actor.kind == "system":
        return true()
    if actor.kind == "resident":
        if not actor.resident_id:
            return false()
        return Resource.resident_id == actor.resident_id
    if actor.kind == "trusted_person" or (
        actor.kind in ("organization", "staff") and actor.organization_id
    ):
        return _cached_clause(
            actor.kind,
            actor.organization_id,
            actor.organization_kind,
            actor.role,
            actor.user_id,
            purpose,
            get_settings().life_protection_exception,
        )
    return false()


@lru_cache(maxsize=4096)
def _cached_clause(
    kind: str,
    organization_id: str | None,
    organization_kind: str | None,
    role: str | None,
    user_id: str | None,
    purpose: Purpose,
    life_protection: bool,
) -> ColumnElement[bool]:
    # Only the fields the condition depends on (_actor_keys, the emergency episode and
    # break-glass checks): one entry per organisation/role/person and purpose.
    actor = Actor(
        kind=kind,  # type: ignore[arg-type]
        organization_id=organization_id,
        organization_kind=organization_kind,
        role=role,
        user_id=user_id,
    )
    now = UtcNow()
    consented = _consent_clause(
        actor,
        purpose,
        Resource.resident_id,
        Resource.resource_type,
        Resource.sensitivity,
        now,
        life_protection=life_protection,
    )
    if kind == "trusted_person":
        # Trusted persons see what residents share with them by person rules only.
        return and_(Resource.resident_id.is_not(None), consented)
    shared = Resource.resident_id.is_(None)
    if kind == "staff" and not role_allows(role, purpose):
        return shared  # reference data only: the role reads no one's record
    own = exists().where(
        ResourceSource.resource_pk == Resource.pk,
        ResourceSource.organization_id == organization_id,
    )
    types = ROLE_TYPES.get(role or "") if kind == "staff" else None
    if types is not None:
        return or_(shared, and_(Resource.resource_type.in_(sorted(types)), or_(own, consented)))
    return or_(shared, own, consented)


class UtcNow(FunctionElement[datetime]):
    """The database's clock (the statement's start) as naive UTC, in the stored format of
    each dialect. Read by the database, so a condition using it stays the same object from
    one request to the next."""

    type = DateTime()
    inherit_cache = True


@compiles(UtcNow, "postgresql")
def _utc_now_pg(element: Any, compiler: Any, **kw: Any) -> str:
    return "(statement_timestamp() AT TIME ZONE 'UTC')"


@compiles(UtcNow, "sqlite")
def _utc_now_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text.
    return "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000')"


def _pia_ok(session: Session | None, service: str) -> bool:
    if session is None:
        return False
    try:
        from consent.pia.service import pia_approved
    except ImportError:  # pragma: no cover - the PIA register is part of the platform
        return False
    return bool(pia_approved(session, service))


def decide(
    session: Session,
    actor: Actor,
    purpose: Purpose,
    *,
    resident_id: str,
    resource_type: str,
    sensitivity: str | None = None,
) -> Decision:
    """The decision for one kind of data of one resident (previews, explanations)."""
    if actor.service and not _pia_ok(session, actor.service):
        return Decision(False, "no approved privacy impact assessment")
    if actor.kind == "system":
        return Decision(True, "platform")
    if actor.kind == "resident":
        ok = actor.resident_id == resident_id
        return Decision(ok, "self" if ok else "not your record")
    if actor.kind == "staff" and not role_allows(actor.role, purpose, resource_type):
        return Decision(False, f"the role {actor.role} does not read this for this purpose")
    now = utcnow()
    if session.scalar(select(_deny(actor, purpose, resident_id, resource_type, sensitivity, now))):
        ref = _first_consent(
            session, actor, purpose, resident_id, resource_type, sensitivity, now, "deny"
        )
        return Decision(False, "denied by the resident", ref)
    allowed = session.scalar(
        select(_consent_clause(actor, purpose, resident_id, resource_type, sensitivity, now))
    )
    if not allowed:
        return Decision(False, "no consent")
    ref = _first_consent(
        session, actor, purpose, resident_id, resource_type, sensitivity, now, "permit"
    )
    return Decision(True, "consent" if ref else "life-protection exception", ref)


def _first_consent(
    session: Session,
    actor: Actor,
    purpose: Purpose,
    resident_id: str,
    rtype: str,
    sensitivity: str | None,
    now: datetime,
    decision: str,
) -> str | None:
    return session.scalar(
        select(ConsentRule.consent_id)
        .where(
            *_rule_match(
                ConsentRule, actor, purpose, resident_id, rtype, sensitivity, now, decision
            )
        )
        .limit(1)
    )


def consent_refs(
    session: Session, actor: Actor, purpose: Purpose, resident_ids: list[str]
) -> dict[str, str]:
    """For the access log: which consents of each resident let this actor read."""
    if actor.kind in ("system", "resident") or not resident_ids:
        return {}
    now = utcnow()
    rows = session.execute(
        select(ConsentRule.resident_id, ConsentRule.consent_id).where(
            ConsentRule.resident_id.in_(resident_ids),
            ConsentRule.decision == "permit",
            tuple_(ConsentRule.actor_kind, ConsentRule.actor_value).in_(_actor_keys(actor)),
            ConsentRule.purpose.in_(_purposes(purpose)),
            or_(ConsentRule.period_start.is_(None), ConsentRule.period_start <= now),
            or_(ConsentRule.period_end.is_(None), ConsentRule.period_end > now),
        )
    ).all()
    out: dict[str, set[str]] = {}
    for resident, cid in rows:
        out.setdefault(resident, set()).add(f"Consent/{cid}")
    return {k: ",".join(sorted(v)) for k, v in out.items()}


def basis(actor: Actor, purpose: Purpose) -> str:
    """Short label of the rule family that lets this actor read (for the access log)."""
    if actor.kind == "system":
        return "platform"
    if actor.kind == "resident":
        return "self"
    return "own-records-or-consent"
