"""Residents' sign-in with the common digital ID (つくパス) and the OpenID Connect provider.

Routes:

* ``POST /auth/card/challenge``, ``POST /auth/card/verify`` — sign-in with the My Number
  card (challenge–response, :mod:`consent.identity.jpki`); success opens a resident web
  session (cookie ``phr_session``: httpOnly, SameSite=Lax, Secure under https; random id
  stored hashed; 30 minutes idle, 12 hours at most). ``GET /auth/card`` is the sign-in
  page, ``GET /auth/session`` says who is signed in, ``POST /auth/signout`` ends it.
* ``GET /auth/card/demo``, ``POST /auth/card/demo/{resident_id}`` — demo mode only: pick a
  resident's demo card; the server runs the same protocol with the stored demo key.
* ``GET|POST /oauth/authorize`` — authorization code + PKCE (SMART standalone launch):
  sends an unsigned visitor to the sign-in page and back, then shows the consent screen.
  ``POST /oauth/token`` and ``POST /oauth/revoke`` live in :mod:`consent.identity.oauth`.
* ``GET /oauth/userinfo``, ``GET /.well-known/openid-configuration``.

Who is signed in is asked of a list of resolvers (:func:`register_user_resolver`): the
resident session first; staff sign-in (``consent.staff``) adds its own. Each returns a
:class:`~consent.identity.oauth.SignedInUser` or None.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
from authlib.oauth2.rfc6749 import OAuth2Error, scope_to_list
from authlib.oidc.core.errors import ConsentRequiredError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from consent.actors import Actor, Purpose
from consent.identity import cards, jpki
from consent.identity.clients import SCOPE_RE, hash_secret
from consent.identity.models import AppClient, CardLink, ResidentSession
from consent.identity.oauth import (
    APP_AUTH_METHODS,
    SCOPES_SUPPORTED,
    USER_SCOPES,
    PHRAppClient,
    PHRAuthorizationServer,
    SignedInUser,
    TokenHTTPRequest,
    decode_access_token,
    issuer,
    scopes_for_user,
    user_claims,
)
from consent.models import OAuthClient
from phr.db import SessionDep
from phr.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound, PHRError
from phr.security import limiter
from phr.security.csp import inline_style_policy
from phr.settings import Settings, get_settings
from phr.store.indexer import utcnow
from phr.store.reader import RecordReader
from phr.store.repository import load_json

__all__ = [
    "SESSION_COOKIE",
    "SESSION_IDLE_TIMEOUT",
    "SESSION_MAX_AGE",
    "SignedInUser",
    "UserResolver",
    "create_resident_session",
    "current_resident_session",
    "describe_scope",
    "end_resident_session",
    "openid_configuration",
    "register_app_client",
    "register_sign_in_link",
    "register_user_resolver",
    "router",
    "signed_in_user",
    "unregister_user_resolver",
]

log = logging.getLogger(__name__)

SESSION_COOKIE = "phr_session"
CSRF_COOKIE = "phr_csrf"
SESSION_IDLE_TIMEOUT = timedelta(minutes=30)
SESSION_MAX_AGE = timedelta(hours=12)
# last_seen_at is written at most this often (a write per request is not worth it).
SESSION_TOUCH_INTERVAL = timedelta(seconds=60)
MAX_JSON_BYTES = 32 * 1024
DEMO_PICKER_LIMIT = 50

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)

router = APIRouter(tags=["sign-in"])


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _secure(settings: Settings) -> bool:
    return settings.base_url.startswith("https://")


def _base(settings: Settings | None = None) -> str:
    return issuer(settings)


def _page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(name).render(base=_base(), **context)
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            # No form-action: browsers apply it to the redirect to the app after the form.
            "Content-Security-Policy": inline_style_policy(html),
        },
    )


# --------------------------------------------------------------------------- who is signed in

UserResolver = Callable[[Request, Session], SignedInUser | None]


def _resident_resolver(request: Request, session: Session) -> SignedInUser | None:
    row = _session_row(request, session)
    if row is None:
        return None
    return SignedInUser(
        kind="resident", id=row.resident_id, resident_id=row.resident_id, auth_time=row.created_at
    )


_resolvers: list[UserResolver] = [_resident_resolver]


def register_user_resolver(resolver: UserResolver) -> None:
    """Add a way of being signed in (staff sessions); asked after those already there."""
    if resolver not in _resolvers:
        _resolvers.append(resolver)


def unregister_user_resolver(resolver: UserResolver) -> None:
    """Remove a resolver added by :func:`register_user_resolver` (tests)."""
    if resolver in _resolvers and resolver is not _resident_resolver:
        _resolvers.remove(resolver)


def signed_in_user(request: Request, session: Session) -> SignedInUser | None:
    """The first resolver's answer: who is signed in on this browser, or None."""
    for resolver in list(_resolvers):
        user = resolver(request, session)
        if user is not None:
            return user
    return None


@dataclass(frozen=True)
class _SignInLink:
    href: str
    label: str


_sign_in_links: list[_SignInLink] = []


def register_sign_in_link(href: str, label: str) -> None:
    """Offer another sign-in page (e.g. staff) on the sign-in page; gets ``?return_to=``."""
    link = _SignInLink(href, label)
    if link not in _sign_in_links:
        _sign_in_links.append(link)


# --------------------------------------------------------------------------- resident sessions


def create_resident_session(
    session: Session,
    resident_id: str,
    *,
    auth_method: str = "jpki",
    card_link_pk: int | None = None,
    now: datetime | None = None,
) -> str:
    """Open a web session; returns the cookie value (only its hash is stored)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        ResidentSession(
            id_hash=_sha256(token),
            resident_id=resident_id,
            card_link_pk=card_link_pk,
            auth_method=auth_method,
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_MAX_AGE,
            ended_at=None,
        )
    )
    session.flush()
    return token


def _session_row(
    request: Request, session: Session, *, now: datetime | None = None
) -> ResidentSession | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 128:
        return None
    row = session.get(ResidentSession, _sha256(token))
    now = now or utcnow()
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    if now - row.last_seen_at >= SESSION_IDLE_TIMEOUT:
        return None
    if now - row.last_seen_at >= SESSION_TOUCH_INTERVAL:
        row.last_seen_at = now
        session.flush()
    return row


def current_resident_session(request: Request, session: Session) -> str | None:
    """The resident signed in on this browser (cookie ``phr_session``), or None.

    Idle for 30 minutes, or 12 hours after sign-in, the session is over. Each call
    counts as activity.
    """
    row = _session_row(request, session)
    return row.resident_id if row is not None else None


def end_resident_session(request: Request, session: Session) -> bool:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 128:
        return False
    result = session.execute(
        update(ResidentSession)
        .where(ResidentSession.id_hash == _sha256(token), ResidentSession.ended_at.is_(None))
        .values(ended_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return bool(getattr(result, "rowcount", 0))


def _set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        secure=_secure(settings),
        samesite="lax",
        path="/",
    )


# --------------------------------------------------------------------------- CSRF


def _csrf_token(request: Request) -> str:
    """The browser's CSRF token (double-submit cookie), a new one if it has none."""
    existing = request.cookies.get(CSRF_COOKIE, "")
    return existing if re.fullmatch(r"[A-Za-z0-9_-]{43}", existing) else secrets.token_urlsafe(32)


def _with_csrf(response: Response, token: str) -> Response:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        httponly=True,
        secure=_secure(get_settings()),
        samesite="strict",
        path="/",
    )
    return response


def _check_csrf(request: Request, submitted: str | None) -> None:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted or not secrets.compare_digest(cookie, submitted):
        raise Forbidden("the form has expired or did not come from this site; reload the page")


def _safe_return_to(value: str | None) -> str | None:
    """A same-site path to go back to after signing in (never another site)."""
    if not value or len(value) > 4096:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(c) < 0x20 for c in value):
        return None
    return value


# --------------------------------------------------------------------------- app clients


_LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")


def _check_redirect_uri(uri: str) -> None:
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise InvalidInput(f"redirect URI {uri!r} must not have a fragment")
    if parts.scheme == "https" and parts.netloc:
        return
    if parts.scheme == "http" and parts.hostname in _LOOPBACK:
        return
    # Native apps: a private-use scheme in reverse-domain form (RFC 8252 §7.1).
    if "." in parts.scheme and not parts.netloc and parts.path.startswith("/"):
        return
    raise InvalidInput(
        f"redirect URI {uri!r} must be https, http on a loopback address, or a "
        "reverse-domain private-use scheme"
    )


def register_app_client(
    session: Session,
    *,
    name: str,
    redirect_uris: list[str],
    public: bool,
    scopes: list[str],
    client_id: str | None = None,
) -> tuple[AppClient, str | None]:
    """Register an app for the authorization-code flow (SMART App Launch).

    Public apps (in a browser or on a phone) get no secret and must use PKCE; confidential
    apps get a secret, returned here once and stored hashed. Scopes: ``openid fhirUser
    profile launch/patient offline_access`` and SMART ``patient/`` or ``user/`` scopes.
    Apps granted ``offline_access`` may use refresh tokens.
    """
    if not name.strip():
        raise InvalidInput("an app needs a name")
    if not redirect_uris:
        raise InvalidInput("an app needs at least one redirect URI")
    for uri in redirect_uris:
        _check_redirect_uri(uri)
    scopes = list(dict.fromkeys(scopes))
    bad = [
        s
        for s in scopes
        if s not in USER_SCOPES and not (SCOPE_RE.match(s) and not s.startswith("system/"))
    ]
    if bad or not scopes:
        raise InvalidInput(f"scopes not allowed for apps: {' '.join(bad) or '(none)'}")
    client_id = client_id or f"app-{secrets.token_urlsafe(12)}"
    if session.get(AppClient, client_id) or session.get(OAuthClient, client_id):
        raise Conflict(f"client {client_id!r} already exists")
    secret = None if public else secrets.token_urlsafe(32)
    grant_types = ["authorization_code"]
    if "offline_access" in scopes:
        grant_types.append("refresh_token")
    row = AppClient(
        client_id=client_id,
        name=name.strip(),
        public=public,
        client_secret_hash=hash_secret(secret) if secret else None,
        redirect_uris="\n".join(dict.fromkeys(redirect_uris)),
        scopes=" ".join(scopes),
        grant_types=" ".join(grant_types),
        active=True,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row, secret


# --------------------------------------------------------------------------- card sign-in


class CardVerify(BaseModel):
    """The card's answer to a challenge."""

    nonce: str = Field(max_length=128)
    signature: str = Field(max_length=jpki.MAX_SIGNATURE_CHARS, description="base64")
    certificate: str = Field(max_length=jpki.MAX_CERTIFICATE_CHARS, description="PEM or base64 DER")


async def _json_body(request: Request) -> Any:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise InvalidInput("send the answer as application/json")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise InvalidInput("request body too large")
    try:
        return orjson.loads(bytes(body))
    except orjson.JSONDecodeError:
        raise InvalidInput("the body is not valid JSON") from None


def _refusal(exc: jpki.CardRefused) -> JSONResponse:
    log.info("card sign-in refused: %s", exc.reason)
    return JSONResponse(exc.json_body(), status_code=exc.status_code)


def _sign_in(session: Session, answer: CardVerify, *, auth_method: str) -> tuple[str, str]:
    """Run the verification; returns (resident id, session cookie value)."""
    signed = jpki.sign_in_with_card(
        session, nonce=answer.nonce, signature=answer.signature, certificate=answer.certificate
    )
    token = create_resident_session(
        session, signed.resident_id, auth_method=auth_method, card_link_pk=signed.card_link_pk
    )
    log.info("card sign-in accepted (%s)", auth_method)
    return signed.resident_id, token


@router.post("/auth/card/challenge", summary="A one-time nonce for the card to sign")
def card_challenge(session: SessionDep) -> JSONResponse:
    nonce, expires_at = jpki.issue_challenge(session)
    return JSONResponse(
        {
            "nonce": nonce,
            "expires_in": int(jpki.CHALLENGE_TTL.total_seconds()),
            "expires_at": expires_at.isoformat() + "Z",
            "sign": "the nonce's bytes (base64url-decoded): RSA PKCS#1 v1.5 SHA-256, "
            "or ECDSA P-256 SHA-256",
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post(
    "/auth/card/verify",
    summary="Verify the card's signature and certificate; opens a resident session",
    responses={401: {"description": "refused; error is the reason code"}},
)
async def card_verify(request: Request, session: SessionDep) -> Response:
    try:
        answer = CardVerify.model_validate(await _json_body(request))
    except ValidationError as exc:
        raise InvalidInput("expected {nonce, signature, certificate}") from exc
    counters = limiter.sign_in_counters(
        "card-sign-in", account=None, address=limiter.client_address(request)
    )
    limiter.refuse_if_locked(session, counters)
    try:
        resident_id, token = await run_in_threadpool(_sign_in, session, answer, auth_method="jpki")
    except jpki.CardRefused as exc:
        # Answered, not raised: the transaction commits and the nonce stays consumed.
        limiter.record_failure(session, counters)
        return _refusal(exc)
    response = JSONResponse(
        {
            "resident_id": resident_id,
            "idle_timeout": int(SESSION_IDLE_TIMEOUT.total_seconds()),
        },
        headers={"Cache-Control": "no-store"},
    )
    _set_session_cookie(response, token, get_settings())
    return response


@router.get("/auth/card", response_class=HTMLResponse, summary="Sign-in page")
def card_sign_in_page(return_to: str | None = None) -> HTMLResponse:
    return _page(
        "signin.html",
        return_to=_safe_return_to(return_to) or "",
        demo=get_settings().demo_mode,
        other_links=list(_sign_in_links),
    )


@router.get("/auth/session", summary="Who is signed in on this browser")
def who_is_signed_in(request: Request, session: SessionDep) -> JSONResponse:
    user = signed_in_user(request, session)
    if user is None:
        raise NotAuthenticated("not signed in", headers={})
    return JSONResponse(
        {"kind": user.kind, **user_claims(user)}, headers={"Cache-Control": "no-store"}
    )


@router.post("/auth/signout", summary="End the resident web session", status_code=204)
def sign_out(request: Request, session: SessionDep) -> Response:
    end_resident_session(request, session)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --------------------------------------------------------------------------- demo cards


def _require_demo() -> None:
    if not get_settings().demo_mode:
        raise NotFound("not found")


def _patient_name(reader: RecordReader, resident_id: str) -> str | None:
    try:
        patient = load_json(reader.read("Patient", resident_id).content)
    except PHRError:
        return None
    for name in patient.get("name") or []:
        if name.get("text"):
            return str(name["text"])
        parts = [name.get("family") or "", " ".join(name.get("given") or [])]
        text = " ".join(p for p in parts if p)
        if text:
            return text
    return None


def _demo_cards(session: Session) -> list[dict[str, str]]:
    rows = session.scalars(
        select(CardLink)
        .where(CardLink.demo_key_path.is_not(None))
        .order_by(CardLink.created_at.desc(), CardLink.pk.desc())
    )
    latest: dict[str, CardLink] = {}
    for row in rows:
        latest.setdefault(row.resident_id, row)
        if len(latest) >= DEMO_PICKER_LIMIT:
            break
    reader = RecordReader(session, Actor.system("demo-card-picker"), Purpose.OPERATIONS)
    now = utcnow()
    out = []
    for resident_id, link in sorted(latest.items()):
        note = ""
        if link.revoked_at is not None:
            note = "失効 / revoked"
        elif link.not_after < now:
            note = "期限切れ / expired"
        out.append(
            {
                "resident_id": resident_id,
                "name": _patient_name(reader, resident_id) or resident_id,
                "serial": link.serial,
                "note": note,
            }
        )
    return out


@router.get("/auth/card/demo", response_class=HTMLResponse, summary="Demo-card picker")
def demo_card_picker(
    request: Request, session: SessionDep, return_to: str | None = None
) -> Response:
    _require_demo()
    token = _csrf_token(request)
    page = _page(
        "demo_cards.html",
        cards=_demo_cards(session),
        csrf_token=token,
        return_to=_safe_return_to(return_to) or "",
    )
    return _with_csrf(page, token)


def _demo_sign_in(session: Session, resident_id: str) -> tuple[str, str]:
    link = session.scalars(
        select(CardLink)
        .where(CardLink.resident_id == resident_id, CardLink.demo_key_path.is_not(None))
        .order_by(CardLink.created_at.desc(), CardLink.pk.desc())
        .limit(1)
    ).one_or_none()
    if link is None or link.demo_key_path is None:
        raise NotFound("this resident has no demo card")
    key_path = Path(link.demo_key_path)
    stem = key_path.name.removesuffix(".key.pem")
    cert_path = key_path.with_name(f"{stem}.cert.pem")
    try:
        key = cards.load_card_key(key_path)
        certificate = cert_path.read_text()
    except OSError:
        raise NotFound("the demo card's files are missing; issue a new card") from None
    # The same protocol as a real card: challenge, sign with the card's key, verify.
    nonce, _ = jpki.issue_challenge(session)
    answer = CardVerify(
        nonce=nonce, signature=cards.sign_challenge(key, nonce), certificate=certificate
    )
    return _sign_in(session, answer, auth_method="jpki-demo")


@router.post(
    "/auth/card/demo/{resident_id}",
    summary="Sign in with a resident's demo card (demo mode)",
    response_class=HTMLResponse,
)
async def demo_card_sign_in(resident_id: str, request: Request, session: SessionDep) -> Response:
    _require_demo()
    form = await request.form()
    csrf = form.get("csrf_token")
    _check_csrf(request, csrf if isinstance(csrf, str) else None)
    raw_return = form.get("return_to")
    return_to = _safe_return_to(raw_return if isinstance(raw_return, str) else None)
    counters = limiter.sign_in_counters(
        "card-sign-in", account=None, address=limiter.client_address(request)
    )
    limiter.refuse_if_locked(session, counters)
    try:
        _, token = await run_in_threadpool(_demo_sign_in, session, resident_id)
    except NotFound:
        limiter.record_failure(session, counters)
        raise
    except jpki.CardRefused as exc:
        limiter.record_failure(session, counters)
        log.info("demo card sign-in refused: %s", exc.reason)
        return _page(
            "error.html",
            status=exc.status_code,
            title_ja="サインインできませんでした",
            title_en="Sign-in refused",
            message=exc.message,
            code=exc.reason,
            back=f"{_base()}/auth/card/demo",
        )
    response = RedirectResponse(return_to or f"{_base()}/", status_code=303)
    _set_session_cookie(response, token, get_settings())
    return response


# --------------------------------------------------------------------------- authorize


_TYPE_LABELS = {
    "*": ("すべての健康記録", "all of the health record"),
    "Patient": ("基本情報（氏名・生年月日など）", "basic details (name, birth date, ...)"),
    "Observation": ("検査結果・バイタル", "test results and vital signs"),
    "Condition": ("病名・既往歴", "conditions and history"),
    "AllergyIntolerance": ("アレルギー", "allergies"),
    "MedicationRequest": ("処方", "prescriptions"),
    "MedicationDispense": ("調剤", "dispensed medicines"),
    "MedicationStatement": ("服薬情報", "medicines taken"),
    "Immunization": ("予防接種", "vaccinations"),
    "Encounter": ("受診歴", "visits"),
    "Procedure": ("処置・手術", "procedures"),
    "DiagnosticReport": ("検査報告", "diagnostic reports"),
    "DocumentReference": ("文書", "documents"),
    "CarePlan": ("ケア計画", "care plans"),
    "Consent": ("同意・もしもの時の希望", "consents and advance wishes"),
}
_FIXED_SCOPES = {
    "openid": ("あなたが誰かを確認する", "confirm who you are"),
    "fhirUser": ("あなたの利用者IDを知る", "know your user id"),
    "profile": ("あなたの氏名を知る", "know your name"),
    "launch/patient": ("あなた自身の記録を対象にする", "work on your own record"),
    "offline_access": (
        "サインアウト後もアクセスを続ける（取り消すまで）",
        "keep access after you sign out (until you withdraw it)",
    ),
}
_PERMS = {
    "c": ("作成", "create"),
    "r": ("閲覧", "read"),
    "u": ("更新", "update"),
    "d": ("削除", "delete"),
    "s": ("検索", "search"),
}


def describe_scope(scope: str) -> dict[str, str]:
    """A scope in words, Japanese and English, for the consent screen."""
    if scope in _FIXED_SCOPES:
        ja, en = _FIXED_SCOPES[scope]
        return {"scope": scope, "ja": ja, "en": en}
    context, _, rest = scope.partition("/")
    rtype, _, perms = rest.partition(".")
    perms = perms.split("?", 1)[0]
    perms = {"read": "rs", "write": "cud", "*": "cruds"}.get(perms, perms)
    whose = ("あなたの", "your ") if context == "patient" else ("", "")
    type_ja, type_en = _TYPE_LABELS.get(rtype, (rtype, rtype))
    acts_ja = "・".join(_PERMS[p][0] for p in perms if p in _PERMS)
    acts_en = ", ".join(_PERMS[p][1] for p in perms if p in _PERMS)
    return {
        "scope": scope,
        "ja": f"{whose[0]}{type_ja}の{acts_ja}",
        "en": f"{acts_en} {whose[1]}{type_en}",
    }


def _authorize_http(request: Request, pairs: list[tuple[str, str]]) -> TokenHTTPRequest:
    return TokenHTTPRequest(
        method=request.method,
        path="/oauth/authorize",
        headers=request.headers,
        query=dict(request.query_params),
        form=pairs,
    )


def _authorize_error(server: PHRAuthorizationServer, error: OAuth2Error) -> Response:
    """Errors go back to the app when its redirect URI is known; to the person otherwise."""
    if error.redirect_uri:
        return server.handle_error_response(None, error)
    return _page(
        "error.html",
        status=400,
        title_ja="このアプリの要求は受け付けられません",
        title_en="This app's request cannot be accepted",
        message=error.description or error.error,
        code=error.error,
    )


def _sign_in_redirect(pairs: list[tuple[str, str]]) -> RedirectResponse:
    # prompt=login asks for a fresh sign-in: come back without it.
    back = "/oauth/authorize?" + urlencode([(k, v) for k, v in pairs if k != "prompt"])
    return RedirectResponse(
        f"{_base()}/auth/card?" + urlencode({"return_to": back}), status_code=303
    )


def _who(user: SignedInUser) -> tuple[str, str]:
    if user.kind == "resident":
        return (f"住民ID {user.id} でサインインしています。", f"Signed in as resident {user.id}.")
    return (
        f"{user.organization_id} の職員 {user.id}（{user.role}）としてサインインしています。",
        f"Signed in as {user.id} ({user.role}) of {user.organization_id}.",
    )


def _authorize_page(request: Request, session: Session, pairs: list[tuple[str, str]]) -> Response:
    server = PHRAuthorizationServer(session)
    http = _authorize_http(request, pairs)
    user = signed_in_user(request, session)
    try:
        grant = server.get_consent_grant(http, end_user=user)
        prompt = scope_to_list(dict(pairs).get("prompt")) or []
        if user is None or "login" in prompt:
            return _sign_in_redirect(pairs)
        if "none" in prompt:
            # Nothing is remembered: every approval is asked for.
            raise ConsentRequiredError(
                redirect_uri=grant.redirect_uri, state=grant.request.payload.state
            )
    except OAuth2Error as error:
        return _authorize_error(server, error)
    client = grant.request.client
    assert isinstance(client, PHRAppClient)
    granted = scope_to_list(grant.request.scope) or []
    token = _csrf_token(request)
    who_ja, who_en = _who(user)
    page = _page(
        "consent.html",
        client_name=client.row.name,
        who_ja=who_ja,
        who_en=who_en,
        scopes=[describe_scope(s) for s in scopes_for_user(granted, user)],
        params=[(k, v) for k, v in pairs if k not in ("csrf_token", "decision")],
        csrf_token=token,
    )
    return _with_csrf(page, token)


def _authorize_decision(
    request: Request, session: Session, pairs: list[tuple[str, str]], decision: str
) -> Response:
    server = PHRAuthorizationServer(session)
    http = _authorize_http(request, pairs)
    user = signed_in_user(request, session)
    try:
        grant = server.get_consent_grant(http, end_user=user)
    except OAuth2Error as error:
        return _authorize_error(server, error)
    if user is None:
        return _sign_in_redirect(pairs)
    approved = user if decision == "approve" else None
    response: Response = server.create_authorization_response(
        grant.request, grant_user=approved, grant=grant
    )
    return response


@router.get(
    "/oauth/authorize",
    summary="Authorization endpoint (code + PKCE): consent screen",
    response_class=HTMLResponse,
)
def authorize(request: Request, session: SessionDep) -> Response:
    return _authorize_page(request, session, list(request.query_params.multi_items()))


@router.post(
    "/oauth/authorize",
    summary="The person's decision on the consent screen",
    response_class=HTMLResponse,
)
async def authorize_decision(request: Request, session: SessionDep) -> Response:
    form = await request.form()
    pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    fields = dict(pairs)
    _check_csrf(request, fields.get("csrf_token"))
    decision = fields.get("decision")
    if decision not in ("approve", "deny"):
        raise InvalidInput("decision must be approve or deny")
    pairs = [(k, v) for k, v in pairs if k not in ("csrf_token", "decision")]
    return await run_in_threadpool(_authorize_decision, request, session, pairs, decision)


# --------------------------------------------------------------------------- userinfo, discovery


def _userinfo(request: Request, session: Session) -> dict[str, Any]:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("missing bearer token (Authorization: Bearer ...)")
    actor = decode_access_token(session, token.strip())
    if "openid" not in actor.scopes or actor.kind not in ("resident", "staff"):
        raise Forbidden("userinfo needs a user's access token with the openid scope")
    if actor.kind == "resident":
        assert actor.resident_id is not None
        user = SignedInUser(kind="resident", id=actor.resident_id, resident_id=actor.resident_id)
    else:
        assert actor.user_id is not None
        user = SignedInUser(
            kind="staff",
            id=actor.user_id,
            organization_id=actor.organization_id,
            role=actor.role,
        )
    info: dict[str, Any] = dict(user_claims(user))
    if "profile" in actor.scopes and actor.kind == "resident" and actor.resident_id:
        # The resident reading their own record: through the choke point, logged.
        name = _patient_name(
            RecordReader(session, actor, Purpose.PATIENT_ACCESS), actor.resident_id
        )
        if name:
            info["name"] = name
    return info


@router.get("/oauth/userinfo", summary="OpenID Connect userinfo")
@router.post("/oauth/userinfo", summary="OpenID Connect userinfo (POST)")
def userinfo(request: Request, session: SessionDep) -> JSONResponse:
    return JSONResponse(_userinfo(request, session), headers={"Cache-Control": "no-store"})


def openid_configuration(settings: Settings | None = None) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 provider metadata."""
    base = issuer(settings)
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": list(APP_AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(APP_AUTH_METHODS),
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": [s for s in SCOPES_SUPPORTED if not s.startswith("system/")],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "sid",
            "fhirUser",
            "org",
            "role",
            "name",
        ],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }


@router.get("/.well-known/openid-configuration", summary="OpenID Connect discovery")
def openid_configuration_endpoint() -> JSONResponse:
    return JSONResponse(openid_configuration(), headers={"Cache-Control": "public, max-age=3600"})
