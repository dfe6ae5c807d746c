"""All SQL of the record store: versioned writes with index extraction, and reads.

Reads here take an ``access`` clause built by the consent engine; only
:mod:`phr.store.reader` (the choke point) calls them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, delete, select, text, update
from sqlalchemy.orm import Session

from phr.store.indexer import extract, flatten, iso_instant, utcnow
from phr.store.models import (
    INDEX_MODELS,
    Resource,
    ResourceVersion,
    SearchDate,
    SearchQuantity,
    SearchReference,
    SearchString,
    SearchToken,
)
from phr.store.sensitivity import classify

CHUNK = 500


def new_id() -> str:
    return str(uuid.uuid4())


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def content_hash(resource: dict[str, Any]) -> str:
    body = dict(resource)
    meta = dict(body.get("meta") or {})
    meta.pop("versionId", None)
    meta.pop("lastUpdated", None)
    if meta:
        body["meta"] = meta
    else:
        body.pop("meta", None)
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class Put:
    resource: dict[str, Any]
    resident_id: str | None
    fact_key: str | None = None
    if_match: int | None = None  # expected current version (optimistic locking)
    method: str = "PUT"


@dataclass
class Written:
    resource_type: str
    id: str
    version_id: int
    pk: int
    last_updated: datetime
    outcome: str  # created | updated | unchanged | deleted
    content: str = field(repr=False)
    resident_id: str | None = None


class VersionConflict(Exception):
    def __init__(self, resource_type: str, id: str, expected: int, actual: int | None) -> None:
        super().__init__(f"{resource_type}/{id}: expected version {expected}, found {actual}")
        self.expected, self.actual = expected, actual


def pair_chunks(keys: Sequence[tuple[str, str]]) -> Iterator[tuple[str, list[str]]]:
    """Group (a, b) keys by a, in chunks: ``a = ? AND b IN (...)`` uses a composite index
    on every database, where a row-value ``(a, b) IN (...)`` makes SQLite scan."""
    groups: dict[str, list[str]] = {}
    for a, b in keys:
        groups.setdefault(a, []).append(b)
    for a, bs in groups.items():
        unique = list(dict.fromkeys(bs))
        for i in range(0, len(unique), CHUNK):
            yield a, unique[i : i + CHUNK]


def _existing(session: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {}
    for rtype, ids in pair_chunks(keys):
        rows = session.execute(
            select(
                Resource.pk,
                Resource.resource_type,
                Resource.id,
                Resource.version_id,
                Resource.content_hash,
                Resource.deleted,
            ).where(Resource.resource_type == rtype, Resource.id.in_(ids))
        ).all()
        for r in rows:
            found[(r.resource_type, r.id)] = r
    return found


def put_many(
    session: Session, puts: Sequence[Put], *, now: datetime | None = None, copy: bool = False
) -> list[Written]:
    """Create or version every resource; unchanged content writes nothing.

    ``copy``: on PostgreSQL, write the new ``resource`` rows with COPY (their keys drawn
    from the table's sequence first) instead of a multi-row INSERT ... RETURNING, whose
    statement psycopg parses in Python. For bulk loads; the rows are the same.
    """
    now = now or utcnow()
    for p in puts:
        if not p.resource.get("id"):
            p.resource["id"] = new_id()
    # A key written twice in one call is written in two rounds, in order.
    seen: set[tuple[str, str]] = set()
    first: list[Put] = []
    rest: list[Put] = []
    for p in puts:
        key = (p.resource["resourceType"], p.resource["id"])
        (rest if key in seen else first).append(p)
        seen.add(key)
    written = _put_round(session, first, now, copy)
    if rest:
        written += put_many(session, rest, now=now, copy=copy)
    return written


def _put_round(
    session: Session, puts: Sequence[Put], now: datetime, copy: bool = False
) -> list[Written]:
    keys = [(p.resource["resourceType"], p.resource["id"]) for p in puts]
    existing = _existing(session, keys)
    stamp = iso_instant(now)
    creates: list[tuple[Put, dict[str, Any], str]] = []
    updates: list[tuple[Put, dict[str, Any], str, Any]] = []
    results: dict[int, Written] = {}
    hashes: dict[int, str] = {}
    for i, p in enumerate(puts):
        key = keys[i]
        old = existing.get(key)
        if p.if_match is not None and (old is None or old.version_id != p.if_match):
            raise VersionConflict(key[0], key[1], p.if_match, old.version_id if old else None)
        h = content_hash(p.resource)
        if old is not None and not old.deleted and old.content_hash == h:
            results[i] = Written(
                key[0], key[1], old.version_id, old.pk, now, "unchanged", "", p.resident_id
            )
            continue
        version = (old.version_id + 1) if old is not None else 1
        meta = dict(p.resource.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = stamp
        p.resource["meta"] = meta
        content = dumps(p.resource)
        if old is None:
            creates.append((p, {"i": i}, content))
        else:
            updates.append((p, {"i": i}, content, old))
        results[i] = Written(
            key[0],
            key[1],
            version,
            old.pk if old else 0,
            now,
            "created" if old is None else "updated",
            content,
            p.resident_id,
        )
        hashes[i] = h

    if creates:
        rows = [
            {
                "resource_type": p.resource["resourceType"],
                "id": p.resource["id"],
                "version_id": 1,
                "resident_id": p.resident_id,
                "last_updated": now,
                "deleted": False,
                "content": content,
                "content_hash": hashes[m["i"]],
                "fact_key": p.fact_key,
                "sensitivity": classify(p.resource),
            }
            for p, m, content in creates
        ]
        table: Any = Resource.__table__
        pks: Sequence[int]
        if copy and session.connection().dialect.name == "postgresql":
            pks = _copy_resources(session, rows)
        else:
            pks = (
                session.connection()
                .execute(table.insert().returning(table.c.pk, sort_by_parameter_order=True), rows)
                .scalars()
                .all()
            )
        for (_p, m, _c), pk in zip(creates, pks, strict=True):
            results[m["i"]].pk = pk
    if updates:
        session.execute(
            update(Resource),
            [
                {
                    "pk": old.pk,
                    "version_id": results[m["i"]].version_id,
                    "resident_id": p.resident_id,
                    "last_updated": now,
                    "deleted": False,
                    "content": content,
                    "content_hash": hashes[m["i"]],
                    "fact_key": p.fact_key,
                    "sensitivity": classify(p.resource),
                }
                for p, m, content, old in updates
            ],
        )
        _delete_index_rows(session, [old.pk for _p, _m, _c, old in updates])

    changed = [results[i] for i in sorted(results) if results[i].outcome != "unchanged"]
    if changed:
        bulk_insert(
            session,
            ResourceVersion.__table__,
            [
                {
                    "resource_pk": w.pk,
                    "resource_type": w.resource_type,
                    "id": w.id,
                    "version_id": w.version_id,
                    "resident_id": w.resident_id,
                    "last_updated": now,
                    "deleted": False,
                    "method": "POST" if w.outcome == "created" else "PUT",
                    "content": w.content,
                }
                for w in changed
            ],
        )
        index_rows = flatten(
            extract(puts[i].resource, results[i].pk, results[i].resident_id)
            for i in sorted(results)
            if results[i].outcome != "unchanged"
        )
        _insert_index_rows(session, index_rows)
    return [results[i] for i in range(len(puts))]


def _copy_resources(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """New ``resource`` rows by COPY, with keys taken from the table's own sequence."""
    conn = session.connection()
    pks = sorted(
        conn.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence('resource', 'pk')) "
                "FROM generate_series(1, :n)"
            ),
            {"n": len(rows)},
        ).scalars()
    )
    bulk_insert(
        session, Resource.__table__, [{"pk": pk, **r} for pk, r in zip(pks, rows, strict=True)]
    )
    return pks


def bulk_insert(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows in the session's transaction as fast as the database allows.

    PostgreSQL: COPY (one round trip; psycopg's executemany would send one statement per
    row). SQLite: executemany through the Core table (the ORM bulk path is slower).
    """
    if not rows:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        cols = [c.name for c in table.columns if c.name in rows[0]]
        raw: Any = conn.connection.driver_connection
        sql = f"COPY {table.name} ({', '.join(cols)}) FROM STDIN"
        with raw.cursor() as cur, cur.copy(sql) as copy:
            for r in rows:
                copy.write_row([r.get(c) for c in cols])
        return
    conn.execute(table.insert(), list(rows))


def _insert_index_rows(session: Session, rows: Any) -> None:
    for model, data in (
        (SearchToken, rows.token),
        (SearchString, rows.string),
        (SearchDate, rows.date),
        (SearchReference, rows.reference),
        (SearchQuantity, rows.quantity),
    ):
        if data:
            bulk_insert(session, model.__table__, data)


def _delete_index_rows(session: Session, pks: Sequence[int]) -> None:
    for i in range(0, len(pks), CHUNK):
        chunk = list(pks[i : i + CHUNK])
        for model in INDEX_MODELS:
            session.execute(delete(model).where(model.resource_pk.in_(chunk)))


def delete_resource(session: Session, resource_type: str, id: str) -> Written | None:
    """Logical delete: a new version marked deleted; index rows removed."""
    row = session.execute(
        select(Resource).where(Resource.resource_type == resource_type, Resource.id == id)
    ).scalar_one_or_none()
    if row is None or row.deleted:
        return None
    now = utcnow()
    row.version_id += 1
    row.deleted = True
    row.last_updated = now
    row.fact_key = None
    session.add(
        ResourceVersion(
            resource_pk=row.pk,
            resource_type=resource_type,
            id=id,
            version_id=row.version_id,
            resident_id=row.resident_id,
            last_updated=now,
            deleted=True,
            method="DELETE",
            content="",
        )
    )
    _delete_index_rows(session, [row.pk])
    session.flush()
    return Written(resource_type, id, row.version_id, row.pk, now, "deleted", "", row.resident_id)


def reassign_resident(session: Session, from_resident: str, to_resident: str) -> int:
    """Move every row of one resident to another (used when two records are merged)."""
    n = 0
    for model in (Resource, ResourceVersion, *INDEX_MODELS):
        result = session.execute(
            update(model).where(model.resident_id == from_resident).values(resident_id=to_resident)
        )
        n += getattr(result, "rowcount", 0) or 0
    return n


# ---- reads (called only by the choke point) ---------------------------------------------


def current_statement(resource_type: str, id: str) -> Select[Any]:
    return select(Resource).where(Resource.resource_type == resource_type, Resource.id == id)


def get_current(
    session: Session, resource_type: str, id: str, access: ColumnElement[bool]
) -> Resource | None:
    row: Resource | None = session.execute(
        current_statement(resource_type, id).where(access)
    ).scalar_one_or_none()
    return row


def get_version(
    session: Session, resource_type: str, id: str, version: int, access: ColumnElement[bool]
) -> ResourceVersion | None:
    stmt = (
        select(ResourceVersion)
        .join(Resource, Resource.pk == ResourceVersion.resource_pk)
        .where(
            ResourceVersion.resource_type == resource_type,
            ResourceVersion.id == id,
            ResourceVersion.version_id == version,
            access,
        )
    )
    return session.execute(stmt).scalar_one_or_none()


def history(
    session: Session,
    access: ColumnElement[bool],
    *,
    resource_type: str | None = None,
    id: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[ResourceVersion], int]:
    from sqlalchemy import func

    conds: list[ColumnElement[bool]] = [access]
    if resource_type:
        conds.append(ResourceVersion.resource_type == resource_type)
    if id:
        conds.append(ResourceVersion.id == id)
    if since:
        conds.append(ResourceVersion.last_updated >= since)
    base = select(ResourceVersion).join(Resource, Resource.pk == ResourceVersion.resource_pk)
    total = session.scalar(
        select(func.count()).select_from(
            select(ResourceVersion.pk)
            .join(Resource, Resource.pk == ResourceVersion.resource_pk)
            .where(*conds)
            .subquery()
        )
    )
    rows = session.scalars(
        base.where(*conds)
        .order_by(ResourceVersion.last_updated.desc(), ResourceVersion.pk.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), int(total or 0)


def by_pks(session: Session, pks: Sequence[Any]) -> list[Resource]:
    out: dict[int, Resource] = {}
    for i in range(0, len(pks), CHUNK):
        for r in session.scalars(select(Resource).where(Resource.pk.in_(pks[i : i + CHUNK]))):
            out[r.pk] = r
    return [out[pk] for pk in pks if pk in out]


def find_by_fact(session: Session, resident_id: str, fact_key: str) -> tuple[str, str] | None:
    row = session.execute(
        select(Resource.resource_type, Resource.id).where(
            Resource.resident_id == resident_id,
            Resource.fact_key == fact_key,
            Resource.deleted.is_(False),
        )
    ).first()
    return (row[0], row[1]) if row else None


def load_json(content: str) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(content)
    return out
