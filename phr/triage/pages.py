"""Self-triage pages for residents (``/triage``): pick what is wrong, answer the protocol's
questions, and get the urgency with its reasons and what to do next.

Anyone can use them without signing in (nothing is read or kept). A signed-in resident
may let the triage service use their record's risk factors (under their triage consent)
and keep the result in their record, exactly as ``POST /api/triage/evaluate`` does: the
pages call :func:`phr.triage.service.evaluate` with the resident's own actor. A red result
says "call 119 now" before anything else.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from consent.identity.oidc import current_resident_session
from phr.db import SessionDep, roll_back
from phr.errors import InvalidInput, PHRError
from phr.triage import protocols, service
from phr.triage import schemas as s
from phr.web.render import add_template_dir, error_page, language, page
from phr.web.security import WebRoute, check_csrf
from phr.web.service import resident_actor

__all__ = ["router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)
add_template_dir(Path(__file__).parent / "templates")

# The order residents see: the most common and most urgent first.
ORDER = (
    "chest_pain",
    "difficulty_breathing",
    "abdominal_pain",
    "headache",
    "fever",
    "dizziness_fainting",
    "injury_fall",
    "vomiting_diarrhoea",
    "allergic_reaction",
    "child_fever",
    "child_convulsion",
)
SEXES = ("female", "male", "other", "unknown")


def _protocols() -> list[protocols.Protocol]:
    found = protocols.all_protocols()
    ordered = [found[i] for i in ORDER if i in found]
    return ordered + [p for i, p in sorted(found.items()) if i not in ORDER]


@router.get("/triage", response_class=HTMLResponse)
def choose(request: Request, session: SessionDep) -> Response:
    rid = current_resident_session(request, session)
    items = _protocols()
    return page(
        request,
        "triage_choose.html",
        resident=rid,
        adults=[p for p in items if p.population != "child"],
        children=[p for p in items if p.population == "child"],
    )


def _questions_page(
    request: Request,
    rid: str | None,
    p: protocols.Protocol,
    *,
    values: dict[str, str] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    return page(
        request,
        "triage_questions.html",
        status=status,
        resident=rid,
        protocol=p,
        red_flags=set(p.red_flag_questions()),
        values=values or {},
        problem=problem,
        sexes=SEXES,
        factors=[f for f in protocols.RISK_FACTORS if f not in ("older_adult", "young_infant")],
    )


@router.get("/triage/{complaint}", response_class=HTMLResponse)
def questions(complaint: str, request: Request, session: SessionDep) -> Response:
    rid = current_resident_session(request, session)
    p = protocols.get_protocol(complaint)
    if p is None:
        return error_page(request, "triage.error.unknown", status=404)
    return _questions_page(request, rid, p)


def _answers(p: protocols.Protocol, form: FormData) -> dict[str, bool | float | str]:
    """The form's answers in the protocol's types; blank means not answered."""
    out: dict[str, bool | float | str] = {}
    for q in p.questions:
        raw = str(form.get(f"q_{q.id}") or "").strip()
        if not raw:
            continue
        if q.type == "boolean":
            if raw not in ("yes", "no"):
                raise InvalidInput(f"{q.id}: yes or no")
            out[q.id] = raw == "yes"
        elif q.type == "number":
            try:
                out[q.id] = float(raw.replace(",", "."))
            except ValueError:
                raise InvalidInput(f"{q.id}: a number") from None
        else:
            out[q.id] = raw
    return out


def _evaluate_in(p: protocols.Protocol, form: FormData, signed_in: bool) -> s.EvaluateIn:
    age_text = str(form.get("age") or "").strip()
    sex = str(form.get("sex") or "") or None
    try:
        age = float(age_text) if age_text else None
    except ValueError:
        raise InvalidInput("age: a number of years") from None
    return s.EvaluateIn.model_validate(
        {
            "complaint": p.id,
            "answers": _answers(p, form),
            "age": age,
            "sex": sex,
            "risk_factors": [f for f in form.getlist("factor") if isinstance(f, str)],
            "subject": "other" if form.get("subject") == "other" else "self",
            "record": signed_in and form.get("record") == "yes",
        }
    )


@router.post("/triage/{complaint}", response_class=HTMLResponse)
async def result(complaint: str, request: Request, session: SessionDep) -> Response:
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    rid = current_resident_session(request, session)
    p = protocols.get_protocol(complaint)
    if p is None:
        return error_page(request, "triage.error.unknown", status=404)
    values = {k: str(v) for k, v in form.multi_items() if k != "csrf_token"}
    try:
        body = _evaluate_in(p, form, rid is not None)
        out = service.evaluate(session, resident_actor(rid) if rid else None, body)
    except (PHRError, ValidationError) as exc:
        roll_back(session)
        detail = exc.message if isinstance(exc, PHRError) else _first_error(exc)
        return _questions_page(request, rid, p, values=values, problem=detail, status=422)
    lang = language(request)
    return page(
        request,
        "triage_result.html",
        resident=rid,
        protocol=p,
        out=out,
        tr=lambda text: getattr(text, lang),
        questions={q.id: q for q in p.questions},
    )


def _first_error(exc: ValidationError) -> str:
    e = exc.errors()[0]
    return f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
