"""The clinician-facing FHIR R4 REST API: one generic router for every type."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from consent.identity.oauth import check_scope
from fhir_gateway.api import render
from fhir_gateway.api.capability import capability_statement
from fhir_gateway.api.deps import ActorDep, PurposeDep, SessionDep, check_type, json_body
from fhir_gateway.ingest import process_bundle
from phr.errors import Conflict, InvalidInput
from phr.settings import get_settings
from phr.store import search as fsearch
from phr.store.indexer import date_range, iso_instant
from phr.store.reader import RecordReader

router = APIRouter(prefix="/fhir", tags=["FHIR R4"])


def _etag_headers(version: int, last_updated: Any) -> dict[str, str]:
    return {"ETag": f'W/"{version}"', "Last-Modified": iso_instant(last_updated)}


@router.get("/metadata")
def metadata() -> Response:
    return render.FHIRResponse(capability_statement())


@router.post("")
async def transaction(request: Request, session: SessionDep, actor: ActorDep) -> Response:
    body = await json_body(request)
    check_scope(actor, "Bundle", "c")
    # Bundles take a while: run them off the event loop so the worker keeps answering.
    result = await run_in_threadpool(apply_bundle, session, body, actor)
    return render.FHIRResponse(result)


def _search(
    session: Any,
    actor: Any,
    purpose: Any,
    rtype: str,
    params: list[tuple[str, str]],
    path: str,
    prefer: str | None = None,
) -> Response:
    check_type(rtype)
    check_scope(actor, rtype, "s")
    s = get_settings()
    # FHIR: unknown parameters are ignored (and reported) unless the client asks
    # "Prefer: handling=strict".
    strict = "handling=strict" in (prefer or "")
    req = fsearch.parse(
        rtype,
        params,
        default_count=s.default_page_size,
        max_count=s.max_page_size,
        strict=strict,
    )
    params = [(k, v) for k, v in params if k.split(":", 1)[0] not in req.ignored]
    reader = RecordReader(session, actor, purpose)
    from urllib.parse import urlencode

    result = reader.search(req, query_text=urlencode(params))
    entries = [render.entry(r.resource_type, r.id, r.content, "match") for r in result.matches]
    entries += [render.entry(r.resource_type, r.id, r.content, "include") for r in result.included]
    links = render.page_links(
        path, params, req.offset, req.count, result.total, len(result.matches)
    )
    if req.ignored:
        issues = [
            {
                "severity": "warning",
                "code": "not-supported",
                "diagnostics": f"search parameter {p!r} is not supported and was ignored",
            }
            for p in req.ignored
        ]
        entries.append(
            {
                "resource": {"resourceType": "OperationOutcome", "issue": issues},
                "search": {"mode": "outcome"},
            }
        )
    return render.FHIRResponse(
        render.bundle(btype="searchset", entries=entries, total=result.total, links=links)
    )


@router.get("/{resource_type}")
def search_type(
    resource_type: str, request: Request, session: SessionDep, actor: ActorDep, purpose: PurposeDep
) -> Response:
    params = list(request.query_params.multi_items())
    return _search(
        session,
        actor,
        purpose,
        resource_type,
        params,
        f"/fhir/{resource_type}",
        request.headers.get("Prefer"),
    )


@router.post("/{resource_type}/_search")
async def search_post(
    resource_type: str, request: Request, session: SessionDep, actor: ActorDep, purpose: PurposeDep
) -> Response:
    form = await request.form()
    params = [(k, str(v)) for k, v in form.multi_items()]
    params += list(request.query_params.multi_items())
    return _search(
        session,
        actor,
        purpose,
        resource_type,
        params,
        f"/fhir/{resource_type}",
        request.headers.get("Prefer"),
    )


@router.post("/{resource_type}")
async def create(
    resource_type: str, request: Request, session: SessionDep, actor: ActorDep
) -> Response:
    check_type(resource_type)
    check_scope(actor, resource_type, "c")
    body = await json_body(request)
    entry: dict[str, Any] = {"resource": body, "request": {"method": "POST", "url": resource_type}}
    if request.headers.get("If-None-Exist"):
        entry["request"]["ifNoneExist"] = request.headers["If-None-Exist"]
    return await run_in_threadpool(_single, session, actor, entry)


@router.put("/{resource_type}/{id}")
async def update(
    resource_type: str, id: str, request: Request, session: SessionDep, actor: ActorDep
) -> Response:
    check_type(resource_type)
    check_scope(actor, resource_type, "u")
    body = await json_body(request)
    if isinstance(body, dict) and body.get("id") not in (None, id):
        raise InvalidInput(f"resource id {body.get('id')!r} does not match the URL id {id!r}")
    entry: dict[str, Any] = {
        "resource": body,
        "request": {"method": "PUT", "url": f"{resource_type}/{id}"},
    }
    if request.headers.get("If-Match"):
        entry["request"]["ifMatch"] = request.headers["If-Match"]
    return await run_in_threadpool(_single, session, actor, entry)


@router.put("/{resource_type}")
async def conditional_update(
    resource_type: str, request: Request, session: SessionDep, actor: ActorDep
) -> Response:
    check_type(resource_type)
    check_scope(actor, resource_type, "u")
    if not request.url.query:
        raise InvalidInput("conditional update needs search parameters")
    body = await json_body(request)
    entry = {
        "resource": body,
        "request": {"method": "PUT", "url": f"{resource_type}?{request.url.query}"},
    }
    return await run_in_threadpool(_single, session, actor, entry)


def apply_bundle(session: Any, body: Any, actor: Any) -> dict[str, Any]:
    """``process_bundle`` in a savepoint, retried when a concurrent request created the
    same new record first (unique key conflict): the retry then finds and reuses it."""
    for attempt in range(3):
        nested = session.begin_nested()
        try:
            result = process_bundle(session, copy.deepcopy(body), actor=actor)
        except IntegrityError:
            nested.rollback()
            if attempt == 2:
                raise Conflict(
                    "a concurrent request wrote the same records; retry",
                    headers={"Retry-After": "1"},
                ) from None
            continue
        nested.commit()
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def _single(session: Any, actor: Any, entry: dict[str, Any]) -> Response:
    out = apply_bundle(
        session, {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}, actor
    )
    resp = out["entry"][0]["response"]
    status = int(resp["status"].split()[0])
    location = resp.get("location", "")
    rtype, rid = location.split("/")[0], location.split("/")[1]
    from phr.store import repository as repo

    row = session.execute(repo.current_statement(rtype, rid)).scalar_one()
    headers = {"Location": f"{render.fhir_base()}/{location}", "ETag": resp["etag"]}
    return render.FHIRResponse(row.content, status_code=status, headers=headers)


@router.delete("/{resource_type}/{id}")
def delete(resource_type: str, id: str, session: SessionDep, actor: ActorDep) -> Response:
    check_type(resource_type)
    check_scope(actor, resource_type, "d")
    out = apply_bundle(
        session,
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "DELETE", "url": f"{resource_type}/{id}"}}],
        },
        actor,
    )
    status = int(out["entry"][0]["response"]["status"].split()[0])
    if status == 404:
        from phr.errors import NotFound

        raise NotFound(f"{resource_type}/{id} not found")
    return Response(status_code=204)


@router.get("/{resource_type}/_history")
def type_history(
    resource_type: str, request: Request, session: SessionDep, actor: ActorDep, purpose: PurposeDep
) -> Response:
    check_type(resource_type)
    check_scope(actor, resource_type, "r")
    return _history(request, session, actor, purpose, resource_type, None)


@router.get("/{resource_type}/{id}")
def read(
    resource_type: str, id: str, session: SessionDep, actor: ActorDep, purpose: PurposeDep
) -> Response:
    check_type(resource_type)
    check_scope(actor, resource_type, "r")
    row = RecordReader(session, actor, purpose).read(resource_type, id)
    return render.FHIRResponse(row.content, headers=_etag_headers(row.version_id, row.last_updated))


@router.get("/{resource_type}/{id}/_history")
def instance_history(
    resource_type: str,
    id: str,
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    purpose: PurposeDep,
) -> Response:
    check_type(resource_type)
    check_scope(actor, resource_type, "r")
    return _history(request, session, actor, purpose, resource_type, id)


@router.get("/{resource_type}/{id}/_history/{version}")
def vread(
    resource_type: str,
    id: str,
    version: str,
    session: SessionDep,
    actor: ActorDep,
    purpose: PurposeDep,
) -> Response:
    check_type(resource_type)
    check_scope(actor, resource_type, "r")
    if not version.isdigit():
        raise InvalidInput(f"version {version!r} is not a number")
    row = RecordReader(session, actor, purpose).vread(resource_type, id, int(version))
    return render.FHIRResponse(row.content, headers=_etag_headers(row.version_id, row.last_updated))


def _history(
    request: Request, session: Any, actor: Any, purpose: Any, rtype: str, id: str | None
) -> Response:
    params = list(request.query_params.multi_items())
    q = dict(params)
    s = get_settings()
    try:
        count = max(0, min(int(q.get("_count", s.default_page_size)), s.max_page_size))
        offset = max(0, int(q.get("_offset", 0)))
    except ValueError:
        raise InvalidInput("_count and _offset must be integers") from None
    since = None
    if "_since" in q:
        rng = date_range(q["_since"])
        if rng is None:
            raise InvalidInput("_since must be a FHIR instant")
        since = rng[0]
    rows, total = RecordReader(session, actor, purpose).history(
        resource_type=rtype, id=id, since=since, count=count, offset=offset
    )
    entries = []
    for r in rows:
        method = r.method
        e: dict[str, Any] = {
            "fullUrl": f"{render.fhir_base()}/{r.resource_type}/{r.id}",
            "request": {
                "method": method,
                "url": r.resource_type if method == "POST" else f"{r.resource_type}/{r.id}",
            },
            "response": {
                "status": "204" if r.deleted else ("201" if method == "POST" else "200"),
                "etag": f'W/"{r.version_id}"',
                "lastModified": iso_instant(r.last_updated),
            },
        }
        if not r.deleted:
            e["resource"] = render.raw(r.content)
        entries.append(e)
    path = f"/fhir/{rtype}/{id}/_history" if id else f"/fhir/{rtype}/_history"
    links = render.page_links(path, params, offset, count, total, len(rows))
    return render.FHIRResponse(
        render.bundle(btype="history", entries=entries, total=total, links=links)
    )
