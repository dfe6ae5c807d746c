"""The choke point: the one read path to residents' data.

Every read — FHIR API, resident app, services, modules — goes through
:class:`RecordReader`. It asks the consent engine for the access condition, makes it part
of the SQL, and writes the access log in the same transaction. What the caller may not
see does not exist for them (404, or absent from search results and totals).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from consent import audit, engine
from consent.actors import Actor, Purpose
from phr.db import after_rollback
from phr.errors import Gone, InvalidInput, NotFound
from phr.store import repository as repo
from phr.store import search as fsearch
from phr.store.models import Resource, ResourceVersion, SearchReference, SearchToken
from phr.store.params import params_for

__all__ = ["RecordReader", "RecordRow", "SearchResult"]


@dataclass(frozen=True)
class RecordRow:
    """One resource as a plain row (what population jobs need of it)."""

    resource_type: str
    id: str
    resident_id: str | None
    content: str


# Largest list of ids put into one IN (...) (bind parameters are limited per statement).
_IN_LIST_LIMIT = 1000


@dataclass
class SearchResult:
    matches: list[Resource]
    total: int | None
    included: list[Resource] = field(default_factory=list)


class RecordReader:
    def __init__(self, session: Session, actor: Actor, purpose: Purpose) -> None:
        self.session = session
        self.actor = actor
        self.purpose = purpose
        self._access: ColumnElement[bool] = engine.access_clause(actor, purpose, session)
        self._basis = engine.basis(actor, purpose)
        self.exported_residents = 0

    # -- single resources ------------------------------------------------------------------

    def read(self, resource_type: str, id: str) -> Resource:
        row = repo.get_current(self.session, resource_type, id, self._access)
        if row is None:
            self._log_miss("read", resource_type, id)
            raise NotFound(f"{resource_type}/{id} not found")
        self._log("read", [row])
        if row.deleted:
            raise Gone(f"{resource_type}/{id} was deleted")
        return row

    def vread(self, resource_type: str, id: str, version: int) -> ResourceVersion:
        row = repo.get_version(self.session, resource_type, id, version, self._access)
        if row is None:
            self._log_miss("vread", resource_type, id)
            raise NotFound(f"{resource_type}/{id}/_history/{version} not found")
        self._log_one("vread", resource_type, id, row.resident_id)
        if row.deleted:
            raise Gone(f"{resource_type}/{id} version {version} is a deletion")
        return row

    def history(
        self,
        *,
        resource_type: str | None = None,
        id: str | None = None,
        since: datetime | None = None,
        count: int = 50,
        offset: int = 0,
    ) -> tuple[list[ResourceVersion], int]:
        rows, total = repo.history(
            self.session,
            self._access,
            resource_type=resource_type,
            id=id,
            since=since,
            limit=count,
            offset=offset,
        )
        if id and not rows and offset == 0:
            self._log_miss("history", resource_type, id)
            raise NotFound(f"{resource_type}/{id} not found")
        self._log_rows(
            "history",
            [(r.resource_type, r.id, r.resident_id) for r in rows],
            detail=f"{resource_type or '*'}/{id or ''}",
        )
        return rows, total

    # -- search -------------------------------------------------------------------------------

    def search(self, req: fsearch.SearchRequest, *, query_text: str = "") -> SearchResult:
        stmt = fsearch.statement(req, self._access)
        total: int | None = None
        if req.summary_count:
            total = self._count(stmt)
            self._log_rows("search", [], detail=f"{req.resource_type}?{query_text} total={total}")
            return SearchResult([], total)
        pks = list(
            self.session.scalars(
                stmt.order_by(*fsearch.sort_columns(req)).limit(req.count).offset(req.offset)
            )
        )
        if req.total != "none":
            # A page that is not full tells the total (the common case: a patient's
            # results on one page); only a full page, or one past the end, needs the count.
            last_page = len(pks) < req.count and (req.offset == 0 or bool(pks))
            total = req.offset + len(pks) if last_page else self._count(stmt)
        matches = repo.by_pks(self.session, pks)
        included = self._includes(req, matches)
        self._log_rows(
            "search",
            [(r.resource_type, r.id, r.resident_id) for r in [*matches, *included]],
            detail=f"{req.resource_type}?{query_text}",
        )
        return SearchResult(matches, total, included)

    def _count(self, stmt: Select[Any]) -> int:
        return int(self.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)

    def _includes(self, req: fsearch.SearchRequest, matches: Sequence[Resource]) -> list[Resource]:
        if not matches or not (req.include or req.revinclude):
            return []
        seen = {m.pk for m in matches}
        out: list[Resource] = []
        pks = [m.pk for m in matches]
        for spec in req.include:
            src, _, rest = spec.partition(":")
            pname, _, target = rest.partition(":")
            if src not in (req.resource_type, "*"):
                continue
            names = (
                [p.name for p in params_for(req.resource_type).values() if p.kind == "reference"]
                if pname == "*"
                else [pname]
            )
            for name in names:
                p = params_for(req.resource_type).get(name)
                if p is None or p.kind != "reference":
                    raise InvalidInput(f"_include={spec}: {name} is not a reference parameter")
                refs: list[tuple[str | None, str | None]] = [
                    (t, i)
                    for t, i in self.session.execute(
                        select(SearchReference.target_type, SearchReference.target_id).where(
                            SearchReference.resource_pk.in_(pks), SearchReference.param == name
                        )
                    ).all()
                ]
                if name == "patient":
                    refs += [("Patient", m.resident_id) for m in matches if m.resident_id]
                keys = {(t, i) for t, i in refs if t and i and (not target or t == target)}
                out += self._fetch_keys(keys, seen)
        for spec in req.revinclude:
            src, _, pname = spec.partition(":")
            p = params_for(src).get(pname)
            if p is None or p.kind != "reference":
                raise InvalidInput(f"_revinclude={spec}: not a reference parameter of {src}")
            targets = [m.id for m in matches]
            stmt = (
                select(Resource)
                .where(
                    Resource.resource_type == src,
                    Resource.deleted.is_(False),
                    self._access,
                    Resource.pk.in_(
                        select(SearchReference.resource_pk).where(
                            SearchReference.resource_type == src,
                            SearchReference.param == pname,
                            SearchReference.target_type == req.resource_type,
                            SearchReference.target_id.in_(targets),
                        )
                    ),
                )
                .limit(1000)
            )
            for r in self.session.scalars(stmt):
                if r.pk not in seen:
                    seen.add(r.pk)
                    out.append(r)
        return out

    def read_keys(self, keys: Collection[tuple[str, str]], *, detail: str = "") -> list[Resource]:
        """Visible live resources by ``(type, id)``: one keyed query per type (no search
        machinery), logged as one search look per resident touched. What the caller may
        not see is simply absent."""
        found = self._fetch_keys(set(keys), set()) if keys else []
        order = {t: n for n, t in enumerate(dict.fromkeys(t for t, _ in keys))}
        found.sort(key=lambda r: (order[r.resource_type], r.pk))  # as a search would
        self._log_rows(
            "search", [(r.resource_type, r.id, r.resident_id) for r in found], detail=detail
        )
        return found

    def _fetch_keys(self, keys: set[tuple[str, str]], seen: set[int]) -> list[Resource]:
        out: list[Resource] = []
        by_type: dict[str, list[str]] = defaultdict(list)
        for t, i in keys:
            by_type[t].append(i)
        for t, ids in by_type.items():
            for r in self.session.scalars(
                select(Resource).where(
                    Resource.resource_type == t,
                    Resource.id.in_(ids),
                    Resource.deleted.is_(False),
                    self._access,
                )
            ):
                if r.pk not in seen:
                    seen.add(r.pk)
                    out.append(r)
        return out

    # -- a resident's whole record --------------------------------------------------------------

    def compartment(
        self,
        resident_id: str,
        *,
        types: Sequence[str] | None = None,
        since: datetime | None = None,
        action: str = "everything",
        batch: int = 1000,
    ) -> Iterator[Resource]:
        """Every visible live resource of one resident, streamed in batches."""
        conds: list[ColumnElement[bool]] = [
            Resource.resident_id == resident_id,
            Resource.deleted.is_(False),
            self._access,
        ]
        if types:
            conds.append(Resource.resource_type.in_(list(types)))
        if since:
            conds.append(Resource.last_updated >= since)
        last = 0
        returned = 0
        while True:
            rows = list(
                self.session.scalars(
                    select(Resource)
                    .where(*conds, Resource.pk > last)
                    .order_by(Resource.pk)
                    .limit(batch)
                )
            )
            returned += len(rows)
            yield from rows
            if len(rows) < batch:  # the last batch: no need to ask for an empty one
                break
            last = rows[-1].pk
        self._log_one(action, "Patient", resident_id, resident_id, count=returned)

    def compartments(
        self,
        resident_ids: Sequence[str],
        *,
        types: Sequence[str],
        action: str,
        codes: Sequence[str] | None = None,
    ) -> list[RecordRow]:
        """Visible live resources of the given types of many residents in one query, for
        population jobs (batch screening) — or of one resident, narrowed by ``codes`` (only
        resources whose ``code`` search parameter has one of them, from the token index).
        Plain rows, not ORM objects (read-only; a job reads hundreds of thousands); one
        access-log entry per resident read.
        """
        if not resident_ids:
            return []
        ids = list(resident_ids)
        conds: list[ColumnElement[bool]] = [
            Resource.resident_id.in_(ids),
            Resource.resource_type.in_(list(types)),
            Resource.deleted.is_(False),
            self._access,
        ]
        if codes is not None:
            conds.append(
                Resource.pk.in_(
                    select(SearchToken.resource_pk).where(
                        SearchToken.resource_type.in_(list(types)),
                        SearchToken.param == "code",
                        SearchToken.code.in_(list(codes)),
                        SearchToken.resident_id.in_(ids),
                    )
                )
            )
        stmt = (
            select(Resource.resource_type, Resource.id, Resource.resident_id, Resource.content)
            .where(*conds)
            .order_by(Resource.resident_id, Resource.pk)
        )
        rows = [RecordRow(*r) for r in self.session.execute(stmt)]
        counts: dict[str, int] = defaultdict(int)
        for r in rows:
            counts[r.resident_id or ""] += 1
        self._record(
            [
                audit.Access(
                    action,
                    "permit",
                    "Patient",
                    rid,
                    rid,
                    count=counts.get(rid, 0),
                    consent_ref=self._basis,
                )
                for rid in dict.fromkeys(resident_ids)
            ]
        )
        return rows

    # -- bulk export ------------------------------------------------------------------------

    def export(
        self,
        *,
        types: Sequence[str] | None,
        since: datetime | None = None,
        residents: Collection[str] | None = None,
        shared: bool = True,
        batch: int = 2000,
        detail: str = "",
    ) -> Iterator[tuple[str, str | None, str]]:
        """Every visible live resource of ``types`` (None: every type) as
        ``(type, resident, JSON text)``.

        Paged by primary key (no offset, no sort of the whole set), only the columns a file
        needs, so memory is bounded by ``batch`` whatever the population. ``residents``
        limits it to those residents (a Group); ``shared=False`` leaves out reference data
        without a resident. When the stream ends, each resident whose data left is logged
        once (one access per resident, with the number of resources).
        """
        conds: list[ColumnElement[bool]] = [Resource.deleted.is_(False), self._access]
        if types:
            conds.append(Resource.resource_type.in_(list(types)))
        if since:
            conds.append(Resource.last_updated >= since)
        if not shared:
            conds.append(Resource.resident_id.is_not(None))
        wanted: set[str] | None = None
        if residents is not None:
            if len(residents) <= _IN_LIST_LIMIT:
                conds.append(Resource.resident_id.in_(list(residents)))
            else:  # too many for one IN list: filtered here, memory is the id set
                wanted = set(residents)
        columns = (Resource.pk, Resource.resource_type, Resource.resident_id, Resource.content)
        counts: dict[str, int] = defaultdict(int)
        last = 0
        while True:
            rows = self.session.execute(
                select(*columns)
                .where(*conds, Resource.pk > last)
                .order_by(Resource.pk)
                .limit(batch)
            ).all()
            if not rows:
                break
            last = rows[-1][0]
            for _, rtype, resident, content in rows:
                if resident is not None:
                    if wanted is not None and resident not in wanted:
                        continue
                    counts[resident] += 1
                yield rtype, resident, content
        self.exported_residents = len(counts)
        self._log_export(counts, detail)

    def _log_export(self, counts: dict[str, int], detail: str) -> None:
        residents = sorted(counts)
        if not residents:
            self._record([audit.Access("export", "permit", count=0, detail=detail)])
            return
        for i in range(0, len(residents), _IN_LIST_LIMIT):
            chunk = residents[i : i + _IN_LIST_LIMIT]
            refs = engine.consent_refs(self.session, self.actor, self.purpose, chunk)
            self._record(
                [
                    audit.Access(
                        "export",
                        "permit",
                        "Patient",
                        r,
                        r,
                        count=counts[r],
                        detail=detail,
                        consent_ref=refs.get(r, self._basis),
                    )
                    for r in chunk
                ]
            )

    def resident_exists(self, resident_id: str) -> bool:
        """Is the Patient visible to this actor (without logging a read of content)."""
        return (
            self.session.scalar(
                select(func.count())
                .select_from(Resource)
                .where(
                    Resource.resource_type == "Patient",
                    Resource.id == resident_id,
                    Resource.deleted.is_(False),
                    self._access,
                )
            )
            or 0
        ) > 0

    # -- access log -------------------------------------------------------------------------

    def _log(self, action: str, rows: Sequence[Resource]) -> None:
        self._log_rows(action, [(r.resource_type, r.id, r.resident_id) for r in rows])

    def _log_one(
        self, action: str, rtype: str | None, id: str | None, resident: str | None, count: int = 1
    ) -> None:
        self._record(
            [
                audit.Access(
                    action, "permit", rtype, id, resident, count=count, consent_ref=self._basis
                )
            ]
        )

    def _log_rows(
        self, action: str, refs: Sequence[tuple[str, str, str | None]], detail: str = ""
    ) -> None:
        """One entry per resident touched, so each resident's log shows the look."""
        per_resident: dict[str | None, list[str]] = defaultdict(list)
        for rtype, rid, resident in refs:
            per_resident[resident].append(f"{rtype}/{rid}")
        refs_by_resident = engine.consent_refs(
            self.session, self.actor, self.purpose, [r for r in per_resident if r]
        )
        entries = [
            audit.Access(
                action,
                "permit",
                refs_[0].split("/")[0] if len(refs_) == 1 else None,
                refs_[0].split("/")[1] if len(refs_) == 1 else None,
                resident,
                count=len(refs_),
                detail=(detail + " " + " ".join(refs_[:50])).strip(),
                consent_ref=refs_by_resident.get(resident or "", self._basis),
            )
            for resident, refs_ in per_resident.items()
        ]
        if not entries:
            entries = [
                audit.Access(action, "permit", count=0, detail=detail, consent_ref=self._basis)
            ]
        self._record(entries)

    def _record(self, entries: list[audit.Access]) -> None:
        audit.record(self.session, self.actor, self.purpose, entries)
        if self.purpose == Purpose.EMERGENCY:
            # Emergency looks are told to the resident and their trusted persons at once.
            from consent.notifications import notify_emergency_accesses

            notify_emergency_accesses(self.session, self.actor, self.purpose, entries)

    def _log_miss(self, action: str, rtype: str | None, id: str | None) -> None:
        """A request for something not visible: denied if it exists, else not found.

        The existence check is the choke point's own business; the caller only ever
        learns "not found".
        """
        resident = None
        outcome = "not-found"
        if rtype and id:
            row = self.session.execute(
                select(Resource.resident_id).where(
                    Resource.resource_type == rtype, Resource.id == id
                )
            ).first()
            if row is not None:
                outcome, resident = "deny", row[0]
        entry = audit.Access(action, outcome, rtype, id, resident)
        audit.record(self.session, self.actor, self.purpose, [entry])
        actor, purpose = self.actor, self.purpose
        after_rollback(self.session, lambda s: audit.record(s, actor, purpose, [entry]))
