"""HTTP: ``POST /fhir/Patient/{id}/$medication-review`` (FHIR) and the JSON API of the
pharmacist's worklist and the resident's plain-language view.

Callers use bearer tokens: organisation clients (pharmacies, clinics; FHIR scopes) and
signed-in residents (``patient/*`` scopes). Reads run under purpose MEDREVIEW through the
polypharmacy service, so what the resident did not consent to is simply not there.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from consent.actors import Actor, Purpose
from consent.identity.oauth import ActorDep, check_scope
from fhir_gateway.api import render
from fhir_gateway.api.deps import PURPOSE_HEADER
from phr.db import SessionDep
from phr.errors import Forbidden, InvalidInput
from phr.polypharmacy import fhir, service
from phr.polypharmacy.schemas import FindingUpdate

__all__ = ["router"]

router = APIRouter(tags=["polypharmacy"])

WORKLIST_KINDS = frozenset({"pharmacy", "clinic", "hospital", "municipality"})


def _medreview_only(request: Request) -> None:
    code = request.headers.get(PURPOSE_HEADER)
    if code and code != Purpose.MEDICATION_REVIEW.value:
        raise InvalidInput(f"$medication-review reads under purpose MEDREVIEW, not {code!r}")


@router.post("/fhir/Patient/{id}/$medication-review", tags=["FHIR R4"])
def medication_review(id: str, request: Request, session: SessionDep, actor: ActorDep) -> Response:
    """Reconciled medicine list and findings (DetectedIssue) of one resident."""
    _medreview_only(request)
    check_scope(actor, "MedicationRequest", "r")
    check_scope(actor, "Patient", "r")
    result = service.review(session, actor, id)
    if actor.kind in ("organization", "staff"):
        service.record_findings(session, service.owner_of(actor), [result])
    return render.FHIRResponse(fhir.bundle(result))


def _pharmacist(actor: Actor) -> Actor:
    if actor.kind == "staff" and actor.role == "pharmacist":
        return actor
    if actor.kind == "organization" and actor.organization_kind in WORKLIST_KINDS:
        return actor
    raise Forbidden("the worklist is for pharmacists and their organisations")


@router.get("/api/polypharmacy/worklist")
def worklist(
    session: SessionDep,
    actor: ActorDep,
    state: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    _pharmacist(actor)
    items = service.worklist(
        session, actor, states=state or ["open", "acknowledged"], limit=limit, offset=offset
    )
    return {"items": items, "count": len(items), "offset": offset}


@router.post("/api/polypharmacy/findings/{finding_id}")
def act(
    finding_id: str, body: FindingUpdate, session: SessionDep, actor: ActorDep
) -> dict[str, Any]:
    _pharmacist(actor)
    return service.act_on_finding(session, actor, finding_id, state=body.state, note=body.note)


@router.get("/api/me/medication-review")
def my_review(
    session: SessionDep, actor: ActorDep, lang: Annotated[str, Query()] = "ja"
) -> dict[str, Any]:
    """The signed-in resident's findings in plain language (ja or en)."""
    if actor.kind != "resident" or not actor.resident_id:
        raise Forbidden("residents only")
    return service.resident_view(session, actor, actor.resident_id, lang=lang)
