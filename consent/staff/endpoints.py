"""HTTP routes of staff sign-in (``/auth/staff/...``) and the registry API (``/api/admin/...``).

Sign-in answers JSON to JSON and to forms without ``next``; a form with a local ``next``
path is redirected there (303) once signed in, which is how the OpenID Connect
authorization endpoint sends staff through this page. The registry API is authorised by
the staff session cookie of an administrator: a platform administrator (administrator of
the ``platform`` organisation) manages every organisation, an organisation's
administrator only its own staff and clients. No session: 401; any other role or another
organisation: 403.
"""

from __future__ import annotations

import html
import logging
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from consent.models import OAuthClient, Organization
from consent.staff import auth, service
from consent.staff import repository as repo
from consent.staff.auth import AdministratorDep, StaffDep, current_staff
from consent.staff.models import StaffUser
from consent.staff.schemas import (
    ClientCreate,
    ClientCreated,
    ClientRead,
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
    StaffCreate,
    StaffCreated,
    StaffLogin,
    StaffRead,
    StaffSignedIn,
    StaffUpdate,
)
from phr.db import SessionDep
from phr.errors import (
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    issue,
)
from phr.security import limiter

__all__ = ["current_staff", "router"]

log = logging.getLogger(__name__)

router = APIRouter()

LOGIN_PATH = "/auth/staff/login"
MAX_LOGIN_BYTES = 16 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


# --------------------------------------------------------------------------- sign-in


def _safe_next(target: str | None) -> str | None:
    """A path on this server, or None: never an absolute or scheme-relative URL."""
    if not target or len(target) > 4096 or not target.startswith("/"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None
    return target


def _login_page(next_path: str | None = None, error: str | None = None) -> str:
    hidden = (
        f"<input type=hidden name=return_to value='{html.escape(next_path, quote=True)}'>"
        if next_path
        else ""
    )
    message = f"<p role=alert>{html.escape(error)}</p>" if error else ""
    return (
        "<!doctype html><html lang=ja><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        "<title>職員ログイン — Tsukuba PHR</title>"
        "<h1>職員ログイン <small>Staff sign-in</small></h1>"
        f"{message}"
        "<form method=post action='/auth/staff/login'>"
        "<p><label>機関ID Organisation <input name=organization_id required "
        "autocomplete=organization></label></p>"
        "<p><label>ユーザー名 Username <input name=username required "
        "autocomplete=username></label></p>"
        "<p><label>パスワード Password <input name=password type=password required "
        "autocomplete=current-password></label></p>"
        "<p><label>確認コード One-time code <input name=totp required inputmode=numeric "
        "pattern='[0-9 ]{6,8}' autocomplete=one-time-code></label></p>"
        f"{hidden}<p><button>ログイン Sign in</button></p></form></html>"
    )


async def _read_login(request: Request) -> tuple[bool, dict[str, Any]]:
    """``(is_form, fields)`` of a JSON or form body."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_LOGIN_BYTES:
        raise PayloadTooLarge("sign-in request too large")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await request.body()
        if len(body) > MAX_LOGIN_BYTES:
            raise PayloadTooLarge("sign-in request too large")
        try:
            data = await request.json()
        except ValueError:
            raise InvalidInput("the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise InvalidInput("the body must be a JSON object")
        return False, data
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form(max_files=0, max_fields=16)
        return True, {k: v for k, v in form.items() if isinstance(v, str)}
    raise UnsupportedMediaType("send JSON or a form (application/x-www-form-urlencoded)")


def _sign_in(session: Session, request: Request, body: StaffLogin) -> tuple[StaffUser, str]:
    user = service.authenticate_staff(
        session,
        organization_id=body.organization_id,
        username=body.username,
        password=body.password,
        totp_code=body.totp,
    )
    # A new sign-in always gets a new session id (no fixation); the browser's old one ends.
    service.end_session(session, auth.session_token(request))
    return user, service.start_session(session, user)


@router.get(LOGIN_PATH, response_class=HTMLResponse, tags=["staff"])
def login_page(return_to: str | None = None, next: str | None = None) -> HTMLResponse:
    """The staff sign-in form (password and authenticator code)."""
    return HTMLResponse(_login_page(_safe_next(return_to or next)), headers=_NO_STORE)


@router.post(
    LOGIN_PATH,
    tags=["staff"],
    response_model=StaffSignedIn,
    responses={401: {"description": "sign-in failed (one generic message)"}},
)
async def login(request: Request, session: SessionDep) -> Response:
    """Sign in with organisation, username, password and TOTP code; sets ``phr_staff``.

    Body: JSON or form ``{organization_id, username, password, totp[, return_to]}``
    (``next`` is accepted for ``return_to``).
    """
    is_form, data = await _read_login(request)
    try:
        body = StaffLogin.model_validate(data)
    except ValidationError as exc:
        issues = [
            issue(str(e.get("msg")), expression=".".join(str(x) for x in e.get("loc", ())))
            for e in exc.errors(include_input=False)[:10]
        ]
        raise InvalidInput("invalid sign-in request", issues=issues) from None
    wanted = body.return_to or body.next
    next_path = _safe_next(wanted) if is_form else None
    counters = limiter.sign_in_counters(
        "staff-sign-in",
        account=f"{body.organization_id}|{body.username.casefold()}",
        address=limiter.client_address(request),
    )
    limiter.refuse_if_locked(session, counters)
    try:
        user, token = await run_in_threadpool(_sign_in, session, request, body)
    except NotAuthenticated as exc:
        limiter.record_failure(session, counters)
        if not is_form or wanted is None:
            raise
        # A person at a browser: show the form again. The failure count is committed with
        # this (successful) response.
        return HTMLResponse(_login_page(next_path, exc.message), status_code=401, headers=_NO_STORE)
    response: Response
    if next_path is not None:
        response = RedirectResponse(next_path, status_code=303, headers=_NO_STORE)
    else:
        signed_in = StaffSignedIn(id=user.id, organization_id=user.organization_id, role=user.role)
        response = JSONResponse(signed_in.model_dump(), headers=_NO_STORE)
    auth.set_session_cookie(response, token)
    return response


@router.post("/auth/staff/logout", status_code=204, tags=["staff"])
def logout(request: Request, session: SessionDep) -> Response:
    """End this browser's staff session (whether or not one was open)."""
    service.end_session(session, auth.session_token(request))
    response = Response(status_code=204, headers=_NO_STORE)
    auth.clear_session_cookie(response)
    return response


@router.get("/auth/staff/me", response_model=StaffRead, tags=["staff"])
def me(user: StaffDep) -> StaffRead:
    """The signed-in staff member."""
    return StaffRead.model_validate(user)


# --------------------------------------------------------------------------- registry API

ADMIN = "/api/admin/organizations"


def _require_platform(session: Session, admin: StaffUser) -> None:
    if not service.is_platform_administrator(session, admin):
        raise Forbidden("only platform administrators manage organisations")


def _client_read(client: OAuthClient) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "organization_id": client.organization_id,
        "name": client.name,
        "scopes": client.scopes.split(),
        "grant_types": client.grant_types.split(),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "active": client.active,
        "created_at": client.created_at,
    }


def _staff_of(session: Session, org: Organization, staff_id: str) -> StaffUser:
    user = repo.get_staff(session, staff_id)
    if user is None or user.organization_id != org.id:
        raise NotFound(f"no staff member {staff_id!r} in {org.id!r}")
    return user


@router.get(ADMIN, response_model=list[OrganizationRead], tags=["admin"])
def list_organizations(admin: AdministratorDep, session: SessionDep) -> list[OrganizationRead]:
    """Every organisation (platform administrators) or one's own."""
    only = None if service.is_platform_administrator(session, admin) else admin.organization_id
    return [OrganizationRead.model_validate(o) for o in repo.list_organizations(session, only=only)]


@router.post(ADMIN, response_model=OrganizationRead, status_code=201, tags=["admin"])
def create_organization(
    body: OrganizationCreate, admin: AdministratorDep, session: SessionDep
) -> OrganizationRead:
    """Register an organisation (platform administrators)."""
    _require_platform(session, admin)
    org = service.create_organization(session, **body.model_dump())
    return OrganizationRead.model_validate(org)


@router.patch(ADMIN + "/{organization_id}", response_model=OrganizationRead, tags=["admin"])
def update_organization(
    organization_id: str, body: OrganizationUpdate, admin: AdministratorDep, session: SessionDep
) -> OrganizationRead:
    """Rename, activate or deactivate an organisation (platform administrators)."""
    _require_platform(session, admin)
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound(f"no organization {organization_id!r}")
    service.update_organization(session, org, name=body.name, active=body.active)
    return OrganizationRead.model_validate(org)


@router.get(ADMIN + "/{organization_id}/staff", response_model=list[StaffRead], tags=["admin"])
def list_staff(
    organization_id: str, admin: AdministratorDep, session: SessionDep
) -> list[StaffRead]:
    org = service.require_manages(session, admin, organization_id)
    return [StaffRead.model_validate(u) for u in repo.list_staff(session, org.id)]


@router.post(
    ADMIN + "/{organization_id}/staff",
    response_model=StaffCreated,
    status_code=201,
    tags=["admin"],
)
def create_staff(
    organization_id: str,
    body: StaffCreate,
    admin: AdministratorDep,
    session: SessionDep,
    response: Response,
) -> StaffCreated:
    """Create a staff account; the initial password (when generated) and the TOTP
    provisioning URI are in this response only."""
    org = service.require_manages(session, admin, organization_id)
    user, credentials = service.create_staff(session, organization_id=org.id, **body.model_dump())
    response.headers.update(_NO_STORE)
    return StaffCreated.model_validate(
        {
            **StaffRead.model_validate(user).model_dump(),
            "initial_password": credentials.password,
            "totp_uri": credentials.totp_uri,
        }
    )


@router.patch(
    ADMIN + "/{organization_id}/staff/{staff_id}", response_model=StaffCreated, tags=["admin"]
)
def update_staff(
    organization_id: str,
    staff_id: str,
    body: StaffUpdate,
    admin: AdministratorDep,
    session: SessionDep,
    response: Response,
) -> StaffCreated:
    """Change role, name or active; ``reset_totp``/``reset_password`` answer the new
    provisioning URI / password once (and end the account's sessions)."""
    org = service.require_manages(session, admin, organization_id)
    user = _staff_of(session, org, staff_id)
    credentials = service.update_staff(session, user, **body.model_dump())
    response.headers.update(_NO_STORE)
    return StaffCreated.model_validate(
        {
            **StaffRead.model_validate(user).model_dump(),
            "initial_password": credentials.password if credentials else None,
            "totp_uri": credentials.totp_uri if credentials else None,
        }
    )


@router.get(ADMIN + "/{organization_id}/clients", response_model=list[ClientRead], tags=["admin"])
def list_clients(
    organization_id: str, admin: AdministratorDep, session: SessionDep
) -> list[ClientRead]:
    org = service.require_manages(session, admin, organization_id)
    return [ClientRead.model_validate(_client_read(c)) for c in repo.list_clients(session, org.id)]


@router.post(
    ADMIN + "/{organization_id}/clients",
    response_model=ClientCreated,
    status_code=201,
    tags=["admin"],
)
def create_client(
    organization_id: str,
    body: ClientCreate,
    admin: AdministratorDep,
    session: SessionDep,
    response: Response,
) -> ClientCreated:
    """Register an OAuth2 client (client credentials); the secret is in this response only."""
    org = service.require_manages(session, admin, organization_id)
    client, secret = service.register_organization_client(
        session, org, name=body.name, scopes=body.scopes, client_id=body.client_id
    )
    response.headers.update(_NO_STORE)
    return ClientCreated.model_validate({**_client_read(client), "client_secret": secret})


@router.delete(ADMIN + "/{organization_id}/clients/{client_id}", status_code=204, tags=["admin"])
def deactivate_client(
    organization_id: str, client_id: str, admin: AdministratorDep, session: SessionDep
) -> Response:
    """Deactivate a client: its access tokens stop working on the next request."""
    org = service.require_manages(session, admin, organization_id)
    service.deactivate_client(session, org, client_id)
    return Response(status_code=204)


# --------------------------------------------------------------------------- OIDC seam


def _register_with_oidc_provider() -> bool:
    """Let the OpenID Connect provider see staff signed in here (when it offers the hooks).

    The provider asks each registered resolver who is signed in on the browser that hit its
    authorization endpoint; ours answers from the ``phr_staff`` cookie. Its sign-in page
    also links to ours (with ``?return_to=`` back to the authorization request).
    """
    try:
        from consent.identity import oidc
        from consent.identity.oidc import (  # type: ignore[attr-defined]
            SignedInUser,
            register_user_resolver,
        )
    except (ImportError, AttributeError):
        return False

    def resolve_staff(request: Request, session: Session) -> Any:
        user = current_staff(request, session)
        if user is None:
            return None
        return SignedInUser(
            kind="staff",
            id=user.id,
            resident_id=None,
            organization_id=user.organization_id,
            role=user.role,
            auth_time=getattr(request.state, "staff_signed_in_at", None),
        )

    register_user_resolver(resolve_staff)
    register_link = getattr(oidc, "register_sign_in_link", None)
    if register_link is not None:
        register_link(LOGIN_PATH, "職員ログイン（パスワードと確認コード）Staff sign-in")
    return True


OIDC_RESOLVER_REGISTERED = _register_with_oidc_provider()
