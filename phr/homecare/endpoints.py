"""Home-care API (``/api/homecare``): staff with OpenID Connect tokens (the screens use
the same service on the staff session), and the resident's own requests."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from consent.identity.oauth import ActorDep
from phr.db import SessionDep
from phr.homecare import figures as fig
from phr.homecare import schemas, service
from phr.homecare import summary as care_summary
from phr.store.indexer import utcnow

router = APIRouter(prefix="/api/homecare", tags=["homecare"])


@router.post("/enrolments", response_model=schemas.EnrolmentRead, status_code=201)
def enrol(
    body: schemas.EnrolmentCreate, session: SessionDep, actor: ActorDep
) -> schemas.EnrolmentRead:
    return service.enrolment_read(service.enrol(session=session, actor=actor, body=body))


@router.post("/enrolments/{enrolment_id}/stock", response_model=schemas.StockRead, status_code=201)
def deposit(
    enrolment_id: str, body: schemas.StockCreate, session: SessionDep, actor: ActorDep
) -> schemas.StockRead:
    row = service.deposit(session=session, actor=actor, enrolment_id=enrolment_id, body=body)
    return service.stock_read(session, row)


@router.get("/enrolments/{enrolment_id}/stock", response_model=list[schemas.StockRead])
def stock(enrolment_id: str, session: SessionDep, actor: ActorDep) -> list[schemas.StockRead]:
    return service.stock_of(session=session, actor=actor, enrolment_id=enrolment_id)


@router.post("/me/requests", response_model=schemas.RequestRead, status_code=201)
def my_request(
    body: schemas.RequestCreate, session: SessionDep, actor: ActorDep
) -> schemas.RequestRead:
    """The patient or family asks for help; ``call_119`` true: call 119 now."""
    return service.request_read(
        session, service.create_request(session=session, actor=actor, body=body)
    )


@router.get("/me/requests", response_model=list[schemas.RequestRead])
def my_requests(session: SessionDep, actor: ActorDep) -> list[schemas.RequestRead]:
    return [
        service.request_read(session, r) for r in service.my_requests(session=session, actor=actor)
    ]


@router.post("/requests", response_model=schemas.RequestRead, status_code=201)
def phone_call(
    body: schemas.PhoneRequestCreate, session: SessionDep, actor: ActorDep
) -> schemas.RequestRead:
    return service.request_read(
        session, service.record_call(session=session, actor=actor, body=body)
    )


@router.get("/board", response_model=list[schemas.RequestRead])
def board(session: SessionDep, actor: ActorDep) -> list[schemas.RequestRead]:
    return [service.request_read(session, r) for r in service.board(session=session, actor=actor)]


@router.post("/requests/{request_id}/assign", response_model=schemas.RequestRead)
def assign(
    request_id: str, body: schemas.Assign, session: SessionDep, actor: ActorDep
) -> schemas.RequestRead:
    return service.request_read(
        session, service.assign(session=session, actor=actor, request_id=request_id, body=body)
    )


@router.post("/requests/{request_id}/dispatch", response_model=schemas.RequestRead)
def dispatch(request_id: str, session: SessionDep, actor: ActorDep) -> schemas.RequestRead:
    return service.request_read(
        session, service.dispatch(session=session, actor=actor, request_id=request_id)
    )


@router.post("/requests/{request_id}/arrive", response_model=schemas.VisitRead, status_code=201)
def arrive(request_id: str, session: SessionDep, actor: ActorDep) -> schemas.VisitRead:
    return service.visit_read(
        session, service.arrive(session=session, actor=actor, request_id=request_id)
    )


@router.get("/visits/{visit_id}", response_model=schemas.VisitRead)
def visit(visit_id: str, session: SessionDep, actor: ActorDep) -> schemas.VisitRead:
    return service.visit_read(
        session, service.get_visit(session=session, actor=actor, visit_id=visit_id)
    )


@router.get("/visits/{visit_id}/summary", response_model=care_summary.CareSummary)
def summary(visit_id: str, session: SessionDep, actor: ActorDep) -> care_summary.CareSummary:
    """The patient's record for the visit, under the resident's home-care consent."""
    v = service.get_visit(session=session, actor=actor, visit_id=visit_id)
    return care_summary.build(session, actor, v.resident_id, today=utcnow().date())


@router.post("/visits/{visit_id}/vitals", response_model=schemas.VitalsRead, status_code=201)
def vitals(
    visit_id: str, body: schemas.Vitals, session: SessionDep, actor: ActorDep
) -> schemas.VitalsRead:
    return service.record_vitals(session=session, actor=actor, visit_id=visit_id, body=body)


@router.post("/visits/{visit_id}/consultation", response_model=schemas.VisitRead)
def consult(
    visit_id: str, body: schemas.Consultation, session: SessionDep, actor: ActorDep
) -> schemas.VisitRead:
    return service.visit_read(
        session, service.consult(session=session, actor=actor, visit_id=visit_id, body=body)
    )


@router.post("/visits/{visit_id}/prescription", response_model=schemas.VisitRead)
def prescribe(
    visit_id: str, body: schemas.Prescription, session: SessionDep, actor: ActorDep
) -> schemas.VisitRead:
    service.prescribe(session=session, actor=actor, visit_id=visit_id, body=body)
    return service.visit_read(
        session, service.get_visit(session=session, actor=actor, visit_id=visit_id)
    )


@router.post("/visits/{visit_id}/guidance", response_model=schemas.VisitRead)
def guide(
    visit_id: str, body: schemas.Guidance, session: SessionDep, actor: ActorDep
) -> schemas.VisitRead:
    service.guide(session=session, actor=actor, visit_id=visit_id, body=body)
    return service.visit_read(
        session, service.get_visit(session=session, actor=actor, visit_id=visit_id)
    )


@router.post("/visits/{visit_id}/administration", response_model=schemas.VisitRead)
def administer(
    visit_id: str, body: schemas.Administer, session: SessionDep, actor: ActorDep
) -> schemas.VisitRead:
    service.administer(session=session, actor=actor, visit_id=visit_id, body=body)
    return service.visit_read(
        session, service.get_visit(session=session, actor=actor, visit_id=visit_id)
    )


@router.post("/visits/{visit_id}/outcome", response_model=schemas.VisitRead)
def outcome(
    visit_id: str, body: schemas.Outcome, session: SessionDep, actor: ActorDep
) -> schemas.VisitRead:
    return service.visit_read(
        session, service.close(session=session, actor=actor, visit_id=visit_id, body=body)
    )


@router.get("/figures", response_model=list[schemas.FiguresRow])
def figures(
    session: SessionDep, actor: ActorDep, scope: Literal["station", "city"] = "station"
) -> list[schemas.FiguresRow]:
    """Per month: requests, referrals to 119, visits, minutes to visit, outcomes."""
    return fig.figures(session=session, actor=actor, scope=scope)


@router.get("/figures.csv", response_class=PlainTextResponse)
def figures_csv(
    session: SessionDep, actor: ActorDep, scope: Literal["station", "city"] = "station"
) -> PlainTextResponse:
    data = fig.figures(session=session, actor=actor, scope=scope)
    return PlainTextResponse(
        fig.as_csv(data),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="homecare-{scope}.csv"'},
    )
