"""Triage JSON API (``/api/triage/...``): symptom triage for residents (anonymous or signed
in), severity scores and hospital selection for organisation clients (EMS, hospitals)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from consent.actors import Actor
from consent.identity.oauth import ActorDep, current_actor
from phr.db import SessionDep
from phr.errors import InvalidInput
from phr.triage import schemas as s
from phr.triage import scores, service

router = APIRouter(prefix="/api/triage", tags=["triage"])


def optional_actor(request: Request, session: SessionDep) -> Actor | None:
    """No token: anonymous. A token: it must be valid (a bad one is 401, not anonymous)."""
    if not request.headers.get("authorization"):
        return None
    return current_actor(request, session)


MaybeActor = Annotated[Actor | None, Depends(optional_actor)]


@router.get("/complaints", response_model=list[s.ComplaintSummary])
def complaints() -> list[s.ComplaintSummary]:
    """The chief complaints with a protocol (adults and children)."""
    return service.list_complaints()


@router.get("/complaints/{complaint}", response_model=s.ComplaintRead)
def complaint(complaint: str) -> s.ComplaintRead:
    """A protocol's questions (Japanese and English), sources and risk factors."""
    return service.get_complaint(complaint)


@router.get("/complaints/{complaint}/questionnaire")
def questionnaire(complaint: str) -> JSONResponse:
    """The protocol as a FHIR R4 Questionnaire (what recorded QuestionnaireResponses
    answer)."""
    return JSONResponse(service.questionnaire(complaint), media_type="application/fhir+json")


@router.post("/evaluate", response_model=s.EvaluateOut)
def evaluate(body: s.EvaluateIn, session: SessionDep, actor: MaybeActor) -> s.EvaluateOut:
    """Urgency (red/orange/yellow/green/white), reasons and next steps. Anonymous, or with a
    resident's token: then PHR risk factors count where the resident consented, and the
    result is recorded as QuestionnaireResponse + RiskAssessment."""
    return service.evaluate(session, actor, body)


@router.get("/me/results", response_model=list[s.PastResult])
def my_results(session: SessionDep, actor: ActorDep) -> list[s.PastResult]:
    """My recorded triage results, newest first."""
    return service.my_results(session, actor)


@router.put("/me/consent")
def triage_consent(body: s.ConsentSwitch, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """Let the triage service read my conditions, medicines and procedures (or stop it)."""
    return service.set_triage_consent(session, actor, body.enabled)


@router.post("/news2", response_model=s.News2Out)
def news2(body: s.News2In, actor: ActorDep) -> s.News2Out:
    """NEWS2 (RCP 2017) for any authenticated organisation client."""
    service.require_organization(actor)
    r = scores.news2(**body.model_dump())
    return s.News2Out(score=r.score, points=r.points, risk=r.risk)


@router.post("/qsofa")
def qsofa(body: s.QsofaIn, actor: ActorDep) -> dict[str, Any]:
    service.require_organization(actor)
    try:
        r = scores.qsofa(**body.model_dump())
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    return {"score": r.score, "criteria": r.criteria, "positive": r.positive}


@router.post("/shock-index")
def shock_index(body: s.ShockIndexIn, actor: ActorDep) -> dict[str, Any]:
    service.require_organization(actor)
    r = scores.shock_index(**body.model_dump())
    return {"value": r.value, "band": r.band}


@router.post("/jtas")
def jtas(body: s.JtasIn, actor: ActorDep) -> dict[str, Any]:
    """A JTAS-style level 1-5 from the vital signs and the complaint's protocol."""
    service.require_organization(actor)
    r, needs = service.jtas(body)
    name = scores.JTAS_NAMES[r.level]
    return {
        "level": r.level,
        "name": {"ja": name[0], "en": name[1]},
        "reasons": r.reasons,
        "needs": needs,
    }


@router.get("/hospitals", response_model=list[s.HospitalRead])
def hospitals(session: SessionDep, actor: ActorDep) -> list[s.HospitalRead]:
    service.require_organization(actor)
    return service.list_hospitals(session)


@router.put("/hospitals/{hospital_id}/availability", response_model=s.HospitalRead)
def availability(
    hospital_id: str, body: s.AvailabilityIn, session: SessionDep, actor: ActorDep
) -> s.HospitalRead:
    """A hospital reports what it can take now (its own client only)."""
    return service.update_availability(session, actor, hospital_id, body)


@router.post("/hospitals/rank", response_model=list[s.RankedHospital])
def rank(body: s.RankIn, session: SessionDep, actor: ActorDep) -> list[s.RankedHospital]:
    """For one patient: the hospitals that can treat them now, fastest first, with reasons."""
    return service.rank(session, actor, body)


@router.post("/mci/assign", response_model=s.McOut)
def mci_assign(body: s.McIn, session: SessionDep, actor: ActorDep) -> s.McOut:
    """For many patients at once: an assignment respecting capacity and capability that
    minimises urgency-weighted travel time, with a reason per patient."""
    return service.assign(session, actor, body)
