"""``Patient/{id}/$everything``: the whole visible record of one resident."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from consent.identity.oauth import check_scope
from fhir_gateway.api import render
from fhir_gateway.api.deps import ActorDep, PurposeDep, SessionDep
from phr.errors import InvalidInput, NotFound
from phr.store.indexer import date_range
from phr.store.reader import RecordReader

router = APIRouter(prefix="/fhir", tags=["FHIR R4"])


@router.get("/Patient/{id}/$everything")
def everything(
    id: str, request: Request, session: SessionDep, actor: ActorDep, purpose: PurposeDep
) -> Response:
    check_scope(actor, "Patient", "r")
    q = dict(request.query_params)
    since = None
    if "_since" in q:
        rng = date_range(q["_since"])
        if rng is None:
            raise InvalidInput("_since must be a FHIR instant")
        since = rng[0]
    types = [t for t in q.get("_type", "").split(",") if t] or None
    reader = RecordReader(session, actor, purpose)
    if not reader.resident_exists(id):
        reader.read("Patient", id)  # logs the miss and raises NotFound
        raise NotFound(f"Patient/{id} not found")
    entries = [
        render.entry(r.resource_type, r.id, r.content)
        for r in reader.compartment(id, types=types, since=since)
        if r.resource_type != "Provenance" or "Provenance" in (types or [])
    ]
    return render.FHIRResponse(
        render.bundle(btype="searchset", entries=entries, total=len(entries))
    )
