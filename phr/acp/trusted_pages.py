"""The trusted person's pages: accept an invitation, sign in, read the current ACP of the
residents who share it with them (``/acp/trusted/...``).

The session is the acp service's trusted-person session (a random token kept hashed, 12
hours) in the cookie ``phr_trusted`` (HttpOnly, SameSite=Lax, Secure on https). What they
may read is decided by the consent engine through the choke point (the sharing consent
written at acceptance), exactly as for the API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from phr.acp import schemas as s
from phr.acp import service
from phr.acp.pages import treatment_groups
from phr.db import SessionDep, roll_back
from phr.errors import NotAuthenticated, NotFound, PHRError
from phr.security import limiter
from phr.web.render import page
from phr.web.security import SignInRequired, WebRoute, check_csrf, secure_cookies

__all__ = ["router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)

COOKIE = "phr_trusted"
SIGN_IN = "/acp/trusted/signin"


def _person(request: Request, session: Session) -> Actor:
    token = request.cookies.get(COOKIE)
    try:
        if not token:
            raise NotAuthenticated("sign in")
        return service.trusted_actor(session, token)
    except NotAuthenticated:
        raise SignInRequired(request.url.path, expired=bool(token), signin=SIGN_IN) from None


def _signed_in(found: s.TrustedSessionRead) -> Response:
    response = RedirectResponse("/acp/trusted", status_code=303)
    response.set_cookie(
        COOKIE,
        found.token,
        max_age=int(service.SESSION_TTL.total_seconds()),
        httponly=True,
        secure=secure_cookies(),
        samesite="lax",
        path="/acp/trusted",
    )
    return response


def _signin_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    return page(
        request,
        "trusted_signin.html",
        status=status,
        resident=None,
        error=error,
        expired=bool(request.query_params.get("expired")),
    )


@router.get(SIGN_IN, response_class=HTMLResponse)
def signin_page(request: Request) -> Response:
    return _signin_page(request)


async def _form(request: Request) -> Any:
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    return {k: v.strip() if isinstance(v, str) else "" for k, v in form.items()}


@router.post(SIGN_IN)
async def sign_in(request: Request, session: SessionDep) -> Response:
    form = await _form(request)
    counters = limiter.sign_in_counters(
        "trusted-sign-in", account=form.get("login"), address=limiter.client_address(request)
    )
    limiter.refuse_if_locked(session, counters)
    try:
        body = s.SignIn(login=form.get("login", ""), passphrase=form.get("passphrase", ""))
        found = service.sign_in(session=session, body=body)
    except (ValidationError, NotAuthenticated):
        limiter.record_failure(session, counters)
        roll_back(session)  # a wrong passphrase is counted (after the rollback)
        return _signin_page(request, error="trusted.error.signin", status=401)
    return _signed_in(found)


@router.post("/acp/trusted/accept")
async def accept(request: Request, session: SessionDep) -> Response:
    form = await _form(request)
    counters = limiter.sign_in_counters(
        "trusted-accept", account=form.get("login"), address=limiter.client_address(request)
    )
    limiter.refuse_if_locked(session, counters)
    try:
        body = s.AcceptInvitation.model_validate(
            {k: form.get(k, "") for k in ("code", "login", "passphrase", "name")}
        )
        found = service.accept_invitation(session=session, body=body)
    except (ValidationError, PHRError) as exc:
        if isinstance(exc, NotAuthenticated | NotFound):
            limiter.record_failure(session, counters)
        roll_back(session)
        return _signin_page(request, error="trusted.error.accept", status=400)
    return _signed_in(found)


@router.get("/acp/trusted", response_class=HTMLResponse)
def shared(request: Request, session: SessionDep) -> Response:
    actor = _person(request, session)
    rows = service.shared_with(session=session, actor=actor)
    return page(request, "trusted_home.html", resident=None, shared=rows)


@router.get("/acp/trusted/residents/{resident_id}", response_class=HTMLResponse)
def plan(resident_id: str, request: Request, session: SessionDep) -> Response:
    actor = _person(request, session)
    try:
        found = service.current(
            session=session, actor=actor, resident_id=resident_id, purpose=Purpose.PATIENT_ACCESS
        )
    except NotFound:
        found = None
    if found is None:
        return page(request, "trusted_plan.html", status=404, resident=None, plan=None, groups=None)
    return page(
        request,
        "trusted_plan.html",
        resident=None,
        plan=found,
        groups=treatment_groups(found.content),
    )


@router.post("/acp/trusted/signout")
async def sign_out(request: Request) -> Response:
    await _form(request)
    response = RedirectResponse(SIGN_IN, status_code=303)
    response.delete_cookie(COOKIE, path="/acp/trusted")
    return response
