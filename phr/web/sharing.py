"""Sharing settings in plain words: consents (who, what, why, until when), the emergency
pre-consent with its preview, trusted persons.

Consents are created, changed and revoked by the trust service's policy service
(:mod:`consent.policy.service`); this module only words them for the page and turns the
page's form into a :class:`~consent.policy.schemas.ConsentCreate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy.orm import Session

from consent import engine, notifications
from consent.actors import Actor, Purpose
from consent.audit_labels import purpose_label, role_label, types_phrase
from consent.engine import EMERGENCY_SET
from consent.policy import schemas
from consent.policy import service as policy
from phr.errors import InvalidInput
from phr.web import repository
from phr.web.i18n import Translator
from phr.web.service import Item, Record, load_record

__all__ = [
    "ConsentView",
    "EmergencyPreview",
    "consent_from_form",
    "consent_views",
    "emergency_preview",
]

# What the form offers (the policy service accepts more through its API).
FORM_PURPOSES = (
    Purpose.TREATMENT,
    Purpose.EMERGENCY,
    Purpose.HOME_CARE,
    Purpose.TRIAGE,
    Purpose.MEDICATION_REVIEW,
    Purpose.RESEARCH,
    Purpose.PUBLIC_HEALTH,
)
FORM_DATA = (
    "AllergyIntolerance",
    "MedicationRequest",
    "MedicationDispense",
    "Condition",
    "Observation",
    "Immunization",
    "Encounter",
    "Procedure",
    "DiagnosticReport",
)
FORM_KINDS = tuple(policy.KIND_LABELS)
FORM_ROLES = ("doctor", "nurse", "pharmacist", "paramedic")


@dataclass
class ConsentView:
    id: str
    active: bool
    emergency: bool
    permit: bool
    who: str
    what: str
    why: str
    until: str
    since: str
    form: dict[str, Any]  # the values to pre-fill the change form
    provision: dict[str, Any]


def _who(keys: list[tuple[str, str]], names: dict[str, str], t: Translator) -> str:
    parts = []
    for kind, value in keys:
        if kind == "organization":
            parts.append(names.get(value, value))
        elif kind == "org_kind":
            labels = policy.KIND_LABELS.get(value, (value, value))
            parts.append(labels[0] if t.lang == "ja" else labels[1])
        elif kind == "role":
            parts.append(t("sharing.who.role", role=role_label(value, t.lang) or value))
        elif kind == "person":
            parts.append(t("sharing.who.person", person=value))
        else:
            parts.append(t("sharing.who.anyone"))
    return t("list.sep").join(parts) or t("sharing.who.anyone")


def consent_views(session: Session, actor: Actor, t: Translator) -> list[ConsentView]:
    consents = policy.list_consents(session, actor)
    org_ids = {
        v
        for c in consents
        for k, v in policy._actor_keys(c.resource.get("provision") or {})
        if k == "organization"
    }
    names = repository.organization_names(session, org_ids)
    out = []
    for c in consents:
        p = c.resource.get("provision") or {}
        keys = policy._actor_keys(p) or [("any", "*")]
        purposes = [x.get("code") for x in p.get("purpose") or [] if x.get("code")]
        classes = [x.get("code") for x in p.get("class") or [] if x.get("code")]
        period = p.get("period") or {}
        out.append(
            ConsentView(
                id=c.id,
                active=c.status == "active",
                emergency=c.emergency,
                permit=c.decision == "permit",
                who=_who(keys, names, t),
                what=types_phrase(classes, t.lang) if classes else t("sharing.what.all"),
                why=(
                    t("list.sep").join(purpose_label(x, t.lang) for x in purposes)
                    if purposes
                    else t("sharing.why.any_care")
                ),
                until=str(period.get("end") or "")[:10],
                since=str(period.get("start") or "")[:10],
                form={
                    "recipient": keys[0][0] + ":" + keys[0][1] if keys else "any:*",
                    "purposes": purposes,
                    "data": classes,
                    "until": str(period.get("end") or "")[:10],
                },
                provision=p,
            )
        )
    out.sort(key=lambda v: (not v.active, v.emergency))
    return out


def _form_list(form: Any, name: str) -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str)]


def consent_from_form(form: Any) -> schemas.ConsentCreate:
    """The page's form → the policy service's input (InvalidInput on bad values)."""
    recipient = form.get("recipient")
    if not isinstance(recipient, str) or ":" not in recipient:
        raise InvalidInput("sharing.error.recipient")
    kind, _, value = recipient.partition(":")
    if kind not in ("organization", "org_kind", "role", "any") or not value:
        raise InvalidInput("sharing.error.recipient")
    purposes = []
    for code in _form_list(form, "purpose"):
        try:
            purposes.append(Purpose(code))
        except ValueError:
            raise InvalidInput("sharing.error.purpose") from None
    if not purposes:
        raise InvalidInput("sharing.error.purpose")
    data = _form_list(form, "data")
    if any(d not in FORM_DATA for d in data):
        raise InvalidInput("sharing.error.data")
    until_text = form.get("until")
    until = None
    if isinstance(until_text, str) and until_text:
        try:
            day = datetime.strptime(until_text, "%Y-%m-%d").date()
        except ValueError:
            raise InvalidInput("sharing.error.until") from None
        until = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
        if until <= datetime.now(UTC):
            raise InvalidInput("sharing.error.until")
    return schemas.ConsentCreate(
        decision="permit",
        recipients=[schemas.Recipient(kind=kind, value=value)],  # type: ignore[arg-type]
        purposes=purposes,
        data_classes=data,
        period_end=until,
    )


# ---- the emergency pre-consent ----------------------------------------------------------------


@dataclass
class EmergencyPreview:
    """What paramedics (and the receiving hospital) would see during an emergency."""

    enabled: bool
    sensitive: list[str]
    by_type: list[tuple[str, list[Item]]]
    count: int
    withheld: int = 0  # records the resident's own deny rules keep from paramedics


# Who the preview shows the record to: any paramedic of any EMS organisation. A deny rule
# naming one organisation or person cannot be shown for "a paramedic" and is not applied.
PARAMEDIC = Actor(kind="staff", organization_kind="ems", role="paramedic")


def emergency_preview(
    session: Session, resident_id: str, views: list[ConsentView]
) -> EmergencyPreview:
    """The emergency set of the record as the consent engine would open it: the types of
    the active emergency consent, ordinary data plus the sensitive categories it names
    (a resident's privacy consents are never in it), less what the resident's own deny
    rules withhold from paramedics."""
    active = [v for v in views if v.emergency and v.active]
    if not active:
        return EmergencyPreview(False, [], [], 0)
    provision = active[0].provision
    classes = [x.get("code") for x in provision.get("class") or [] if x.get("code")] or list(
        EMERGENCY_SET
    )
    sensitive = [
        str(s.get("code"))
        for s in provision.get("securityLabel") or []
        if isinstance(s, dict) and s.get("code")
    ]
    record: Record = load_record(session, resident_id, classes, action="preview")
    denied = engine.withheld(session, PARAMEDIC, Purpose.EMERGENCY, resident_id)
    shown: list[tuple[str, list[Item]]] = []
    total = held = 0
    for rtype in classes:
        if rtype == "Patient":
            items = [record.patient] if record.patient else []
        else:
            items = [
                i for i in record.of(rtype) if i.sensitivity is None or i.sensitivity in sensitive
            ]
        kept = [i for i in items if (i.type, i.id) not in denied]
        held += len(items) - len(kept)
        if kept:
            shown.append((rtype, kept))
            total += len(kept)
    return EmergencyPreview(True, sensitive, shown, total, held)


# ---- trusted persons -------------------------------------------


def trusted_persons(session: Session, resident_id: str) -> list[str]:
    return [pid for pid, _ in notifications.watchers_for(session, resident_id, "emergency_access")]
