"""HTTP routes of FHIR Bulk Data export (mounted before the generic FHIR routes).

    GET    /fhir/$export                       system level (every visible resource)
    GET    /fhir/Patient/$export               every visible resident's compartment
    GET    /fhir/Group/{id}/$export            the Patients a stored Group lists
    GET    /fhir/$export-status/{job}          202 + X-Progress, 200 + manifest, or error
    DELETE /fhir/$export-status/{job}          cancel / delete a job and its files
    GET    /fhir/$export-file/{job}/{file}     one NDJSON file (same bearer token)

Kick-off answers 202 with ``Content-Location`` (the status URL). Status, files and
deletion are for the client (and person) that kicked the job off; anyone else gets 404.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from email.utils import format_datetime

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import Response, StreamingResponse

from consent.actors import Actor, Purpose
from fhir_gateway.api import render
from fhir_gateway.api.deps import ActorDep, PurposeDep, SessionDep
from phr.bulk import files, repository, service
from phr.bulk.worker import WORKER
from phr.errors import Conflict, InvalidInput, NotFound, PHRError

__all__ = ["router"]

router = APIRouter(prefix="/fhir", tags=["FHIR Bulk Data"])

NDJSON = "application/fhir+ndjson"
ACCEPTED = ("application/fhir+json", "application/json", "*/*")


def _kick_off(
    request: Request,
    session: SessionDep,
    actor: Actor,
    purpose: Purpose,
    background: BackgroundTasks,
    level: str,
    group_id: str | None = None,
) -> Response:
    accept = request.headers.get("accept", "")
    if accept and not any(
        a in accept for a in ("application/fhir+json", "application/json", "*/*")
    ):
        raise InvalidInput("$export answers application/fhir+json; set Accept accordingly")
    job = service.kick_off(
        session,
        actor,
        purpose,
        level=level,
        group_id=group_id,
        params=dict(request.query_params),
        prefer=request.headers.get("prefer", ""),
        request_url=str(request.url),
    )
    background.add_task(WORKER.wake)
    return Response(
        status_code=202,
        headers={"Content-Location": f"{render.fhir_base(request)}/$export-status/{job.id}"},
    )


@router.get("/$export")
def export_system(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    purpose: PurposeDep,
    background: BackgroundTasks,
) -> Response:
    return _kick_off(request, session, actor, purpose, background, "system")


@router.get("/Patient/$export")
def export_patients(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    purpose: PurposeDep,
    background: BackgroundTasks,
) -> Response:
    return _kick_off(request, session, actor, purpose, background, "patient")


@router.get("/Group/{group_id}/$export")
def export_group(
    group_id: str,
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    purpose: PurposeDep,
    background: BackgroundTasks,
) -> Response:
    return _kick_off(request, session, actor, purpose, background, "group", group_id)


@router.get("/$export-status/{job_id}")
def status(job_id: str, request: Request, session: SessionDep, actor: ActorDep) -> Response:
    job = service.visible_job(session, actor, job_id)
    if job.status in ("accepted", "in-progress"):
        return Response(
            status_code=202,
            headers={"X-Progress": service.progress(job), "Retry-After": "2"},
        )
    if job.status == "failed":
        err = PHRError(f"export failed: {job.error}")
        err.status_code, err.code = 500, "exception"
        raise err
    response = render.FHIRResponse(
        service.manifest(job, render.fhir_base(request)), media_type="application/json"
    )
    end = service.expires_at(job)
    if end is not None:  # SMART Bulk Data: when the files will be deleted
        response.headers["Expires"] = format_datetime(end.replace(tzinfo=UTC), usegmt=True)
    return response


@router.delete("/$export-status/{job_id}")
def delete(job_id: str, session: SessionDep, actor: ActorDep) -> Response:
    job = service.visible_job(session, actor, job_id)
    if job.status == "in-progress" or repository.running(session, job_id):
        raise Conflict("the export is running; delete it once it has finished")
    service.delete(session, job)
    return Response(status_code=202)


@router.get("/$export-file/{job_id}/{name}")
def download(job_id: str, name: str, session: SessionDep, actor: ActorDep) -> Response:
    job = service.visible_job(session, actor, job_id)
    if job.status != "completed" or name not in {o["file"] for o in job.output}:
        raise NotFound(f"no file {name} in export {job_id}")

    def body() -> Iterator[bytes]:
        yield from files.read_chunks(job_id, name)

    return StreamingResponse(body(), media_type=NDJSON)
