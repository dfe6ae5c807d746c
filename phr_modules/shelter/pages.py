"""The shelter desk's pages (``/modules/shelter``), Japanese first, on the staff session
(password + TOTP, cookie ``phr_staff``) like the paramedic tablet: the app's security
headers and CSP (no inline script), a CSRF token on every POST, a refused step undone
(its refusal kept in the access log) and named on the page.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from consent.actors import Actor
from consent.staff import service as staff_service
from consent.staff.auth import COOKIE_NAME, current_staff
from consent.staff.endpoints import LOGIN_PATH
from phr.db import SessionDep, roll_back
from phr.errors import Forbidden, NotFound, PHRError
from phr.web.i18n import add_catalogue
from phr.web.render import add_template_dir, error_page, page
from phr.web.security import SignInRequired, WebRoute, check_csrf
from phr_modules.shelter import readers, schemas, service

__all__ = ["router"]

HERE = Path(__file__).resolve().parent
add_template_dir(HERE / "templates")
add_catalogue(HERE / "messages")

BASE = "/modules/shelter"
CLIENT_ID = "shelter-desk"
SEXES = ("female", "male", "other", "unknown")

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def _desk(request: Request, session: Session) -> Actor | Response:
    """The signed-in shelter staff member, or the page that says they may not use this."""
    user = current_staff(request, session)
    if user is None:
        raise SignInRequired(
            request.url.path, expired=COOKIE_NAME in request.cookies, signin=LOGIN_PATH
        )
    actor = staff_service.staff_actor(user, client_id=CLIENT_ID, scopes=("user/*.rs",))
    if actor.organization_kind != "shelter" or actor.role != "shelter_staff":
        return error_page(request, "shelter.error.role", status=403)
    return actor


def _to(path: str, **flags: str) -> RedirectResponse:
    query = "&".join(f"{k}={v}" for k, v in flags.items())
    return RedirectResponse(f"{BASE}{path}" + (f"?{query}" if query else ""), status_code=303)


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None


def _fields(form: Any, names: tuple[str, ...]) -> dict[str, str]:
    return {n: v for n in names if (v := _text(form, n)) is not None}


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> Response:
    """The reception queue and the shelter list (everyone, or only those needing support)."""
    actor = _desk(request, session)
    if isinstance(actor, Response):
        return actor
    needs_only = request.query_params.get("needs") == "1"
    evacuees = service.shelter_list(
        session, actor, readers.record(request, session, actor), needs_only=needs_only
    )
    return page(
        request,
        "shelter_home.html",
        resident=None,
        staff=actor,
        queue=[service.intake_read(r) for r in service.reception(session, actor)],
        evacuees=evacuees,
        needs_only=needs_only,
        error=request.query_params.get("error"),
    )


@router.post("/intakes")
async def open_intake(request: Request, session: SessionDep) -> Response:
    actor = _desk(request, session)
    if isinstance(actor, Response):
        return actor
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    return _to(f"/intakes/{service.open_intake(session, actor).id}")


@router.get("/intakes/{intake_id}", response_class=HTMLResponse)
def intake_page(intake_id: str, request: Request, session: SessionDep) -> Response:
    actor = _desk(request, session)
    if isinstance(actor, Response):
        return actor
    try:
        view = service.evacuee(session, actor, readers.record(request, session, actor), intake_id)
    except NotFound:
        return error_page(request, "shelter.error.not_found_page", status=404)
    return page(
        request,
        "shelter_intake.html",
        resident=None,
        staff=actor,
        view=view,
        sexes=SEXES,
        done=request.query_params.get("done"),
        error=request.query_params.get("error"),
    )


Step = Callable[[Request, Session, Actor, str, Any], str]


def _demographic(request: Request, session: Session, actor: Actor, iid: str, form: Any) -> str:
    names = ("family", "given", "family_kana", "given_kana", "birth_date", "sex")
    query = schemas.DemographicQuery.model_validate(_fields(form, names))
    lookup = readers.lookup(request, session, actor)
    found = service.identify_by_demographics(session, actor, lookup, iid, query)
    return "done=searched" if found.identified else "error=not_identified"


def _card(request: Request, session: Session, actor: Actor, iid: str, form: Any) -> str:
    query = schemas.CardQuery(certificate=_text(form, "certificate") or "")
    found = service.identify_by_card(session, actor, iid, query)
    return "done=searched" if found.identified else "error=not_identified"


def _confirm(request: Request, session: Session, actor: Actor, iid: str, form: Any) -> str:
    body = schemas.Confirm.model_validate(_fields(form, ("method", "birth_date", "certificate")))
    service.confirm(session, actor, readers.lookup(request, session, actor), iid, body)
    return "done=checked_in"


def _leave(request: Request, session: Session, actor: Actor, iid: str, form: Any) -> str:
    service.leave(session, actor, iid)
    return "done=left"


STEPS: dict[str, Step] = {
    "identify/demographic": _demographic,
    "identify/card": _card,
    "confirm": _confirm,
    "leave": _leave,
}


def _refusal(exc: Exception) -> str:
    if isinstance(exc, service.TooManyAttempts):
        return "throttled"
    if isinstance(exc, Forbidden):
        return "not_confirmed"
    if isinstance(exc, NotFound):
        return "not_found"
    return "invalid"


@router.post("/intakes/{intake_id}/{step:path}")
async def desk_step(intake_id: str, step: str, request: Request, session: SessionDep) -> Response:
    action = STEPS.get(step)
    if action is None:
        return error_page(request, "shelter.error.not_found_page", status=404)
    actor = _desk(request, session)
    if isinstance(actor, Response):
        return actor
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    try:
        outcome = action(request, session, actor, intake_id, form)
    except (PHRError, ValidationError, ValueError) as exc:
        roll_back(session)
        outcome = f"error={_refusal(exc)}"
    return RedirectResponse(f"{BASE}/intakes/{intake_id}?{outcome}", status_code=303)
