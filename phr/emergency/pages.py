"""The paramedic tablet screen (``/ems``) and the receiving hospital's incoming patients
(``/hospital``), on the staff session (password + TOTP, cookie ``phr_staff``).

The tablet is for a signed-in staff member with the role ``paramedic`` at an EMS
organisation; the hospital pages for a doctor or nurse at a hospital. Every step goes
through :mod:`phr.emergency.service` (which audits it and reads through the choke point)
with the staff member's own :class:`~consent.actors.Actor`; every POST checks the CSRF
token first. A refused step (a candidate not confirmed, a lookup throttled) is undone like
a failed request — its refusal stays in the access log — and the page says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from consent.actors import Actor
from consent.staff import service as staff_service
from consent.staff.auth import COOKIE_NAME, clear_session_cookie, current_staff, session_token
from consent.staff.endpoints import LOGIN_PATH
from phr.biometrics.extractor import ExtractorUnavailable, NoFaceFound, default_extractor
from phr.biometrics.extractor import available as face_extra_installed
from phr.biometrics.service import RateLimited
from phr.db import SessionDep, roll_back
from phr.emergency import flows, photos, repository, schemas, service, summary
from phr.emergency.models import Incident
from phr.errors import Forbidden, InvalidInput, NotFound, PHRError
from phr.web import repository as web_repository
from phr.web.render import error_page, page
from phr.web.security import SignInRequired, WebRoute, check_csrf

__all__ = ["router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)

CLIENT_ID = "ems-tablet"
SCOPES = ("user/*.rs",)
HOSPITAL_ROLES = frozenset({"doctor", "nurse"})
JCS = (0, 1, 2, 3, 10, 20, 30, 100, 200, 300)
SEXES = ("female", "male", "other", "unknown")
FACE_SEXES = ("female", "male", "other")
MAX_PHOTO_BYTES = 8 * 1024 * 1024


class _Refused(Exception):
    """The signed-in staff member may not use this screen."""


def _staff(request: Request, session: Session, kind: str, roles: frozenset[str]) -> Actor:
    user = current_staff(request, session)
    if user is None:
        here = request.url.path
        raise SignInRequired(here, expired=COOKIE_NAME in request.cookies, signin=LOGIN_PATH)
    actor = staff_service.staff_actor(user, client_id=CLIENT_ID, scopes=SCOPES)
    if actor.organization_kind != kind or actor.role not in roles:
        raise _Refused()
    return actor


def _page_or_refusal(request: Request, session: Session, kind: str, roles: frozenset[str]) -> Any:
    try:
        return _staff(request, session, kind, roles)
    except _Refused:
        return error_page(request, "ems.error.role", status=403)


def _crew(request: Request, session: Session) -> Actor | Response:
    return _page_or_refusal(request, session, "ems", frozenset({"paramedic"}))


def _receiving(request: Request, session: Session) -> Actor | Response:
    return _page_or_refusal(request, session, "hospital", HOSPITAL_ROLES)


async def _form(request: Request) -> Any:
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    return form


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None


def _fields(form: Any, names: tuple[str, ...]) -> dict[str, str]:
    return {n: v for n in names if (v := _text(form, n)) is not None}


def _to(incident_id: str, **flags: str) -> RedirectResponse:
    query = "&".join(f"{k}={v}" for k, v in flags.items())
    return RedirectResponse(
        f"/ems/incidents/{incident_id}" + (f"?{query}" if query else ""), status_code=303
    )


def _refusal_key(exc: Exception) -> str:
    if isinstance(exc, service.TooManyAttempts | RateLimited):
        return "throttled"
    if isinstance(exc, ExtractorUnavailable):
        return "face_unavailable"
    if isinstance(exc, NoFaceFound):
        return "no_face"
    if isinstance(exc, Forbidden):
        return "not_confirmed"
    if isinstance(exc, NotFound):
        return "not_found"
    return "invalid"


def _summary(session: Session, actor: Actor, row: Incident) -> schemas.EmergencySummary | None:
    """The emergency summary while the incident unlocks it (identified, reported)."""
    return summary.build(session, actor, row)[0] if row.status in flows.UNLOCKED else None


# ---- the crew's screen ----------------------------------------------------------------------


@router.get("/ems", response_class=HTMLResponse)
def ems_home(request: Request, session: SessionDep) -> Response:
    actor = _crew(request, session)
    if isinstance(actor, Response):
        return actor
    rows = service.attending(session=session, actor=actor)
    return page(request, "ems_home.html", resident=None, staff=actor, incidents=rows)


@router.post("/ems/incidents")
async def open_incident(request: Request, session: SessionDep) -> Response:
    actor = _crew(request, session)
    if isinstance(actor, Response):
        return actor
    form = await _form(request)
    try:
        body = schemas.IncidentCreate(district=_text(form, "district"))
    except ValidationError:
        return RedirectResponse("/ems?error=invalid", status_code=303)
    row = service.open_incident(session=session, actor=actor, body=body)
    return _to(row.id)


@router.get("/ems/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(incident_id: str, request: Request, session: SessionDep) -> Response:
    actor = _crew(request, session)
    if isinstance(actor, Response):
        return actor
    try:
        row = service.get(session=session, actor=actor, incident_id=incident_id)
        if row.ems_organization_id != actor.organization_id:
            raise NotFound(incident_id)
    except NotFound:
        return error_page(request, "ems.error.not_found_page", status=404)
    incident = service.incident_read(session, row)
    view = _summary(session, actor, row)
    face = incident.status == flows.OPEN
    photo_of = {
        c.id: photos.has_reference_photo(session, row.id, c.id)
        for c in incident.candidates
        if face and c.method == "face" and c.status == "candidate"
    }
    taken = face and bool(photo_of) and bool(repository.notes(session, row.id, photos.PROBE_KIND))
    hospitals = [o for o in web_repository.organizations(session) if o.kind == "hospital"]
    return page(
        request,
        "ems_incident.html",
        resident=None,
        staff=actor,
        incident=incident,
        view=view,
        hospitals=hospitals,
        sexes=SEXES,
        face_sexes=FACE_SEXES,
        face_extra=face_extra_installed(),
        photo_of=photo_of,
        taken_photo=taken,
        jcs=JCS,
        done=request.query_params.get("done"),
        error=request.query_params.get("error"),
    )


# ---- the crew's steps: each reads the form, calls the service, names the outcome ------------

Flags = dict[str, str]
Step = Callable[[Session, Actor, str, Any], Flags]


def _identified(result: schemas.IdentifyResult) -> Flags:
    return {"done": "searched"} if result.identified else {"error": "not_identified"}


def _by_demographics(session: Session, actor: Actor, incident_id: str, form: Any) -> Flags:
    names = ("family", "given", "family_kana", "given_kana", "birth_date", "sex")
    query = schemas.DemographicQuery.model_validate(_fields(form, names))
    return _identified(
        service.identify_by_demographics(
            session=session, actor=actor, incident_id=incident_id, query=query
        )
    )


def _by_card(session: Session, actor: Actor, incident_id: str, form: Any) -> Flags:
    query = schemas.CardQuery(certificate=_text(form, "certificate") or "")
    return _identified(
        service.identify_by_card(session=session, actor=actor, incident_id=incident_id, query=query)
    )


def _by_face(session: Session, actor: Actor, incident_id: str, form: Any) -> Flags:
    """The photo the crew took (camera or file), narrowed by what they see: the server
    makes the template (``face`` extra) and runs the 1:N search of the incident flow."""
    upload = form.get("photo")
    image = upload.file.read(MAX_PHOTO_BYTES + 1) if isinstance(upload, UploadFile) else b""
    if not image:
        raise InvalidInput("take or choose a photo")
    if len(image) > MAX_PHOTO_BYTES:
        raise InvalidInput("the photo is too large")
    if not face_extra_installed():
        raise ExtractorUnavailable("the face extra is not installed on this server")
    # The template first (the slow part, no database), then a fresh snapshot for the
    # search's writes: on SQLite a transaction whose reads are older than another
    # commit cannot write at all (the audit chainer commits in the background).
    vector = default_extractor().extract(image)
    if session.get_bind().dialect.name == "sqlite":
        session.rollback()
    probe = schemas.FaceProbe.model_validate(
        {
            **_fields(form, ("sex", "age_min", "age_max", "district")),
            "embedding": vector.tolist(),
        }
    )
    result = service.identify_by_face(
        session=session, actor=actor, incident_id=incident_id, probe=probe
    )
    if result.identified:
        photos.keep_probe(session, actor, incident_id, image)
    return _identified(result)


def _confirm(session: Session, actor: Actor, incident_id: str, form: Any) -> Flags:
    names = ("candidate_id", "method", "birth_date", "certificate", "photo_checked")
    body = schemas.Confirm.model_validate(_fields(form, names))
    service.confirm(session=session, actor=actor, incident_id=incident_id, body=body)
    photos.forget_probe(session, incident_id)
    return {"done": "confirmed"}


def _vitals(session: Session, actor: Actor, incident_id: str, form: Any) -> Flags:
    names = ("systolic", "diastolic", "pulse", "respiratory_rate", "spo2", "temperature", "jcs")
    given = _fields(form, names)
    body = schemas.Vitals.model_validate(
        {k: float(v) if k == "temperature" else int(v) for k, v in given.items()}
    )
    if not body.model_dump(exclude_none=True):
        raise ValueError("no vital sign given")
    service.record_vitals(session=session, actor=actor, incident_id=incident_id, body=body)
    return {"done": "vitals"}


def _finding(session: Session, actor: Actor, incident_id: str, form: Any) -> Flags:
    body = schemas.Finding(text=_text(form, "text") or "")
    service.record_finding(session=session, actor=actor, incident_id=incident_id, body=body)
    return {"done": "finding"}


def _report(session: Session, actor: Actor, incident_id: str, form: Any) -> Flags:
    names = ("hospital_id", "chief_complaint", "summary", "eta_minutes")
    body = schemas.StatusReport.model_validate(_fields(form, names))
    service.status_report(session=session, actor=actor, incident_id=incident_id, body=body)
    return {"done": "reported"}


def _close(session: Session, actor: Actor, incident_id: str, form: Any) -> Flags:
    service.close(session=session, actor=actor, incident_id=incident_id)
    photos.forget_probe(session, incident_id)
    return {"done": "closed"}


STEPS: dict[str, Step] = {
    "identify/demographic": _by_demographics,
    "identify/card": _by_card,
    "identify/face": _by_face,
    "confirm": _confirm,
    "vitals": _vitals,
    "findings": _finding,
    "status-report": _report,
    "close": _close,
}


@router.post("/ems/incidents/{incident_id}/{step:path}")
async def crew_step(incident_id: str, step: str, request: Request, session: SessionDep) -> Response:
    """One step of the call. A refused step is undone like a failed request (its refusal
    stays in the access log) and the page says why."""
    action = STEPS.get(step)
    if action is None:
        return error_page(request, "ems.error.not_found_page", status=404)
    actor = _crew(request, session)
    if isinstance(actor, Response):
        return actor
    form = await _form(request)
    try:
        flags = action(session, actor, incident_id, form)
    except (PHRError, ValidationError, ValueError) as exc:
        roll_back(session)
        return _to(incident_id, error=_refusal_key(exc))
    finally:
        await form.close()  # an uploaded photo's temporary file
    return _to(incident_id, **flags)


def _photo(
    request: Request, session: Session, fetch: Callable[[Actor], tuple[bytes, str]]
) -> Response:
    """A photo for the attending crew, no-store. The page loads both photos at once and
    each request writes (the access log, the staff session's last-seen time): on SQLite
    one of two such transactions can be refused at once (a stale snapshot cannot write),
    so it is undone and tried again."""
    for attempt in range(4):
        try:
            actor = _crew(request, session)
            if isinstance(actor, Response):
                return actor
            data, media_type = fetch(actor)
            break
        except NotFound:
            return Response(status_code=404, headers={"Cache-Control": "no-store"})
        except OperationalError:
            if attempt == 3 or session.get_bind().dialect.name != "sqlite":
                raise
            roll_back(session)
    return Response(
        data,
        media_type=media_type,
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/ems/incidents/{incident_id}/photos/taken")
def taken_photo(incident_id: str, request: Request, session: SessionDep) -> Response:
    """The photo the crew took, for this incident's crew while it is identified."""
    return _photo(
        request, session, lambda a: (photos.taken_photo(session, a, incident_id), "image/png")
    )


@router.get("/ems/incidents/{incident_id}/photos/candidates/{candidate_id}")
def candidate_photo(
    incident_id: str, candidate_id: int, request: Request, session: SessionDep
) -> Response:
    """A face candidate's reference photo (only if the resident agreed to one)."""
    return _photo(
        request, session, lambda a: photos.candidate_photo(session, a, incident_id, candidate_id)
    )


@router.post("/ems/signout")
async def sign_out(request: Request, session: SessionDep) -> Response:
    await _form(request)
    staff_service.end_session(session, session_token(request))
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    clear_session_cookie(response)
    return response


# ---- the receiving hospital -------------------------------------------------------------------


@router.get("/hospital/incoming", response_class=HTMLResponse)
def incoming(request: Request, session: SessionDep) -> Response:
    actor = _receiving(request, session)
    if isinstance(actor, Response):
        return actor
    rows = [
        service.incident_read(session, r) for r in service.incoming(session=session, actor=actor)
    ]
    return page(request, "hospital_incoming.html", resident=None, staff=actor, incidents=rows)


@router.get("/hospital/incidents/{incident_id}", response_class=HTMLResponse)
def handover(incident_id: str, request: Request, session: SessionDep) -> Response:
    actor = _receiving(request, session)
    if isinstance(actor, Response):
        return actor
    try:
        row = service.handover_incident(session=session, actor=actor, incident_id=incident_id)
    except NotFound:
        return error_page(request, "ems.error.not_found_page", status=404)
    return page(
        request,
        "hospital_handover.html",
        resident=None,
        staff=actor,
        incident=service.incident_read(session, row),
        reports=service.status_reports(session, row),
        view=_summary(session, actor, row),
    )
