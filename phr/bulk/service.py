"""FHIR Bulk Data export (HL7 FHIR Bulk Data Access IG v2, "SMART Bulk Data").

Kick-off (``GET [base]/$export``, ``[base]/Patient/$export``, ``[base]/Group/[id]/$export``
with ``Prefer: respond-async``) validates the request and stores a job; a worker thread
(:mod:`phr.bulk.worker`) runs it: one pass over the store by primary key through the
choke point (:meth:`phr.store.reader.RecordReader.export`) as the caller, for the
caller's purpose, writing one NDJSON file per resource type. The caller gets exactly what
it could read one by one; each resident whose data left is logged once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose, scope_allows
from consent.identity.oauth import check_scope
from fhir_gateway.validation import known_type
from phr.bulk import files, repository
from phr.bulk.models import BulkExportJob
from phr.errors import Forbidden, InvalidInput, NotFound
from phr.settings import get_settings
from phr.store.indexer import date_range, utcnow
from phr.store.reader import RecordReader
from phr.store.repository import new_id

__all__ = ["delete", "expires_at", "kick_off", "owner_of", "retention", "run", "visible_job"]

OUTPUT_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}
UNSUPPORTED = ("_typeFilter", "_elements", "patient", "includeAssociatedData")
PROGRESS_FILE = "progress"
STARTED, DONE = "started", "done"


def owner_of(actor: Actor) -> str:
    """Who may poll, download and delete a job: the same client and person."""
    return f"{actor.kind}:{actor.client_id or ''}:{actor.user_id or actor.resident_id or ''}"


def kick_off(
    session: Session,
    actor: Actor,
    purpose: Purpose,
    *,
    level: str,
    params: Mapping[str, str],
    prefer: str,
    request_url: str,
    group_id: str | None = None,
) -> BulkExportJob:
    prefs = {p.strip().lower() for p in prefer.split(",")}
    if "respond-async" not in prefs:
        raise InvalidInput("$export needs the header Prefer: respond-async")
    lenient = "handling=lenient" in prefs
    fmt = params.get("_outputFormat")
    if fmt and fmt not in OUTPUT_FORMATS:
        raise InvalidInput(f"_outputFormat {fmt!r} is not supported; use application/fhir+ndjson")
    for name in UNSUPPORTED:
        if name in params and not lenient:
            raise InvalidInput(f"the parameter {name} is not supported")
    types = _types(actor, params.get("_type", ""))
    since = None
    if params.get("_since"):
        rng = date_range(params["_since"])
        if rng is None:
            raise InvalidInput("_since must be a FHIR instant")
        since = rng[0]
    if level == "group":
        assert group_id is not None
        RecordReader(session, actor, purpose).read("Group", group_id)  # 404 if not visible
    job = BulkExportJob(
        id=new_id(),
        status="accepted",
        level=level,
        group_id=group_id,
        types=types,
        since=since,
        request_url=request_url,
        actor={**asdict(actor), "scopes": sorted(actor.scopes)},
        purpose=purpose.value,
        owner=owner_of(actor),
        created_at=utcnow(),
        output=[],
        resources=0,
        residents=0,
        error="",
    )
    session.add(job)
    session.flush()
    files.job_dir(job.id).mkdir(parents=True, exist_ok=True)
    return job


def _types(actor: Actor, text: str) -> list[str]:
    """The requested types (each must be allowed by the scopes), or [] for every type the
    scopes allow (``*``) — a client with per-type scopes gets those types."""
    requested = [t.strip() for t in text.split(",") if t.strip()]
    for t in requested:
        if not known_type(t):
            raise InvalidInput(f"_type: {t!r} is not a FHIR resource type")
        check_scope(actor, t, "r")
    if requested:
        return sorted(set(requested))
    if scope_allows(actor.scopes, "*", "r"):
        return []
    scoped = sorted(
        {
            s.partition("/")[2].partition(".")[0]
            for s in actor.scopes
            if "/" in s and scope_allows(actor.scopes, s.partition("/")[2].partition(".")[0], "r")
        }
        - {"*"}
    )
    if not scoped:
        raise Forbidden("the scopes allow reading no resource type")
    return scoped


def retention() -> timedelta:
    return timedelta(hours=get_settings().bulk_retention_hours)


def expires_at(job: BulkExportJob) -> datetime | None:
    """When a finished job and its files are deleted (None while it runs)."""
    return job.finished_at + retention() if job.finished_at is not None else None


def visible_job(session: Session, actor: Actor, job_id: str) -> BulkExportJob:
    job = repository.get(session, job_id)
    if job is None or job.owner != owner_of(actor):
        raise NotFound(f"no export job {job_id}")
    end = expires_at(job)
    if end is not None and end <= utcnow():  # expired, not purged yet: gone all the same
        raise NotFound(f"export job {job_id} has expired; kick it off again")
    return job


def progress(job: BulkExportJob) -> str:
    with contextlib.suppress(OSError, ValueError):
        n = int((files.job_dir(job.id) / PROGRESS_FILE).read_text())
        return f"{n} resources exported"
    return "queued" if job.status == "accepted" else job.status


def delete(session: Session, job: BulkExportJob) -> None:
    files.remove_job_dir(job.id)
    session.delete(job)
    session.flush()


def _actor(job: BulkExportJob) -> Actor:
    data = dict(job.actor)
    data["scopes"] = frozenset(data.get("scopes") or ())
    return Actor(**data)


def _group_members(reader: RecordReader, group_id: str) -> set[str]:
    group = orjson.loads(reader.read("Group", group_id).content)
    out = set()
    for m in group.get("member") or []:
        ref = ((m.get("entity") or {}).get("reference")) or ""
        rtype, _, rid = ref.partition("/")
        if rtype == "Patient" and rid and not m.get("inactive"):
            out.add(rid)
    return out


def run(session: Session, job: BulkExportJob, *, batch: int = 10_000) -> None:
    """Export one job in the caller's transaction; files are written as rows stream by.

    The job is completed (and its files handed out) only when the transaction that logged
    the accesses commits.
    """
    directory = files.job_dir(job.id)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / STARTED).write_text(utcnow().isoformat())
    job.status = "in-progress"
    job.started_at = utcnow()
    session.flush()
    reader = RecordReader(session, _actor(job), Purpose(job.purpose))
    residents = _group_members(reader, job.group_id or "") if job.level == "group" else None
    keys = files.key_provider()
    writers: dict[str, files.ChunkWriter] = {}
    transaction_time = utcnow()
    total = 0
    try:
        for rtype, _, content in reader.export(
            types=job.types or None,
            since=job.since,
            residents=residents,
            shared=job.level == "system",
            batch=batch,
            detail=f"$export {job.id}",
        ):
            w = writers.get(rtype)
            if w is None:
                w = writers[rtype] = files.ChunkWriter(job.id, f"{rtype}.ndjson", keys)
            w.write(content)
            total += 1
            if total % 50_000 == 0:
                (directory / PROGRESS_FILE).write_text(str(total))
    finally:
        for w in writers.values():
            w.close()
    job.output = [{"type": t, "file": w.name, "count": w.count} for t, w in sorted(writers.items())]
    job.resources = total
    job.residents = reader.exported_residents
    job.transaction_time = transaction_time
    job.status = "completed"
    job.finished_at = utcnow()
    session.flush()


def manifest(job: BulkExportJob, base: str) -> dict[str, Any]:
    assert job.transaction_time is not None
    return {
        "transactionTime": _instant(job.transaction_time),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [
            {
                "type": o["type"],
                "url": f"{base}/$export-file/{job.id}/{o['file']}",
                "count": o["count"],
            }
            for o in job.output
        ],
        "error": [],
    }


def _instant(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds") + "Z"
