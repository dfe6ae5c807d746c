"""HTTP routes of the PIA register.

Public, no sign-in (つくばPIA publishes its results):
    GET /pia                          HTML list of published assessments
    GET /pia/{service_id}             HTML summary of one
    GET /api/pia/public[/{service}]   the same as JSON
    GET /api/pia/questionnaire        the 22 items / 64 questions

Staff (signed in with the ``phr_staff`` session cookie; administrators only):
    GET  /api/pia                     list (platform: all; operator: its own)
    POST /api/pia                     new draft or new version      operator admin, platform admin
    GET  /api/pia/{id}                read                          operator admin, platform admin
    PUT  /api/pia/{id}                edit a draft                  operator admin, platform admin
    POST /api/pia/{id}/submit                                       operator admin, platform admin
    POST /api/pia/{id}/withdraw       {"reason"}                    operator admin, platform admin
    POST /api/pia/{id}/return         {"reason"} back to draft      platform admin
    POST /api/pia/{id}/approve        {"review_due"?}               platform admin
    POST /api/pia/{id}/publish                                      platform admin

A platform administrator is a staff member with the role "administrator" in an
organisation of kind "platform"; an operator administrator has that role in the
assessment's operator organisation. An assessment the caller may not see is a 404;
a transition the caller may see but not make is a 403; an illegal transition is a 409.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from consent.models import Organization
from consent.pia import questionnaire, rating, repository, service
from consent.pia.models import PiaAssessment
from consent.pia.schemas import (
    ApproveRequest,
    PiaCreate,
    PiaPublic,
    PiaRead,
    PiaUpdate,
    ReasonRequest,
)
from consent.staff.auth import current_staff
from phr.db import SessionDep
from phr.errors import Forbidden, NotAuthenticated, NotFound
from phr.security.csp import inline_style_policy

__all__ = ["StaffPrincipal", "require_staff_role", "router", "staff_principal"]

router = APIRouter(tags=["pia"])

ADMIN = "administrator"


# ---- who is asking -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffPrincipal:
    user_id: str
    organization_id: str | None
    organization_kind: str | None
    roles: frozenset[str]

    @property
    def is_platform_admin(self) -> bool:
        return self.organization_kind == "platform" and ADMIN in self.roles

    def administers(self, organization_id: str) -> bool:
        return ADMIN in self.roles and self.organization_id == organization_id


def _as_principal(session: Session, staff: Any) -> StaffPrincipal:
    """Adapt the signed-in staff account (or an Actor of kind staff) to a principal.

    The name recorded as ``by`` is ``username@organisation`` when there is a username.
    """
    organization_id = getattr(staff, "organization_id", None)
    username = getattr(staff, "username", None)
    user_id = (
        f"{username}@{organization_id}"
        if username and organization_id
        else getattr(staff, "user_id", None) or getattr(staff, "id", None)
    )
    if not user_id:
        raise NotAuthenticated("staff sign-in required")
    role = getattr(staff, "role", None)
    kind = None
    if organization_id is not None:
        org = session.get(Organization, organization_id)
        kind = org.kind if org is not None and org.active else None
    return StaffPrincipal(str(user_id), organization_id, kind, frozenset({role} if role else ()))


def staff_principal(request: Request, session: SessionDep) -> StaffPrincipal:
    """The signed-in staff member, from the staff session cookie ``phr_staff`` (401 without)."""
    staff = current_staff(request, session)
    if staff is None:
        raise NotAuthenticated(
            "staff sign-in required", headers={"WWW-Authenticate": 'Cookie realm="phr-staff"'}
        )
    return _as_principal(session, staff)


def require_staff_role(*roles: str) -> Callable[..., StaffPrincipal]:
    """Dependency: a signed-in staff member holding one of ``roles`` (403 otherwise)."""

    def dependency(
        principal: Annotated[StaffPrincipal, Depends(staff_principal)],
    ) -> StaffPrincipal:
        if roles and not principal.roles & set(roles):
            raise Forbidden(f"requires the role {' or '.join(roles)}")
        return principal

    return dependency


Admin = Annotated[StaffPrincipal, Depends(require_staff_role(ADMIN))]


def _visible(session: Session, pia_id: str, who: StaffPrincipal) -> PiaAssessment:
    pia = service.get(session, pia_id)
    if not (who.is_platform_admin or who.administers(pia.organization_id)):
        raise NotFound(f"no privacy impact assessment {pia_id}")
    return pia


def _platform_only(who: StaffPrincipal, action: str) -> None:
    if not who.is_platform_admin:
        raise Forbidden(f"only a platform administrator can {action} an assessment")


# ---- public ------------------------------------------------------------------------------------


@router.get("/api/pia/public", response_model=list[PiaPublic])
def public_list(session: SessionDep) -> list[PiaPublic]:
    return service.public_summaries(session)


@router.get("/api/pia/public/{service_id}", response_model=PiaPublic)
def public_one(service_id: str, session: SessionDep) -> PiaPublic:
    return service.public_summary(session, service_id)


@router.get("/api/pia/questionnaire")
def questionnaire_json() -> dict[str, Any]:
    return {
        "areas": [
            {"code": code, "ja": ja, "en": en} for code, (ja, en) in questionnaire.AREAS.items()
        ],
        "answers": list(questionnaire.ANSWER_VALUES),
        "items": [
            {
                "id": item.id,
                "area": item.area,
                "stage": item.stage,
                "ja": item.ja,
                "en": item.en,
                "questions": [{"id": q.id, "ja": q.ja, "en": q.en} for q in item.questions],
            }
            for item in questionnaire.ITEMS
        ],
    }


def _jst_date(value: datetime | None) -> str:
    """A stored (naive UTC) instant as the calendar date in Japan, as the register dates it."""
    return repository.today_jst(value).isoformat() if value is not None else "—"


@lru_cache(maxsize=1)
def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["jst_date"] = _jst_date
    return env


def _page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = (
        _templates()
        .get_template(name)
        .render(levels=rating.LEVELS, impact_labels=rating.IMPACT_LABELS, **context)
    )
    # The pages need nothing but their own style block (allowed by its hash).
    headers = {"Content-Security-Policy": inline_style_policy(html)}
    return HTMLResponse(html, status_code=status_code, headers=headers)


@router.get("/pia", response_class=HTMLResponse, include_in_schema=False)
def public_page_list(session: SessionDep) -> HTMLResponse:
    return _page("pia_list.html", assessments=service.public_summaries(session))


@router.get("/pia/{service_id}", response_class=HTMLResponse, include_in_schema=False)
def public_page_one(service_id: str, session: SessionDep) -> HTMLResponse:
    try:
        summary = service.public_summary(session, service_id)
    except NotFound:
        return _page("pia_missing.html", status_code=404, service_id=service_id)
    return _page("pia_detail.html", a=summary, areas=questionnaire.AREAS)


# ---- staff workflow ----------------------------------------------------------------------------


@router.get("/api/pia", response_model=list[PiaRead])
def list_assessments(
    session: SessionDep,
    who: Admin,
    service_id: str | None = None,
    status: str | None = None,
) -> list[PiaRead]:
    org = None if who.is_platform_admin else who.organization_id
    if org is None and not who.is_platform_admin:
        return []
    rows = repository.list_all(session, service_id=service_id, status=status, organization_id=org)
    return [service.read(session, p) for p in rows]


@router.post("/api/pia", response_model=PiaRead, status_code=201)
def create(body: PiaCreate, session: SessionDep, who: Admin) -> PiaRead:
    if not who.is_platform_admin:
        owner = service.service_operator(session, body.service_id)
        target = body.organization_id or owner
        if owner is not None and owner != who.organization_id:
            raise Forbidden(f"{body.service_id} is operated by another organisation")
        if target is not None and target != who.organization_id:
            raise Forbidden("an operator can draft assessments only for its own organisation")
        body = body.model_copy(update={"organization_id": who.organization_id})
    pia = service.create_draft(session, data=body, by=who.user_id)
    return service.read(session, pia)


@router.get("/api/pia/{pia_id}", response_model=PiaRead)
def read_one(pia_id: str, session: SessionDep, who: Admin) -> PiaRead:
    return service.read(session, _visible(session, pia_id, who))


@router.put("/api/pia/{pia_id}", response_model=PiaRead)
def edit(pia_id: str, body: PiaUpdate, session: SessionDep, who: Admin) -> PiaRead:
    _visible(session, pia_id, who)
    pia = service.update_draft(session, pia_id=pia_id, data=body, by=who.user_id)
    return service.read(session, pia)


@router.post("/api/pia/{pia_id}/submit", response_model=PiaRead)
def submit(pia_id: str, session: SessionDep, who: Admin) -> PiaRead:
    _visible(session, pia_id, who)
    return service.read(session, service.submit(session, pia_id=pia_id, by=who.user_id))


@router.post("/api/pia/{pia_id}/withdraw", response_model=PiaRead)
def withdraw(pia_id: str, body: ReasonRequest, session: SessionDep, who: Admin) -> PiaRead:
    _visible(session, pia_id, who)
    pia = service.withdraw(session, pia_id=pia_id, by=who.user_id, reason=body.reason)
    return service.read(session, pia)


@router.post("/api/pia/{pia_id}/return", response_model=PiaRead)
def return_to_draft(pia_id: str, body: ReasonRequest, session: SessionDep, who: Admin) -> PiaRead:
    _visible(session, pia_id, who)
    _platform_only(who, "return")
    pia = service.return_to_draft(session, pia_id=pia_id, by=who.user_id, reason=body.reason)
    return service.read(session, pia)


@router.post("/api/pia/{pia_id}/approve", response_model=PiaRead)
def approve(
    pia_id: str, session: SessionDep, who: Admin, body: ApproveRequest | None = None
) -> PiaRead:
    _visible(session, pia_id, who)
    _platform_only(who, "approve")
    review_due = body.review_due if body is not None else None
    pia = service.approve(session, pia_id=pia_id, by=who.user_id, review_due=review_due)
    return service.read(session, pia)


@router.post("/api/pia/{pia_id}/publish", response_model=PiaRead)
def publish(pia_id: str, session: SessionDep, who: Admin) -> PiaRead:
    _visible(session, pia_id, who)
    _platform_only(who, "publish")
    return service.read(session, service.publish(session, pia_id=pia_id, by=who.user_id))
