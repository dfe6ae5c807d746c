"""The resident's ACP pages (もしもの時の話し合い) in the resident web app.

``/me/acp`` the current plan; ``/me/acp/edit`` (and ``POST /me/acp``) a new version;
``/me/acp/versions`` and ``/me/acp/versions/{n}`` earlier versions; ``/me/acp/conversations``
the conversations; ``/me/acp/trusted`` invitations of trusted persons. Every read and
write goes through :mod:`phr.acp.service` as the signed-in resident (which reads through
the choke point); every POST checks the CSRF token first.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from phr.acp import forms, service
from phr.acp import schemas as s
from phr.db import SessionDep
from phr.errors import NotFound, PHRError
from phr.web.endpoints import signed_in
from phr.web.render import page
from phr.web.security import WebRoute, check_csrf
from phr.web.service import resident_actor

__all__ = ["router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)

CHOICES = ("want", "trial", "do_not_want", "undecided")
PLACES = ("home", "hospital", "care_facility", "palliative_unit", "undecided", "other")


async def _form(request: Request) -> Any:
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    return form


def _back(path: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={done}", status_code=303)


def treatment_groups(content: s.AcpContent) -> dict[str, list[str]]:
    """Treatments by choice: what to do, to try, not to do, not decided yet."""
    out: dict[str, list[str]] = {c: [] for c in CHOICES}
    for key in s.TREATMENTS:
        out[getattr(content.treatments, key)].append(key)
    return out


def _plan_page(request: Request, rid: str, plan: s.AcpRead | None, **extra: Any) -> Response:
    return page(
        request,
        "acp.html",
        resident=rid,
        plan=plan,
        groups=treatment_groups(plan.content) if plan else None,
        done=request.query_params.get("done"),
        **extra,
    )


@router.get("/me/acp", response_class=HTMLResponse)
def acp_page(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    plan = service.mine(session=session, actor=resident_actor(rid))
    return _plan_page(request, rid, plan, earlier=False)


def _edit_page(
    request: Request,
    rid: str,
    content: s.AcpContent,
    version: int | None,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return page(
        request,
        "acp_edit.html",
        status=status,
        resident=rid,
        content=content,
        version=version,
        treatments=s.TREATMENTS,
        choices=CHOICES,
        places=PLACES,
        rows=forms.ROWS,
        error=error,
    )


@router.get("/me/acp/edit", response_class=HTMLResponse)
def edit_page(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    plan = service.mine(session=session, actor=resident_actor(rid))
    return _edit_page(
        request, rid, plan.content if plan else s.AcpContent(), plan.version if plan else None
    )


@router.post("/me/acp")
async def save(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    form = await _form(request)
    try:
        body = forms.save_from_form(form)
    except forms.FormError as exc:
        plan = service.mine(session=session, actor=resident_actor(rid))
        return _edit_page(
            request,
            rid,
            plan.content if plan else s.AcpContent(),
            plan.version if plan else None,
            error=exc.key,
            status=400,
        )
    service.save(session=session, actor=resident_actor(rid), body=body)
    return _back("/me/acp", "saved")


@router.get("/me/acp/versions", response_class=HTMLResponse)
def versions_page(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    rows = service.versions(session=session, actor=resident_actor(rid))
    return page(request, "acp_versions.html", resident=rid, versions=rows)


@router.get("/me/acp/versions/{version}", response_class=HTMLResponse)
def version_page(version: s.VersionNumber, request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    try:
        plan = service.read_version(session=session, actor=resident_actor(rid), version=version)
    except NotFound:
        return RedirectResponse("/me/acp/versions", status_code=303)
    return _plan_page(request, rid, plan, earlier=True)


def _listing(
    request: Request,
    rid: str,
    template: str,
    *,
    error: str | None = None,
    status: int = 200,
    **context: Any,
) -> Response:
    """A list page with its form: the outcome of the last step (``done``) or an error."""
    return page(
        request,
        template,
        status=status,
        resident=rid,
        error=error,
        done=request.query_params.get("done"),
        **context,
    )


def _conversations_page(
    request: Request, session: Session, rid: str, *, error: str | None = None, status: int = 200
) -> Response:
    rows = service.conversations(session=session, actor=resident_actor(rid))
    return _listing(
        request,
        rid,
        "acp_conversations.html",
        error=error,
        status=status,
        conversations=rows,
        rows=forms.ROWS + 1,
    )


@router.get("/me/acp/conversations", response_class=HTMLResponse)
def conversations_page(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    return _conversations_page(request, session, rid)


@router.post("/me/acp/conversations")
async def record_conversation(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    form = await _form(request)
    try:
        body = forms.conversation_from_form(form)
    except forms.FormError as exc:
        return _conversations_page(request, session, rid, error=exc.key, status=400)
    service.record_conversation(session=session, actor=resident_actor(rid), body=body)
    return _back("/me/acp/conversations", "recorded")


def _trusted_page(
    request: Request,
    session: Session,
    rid: str,
    *,
    invited: s.InvitationRead | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    rows = service.list_invitations(session=session, actor=resident_actor(rid))
    return _listing(
        request,
        rid,
        "acp_trusted.html",
        error=error,
        status=status,
        invitations=rows,
        invited=invited,
    )


@router.get("/me/acp/trusted", response_class=HTMLResponse)
def trusted_page(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    return _trusted_page(request, session, rid)


@router.post("/me/acp/trusted", response_class=HTMLResponse)
async def invite(request: Request, session: SessionDep) -> Response:
    """The one-time code is in this answer only (it is kept as a hash): the page is shown
    here rather than after a redirect, and is never cached (``no-store``)."""
    rid = signed_in(request, session)
    form = await _form(request)
    try:
        body = forms.invitation_from_form(form)
    except forms.FormError as exc:
        return _trusted_page(request, session, rid, error=exc.key, status=400)
    invited = service.invite(session=session, actor=resident_actor(rid), body=body)
    return _trusted_page(request, session, rid, invited=invited)


@router.post("/me/acp/trusted/{invitation_id}/withdraw")
async def withdraw(invitation_id: str, request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    await _form(request)
    try:
        service.revoke_invitation(
            session=session, actor=resident_actor(rid), invitation_id=invitation_id
        )
    except PHRError:
        return _trusted_page(request, session, rid, error="acp.error.invitation", status=404)
    return _back("/me/acp/trusted", "withdrawn")
