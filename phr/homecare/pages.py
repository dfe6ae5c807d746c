"""The home-care screens, Japanese first (English with ``?lang=en``), on the web app's
security (strict CSP, no inline script, CSRF on every POST):

- ``/me/homecare`` — the family's request page, signed in as the resident (the web
  app's session): what is wrong (a triage complaint and its questions), since when; a
  red urgency tells them to call 119 at once;
- on the staff session (password + TOTP at ``/auth/staff/login``):
  ``/homecare/station`` the station board (live through server-sent events), assign,
  dispatch, record a phone call; ``/homecare/nurse`` and ``/homecare/visits/{id}`` the
  nurse's tablet; ``/homecare/doctor`` and the consultation; ``/homecare/pharmacist``
  and the guidance; ``/homecare/figures`` (CSV too).

Every step goes through :mod:`phr.homecare.service` with the staff member's own Actor; a
refused step is undone like a failed request (its refusal stays in the access log) and
the page says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from consent.staff import service as staff_service
from consent.staff.auth import COOKIE_NAME, current_staff
from consent.staff.endpoints import LOGIN_PATH
from phr.db import SessionDep, roll_back, transaction
from phr.errors import Conflict, Forbidden, NotFound, PHRError
from phr.homecare import figures as fig
from phr.homecare import flows, repository, schemas, service
from phr.homecare import summary as care_summary
from phr.homecare.models import Request as HomecareRequest
from phr.store import repository as repo
from phr.store.indexer import utcnow
from phr.store.reader import RecordReader
from phr.triage import protocols
from phr.web.endpoints import signed_in
from phr.web.render import add_template_dir, error_page, language, page
from phr.web.security import SignInRequired, WebRoute, check_csrf

__all__ = ["router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)
add_template_dir(Path(__file__).parent / "templates")

CLIENT_ID = "homecare-tablet"
SCOPES = ("user/*.rs",)
# The board's live stream: how often the database is asked whether anything changed
# (servers may be several processes, so the database is the one source), and how long
# one stream lasts before the browser reconnects by itself (proxies cut idle streams).
POLL_SECONDS = 1.0
STREAM_SECONDS = 25.0


# ---- who is signed in ----------------------------------------------------------------------


def _staff(request: Request, session: Session, roles: frozenset[str]) -> Actor | Response:
    user = current_staff(request, session)
    if user is None:
        here = request.url.path
        raise SignInRequired(here, expired=COOKIE_NAME in request.cookies, signin=LOGIN_PATH)
    actor = staff_service.staff_actor(user, client_id=CLIENT_ID, scopes=SCOPES)
    if actor.role not in roles:
        return error_page(request, "hc.error.role", status=403)
    repository.begin_write(session)
    return actor


STATION = frozenset({"nurse", "clerk"})
CLINICAL = frozenset({"nurse", "doctor", "pharmacist"})


async def _form(request: Request) -> Any:
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    return form


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None


def _refusal(exc: Exception) -> str:
    if isinstance(exc, Forbidden):
        return "forbidden"
    if isinstance(exc, NotFound):
        return "not_found"
    if isinstance(exc, Conflict):
        return "conflict"
    return "invalid"


def _go(path: str, **flags: str) -> RedirectResponse:
    query = "&".join(f"{k}={v}" for k, v in flags.items())
    return RedirectResponse(path + (f"?{query}" if query else ""), status_code=303)


def _names(session: Session, actor: Actor, resident_ids: set[str]) -> dict[str, str]:
    """Patients' names for the staff screens, read under HOMECARE (no consent: none)."""
    if not resident_ids:
        return {}
    reader = RecordReader(session, actor, Purpose.HOME_CARE)
    out = {}
    for row in reader.compartments(sorted(resident_ids), types=["Patient"], action="read"):
        p = repo.load_json(row.content)
        for n in p.get("name") or []:
            if not any(x.get("valueCode") == "SYL" for x in n.get("extension") or []):
                text = n.get("text") or f"{n.get('family', '')} {' '.join(n.get('given') or [])}"
                out[row.id] = text.strip()
                break
    return out


# ---- the family's request page --------------------------------------------------------------


def _complaints() -> list[protocols.Protocol]:
    return sorted(protocols.all_protocols().values(), key=lambda p: p.id)


@router.get("/me/homecare", response_class=HTMLResponse)
def family_page(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    repository.begin_write(session)
    enrolment = repository.active_enrolment(session, rid)
    chosen = protocols.get_protocol(request.query_params.get("complaint") or "")
    requests = [
        service.request_read(session, r) for r in repository.requests_of_resident(session, rid)
    ]
    station = None
    if enrolment:
        from consent.models import Organization

        org = session.get(Organization, enrolment.station_id)
        station = org.name if org else enrolment.station_id
    return page(
        request,
        "hc_family.html",
        resident=rid,
        enrolled=enrolment is not None,
        station=station,
        complaints=_complaints(),
        chosen=chosen,
        requests=requests,
        open_request=next((r for r in requests if r.status in flows.ACTIVE), None),
        latest=requests[0] if requests else None,
        done=request.query_params.get("done"),
        error=request.query_params.get("error"),
    )


@router.post("/me/homecare/requests")
async def family_request(request: Request, session: SessionDep) -> Response:
    rid = signed_in(request, session)
    repository.begin_write(session)
    form = await _form(request)
    complaint = _text(form, "complaint") or ""
    p = protocols.get_protocol(complaint)
    answers: dict[str, bool | float | int | str] = {}
    if p is not None:
        for q in p.questions:
            if q.type == "boolean":
                answers[q.id] = form.get(f"q_{q.id}") == "yes"
    try:
        body = schemas.RequestCreate(
            complaint=complaint, answers=answers, what=_text(form, "what") or "",
            since=_text(form, "since") or "",
        )  # fmt: skip
        row = service.create_request(
            session=session, actor=Actor(kind="resident", resident_id=rid), body=body
        )
    except (PHRError, ValidationError) as exc:
        roll_back(session)
        return _go("/me/homecare", error=_refusal(exc))
    return _go("/me/homecare", done=row.status)


# ---- the station board ------------------------------------------------------------------------


def _board_context(session: Session, actor: Actor) -> dict[str, Any]:
    rows = [service.request_read(session, r) for r in service.board(session=session, actor=actor)]
    names = _names(session, actor, {r.resident_id for r in rows})
    assert actor.organization_id
    nurses = service.nurses(session, actor.organization_id)
    return {
        "version": repository.board_version(session, actor.organization_id),
        "rows": rows,
        "names": names,
        "nurses": nurses,
        "nurse_names": {n.id: n.display_name for n in nurses},
    }


@router.get("/homecare", response_class=HTMLResponse)
def staff_home(request: Request, session: SessionDep) -> Response:
    actor = _staff(request, session, STATION | CLINICAL)
    if isinstance(actor, Response):
        return actor
    if actor.organization_kind == "nurse_station":
        return _go("/homecare/station" if actor.role == "clerk" else "/homecare/nurse")
    return _go("/homecare/doctor" if actor.role == "doctor" else "/homecare/pharmacist")


@router.get("/homecare/station", response_class=HTMLResponse)
def station_board(request: Request, session: SessionDep) -> Response:
    actor = _staff(request, session, STATION)
    if isinstance(actor, Response):
        return actor
    try:
        ctx = _board_context(session, actor)
    except Forbidden:
        return error_page(request, "hc.error.role", status=403)
    assert actor.organization_id
    patients = repository.enrolments_for_org(session, actor.organization_id)
    return page(
        request,
        "hc_station.html",
        resident=None,
        staff=actor,
        patients=patients,
        patient_names=_names(session, actor, {e.resident_id for e in patients}),
        complaints=_complaints(),
        done=request.query_params.get("done"),
        error=request.query_params.get("error"),
        **ctx,
    )


@router.get("/homecare/station/board", response_class=HTMLResponse)
def station_board_fragment(request: Request, session: SessionDep) -> Response:
    """The board's table alone: what the page's script swaps in when the stream says so."""
    actor = _staff(request, session, STATION)
    if isinstance(actor, Response):
        return actor
    return page(
        request, "hc_board.html", resident=None, staff=actor, **_board_context(session, actor)
    )


@router.get("/homecare/station/events")
def station_events(request: Request, session: SessionDep) -> Response:
    """Server-sent events: ``change`` whenever a request of the station changes (and once
    at the start), a comment every poll as a heartbeat. Each poll is its own short
    transaction, so any server process sees what any other wrote."""
    actor = _staff(request, session, STATION)
    if isinstance(actor, Response):
        return actor
    station = actor.organization_id or ""
    once = request.query_params.get("once") == "1"
    # The request's own transaction ends here (the sign-in check may have written the
    # session's last use): a stream must not hold a transaction — on SQLite, a writer's
    # lock — for its whole life.
    session.commit()

    def stream() -> Iterator[str]:
        yield "retry: 2000\n\n"
        last = None
        deadline = time.monotonic() + STREAM_SECONDS
        while True:
            with transaction() as s:
                version = repository.board_version(s, station)
            if version != last:
                last = version
                yield f"event: change\ndata: {version}\n\n"
            else:
                yield ": idle\n\n"
            if once or time.monotonic() > deadline:
                return
            time.sleep(POLL_SECONDS)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


Flags = dict[str, str]
Step = Callable[[Session, Actor, str, Any], Flags]


def _assign(session: Session, actor: Actor, target: str, form: Any) -> Flags:
    body = schemas.Assign(nurse_id=_text(form, "nurse_id") or "")
    service.assign(session=session, actor=actor, request_id=target, body=body)
    return {"done": "assigned"}


def _dispatch(session: Session, actor: Actor, target: str, form: Any) -> Flags:
    service.dispatch(session=session, actor=actor, request_id=target)
    return {"done": "dispatched"}


def _phone(session: Session, actor: Actor, target: str, form: Any) -> Flags:
    body = schemas.PhoneRequestCreate(
        resident_id=_text(form, "resident_id") or "", complaint=_text(form, "complaint") or "",
        what=_text(form, "what") or "", since=_text(form, "since") or "",
    )  # fmt: skip
    row = service.record_call(session=session, actor=actor, body=body)
    return {"done": "referred" if row.status == flows.REFERRED else "recorded"}


STATION_STEPS: dict[str, Step] = {
    "assign": _assign,
    "dispatch": _dispatch,
    "phone": _phone,
}


async def _take_step(
    request: Request,
    session: Session,
    action: Step | None,
    roles: frozenset[str],
    target: str,
    back: str,
) -> Response:
    """One step from a form: CSRF, the caller's role, the service; a refused step is undone
    like a failed request (its refusal stays in the access log) and the page says why."""
    if action is None:
        return error_page(request, "hc.error.not_found", status=404)
    actor = _staff(request, session, roles)
    if isinstance(actor, Response):
        return actor
    form = await _form(request)
    try:
        flags = action(session, actor, target, form)
    except (PHRError, ValidationError, ValueError) as exc:
        roll_back(session)
        return _go(back, error=_refusal(exc))
    return _go(back, **flags)


@router.post("/homecare/station/{step}/{target}")
async def station_step(step: str, target: str, request: Request, session: SessionDep) -> Response:
    return await _take_step(
        request, session, STATION_STEPS.get(step), STATION, target, "/homecare/station"
    )


# ---- worklists of the nurse, the doctor and the pharmacist ----------------------------------


def _worklist(
    session: Session, actor: Actor, statuses: tuple[str, ...], steps: tuple[str, ...]
) -> list[dict[str, Any]]:
    assert actor.organization_id
    out: list[dict[str, Any]] = []
    for r in repository.requests_for_org(session, actor.organization_id, statuses):
        visit = repository.visit_of_request(session, r.id)
        if steps and (visit is None or visit.step not in steps):
            continue
        if actor.role == "nurse" and r.nurse_id != actor.user_id:
            continue
        out.append({"request": service.request_read(session, r), "visit": visit})
    names = _names(session, actor, {i["request"].resident_id for i in out})
    for i in out:
        i["name"] = names.get(i["request"].resident_id)
    return out


@router.post("/homecare/requests/{request_id}/arrive")
async def arrive(request_id: str, request: Request, session: SessionDep) -> Response:
    actor = _staff(request, session, frozenset({"nurse"}))
    if isinstance(actor, Response):
        return actor
    await _form(request)
    try:
        visit = service.arrive(session=session, actor=actor, request_id=request_id)
    except PHRError as exc:
        roll_back(session)
        return _go("/homecare/nurse", error=_refusal(exc))
    return _go(f"/homecare/visits/{visit.id}")


# ---- the visit: one page, the part of each role --------------------------------------------


@router.get("/homecare/visits/{visit_id}", response_class=HTMLResponse)
def visit_page(visit_id: str, request: Request, session: SessionDep) -> Response:
    actor = _staff(request, session, CLINICAL)
    if isinstance(actor, Response):
        return actor
    try:
        visit = service.get_visit(session=session, actor=actor, visit_id=visit_id)
    except (NotFound, Forbidden):
        return error_page(request, "hc.error.not_found", status=404)
    req = session.get(HomecareRequest, visit.request_id)
    assert req is not None
    view = service.visit_read(session, visit)
    summary = care_summary.build(session, actor, visit.resident_id, today=utcnow().date())
    stock = []
    if actor.role == "doctor":
        stock = [
            service.stock_read(session, s) for s in repository.stock(session, req.enrolment_id)
        ]
    return page(
        request,
        f"hc_visit_{actor.role}.html",
        resident=None,
        staff=actor,
        visit=view,
        req=service.request_read(session, req),
        summary=summary,
        stock=stock,
        mine=actor.role != "nurse" or req.nurse_id == actor.user_id,
        done=request.query_params.get("done"),
        error=request.query_params.get("error"),
    )


def _vitals(session: Session, actor: Actor, visit_id: str, form: Any) -> Flags:
    ints = ("respiratory_rate", "spo2", "systolic", "diastolic", "pulse")
    data: dict[str, Any] = {k: int(v) for k in ints if (v := _text(form, k)) is not None}
    if (t := _text(form, "temperature")) is not None:
        data["temperature"] = float(t)
    data["consciousness"] = _text(form, "consciousness") or "A"
    data["on_oxygen"] = form.get("on_oxygen") == "yes"
    data["spo2_scale"] = 2 if form.get("spo2_scale") == "2" else 1
    data["note"] = _text(form, "note")
    service.record_vitals(
        session=session, actor=actor, visit_id=visit_id, body=schemas.Vitals(**data)
    )
    return {"done": "vitals"}


def _consult(session: Session, actor: Actor, visit_id: str, form: Any) -> Flags:
    body = schemas.Consultation(
        findings=_text(form, "findings") or "", instructions=_text(form, "instructions") or "",
        decision=_text(form, "decision") or "",  # type: ignore[arg-type]
    )  # fmt: skip
    service.consult(session=session, actor=actor, visit_id=visit_id, body=body)
    return {"done": "transport" if body.decision == "transport" else "consulted"}


def _prescribe(session: Session, actor: Actor, visit_id: str, form: Any) -> Flags:
    lines = []
    for sid in form.getlist("stock_id"):
        qty = _text(form, f"quantity_{sid}")
        if qty and int(qty) > 0:
            lines.append(
                schemas.PrescriptionLine(
                    stock_id=sid, quantity=int(qty), dosage=_text(form, f"dosage_{sid}") or ""
                )
            )
    service.prescribe(
        session=session, actor=actor, visit_id=visit_id, body=schemas.Prescription(lines=lines)
    )
    return {"done": "prescribed"}


def _guide(session: Session, actor: Actor, visit_id: str, form: Any) -> Flags:
    service.guide(
        session=session,
        actor=actor,
        visit_id=visit_id,
        body=schemas.Guidance(text=_text(form, "text") or ""),
    )
    return {"done": "guided"}


def _administer(session: Session, actor: Actor, visit_id: str, form: Any) -> Flags:
    body = schemas.Administer(order_id=_text(form, "order_id") or "")
    service.administer(session=session, actor=actor, visit_id=visit_id, body=body)
    return {"done": "given"}


def _outcome(session: Session, actor: Actor, visit_id: str, form: Any) -> Flags:
    body = schemas.Outcome(outcome=_text(form, "outcome") or "", note=_text(form, "note"))  # type: ignore[arg-type]
    service.close(session=session, actor=actor, visit_id=visit_id, body=body)
    return {"done": "closed"}


VISIT_STEPS: dict[str, Step] = {
    "vitals": _vitals,
    "consultation": _consult,
    "prescription": _prescribe,
    "guidance": _guide,
    "administration": _administer,
    "outcome": _outcome,
}


@router.post("/homecare/visits/{visit_id}/{step}")
async def visit_step(visit_id: str, step: str, request: Request, session: SessionDep) -> Response:
    return await _take_step(
        request, session, VISIT_STEPS.get(step), CLINICAL, visit_id, f"/homecare/visits/{visit_id}"
    )


# ---- figures ------------------------------------------------------------------------------------


@router.get("/homecare/figures", response_class=HTMLResponse)
def figures_page(request: Request, session: SessionDep) -> Response:
    user_actor = _staff(request, session, frozenset(staff_service.ROLES))
    if isinstance(user_actor, Response):
        return user_actor
    scope = "city" if request.query_params.get("scope") == "city" else "station"
    try:
        rows = fig.figures(session=session, actor=user_actor, scope=scope)
    except Forbidden:
        return error_page(request, "hc.error.role", status=403)
    return page(request, "hc_figures.html", resident=None, staff=user_actor, rows=rows, scope=scope,
                small_cell=fig.SMALL_CELL, lang_code=language(request))  # fmt: skip


@router.get("/homecare/figures.csv")
def figures_csv(request: Request, session: SessionDep) -> Response:
    user_actor = _staff(request, session, frozenset(staff_service.ROLES))
    if isinstance(user_actor, Response):
        return user_actor
    scope = "city" if request.query_params.get("scope") == "city" else "station"
    try:
        rows = fig.figures(session=session, actor=user_actor, scope=scope)
    except Forbidden:
        return error_page(request, "hc.error.role", status=403)
    return Response(
        fig.as_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="homecare-{scope}.csv"'},
    )


WORKLISTS = {
    "nurse": ((flows.ASSIGNED, flows.DISPATCHED, flows.VISITING), ()),
    "doctor": ((flows.VISITING,), (flows.MEASUREMENTS, flows.CONSULTATION)),
    "pharmacist": ((flows.VISITING,), (flows.PRESCRIPTION,)),
}


@router.get("/homecare/{role}", response_class=HTMLResponse)
def worklist(role: str, request: Request, session: SessionDep) -> Response:
    if role not in WORKLISTS:
        return error_page(request, "hc.error.not_found", status=404)
    actor = _staff(request, session, frozenset({role}))
    if isinstance(actor, Response):
        return actor
    statuses, steps = WORKLISTS[role]
    items = _worklist(session, actor, statuses, steps)
    return page(request, "hc_worklist.html", resident=None, staff=actor, role=role, items=items,
                error=request.query_params.get("error"))  # fmt: skip
