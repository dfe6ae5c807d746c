"""The PIA register: drafting, the approval workflow, the gate, and the public summary.

State machine (anything else is a 409)::

    draft ──submit──▶ submitted ──approve──▶ approved ──publish──▶ published
      ▲                  │
      └────return────────┘
    draft | submitted | approved | published ──withdraw──▶ withdrawn
    approved | published ──(the next version is approved)──▶ superseded

Versions: a service has at most one open version (draft or submitted) and at most one in
force (approved or published). A new version starts as a draft while the previous one
stays in force; approving it supersedes the previous one, so the service is never without
an approved PIA in between. Withdrawal takes the service out of force at once.

The gate, :func:`pia_approved`, is what the consent engine asks for every actor acting for a
platform service: no PIA in force (approved or published, not withdrawn or superseded, not
past its review date) → the service gets nothing.

Who may do what is decided by the callers (the HTTP endpoints check staff roles, the CLI is
trusted like ``phr org add``); services here take the acting person's name as ``by`` and
only ``flush``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consent.models import Organization
from consent.pia import questionnaire, rating, repository
from consent.pia.models import IN_FORCE, PiaAssessment
from consent.pia.schemas import (
    AreaSummary,
    LevelRead,
    PiaCreate,
    PiaPublic,
    PiaRead,
    PiaUpdate,
    PublicRisk,
    RiskEntry,
    RiskRead,
    ScaleRead,
)
from phr.errors import Conflict, Forbidden, InvalidInput, NotFound, issue
from phr.store.indexer import utcnow
from phr.store.repository import new_id

__all__ = [
    "TRANSITIONS",
    "approve",
    "approved_clause",
    "clear_gate_cache",
    "create_draft",
    "get",
    "pia_approved",
    "public_summaries",
    "public_summary",
    "publish",
    "read",
    "return_to_draft",
    "seed_platform_pias",
    "submit",
    "update_draft",
    "withdraw",
]

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "submit": (("draft",), "submitted"),
    "return": (("submitted",), "draft"),
    "approve": (("submitted",), "approved"),
    "publish": (("approved",), "published"),
    "withdraw": (("draft", "submitted", "approved", "published"), "withdrawn"),
}

DEFAULT_REVIEW_PERIOD = timedelta(days=365)
_GATE_CACHE = "pia_gate"


# ---- the gate ----------------------------------------------------------------------------------


def pia_approved(session: Session, service_id: str) -> bool:
    """True when the service has a PIA in force: approved or published, not past review.

    One indexed query on (service_id, status), remembered until the session's transaction
    ends (a request or a job is one transaction) and forgotten at once on any status change
    made through this module. There is deliberately no process-wide cache: a withdrawal must
    take effect on the next request in every worker, as a consent revocation does.
    """
    today = repository.today_jst(utcnow())
    key = (service_id, today)
    cached: tuple[Any, dict[tuple[str, date], bool]] | None = session.info.get(_GATE_CACHE)
    txn = session.get_transaction()
    if cached is not None and txn is not None and cached[0] is txn and key in cached[1]:
        return bool(cached[1][key])
    result = repository.in_force_exists(session, service_id, today)
    txn = session.get_transaction()
    if cached is None or cached[0] is not txn:
        cached = (txn, {})
        session.info[_GATE_CACHE] = cached
    cached[1][key] = result
    return result


def approved_clause(service: ColumnElement[str] | str) -> ColumnElement[bool]:
    """SQL form of the gate for a column (or a literal service id), to embed in a WHERE."""
    return repository.approved_clause(service, repository.today_jst(utcnow()))


def clear_gate_cache(session: Session) -> None:
    session.info.pop(_GATE_CACHE, None)


# ---- rating ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RatedRisk:
    entry: dict[str, Any]
    impact: int
    likelihood_floor: int
    likelihood: int
    level: int


def rate_risks(risks: list[dict[str, Any]], answers: dict[str, Any]) -> list[RatedRisk]:
    """Each risk's impact, effective likelihood and level (see consent.pia.rating)."""
    flat = {qid: a.get("answer", "no") for qid, a in answers.items() if isinstance(a, dict)}
    out = []
    for risk in risks:
        impact = rating.impact_level(
            risk["impact_financial"], risk["impact_mental"], risk["impact_physical"]
        )
        floor = rating.likelihood_from_answers(
            flat, questionnaire.item_question_ids(risk.get("items") or [])
        )
        likelihood = max(risk["likelihood"], floor)
        out.append(
            RatedRisk(risk, impact, floor, likelihood, rating.risk_level(impact, likelihood))
        )
    return out


def _overall(pia: PiaAssessment) -> int | None:
    return rating.overall_rating(r.level for r in rate_risks(pia.risks or [], pia.answers or {}))


def _level(value: int | None) -> LevelRead | None:
    if value is None:
        return None
    lv = rating.level(value)
    return LevelRead(value=lv.value, code=lv.code, ja=lv.ja, en=lv.en)


# ---- reading -----------------------------------------------------------------------------------


def get(session: Session, pia_id: str) -> PiaAssessment:
    pia = repository.get(session, pia_id)
    if pia is None:
        raise NotFound(f"no privacy impact assessment {pia_id}")
    return pia


def _in_force(pia: PiaAssessment) -> bool:
    if pia.status not in IN_FORCE:
        return False
    return pia.review_due is None or pia.review_due >= repository.today_jst(utcnow())


def read(session: Session, pia: PiaAssessment) -> PiaRead:
    names = repository.organization_names(session, {pia.organization_id})
    answers = pia.answers or {}
    return PiaRead(
        id=pia.id,
        service_id=pia.service_id,
        version=pia.version,
        status=pia.status,
        service_name=pia.service_name,
        service_name_en=pia.service_name_en,
        organization_id=pia.organization_id,
        organization_name=names.get(pia.organization_id),
        description=pia.description,
        purposes=list(pia.purposes or []),
        purpose_codes=list(pia.purpose_codes or []),
        data_categories=list(pia.data_categories or []),
        resource_types=list(pia.resource_types or []),
        recipients=list(pia.recipients or []),
        retention=pia.retention,
        answers=answers,
        unanswered=questionnaire.unanswered(answers),
        risks=[
            RiskRead(
                description=r.entry["description"],
                description_en=r.entry.get("description_en", ""),
                impact_financial=r.entry["impact_financial"],
                impact_mental=r.entry["impact_mental"],
                impact_physical=r.entry["impact_physical"],
                impact=r.impact,
                likelihood_declared=r.entry["likelihood"],
                likelihood_floor=r.likelihood_floor,
                likelihood=r.likelihood,
                level=_level(r.level),  # type: ignore[arg-type]
                mitigation=r.entry.get("mitigation", ""),
                mitigation_en=r.entry.get("mitigation_en", ""),
                items=list(r.entry.get("items") or []),
            )
            for r in rate_risks(pia.risks or [], answers)
        ],
        overall=_level(pia.overall_level),
        in_force=_in_force(pia),
        created_by=pia.created_by,
        created_at=pia.created_at,
        updated_at=pia.updated_at,
        submitted_by=pia.submitted_by,
        submitted_at=pia.submitted_at,
        approved_by=pia.approved_by,
        approved_at=pia.approved_at,
        published_by=pia.published_by,
        published_at=pia.published_at,
        withdrawn_by=pia.withdrawn_by,
        withdrawn_at=pia.withdrawn_at,
        superseded_at=pia.superseded_at,
        status_reason=pia.status_reason,
        review_due=pia.review_due,
    )


def _scale(value: int, labels: dict[int, tuple[str, str]]) -> ScaleRead:
    ja, en = labels[value]
    return ScaleRead(value=value, ja=ja, en=en)


def _public(pia: PiaAssessment, operator: str) -> PiaPublic:
    answers = pia.answers or {}
    counts: dict[str, Counter[str]] = {area: Counter() for area in questionnaire.AREAS}
    for item in questionnaire.ITEMS:
        for q in item.questions:
            counts[item.area][answers.get(q.id, {}).get("answer", "no")] += 1
    return PiaPublic(
        service_id=pia.service_id,
        service_name=pia.service_name,
        service_name_en=pia.service_name_en,
        operator=operator,
        version=pia.version,
        overall=_level(pia.overall_level),
        description=pia.description,
        purposes=list(pia.purposes or []),
        data_categories=list(pia.data_categories or []),
        resource_types=list(pia.resource_types or []),
        recipients=list(pia.recipients or []),
        retention=pia.retention,
        risks=[
            PublicRisk(
                description=r.entry["description"],
                description_en=r.entry.get("description_en", ""),
                impact_financial=r.entry["impact_financial"],
                impact_mental=r.entry["impact_mental"],
                impact_physical=r.entry["impact_physical"],
                impact=_scale(r.impact, rating.IMPACT_LABELS),
                likelihood=_scale(r.likelihood, rating.LIKELIHOOD_LABELS),
                level=_level(r.level),  # type: ignore[arg-type]
                mitigation=r.entry.get("mitigation", ""),
                mitigation_en=r.entry.get("mitigation_en", ""),
            )
            for r in sorted(rate_risks(pia.risks or [], answers), key=lambda r: -r.level)
        ],
        questionnaire=[
            AreaSummary(
                area=area,
                ja=ja,
                en=en,
                yes=counts[area]["yes"],
                no=counts[area]["no"],
                na=counts[area]["na"],
            )
            for area, (ja, en) in questionnaire.AREAS.items()
        ],
        approved_at=pia.approved_at,
        published_at=pia.published_at,
        review_due=pia.review_due,
    )


def public_summaries(session: Session) -> list[PiaPublic]:
    """The published assessments, newest version per service, by service id."""
    seen: set[str] = set()
    rows = []
    for pia in repository.published(session):
        if pia.service_id not in seen:
            seen.add(pia.service_id)
            rows.append(pia)
    names = repository.organization_names(session, {p.organization_id for p in rows})
    return [_public(p, names.get(p.organization_id, p.organization_id)) for p in rows]


def public_summary(session: Session, service_id: str) -> PiaPublic:
    pia = repository.published_for_service(session, service_id)
    if pia is None:
        raise NotFound(f"no published privacy impact assessment for {service_id}")
    names = repository.organization_names(session, {pia.organization_id})
    return _public(pia, names.get(pia.organization_id, pia.organization_id))


# ---- drafting ----------------------------------------------------------------------------------

_CONTENT_FIELDS = (
    "service_name",
    "service_name_en",
    "description",
    "purposes",
    "purpose_codes",
    "data_categories",
    "resource_types",
    "recipients",
    "retention",
    "answers",
    "risks",
)


def _content_values(data: PiaCreate | PiaUpdate) -> dict[str, Any]:
    """The content fields the caller set, as stored (risks as plain dicts)."""
    out: dict[str, Any] = {}
    for name in _CONTENT_FIELDS:
        if name not in data.model_fields_set:
            continue
        value = getattr(data, name)
        if value is None:
            continue
        if name == "risks":
            value = [r.model_dump() if isinstance(r, RiskEntry) else r for r in value]
        out[name] = value
    return out


def service_operator(session: Session, service_id: str) -> str | None:
    """The operator organisation of a service's latest version, if any."""
    rows = repository.list_all(session, service_id=service_id)
    return rows[-1].organization_id if rows else None


def create_draft(session: Session, *, data: PiaCreate, by: str) -> PiaAssessment:
    """A first draft for a service, or the next version of one already assessed."""
    latest = repository.latest_version(session, data.service_id)
    previous = None
    if latest:
        if repository.open_version(session, data.service_id) is not None:
            raise Conflict(
                f"{data.service_id} already has a draft or submitted assessment; "
                "edit or withdraw it first"
            )
        rows = repository.list_all(session, service_id=data.service_id)
        previous = rows[-1]
    organization_id = data.organization_id or (previous.organization_id if previous else None)
    if organization_id is None:
        raise InvalidInput("organization_id (the service operator) is required")
    if session.get(Organization, organization_id) is None:
        raise InvalidInput(f"unknown organization {organization_id}")
    values: dict[str, Any] = {}
    if previous is not None and data.copy_previous:
        values = {name: _copy(getattr(previous, name)) for name in _CONTENT_FIELDS}
    values.update(_content_values(data))
    if not values.get("service_name"):
        raise InvalidInput("service_name is required")
    now = utcnow()
    pia = PiaAssessment(
        id=new_id(),
        service_id=data.service_id,
        version=latest + 1,
        status="draft",
        organization_id=organization_id,
        created_by=by,
        created_at=now,
        updated_at=now,
        status_reason="",
        **{
            "service_name_en": "",
            "description": "",
            "purposes": [],
            "purpose_codes": [],
            "data_categories": [],
            "resource_types": [],
            "recipients": [],
            "retention": "",
            "answers": {},
            "risks": [],
            **values,
        },
    )
    pia.overall_level = _overall(pia)
    session.add(pia)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"{data.service_id} version {latest + 1} was created concurrently") from None
    return pia


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def update_draft(session: Session, *, pia_id: str, data: PiaUpdate, by: str) -> PiaAssessment:
    """Replace the given fields of a draft (only a draft can change)."""
    pia = _locked(session, pia_id)
    if pia.status != "draft":
        raise Conflict(f"only a draft can be edited; this assessment is {pia.status}")
    for name, value in _content_values(data).items():
        setattr(pia, name, value)
    pia.overall_level = _overall(pia)
    pia.updated_at = utcnow()
    session.flush()
    return pia


# ---- the workflow ------------------------------------------------------------------------------


def _locked(session: Session, pia_id: str) -> PiaAssessment:
    pia = repository.get_for_update(session, pia_id)
    if pia is None:
        raise NotFound(f"no privacy impact assessment {pia_id}")
    return pia


def _move(session: Session, pia_id: str, action: str) -> PiaAssessment:
    pia = _locked(session, pia_id)
    allowed, _ = TRANSITIONS[action]
    if pia.status not in allowed:
        raise Conflict(f"cannot {action} an assessment that is {pia.status}")
    return pia


def _changed(session: Session, pia: PiaAssessment, status: str) -> None:
    pia.status = status
    pia.updated_at = utcnow()
    clear_gate_cache(session)
    session.flush()


def completeness_issues(pia: PiaAssessment) -> list[dict[str, Any]]:
    """What a draft lacks before it can be submitted."""
    problems = []
    missing = questionnaire.unanswered(pia.answers or {})
    if missing:
        problems.append(
            issue(
                f"{len(missing)} questions unanswered: {', '.join(missing[:10])}"
                + (" ..." if len(missing) > 10 else ""),
                expression="answers",
            )
        )
    if not pia.risks:
        problems.append(issue("at least one risk entry is required", expression="risks"))
    if not pia.purposes:
        problems.append(issue("the purposes of use are required", expression="purposes"))
    if not pia.data_categories and not pia.resource_types:
        problems.append(
            issue(
                "the data handled (categories or resource types) is required",
                expression="data_categories",
            )
        )
    if not pia.recipients:
        problems.append(issue("the recipients are required", expression="recipients"))
    if not (pia.retention or "").strip():
        problems.append(issue("the retention period is required", expression="retention"))
    return problems


def submit(session: Session, *, pia_id: str, by: str) -> PiaAssessment:
    """The operator hands a complete draft to the platform for approval."""
    pia = _move(session, pia_id, "submit")
    problems = completeness_issues(pia)
    if problems:
        raise InvalidInput("the assessment is not complete", issues=problems)
    pia.submitted_by = by
    pia.submitted_at = utcnow()
    pia.status_reason = ""
    pia.overall_level = _overall(pia)
    _changed(session, pia, "submitted")
    return pia


def return_to_draft(session: Session, *, pia_id: str, by: str, reason: str) -> PiaAssessment:
    """The approver sends a submission back for changes (差戻し)."""
    pia = _move(session, pia_id, "return")
    pia.status_reason = f"returned by {by}: {reason}"
    _changed(session, pia, "draft")
    return pia


def approve(
    session: Session, *, pia_id: str, by: str, review_due: date | None = None
) -> PiaAssessment:
    """Approve a submission; the version in force before it is superseded.

    The approver must not be the person who submitted it (separation of duties).
    """
    pia = _move(session, pia_id, "approve")
    if pia.submitted_by == by:
        raise Forbidden("the person who submitted an assessment cannot approve it")
    now = utcnow()
    today = repository.today_jst(now)
    due = review_due or today + DEFAULT_REVIEW_PERIOD
    if due <= today:
        raise InvalidInput("review_due must be after today")
    for old in repository.in_force(session, pia.service_id, exclude_id=pia.id):
        old.status = "superseded"
        old.superseded_at = now
        old.updated_at = now
    pia.approved_by = by
    pia.approved_at = now
    pia.review_due = due
    pia.overall_level = _overall(pia)
    _changed(session, pia, "approved")
    return pia


def publish(session: Session, *, pia_id: str, by: str) -> PiaAssessment:
    """Publish the summary of an approved assessment (結果の公表)."""
    pia = _move(session, pia_id, "publish")
    pia.published_by = by
    pia.published_at = utcnow()
    _changed(session, pia, "published")
    return pia


def withdraw(session: Session, *, pia_id: str, by: str, reason: str) -> PiaAssessment:
    """Withdraw an assessment; one in force stops the service at once."""
    pia = _move(session, pia_id, "withdraw")
    pia.withdrawn_by = by
    pia.withdrawn_at = utcnow()
    pia.status_reason = reason
    _changed(session, pia, "withdrawn")
    return pia


# ---- seed data ---------------------------------------------------------------------------------

# The platform organisation (consent.staff.service.PLATFORM_ORGANIZATION_ID) operates the
# built-in modules; its administrators are the approvers.
PLATFORM_ORG = ("platform", "つくばPHR基盤 (Tsukuba PHR platform)")


def seed_platform_pias(
    session: Session,
    *,
    organization_id: str = PLATFORM_ORG[0],
    drafted_by: str = "platform-seed",
    approved_by: str = "platform-seed-approver",
) -> list[PiaAssessment]:
    """Approved and published PIAs for the platform's built-in services (idempotent).

    Services that already have an assessment in force or open are left alone. The operator
    organisation is created (kind "platform") when it does not exist.
    """
    from consent.identity.clients import register_organization
    from consent.pia.seed import PLATFORM_SERVICES

    if session.get(Organization, organization_id) is None:
        name = PLATFORM_ORG[1] if organization_id == PLATFORM_ORG[0] else organization_id
        register_organization(session, id=organization_id, name=name, kind="platform")
    created = []
    for spec in PLATFORM_SERVICES:
        service_id = spec["service_id"]
        if repository.in_force(session, service_id) or repository.open_version(session, service_id):
            continue
        data = PiaCreate.model_validate({**spec, "organization_id": organization_id})
        pia = create_draft(session, data=data, by=drafted_by)
        submit(session, pia_id=pia.id, by=drafted_by)
        approve(session, pia_id=pia.id, by=approved_by)
        publish(session, pia_id=pia.id, by=approved_by)
        created.append(pia)
    return created
