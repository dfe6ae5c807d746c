"""Residents' consents: FHIR Consent resources they own, flattened into rules.

A consent is a FHIR R4 ``Consent`` (scope patient-privacy, policy OPTIN) in the
resident's record. Its provision tree — permit/deny, period, actors (an organisation, every
organisation of a kind, a staff role, a person), purposes, data classes (resource types),
sensitive categories (security labels), nested exceptions — is flattened into
``consent_rule`` rows whenever the consent changes; revoking it deletes its rules, so
revocation takes effect on the next request.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from itertools import product
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from consent.actors import PURPOSE_SYSTEM, Actor, Purpose
from consent.engine import DISASTER_SET, EMERGENCY_SET, decide
from consent.policy import schemas
from consent.policy.models import ANY, BreakGlass, ConsentRule, EmergencyEpisode
from fhir_gateway.validation import known_type, validate_resource
from phr.errors import Conflict, Forbidden, InvalidInput, NotFound
from phr.settings import get_settings
from phr.store import repository as repo
from phr.store import search as fsearch
from phr.store.indexer import date_range, iso_instant, utcnow
from phr.store.reader import RecordReader
from phr.store.sensitivity import CATEGORIES

SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
CATEGORY_SYSTEM = "urn:phr:consent-category"
ORG_KIND_SYSTEM = "urn:phr:organization-kind"
ROLE_SYSTEM = "urn:phr:staff-role"
PERSON_SYSTEM = "urn:phr:person"
SENSITIVITY_SYSTEM = "urn:phr:sensitivity"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
EMERGENCY_CODE = "emergency-preconsent"
# 災害時の情報提供に係る同意 (ADR 0006): shelters see the disaster set while the resident
# is checked in. Like the emergency pre-consent, its rules are episode-bound.
DISASTER_CODE = "disaster-consent"
EPISODE_BOUND = frozenset({EMERGENCY_CODE, DISASTER_CODE})

PURPOSE_LABELS = {
    Purpose.TREATMENT: ("診療", "treatment"),
    Purpose.EMERGENCY: ("救急医療", "emergency treatment"),
    Purpose.HOME_CARE: ("在宅療養支援", "home care"),
    Purpose.TRIAGE: ("トリアージ", "triage"),
    Purpose.MEDICATION_REVIEW: ("服薬確認", "medication review"),
    Purpose.RESEARCH: ("研究", "research"),
    Purpose.PUBLIC_HEALTH: ("公衆衛生・統計", "public health and statistics"),
    Purpose.DISASTER: ("災害時の医療の継続", "disaster relief (continuing care)"),
}
KIND_LABELS = {
    "ems": ("救急隊", "paramedics (EMS)"),
    "hospital": ("病院", "hospitals"),
    "clinic": ("診療所", "clinics"),
    "pharmacy": ("薬局", "pharmacies"),
    "nurse_station": ("訪問看護ステーション", "visiting-nurse stations"),
    "municipality": ("市役所", "the city"),
    "insurer": ("保険者", "insurers"),
    "service_provider": ("連携事業者", "service providers"),
    "shelter": ("避難所", "evacuation shelters"),
}


# ---- building Consent resources -------------------------------------------------------------


def _recipient_actor(r: schemas.Recipient) -> dict[str, Any] | None:
    role = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}
        ]
    }
    if r.kind == "any":
        return None
    if r.kind == "organization":
        ref: dict[str, Any] = {"reference": f"Organization/{r.value}"}
    elif r.kind == "org_kind":
        ref = {
            "identifier": {"system": ORG_KIND_SYSTEM, "value": r.value},
            "display": KIND_LABELS.get(r.value, (r.value, r.value))[0],
        }
    elif r.kind == "role":
        ref = {"identifier": {"system": ROLE_SYSTEM, "value": r.value}}
    else:
        ref = {"identifier": {"system": PERSON_SYSTEM, "value": r.value}}
    return {"role": role, "reference": ref}


def _check(p: schemas.ProvisionIn) -> None:
    for t in p.data_classes:
        if not known_type(t):
            raise InvalidInput(f"unknown data class (resource type) {t!r}")
    for c in p.sensitive_categories:
        if c not in CATEGORIES:
            raise InvalidInput(f"unknown sensitive category {c!r}; one of {CATEGORIES}")
    if p.period_start and p.period_end and p.period_end <= p.period_start:
        raise InvalidInput("the period ends before it starts")


def _provision(p: schemas.ProvisionIn, decision: str) -> dict[str, Any]:
    _check(p)
    out: dict[str, Any] = {"type": decision}
    if p.period_start or p.period_end:
        out["period"] = {
            k: iso_instant(v.replace(tzinfo=None) - (v.utcoffset() or timedelta()))
            for k, v in (("start", p.period_start), ("end", p.period_end))
            if v
        }
    actors = [a for a in (_recipient_actor(r) for r in p.recipients) if a]
    if actors:
        out["actor"] = actors
    if p.purposes:
        out["purpose"] = [{"system": PURPOSE_SYSTEM, "code": x.value} for x in p.purposes]
    if p.data_classes:
        out["class"] = [{"system": RESOURCE_TYPES, "code": t} for t in p.data_classes]
    if p.sensitive_categories:
        out["securityLabel"] = [
            {"system": SENSITIVITY_SYSTEM, "code": c} for c in p.sensitive_categories
        ]
    return out


def build_consent(
    resident_id: str,
    body: schemas.ConsentCreate,
    *,
    emergency: bool = False,
    disaster: bool = False,
) -> dict[str, Any]:
    provision = _provision(body, body.decision)
    opposite = "deny" if body.decision == "permit" else "permit"
    if body.exceptions:
        provision["provision"] = [_provision(x, opposite) for x in body.exceptions]
    category = [
        {
            "coding": [
                {"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}
            ]
        }
    ]
    if emergency:
        category.append(
            {
                "coding": [
                    {
                        "system": CATEGORY_SYSTEM,
                        "code": EMERGENCY_CODE,
                        "display": "緊急時の情報開示に係る事前同意",
                    }
                ]
            }
        )
    if disaster:
        category.append(
            {
                "coding": [
                    {
                        "system": CATEGORY_SYSTEM,
                        "code": DISASTER_CODE,
                        "display": "災害時の情報提供に係る同意",
                    }
                ]
            }
        )
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": "patient-privacy"}]},
        "category": category,
        "patient": {"reference": f"Patient/{resident_id}"},
        "dateTime": iso_instant(utcnow()),
        "performer": [{"reference": f"Patient/{resident_id}"}],
        "policyRule": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}
            ]
        },
        "provision": provision,
    }


# ---- flattening -----------------------------------------------------------------------------


def _actor_keys(provision: dict[str, Any]) -> list[tuple[str, str]]:
    keys = []
    for a in provision.get("actor", []) or []:
        ref = a.get("reference") or {}
        if isinstance(ref.get("reference"), str) and ref["reference"].startswith("Organization/"):
            keys.append(("organization", ref["reference"].split("/", 1)[1]))
            continue
        if isinstance(ref.get("reference"), str) and "/" in ref["reference"]:
            keys.append(("person", ref["reference"].split("/", 1)[1]))
            continue
        ident = ref.get("identifier") or {}
        kind = {ORG_KIND_SYSTEM: "org_kind", ROLE_SYSTEM: "role", PERSON_SYSTEM: "person"}.get(
            ident.get("system", "")
        )
        if kind and ident.get("value"):
            keys.append((kind, str(ident["value"])))
    return keys


def _dt(text: str | None) -> datetime | None:
    if not text:
        return None
    rng = date_range(text)
    return rng[0] if rng else None


def flatten(consent: dict[str, Any], resident_id: str) -> list[dict[str, Any]]:
    """Rule rows of one active Consent (nested provisions inherit what they omit)."""
    if consent.get("status") != "active":
        return []
    # Episode-bound (emergency pre-consent, disaster consent): in force only while an
    # episode involving the reader's organisation is open.
    emergency = bool(_category_codes(consent) & EPISODE_BOUND)
    rows: list[dict[str, Any]] = []

    def walk(p: dict[str, Any], inherited: dict[str, Any], depth: int) -> None:
        actors = _actor_keys(p) or inherited["actors"]
        purposes = [c["code"] for c in p.get("purpose", []) or [] if c.get("code")] or inherited[
            "purposes"
        ]
        classes = [c["code"] for c in p.get("class", []) or [] if c.get("code")] or inherited[
            "classes"
        ]
        labels = [c["code"] for c in p.get("securityLabel", []) or [] if c.get("code")]
        period = p.get("period") or {}
        start = _dt(period.get("start")) or inherited["start"]
        end = _dt(period.get("end")) or inherited["end"]
        decision = p.get("type", inherited["decision"])
        # A permit shares ordinary data plus the sensitive categories it names; a deny
        # without labels withholds everything, with labels only those categories.
        categories = [ANY, *labels] if decision == "permit" else labels or [ANY]
        for (ak, av), purpose, rtype, cat in product(actors, purposes, classes, categories):
            rows.append(
                {
                    "resident_id": resident_id,
                    "consent_id": consent["id"],
                    "decision": decision,
                    "actor_kind": ak,
                    "actor_value": av,
                    "purpose": purpose,
                    "resource_type": rtype,
                    "category": cat,
                    "period_start": start,
                    "period_end": end,
                    "emergency": emergency,
                    "depth": depth,
                }
            )
        nested = {
            "actors": actors,
            "purposes": purposes,
            "classes": classes,
            "start": start,
            "end": end,
            "decision": decision,
        }
        for child in p.get("provision", []) or []:
            walk(child, nested, depth + 1)

    root = consent.get("provision") or {}
    top = {
        "actors": [("any", ANY)],
        "purposes": [ANY],
        "classes": [ANY],
        "start": None,
        "end": None,
        "decision": "permit",
    }
    walk(root, top, 0)
    return rows


def rebuild_rules(session: Session, consent: dict[str, Any], resident_id: str) -> int:
    session.execute(delete(ConsentRule).where(ConsentRule.consent_id == consent["id"]))
    rows = flatten(consent, resident_id)
    if rows:
        repo.bulk_insert(session, ConsentRule.__table__, rows)
    session.flush()
    return len(rows)


# ---- the resident's API ---------------------------------------------------------------------


def _require_resident(actor: Actor) -> str:
    if actor.kind != "resident" or not actor.resident_id:
        raise Forbidden("only the resident manages their consents")
    return actor.resident_id


def _category_codes(consent: dict[str, Any]) -> set[str]:
    return {
        str(c.get("code"))
        for cat in consent.get("category", []) or []
        for c in cat.get("coding", []) or []
    }


def _is_emergency(consent: dict[str, Any]) -> bool:
    return EMERGENCY_CODE in _category_codes(consent)


def _is_disaster(consent: dict[str, Any]) -> bool:
    return DISASTER_CODE in _category_codes(consent)


def _store(session: Session, consent: dict[str, Any], resident_id: str) -> repo.Written:
    problems = validate_resource(consent)
    if problems:
        raise InvalidInput("the consent is not a valid FHIR Consent", issues=problems)
    written = repo.put_many(session, [repo.Put(consent, resident_id)])[0]
    rebuild_rules(session, consent, resident_id)
    return written


def list_consents(session: Session, actor: Actor) -> list[schemas.ConsentRead]:
    rid = _require_resident(actor)
    reader = RecordReader(session, actor, Purpose.PATIENT_ACCESS)
    req = fsearch.parse("Consent", [("patient", rid), ("_count", "1000")])
    out = []
    for row in reader.search(req).matches:
        c = repo.load_json(row.content)
        if (c.get("scope", {}).get("coding") or [{}])[0].get("code") != "patient-privacy":
            continue
        out.append(_read(c, row.version_id))
    return out


def _read(c: dict[str, Any], version: int) -> schemas.ConsentRead:
    ja, en = describe(c)
    return schemas.ConsentRead(
        id=c["id"],
        version=version,
        status=c.get("status", ""),
        decision=(c.get("provision") or {}).get("type", "permit"),
        emergency=_is_emergency(c),
        disaster=_is_disaster(c),
        summary_ja=ja,
        summary_en=en,
        resource=c,
    )


def create_consent(
    session: Session, actor: Actor, body: schemas.ConsentCreate
) -> schemas.ConsentRead:
    rid = _require_resident(actor)
    consent = build_consent(rid, body)
    w = _store(session, consent, rid)
    return _read(consent, w.version_id)


def _own_consent(session: Session, actor: Actor, consent_id: str) -> tuple[dict[str, Any], int]:
    rid = _require_resident(actor)
    row = RecordReader(session, actor, Purpose.PATIENT_ACCESS).read("Consent", consent_id)
    c = repo.load_json(row.content)
    if c.get("patient", {}).get("reference") != f"Patient/{rid}":
        raise NotFound(f"Consent/{consent_id} not found")
    return c, row.version_id


def update_consent(
    session: Session, actor: Actor, consent_id: str, body: schemas.ConsentCreate
) -> schemas.ConsentRead:
    old, _ = _own_consent(session, actor, consent_id)
    if old.get("status") != "active":
        raise Conflict("a revoked consent cannot be changed; make a new one")
    new = build_consent(
        actor.resident_id or "", body, emergency=_is_emergency(old), disaster=_is_disaster(old)
    )
    new["id"] = consent_id
    w = _store(session, new, actor.resident_id or "")
    return _read(new, w.version_id)


def revoke_consent(session: Session, actor: Actor, consent_id: str) -> schemas.ConsentRead:
    c, version = _own_consent(session, actor, consent_id)
    if c.get("status") == "inactive":
        return _read(c, version)
    c["status"] = "inactive"
    w = _store(session, c, actor.resident_id or "")
    return _read(c, w.version_id)


def set_emergency_consent(
    session: Session, actor: Actor, body: schemas.EmergencyConsentIn
) -> schemas.ConsentRead | None:
    """The emergency pre-consent switch: paramedics and the receiving hospital may see the
    emergency set during an emergency episode."""
    return _switch(session, actor, body, emergency=True)


def set_disaster_consent(
    session: Session, actor: Actor, body: schemas.EmergencyConsentIn
) -> schemas.ConsentRead | None:
    """The disaster-time consent switch (ADR 0006): evacuation shelters may see the disaster
    set (who the resident is, allergies, medicines, problems, whether an ACP exists) while
    the resident is checked in at one, for disaster relief."""
    return _switch(session, actor, body, emergency=False)


def _switch(
    session: Session, actor: Actor, body: schemas.EmergencyConsentIn, *, emergency: bool
) -> schemas.ConsentRead | None:
    rid = _require_resident(actor)
    current = [
        c
        for c in list_consents(session, actor)
        if c.status == "active" and (c.emergency if emergency else c.disaster)
    ]
    for c in current:
        revoke_consent(session, actor, c.id)
    if not body.enabled:
        return None
    kinds, purpose, classes = (
        (("ems", "hospital"), Purpose.EMERGENCY, EMERGENCY_SET)
        if emergency
        else (("shelter",), Purpose.DISASTER, DISASTER_SET)
    )
    create = schemas.ConsentCreate(
        decision="permit",
        recipients=[schemas.Recipient(kind="org_kind", value=k) for k in kinds],
        purposes=[purpose],
        data_classes=list(classes),
        sensitive_categories=body.sensitive_categories,
    )
    consent = build_consent(rid, create, emergency=emergency, disaster=not emergency)
    w = _store(session, consent, rid)
    return _read(consent, w.version_id)


def emergency_consent_holders(session: Session, resident_ids: list[str]) -> set[str]:
    """Which of these residents have an emergency pre-consent in force now.

    For aggregate statistics only (ADR 0007): the caller is a platform service that already
    holds these residents for a purpose they consented to (public health), and lets only
    suppressed counts leave it. The consents themselves stay unreadable to anyone but the
    resident.
    """
    now = utcnow()
    out: set[str] = set()
    for i in range(0, len(resident_ids), 1000):
        chunk = resident_ids[i : i + 1000]
        out |= set(
            session.scalars(
                select(ConsentRule.resident_id)
                .where(
                    ConsentRule.resident_id.in_(chunk),
                    ConsentRule.emergency.is_(True),
                    ConsentRule.decision == "permit",
                    (ConsentRule.period_start.is_(None)) | (ConsentRule.period_start <= now),
                    (ConsentRule.period_end.is_(None)) | (ConsentRule.period_end > now),
                )
                .distinct()
            )
        )
    return out


def preview(
    session: Session, actor: Actor, *, as_kind: str, purpose: Purpose, organization_id: str | None
) -> schemas.PreviewRead:
    """What would this recipient see? Counted with the recipient's own access condition,
    logged as the resident's own look."""
    rid = _require_resident(actor)
    hypothetical = Actor(
        kind="organization",
        organization_id=organization_id or f"preview-{as_kind}",
        organization_kind=as_kind,
        client_id="preview",
    )
    from consent.engine import access_clause
    from phr.store.models import Resource

    clause = access_clause(hypothetical, purpose, session)
    mine = RecordReader(session, actor, Purpose.PATIENT_ACCESS)
    rows = session.execute(
        select(Resource.resource_type, Resource.id).where(
            Resource.resident_id == rid,
            Resource.deleted.is_(False),
            clause,
            Resource.resource_type != "Provenance",
        )
    ).all()
    counts = Counter(t for t, _ in rows)
    examples: dict[str, list[str]] = {}
    for t, i in rows:
        examples.setdefault(t, [])
        if len(examples[t]) < 3:
            examples[t].append(f"{t}/{i}")
    mine._log_one("preview", "Patient", rid, rid, count=len(rows))
    note = (
        "救急時は緊急搬送中のみ表示されます / shown only during an emergency episode"
        if purpose == Purpose.EMERGENCY
        else ""
    )
    return schemas.PreviewRead(
        as_actor=organization_id or as_kind,
        purpose=purpose.value,
        decision_note=note,
        items=[
            schemas.PreviewItem(resource_type=t, count=n, examples=examples[t])
            for t, n in sorted(counts.items())
        ],
    )


def describe(c: dict[str, Any]) -> tuple[str, str]:
    """One sentence in Japanese and English of what a consent allows."""
    p = c.get("provision") or {}
    who_ja, who_en = [], []
    for kind, value in _actor_keys(p) or [("any", ANY)]:
        if kind == "org_kind":
            ja, en = KIND_LABELS.get(value, (value, value))
        elif kind == "organization":
            ja, en = f"組織 {value}", f"organisation {value}"
        elif kind == "role":
            ja, en = f"{value} (職種)", f"any {value}"
        elif kind == "person":
            ja, en = f"{value} さん", f"person {value}"
        else:
            ja, en = "誰でも", "anyone"
        who_ja.append(ja)
        who_en.append(en)
    purposes = [
        Purpose(x["code"])
        for x in p.get("purpose", [])
        if x.get("code") in {q.value for q in Purpose}
    ]
    why_ja = "・".join(PURPOSE_LABELS.get(x, (x.value, x.value))[0] for x in purposes) or "診療全般"
    why_en = ", ".join(PURPOSE_LABELS.get(x, (x.value, x.value))[1] for x in purposes) or "any care"
    what = [x["code"] for x in p.get("class", [])] or ["all records"]
    until = (p.get("period") or {}).get("end")
    verb_ja, verb_en = (
        ("見せる", "may see")
        if p.get("type", "permit") == "permit"
        else ("見せない", "may not see")
    )
    ja = f"{'、'.join(who_ja)} に {why_ja} のため {', '.join(what)} を{verb_ja}"
    en = f"{', '.join(who_en)} {verb_en} {', '.join(what)} for {why_en}"
    if until:
        ja += f"（{until[:10]} まで）"
        en += f" until {until[:10]}"
    if c.get("status") != "active":
        ja += "［取り消し済み］"
        en += " [revoked]"
    return ja, en


# ---- emergencies ----------------------------------------------------------------------------


def _require_emergency_org(actor: Actor, kinds: tuple[str, ...] = ("ems",)) -> str:
    if actor.kind not in ("organization", "staff") or actor.organization_kind not in kinds:
        raise Forbidden(f"only {' or '.join(kinds)} organisations may do this")
    assert actor.organization_id
    return actor.organization_id


EPISODE_KINDS = ("ems", "hospital", "shelter")


def open_episode(
    session: Session,
    actor: Actor,
    body: schemas.EpisodeCreate,
    *,
    kinds: tuple[str, ...] = ("ems",),
    notice: tuple[str, str] = (
        "救急隊があなたの緊急時情報を参照できる状態になりました",
        "Paramedics attending you can now see your emergency information",
    ),
    hours: float | None = None,
) -> EmergencyEpisode:
    """An episode attended by the actor's organisation: the episode-bound consents of the
    resident (emergency pre-consent for EMS, disaster consent for a shelter) apply to it
    while open. ``kinds``: which organisations may open one through this caller; ``hours``:
    how long it lasts unless closed (default ``PHR_EMERGENCY_EPISODE_HOURS``)."""
    org = _require_emergency_org(actor, kinds)
    now = utcnow()
    from phr.store.models import Resident

    if session.get(Resident, body.patient) is None:
        raise NotFound(f"resident {body.patient} not found")
    ep = EmergencyEpisode(
        id=repo.new_id(),
        resident_id=body.patient,
        ems_organization_id=org,
        receiving_organization_id=body.receiving_organization_id,
        opened_by=actor.user_id or actor.client_id or org,
        opened_at=now,
        expires_at=now + timedelta(hours=hours or get_settings().emergency_episode_hours),
    )
    session.add(ep)
    session.flush()
    _notify(session, body.patient, actor, "emergency-episode", *notice)
    return ep


def _episode(session: Session, actor: Actor, episode_id: str) -> EmergencyEpisode:
    org = _require_emergency_org(actor, EPISODE_KINDS)
    ep = session.get(EmergencyEpisode, episode_id)
    if ep is None or org not in (ep.ems_organization_id, ep.receiving_organization_id):
        raise NotFound(f"episode {episode_id} not found")
    return ep


def handover(
    session: Session, actor: Actor, episode_id: str, body: schemas.HandoverIn
) -> EmergencyEpisode:
    ep = _episode(session, actor, episode_id)
    if ep.closed_at is not None:
        raise Conflict("the episode is closed")
    ep.receiving_organization_id = body.receiving_organization_id
    session.flush()
    return ep


def close_episode(session: Session, actor: Actor, episode_id: str) -> EmergencyEpisode:
    ep = _episode(session, actor, episode_id)
    if ep.closed_at is None:
        ep.closed_at = utcnow()
        session.flush()
    return ep


def break_glass(session: Session, actor: Actor, body: schemas.BreakGlassCreate) -> BreakGlass:
    """Open the life-protection exception for an unconscious resident, if enabled."""
    if not get_settings().life_protection_exception:
        raise Forbidden("the life-protection exception is not enabled in this deployment")
    org = _require_emergency_org(actor, ("ems", "hospital"))
    decision = decide(
        session, actor, Purpose.EMERGENCY, resident_id=body.patient, resource_type="Patient"
    )
    if decision.reason == "denied by the resident":
        raise Forbidden("the resident has refused disclosure; the exception does not apply")
    now = utcnow()
    bg = BreakGlass(
        id=repo.new_id(),
        resident_id=body.patient,
        organization_id=org,
        opened_by=actor.user_id or actor.client_id or org,
        reason=body.reason,
        opened_at=now,
        expires_at=now + timedelta(minutes=get_settings().break_glass_minutes),
        review_status="pending",
    )
    session.add(bg)
    session.flush()
    _notify(
        session,
        body.patient,
        actor,
        "break-glass",
        "生命保護のための例外的な参照が行われました",
        "Your emergency information was opened under the life-protection exception",
    )
    return bg


def review_break_glass(session: Session, bg_id: str, *, reviewer: str, status: str) -> BreakGlass:
    if status not in ("justified", "unjustified"):
        raise InvalidInput("status must be justified or unjustified")
    bg = session.get(BreakGlass, bg_id)
    if bg is None:
        raise NotFound(f"break-glass {bg_id} not found")
    session.execute(
        update(BreakGlass)
        .where(BreakGlass.id == bg_id)
        .values(review_status=status, reviewed_by=reviewer, reviewed_at=utcnow())
    )
    session.flush()
    session.refresh(bg)
    return bg


def _notify(session: Session, resident_id: str, actor: Actor, kind: str, ja: str, en: str) -> None:
    try:
        from consent import notifications
    except ImportError:  # pragma: no cover - the inbox is part of the platform
        return
    fn = getattr(notifications, "notify", None)
    if fn is None:
        return
    fn(
        session,
        resident_id=resident_id,
        kind=kind,
        title=ja,
        body=en,
        data={"organization": actor.organization_id, "client": actor.client_id},
    )
