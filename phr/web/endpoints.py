"""The resident web app's pages (``/`` and ``/me/...``) and its static files.

Each page: find the signed-in resident (:func:`signed_in`, else a redirect to sign-in),
read through :mod:`phr.web.service` (RecordReader, resident actor, PATRQT), render a
template. Every POST checks the CSRF token first. The route class
(:class:`~phr.web.security.WebRoute`) adds the security headers to every answer.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from consent import audit, notifications
from consent.audit_endpoints import entry_view
from consent.identity import jpki
from consent.identity.oidc import (
    SESSION_COOKIE,
    _demo_cards,
    _demo_sign_in,
    _set_session_cookie,
    current_resident_session,
    end_resident_session,
)
from consent.policy import service as policy
from fhir_gateway.api import render as fhir_render
from fhir_gateway.api.operations.summary import build_document
from phr.db import SessionDep
from phr.errors import PHRError
from phr.settings import get_settings
from phr.store.indexer import utcnow
from phr.web import charts, i18n, repository, service, sharing
from phr.web.render import language, page, static_file
from phr.web.security import (
    CsrfRefused,
    SignInRequired,
    WebRoute,
    check_csrf,
    safe_path,
    secure_cookies,
)

__all__ = ["router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)

ACCESS_LOG_PAGE = 30


def signed_in(request: Request, session: Session) -> str:
    """The signed-in resident's id; otherwise back to sign-in (and then here again)."""
    rid = current_resident_session(request, session)
    if rid is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(here, expired=SESSION_COOKIE in request.cookies)
    return rid


async def _form(request: Request) -> Any:
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    return form


def _back(path: str, **flags: str) -> RedirectResponse:
    query = "&".join(f"{k}={v}" for k, v in flags.items())
    return RedirectResponse(path + (f"?{query}" if query else ""), status_code=303)


# ---- static files, language, landing -------------------------------------------


@router.get("/static/web/{name}")
def static(name: str, request: Request) -> Response:
    f = static_file(name)
    if f is None:
        return Response(status_code=404)
    headers = {"ETag": f'"{f.etag}"', "Cache-Control": "public, max-age=86400"}
    if request.headers.get("if-none-match") == f'"{f.etag}"':
        return Response(status_code=304, headers=headers)
    return Response(f.body, media_type=f.media_type, headers=headers)


@router.get("/lang/{code}")
def switch_language(code: str, return_to: str | None = None) -> Response:
    """Remember the chosen language (a cookie) and go back to the page."""
    response = RedirectResponse(safe_path(return_to, "/"), status_code=303)
    if code in i18n.LANGUAGES:
        response.set_cookie(
            i18n.LANG_COOKIE,
            code,
            max_age=365 * 24 * 3600,
            httponly=True,
            secure=secure_cookies(),
            samesite="lax",
            path="/",
        )
    return response


@router.get("/", response_class=HTMLResponse)
def landing(request: Request, session: SessionDep) -> Response:
    rid = current_resident_session(request, session)
    return page(request, "landing.html", resident=rid, base=get_settings().base_url.rstrip("/"))


# ---- sign-in and sign-out ---------------------------------------------------------------


@router.get("/me/signin", response_class=HTMLResponse)
def sign_in_page(
    request: Request,
    session: SessionDep,
    return_to: str | None = None,
    expired: str | None = None,
    signed_out: str | None = None,
) -> Response:
    demo = get_settings().demo_mode
    return page(
        request,
        "signin.html",
        resident=None,
        demo=demo,
        cards=_demo_cards(session) if demo else [],
        return_to=safe_path(return_to),
        expired=bool(expired),
        signed_out=bool(signed_out),
        refused=None,
    )


@router.post("/me/signin/demo", response_class=HTMLResponse)
async def demo_sign_in(request: Request, session: SessionDep) -> Response:
    """Demo mode: the server runs the card protocol (challenge, signature with the demo
    card's key, verification) on the resident's behalf."""
    form = await _form(request)
    if not get_settings().demo_mode:
        return Response(status_code=404)
    resident_id = form.get("resident_id")
    return_to = safe_path(form.get("return_to") if isinstance(form.get("return_to"), str) else None)
    if not isinstance(resident_id, str) or not resident_id:
        raise CsrfRefused()
    try:
        _, token = await run_in_threadpool(_demo_sign_in, session, resident_id)
    except (jpki.CardRefused, PHRError) as exc:
        reason = getattr(exc, "reason", "not_found")
        return page(
            request,
            "signin.html",
            status=401,
            resident=None,
            demo=True,
            cards=_demo_cards(session),
            return_to=return_to,
            expired=False,
            signed_out=False,
            refused=reason,
        )
    response = RedirectResponse(return_to, status_code=303)
    _set_session_cookie(response, token, get_settings())
    return response


@router.post("/me/signout")
async def sign_out(request: Request, session: SessionDep) -> Response:
    await _form(request)
    end_resident_session(request, session)
    response = _back("/me/signin", signed_out="1")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ---- home and record -------------------------------------------


@router.get("/me", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    me, new = service.whats_new(session, rid)
    inbox = notifications.list_notifications(
        session, recipient=notifications.resident_ref(rid), limit=3, unread_only=True
    )
    lang = language(request)
    return page(
        request,
        "home.html",
        resident=rid,
        me=me,
        new=new,
        inbox=[notifications.render(n, lang) for n in inbox],
    )


@router.get("/me/record", response_class=HTMLResponse)
def record(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    rec = service.load_record(
        session, rid, ["Condition", "AllergyIntolerance", "Immunization", "Procedure"]
    )
    active, past = service.problems(rec)
    return page(
        request,
        "record.html",
        resident=rid,
        active=active,
        past=past,
        allergies=rec.of("AllergyIntolerance"),
        vaccinations=rec.of("Immunization"),
        disabilities=service.disabilities(rec),
        procedures=rec.of("Procedure"),
    )


@router.get("/me/medicines", response_class=HTMLResponse)
def medicines(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    rec = service.load_record(
        session, rid, ["MedicationRequest", "MedicationDispense", "MedicationStatement"]
    )
    lang = language(request)
    current, past, duplicates = service.medicine_groups(rec, lang)
    return page(
        request,
        "medicines.html",
        resident=rid,
        current=current,
        past=past,
        duplicates=duplicates,
        review=service.medication_review(session, rid, lang),
    )


@router.get("/me/results", response_class=HTMLResponse)
def results(request: Request, session: SessionDep, year: str | None = None) -> Response:
    rid = signed_in(request, session)
    rec = service.load_record(session, rid, ["Observation"])
    years = service.result_years(rec)
    shown = year if year in years else (years[0] if years else None)
    return page(
        request,
        "results.html",
        resident=rid,
        trend=[(spec, s, charts.layout(s)) for spec, s in service.all_series(rec)],
        years=years,
        year=shown,
        rows=service.result_rows(rec, language(request), year=shown) if shown else [],
    )


@router.get("/me/visits", response_class=HTMLResponse)
def visits(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    rec = service.load_record(session, rid, ["Encounter"])
    lang = language(request)
    return page(request, "visits.html", resident=rid, years=service.visits(rec, lang))


# ---- downloads -------------------------------------------


@router.get("/me/download", response_class=HTMLResponse)
def download(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    return page(request, "download.html", resident=rid)


def _attachment(body: bytes, filename: str) -> Response:
    return Response(
        body,
        media_type="application/fhir+json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/me/download/record.json")
def download_everything(request: Request, session: SessionDep) -> Response:
    """The whole record as a FHIR Bundle (what ``Patient/{id}/$everything`` answers)."""
    rid = signed_in(request, session)
    reader = service.reader_for(session, rid)
    entries = [
        fhir_render.entry(r.resource_type, r.id, r.content)
        for r in reader.compartment(rid, action="export")
        if r.resource_type != "Provenance"
    ]
    body = fhir_render.bundle(btype="searchset", entries=entries, total=len(entries))
    return _attachment(body, "my-health-record.json")


@router.get("/me/download/summary.json")
def download_summary(request: Request, session: SessionDep) -> Response:
    """The International Patient Summary (what ``Patient/{id}/$summary`` answers)."""
    rid = signed_in(request, session)
    return _attachment(build_document(service.reader_for(session, rid), rid), "my-summary.json")


# The printable page lists results and visits of this many recent years unless asked for
# everything (ten years of monthly checkups would be dozens of pages).
PRINT_YEARS = 2


@router.get("/me/print", response_class=HTMLResponse)
def printable(request: Request, session: SessionDep, all: str | None = None) -> Response:
    rid = signed_in(request, session)
    whole = bool(all)
    since = f"{utcnow().year - PRINT_YEARS + 1}-01-01"
    lang = language(request)
    others = [t for t in service.CLINICAL_TYPES if t not in ("Observation", "Encounter")]
    if whole:
        rec = service.load_record(session, rid, list(service.CLINICAL_TYPES), action="export")
        recent = rec
    else:
        rec = service.load_record(session, rid, others, action="export")
        obs = service.load_recent(session, rid, "Observation", since)
        enc = service.load_recent(session, rid, "Encounter", since)
        recent = service.Record(rid, {**obs.by_type, **enc.by_type}, None)
    active, past = service.problems(rec)
    current, past_meds, _ = service.medicine_groups(rec, lang)
    return page(
        request,
        "print.html",
        resident=rid,
        me=service.person(rec.patient),
        active=active,
        past=past,
        allergies=rec.of("AllergyIntolerance"),
        vaccinations=rec.of("Immunization"),
        disabilities=service.disabilities(rec),
        current=current,
        past_meds=past_meds,
        rows=service.result_rows(recent, lang),
        years=service.visits(recent, lang),
        whole=whole,
        since=since,
    )


# ---- sharing -------------------------------------------


def _form_choices(session: Session) -> dict[str, Any]:
    """What the consent form offers."""
    return {
        "organizations": repository.organizations(session),
        "kinds": sharing.FORM_KINDS,
        "kind_labels": policy.KIND_LABELS,
        "roles": sharing.FORM_ROLES,
        "purposes": sharing.FORM_PURPOSES,
        "data": sharing.FORM_DATA,
    }


def _sharing_page(
    request: Request, session: Session, rid: str, *, error: str | None = None, status: int = 200
) -> Response:
    lang = language(request)
    t = i18n.Translator(lang)
    views = sharing.consent_views(session, service.resident_actor(rid), t)
    return page(
        request,
        "sharing.html",
        status=status,
        resident=rid,
        consents=[v for v in views if not v.emergency],
        emergency=any(v.emergency and v.active for v in views),
        trusted=sharing.trusted_persons(session, rid),
        **_form_choices(session),
        error=error,
        done=request.query_params.get("done"),
    )


@router.get("/me/sharing", response_class=HTMLResponse)
def sharing_page(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    return _sharing_page(request, session, rid)


@router.post("/me/sharing")
async def add_consent(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    form = await _form(request)
    try:
        body = sharing.consent_from_form(form)
        policy.create_consent(session, service.resident_actor(rid), body)
    except PHRError as exc:
        return _sharing_page(request, session, rid, error=_message_key(exc), status=400)
    return _back("/me/sharing", done="added")


def _message_key(exc: PHRError) -> str:
    text = str(exc.args[0]) if exc.args else ""
    return text if text.startswith("sharing.error.") else "sharing.error.invalid"


@router.get("/me/sharing/{consent_id}/edit", response_class=HTMLResponse)
def edit_consent_page(consent_id: str, request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    lang = language(request)
    views = sharing.consent_views(session, service.resident_actor(rid), i18n.Translator(lang))
    view = next((v for v in views if v.id == consent_id and v.active and not v.emergency), None)
    if view is None:
        return _back("/me/sharing")
    return page(
        request,
        "consent_edit.html",
        resident=rid,
        consent=view,
        **_form_choices(session),
        error=None,
    )


@router.post("/me/sharing/{consent_id}")
async def change_consent(consent_id: str, request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    form = await _form(request)
    try:
        body = sharing.consent_from_form(form)
        policy.update_consent(session, service.resident_actor(rid), consent_id, body)
    except PHRError as exc:
        return _sharing_page(request, session, rid, error=_message_key(exc), status=400)
    return _back("/me/sharing", done="changed")


@router.post("/me/sharing/{consent_id}/revoke")
async def revoke_consent(consent_id: str, request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    await _form(request)
    try:
        policy.revoke_consent(session, service.resident_actor(rid), consent_id)
    except PHRError:
        return _sharing_page(request, session, rid, error="sharing.error.invalid", status=404)
    return _back("/me/sharing", done="revoked")


@router.get("/me/emergency", response_class=HTMLResponse)
def emergency_page(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    lang = language(request)
    views = sharing.consent_views(session, service.resident_actor(rid), i18n.Translator(lang))
    preview = sharing.emergency_preview(session, rid, views)
    consents = policy.list_consents(session, service.resident_actor(rid))
    return page(
        request,
        "emergency.html",
        resident=rid,
        preview=preview,
        me=service.person(
            next((i for t, items in preview.by_type if t == "Patient" for i in items), None)
        ),
        life_protection=get_settings().life_protection_exception,
        disaster=any(c.disaster and c.status == "active" for c in consents),
        done=request.query_params.get("done"),
    )


@router.post("/me/disaster")
async def disaster_switch(request: Request, session: SessionDep) -> Response:
    """The disaster-time consent (ADR 0006): shelters see medicines, allergies and
    problems while the resident is checked in at one."""
    rid = signed_in(request, session)
    form = await _form(request)
    enabled = form.get("enabled") == "on"
    from consent.policy.schemas import EmergencyConsentIn

    policy.set_disaster_consent(
        session, service.resident_actor(rid), EmergencyConsentIn(enabled=enabled)
    )
    return _back("/me/emergency", done="disaster_on" if enabled else "disaster_off")


@router.post("/me/emergency")
async def emergency_switch(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    form = await _form(request)
    enabled = form.get("enabled") == "on"
    from consent.policy.schemas import EmergencyConsentIn

    policy.set_emergency_consent(
        session, service.resident_actor(rid), EmergencyConsentIn(enabled=enabled)
    )
    return _back("/me/emergency", done="on" if enabled else "off")


@router.post("/me/trusted")
async def add_trusted(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    form = await _form(request)
    person = form.get("person")
    if not isinstance(person, str) or not person.strip() or len(person.strip()) > 64:
        return _sharing_page(request, session, rid, error="sharing.error.person", status=400)
    notifications.add_watcher(session, resident_id=rid, trusted_person_id=person.strip())
    return _back("/me/sharing", done="trusted")


@router.post("/me/trusted/remove")
async def remove_trusted(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    form = await _form(request)
    person = form.get("person")
    if isinstance(person, str):
        notifications.remove_watcher(session, resident_id=rid, trusted_person_id=person)
    return _back("/me/sharing", done="untrusted")


# ---- access log and notifications -------------------------------------------


@router.get("/me/access-log", response_class=HTMLResponse)
def access_log(
    request: Request, session: SessionDep, before: int | None = None, own: str | None = None
) -> Response:
    rid = signed_in(request, session)
    lang = language(request)
    where = audit.LogFilter(resident_id=rid, include_own=bool(own))
    entries, orgs = audit.access_log(
        session, where, limit=ACCESS_LOG_PAGE, before=before if before and before > 0 else None
    )
    views = [entry_view(e, orgs.get(e.organization_id or ""), lang) for e in entries]
    return page(
        request,
        "access_log.html",
        resident=rid,
        entries=views,
        next_before=entries[-1].seq if len(entries) == ACCESS_LOG_PAGE else None,
        own=bool(own),
    )


@router.get("/me/notifications", response_class=HTMLResponse)
def inbox(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    lang = language(request)
    rows = notifications.list_notifications(
        session, recipient=notifications.resident_ref(rid), limit=100
    )
    return page(
        request,
        "notifications.html",
        resident=rid,
        items=[notifications.render(n, lang) for n in rows],
    )


@router.post("/me/notifications/{notification_id}/read")
async def mark_read(notification_id: str, request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    await _form(request)
    with contextlib.suppress(PHRError):  # someone else's or gone: nothing to mark
        notifications.mark_read(
            session, recipient=notifications.resident_ref(rid), notification_id=notification_id
        )
    return _back("/me/notifications")
