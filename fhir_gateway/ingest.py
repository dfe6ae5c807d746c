"""Ingest: records from a source become versioned resources of one resident.

Every source keeps its own id space. The gateway maps each source record —
(organisation, resource type, the source's key) — to a platform resource through
``resource_source``, which makes re-import idempotent (an unchanged record writes
nothing; a changed one becomes a new version) and lets the same fact reported by two
sources be stored once with both sources (see :mod:`fhir_gateway.dedupe`).

Two entry points:
- :func:`process_bundle` — clinic ``transaction``/``batch`` Bundles (POST /fhir);
- :func:`upsert_person` + :func:`store_records` — file importers (municipal, insurer).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose, scope_allows
from fhir_gateway import hooks, identity
from fhir_gateway.dedupe import fact_key
from fhir_gateway.identity import Demographics, SourceIdentity
from fhir_gateway.validation import validate_resource
from phr.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PHRError,
    PreconditionFailed,
    UnprocessableResource,
    issue,
)
from phr.settings import get_settings
from phr.store import repository as repo
from phr.store import search as fsearch
from phr.store.indexer import iso_instant, patient_of, utcnow
from phr.store.models import Resource, ResourceSource

__all__ = [
    "Outcome",
    "SourceRecord",
    "StoreResult",
    "process_bundle",
    "store_records",
    "upsert_person",
    "write_provenance",
]

JP_INSURANCE_PREFIX = "urn:oid:1.2.392.100495.20.3.61"  # JP Core 被保険者個人識別子
# JP Core (ccs) and the national EHR information-sharing service (clins) spell it so.
INSURANCE_MEMBER_SYSTEMS = {
    "http://jpfhir.jp/fhir/ccs/Idsysmem/JP_Insurance_memberID",
    "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID",
}
MYNUMBER_SYSTEMS = {"urn:oid:1.2.392.100495.20.3.81", "urn:phr:mynumber"}


def source_uri(organization_id: str) -> str:
    return f"urn:phr:organization:{organization_id}"


def _hash(obj: Any) -> str:
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class SourceRecord:
    source_key: str
    resource: dict[str, Any]  # references to the patient already point at Patient/<resident>
    source_hash: str | None = None  # of the record as the source sent it; computed if None


@dataclass
class Outcome:
    resource_type: str
    id: str
    version_id: int
    status: str  # created | updated | unchanged | merged (same fact from another source)
    last_updated: str
    resident_id: str | None = None


@dataclass
class StoreResult:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


# ---- the common write path -------------------------------------------------------------------


def _existing_sources(
    session: Session, org: str, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[ResourceSource, str, int]]:
    """(type, source_key) -> (source row, platform id, current version)."""
    out: dict[tuple[str, str], tuple[ResourceSource, str, int]] = {}
    for rtype, chunk in repo.pair_chunks(keys):
        rows = session.execute(
            select(ResourceSource, Resource.id, Resource.version_id)
            .join(Resource, Resource.pk == ResourceSource.resource_pk)
            .where(
                ResourceSource.organization_id == org,
                ResourceSource.resource_type == rtype,
                ResourceSource.source_key.in_(chunk),
            )
        ).all()
        for src, rid, ver in rows:
            out[(src.resource_type, src.source_key)] = (src, rid, ver)
    return out


def _fact_matches(
    session: Session, org: str, wanted: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, str, str, int]]:
    """(resident, fact_key) -> (pk, type, id, version) of a live resource from *another* source."""
    out: dict[tuple[str, str], tuple[int, str, str, int]] = {}
    want = set(wanted)
    from_this_source = exists().where(
        ResourceSource.resource_pk == Resource.pk, ResourceSource.organization_id == org
    )
    for resident, chunk in repo.pair_chunks(wanted):
        rows = session.execute(
            select(
                Resource.pk,
                Resource.resident_id,
                Resource.fact_key,
                Resource.resource_type,
                Resource.id,
                Resource.version_id,
            ).where(
                Resource.resident_id == resident,
                Resource.fact_key.in_(chunk),
                Resource.deleted.is_(False),
                ~from_this_source,
            )
        ).all()
        for pk, res, fk, t, rid, ver in rows:
            if res and fk and (res, fk) in want:
                out.setdefault((res, fk), (pk, t, rid, ver))
    return out


def plan_ids(
    session: Session, org: str, records: Sequence[SourceRecord]
) -> tuple[dict[int, str], dict[tuple[str, str], tuple[ResourceSource, str, int]]]:
    """Platform id for each record: its earlier id, or a fresh one.

    A source's ids are its own: a record the source has not sent before always gets a
    fresh platform id, whatever id it carries (two clinics may both have an
    ``Observation/1``). The one exception is a source writing back a resource by the
    platform id it was given (read, change, ``PUT``): if that resource is one this source
    contributed, the write updates it.
    """
    keys = [(r.resource["resourceType"], r.source_key) for r in records]
    existing = _existing_sources(session, org, keys)
    missing = [
        (key, str(records[i].resource["id"]))
        for i, key in enumerate(keys)
        if key not in existing and records[i].resource.get("id")
    ]
    if missing:
        own = _own_by_platform_id(session, org, [(k[0], pid) for k, pid in missing])
        for key, pid in missing:
            if (key[0], pid) in own:
                existing[key] = own[(key[0], pid)]
    ids: dict[int, str] = {}
    for i, key in enumerate(keys):
        ids[i] = existing[key][1] if key in existing else repo.new_id()
    return ids, existing


def _own_by_platform_id(
    session: Session, org: str, wanted: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[ResourceSource, str, int]]:
    """(type, platform id) -> this source's row for resources it contributed.

    Two index lookups rather than one join: the join's plan depends on statistics, and
    right after a bulk load (no ANALYZE yet) PostgreSQL may pick a scan.
    """
    out: dict[tuple[str, str], tuple[ResourceSource, str, int]] = {}
    for rtype, chunk in repo.pair_chunks(wanted):
        found = {
            pk: (rid, ver)
            for pk, rid, ver in session.execute(
                select(Resource.pk, Resource.id, Resource.version_id).where(
                    Resource.resource_type == rtype, Resource.id.in_(chunk)
                )
            )
        }
        if not found:
            continue
        for src in session.scalars(
            select(ResourceSource).where(
                ResourceSource.resource_pk.in_(list(found)),
                ResourceSource.organization_id == org,
            )
        ):
            rid, ver = found[src.resource_pk]
            out.setdefault((rtype, rid), (src, rid, ver))
    return out


def store_records(
    session: Session,
    *,
    organization_id: str,
    records: Sequence[SourceRecord],
    import_id: str | None = None,
    ids: dict[int, str] | None = None,
    existing: dict[tuple[str, str], tuple[ResourceSource, str, int]] | None = None,
    provenance: bool = True,
    bulk: bool = False,
) -> StoreResult:
    """Write source records (patient references already resolved) idempotently.

    ``ids``/``existing`` may come from :func:`plan_ids` when the caller needed the
    platform ids first (to rewrite references inside a bundle). ``bulk``: new rows by COPY
    on PostgreSQL (:func:`phr.store.repository.put_many` ``copy``); for bulk loads.
    """
    now = utcnow()
    if ids is None or existing is None:
        ids, existing = plan_ids(session, organization_id, records)
    result = StoreResult()
    outcomes: dict[int, Outcome] = {}
    puts: list[tuple[int, repo.Put]] = []
    new_sources: list[dict[str, Any]] = []
    changed_sources: list[tuple[ResourceSource, str]] = []
    src_uri = source_uri(organization_id)
    stamp = iso_instant(now)

    fact_wanted: list[tuple[str, str]] = []
    prepared: dict[int, tuple[str, str | None, str | None]] = {}
    for i, rec in enumerate(records):
        res = rec.resource
        shash = rec.source_hash or _hash(res)
        key = (res["resourceType"], rec.source_key)
        prev = existing.get(key)
        if prev is not None and prev[0].source_hash == shash:
            outcomes[i] = Outcome(key[0], prev[1], prev[2], "unchanged", stamp, prev[0].resident_id)
            continue
        res["id"] = ids[i]
        meta = dict(res.get("meta") or {})
        meta["source"] = src_uri
        meta.pop("versionId", None)
        meta.pop("lastUpdated", None)
        res["meta"] = meta
        resident = patient_of(res) if res["resourceType"] != "Patient" else res["id"]
        fk = fact_key(res) if prev is None else None
        if fk and resident:
            fact_wanted.append((resident, fk))
        prepared[i] = (shash, resident, fk)

    matches = _fact_matches(session, organization_id, fact_wanted) if fact_wanted else {}
    for i, (shash, resident, fk) in prepared.items():
        rec = records[i]
        res = rec.resource
        key = (res["resourceType"], rec.source_key)
        if fk and resident and (resident, fk) in matches:
            pk, t, rid, ver = matches[(resident, fk)]
            new_sources.append(
                dict(
                    resource_pk=pk,
                    resident_id=resident,
                    organization_id=organization_id,
                    resource_type=key[0],
                    source_key=rec.source_key,
                    source_hash=shash,
                    received_at=now,
                    import_id=import_id,
                )
            )
            outcomes[i] = Outcome(t, rid, ver, "merged", stamp, resident)
            continue
        puts.append((i, repo.Put(res, resident, fact_key=fact_key(res))))
        prev = existing.get(key)
        if prev is not None:
            changed_sources.append((prev[0], shash))
    written = repo.put_many(session, [p for _, p in puts], now=now, copy=bulk) if puts else []
    for (i, put), w in zip(puts, written, strict=True):
        rec = records[i]
        key = (put.resource["resourceType"], rec.source_key)
        status = w.outcome if w.outcome != "unchanged" else "unchanged"
        outcomes[i] = Outcome(
            w.resource_type, w.id, w.version_id, status, iso_instant(w.last_updated), w.resident_id
        )
        if key not in existing:
            new_sources.append(
                dict(
                    resource_pk=w.pk,
                    resident_id=w.resident_id,
                    organization_id=organization_id,
                    resource_type=key[0],
                    source_key=rec.source_key,
                    source_hash=rec.source_hash or _hash(rec.resource),
                    received_at=now,
                    import_id=import_id,
                )
            )
    for src, shash in changed_sources:
        src.source_hash = shash
        src.received_at = now
        src.import_id = import_id
    if new_sources and bulk:
        repo.bulk_insert(session, ResourceSource.__table__, new_sources)
    elif new_sources:
        from sqlalchemy import insert

        session.execute(insert(ResourceSource), new_sources)
    result.outcomes = [outcomes[i] for i in range(len(records))]
    if provenance:
        write_provenance(session, organization_id, result.outcomes, import_id, now)
    session.flush()
    return result


def write_provenance(
    session: Session, org: str, outcomes: Sequence[Outcome], import_id: str | None, now: Any
) -> None:
    """One Provenance per resident per import: which source, when received.

    Importers that write a file in several ``store_records`` calls pass
    ``provenance=False`` there and call this once with all the outcomes.
    """
    by_resident: dict[str | None, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if o.status in ("created", "updated", "merged") and o.resource_type != "Provenance":
            by_resident[o.resident_id].append(o)
    puts = []
    for resident, outs in by_resident.items():
        if not resident:
            continue
        prov: dict[str, Any] = {
            "resourceType": "Provenance",
            "target": [
                {"reference": f"{o.resource_type}/{o.id}/_history/{o.version_id}"} for o in outs
            ],
            "recorded": iso_instant(now),
            "activity": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                        "code": "UPDATE" if all(o.status == "updated" for o in outs) else "CREATE",
                    }
                ]
            },
            "agent": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                "code": "author",
                            }
                        ]
                    },
                    "who": {"reference": f"Organization/{org}"},
                }
            ],
            "meta": {"source": source_uri(org)},
        }
        if import_id:
            prov["entity"] = [
                {
                    "role": "source",
                    "what": {"identifier": {"system": "urn:phr:import", "value": import_id}},
                }
            ]
        puts.append(repo.Put(prov, resident))
    if puts:
        repo.put_many(session, puts, now=now)


# ---- people ----------------------------------------------------------------------------------


def upsert_person(
    session: Session,
    *,
    organization_id: str,
    identity_: SourceIdentity,
    patient: dict[str, Any] | None,
    source_key: str,
    import_id: str | None = None,
    provenance: bool = True,
) -> identity.Resolution:
    """Resolve a source's person to a resident and refresh the golden Patient.

    Callers that write the person's records too pass ``provenance=False`` and include
    ``resolution.patient_outcome`` in their one :func:`write_provenance` call.
    """
    resolution = identity.resolve(session, identity_)
    rid = resolution.resident_id
    existing = _existing_sources(session, organization_id, [("Patient", source_key)])
    prev = existing.get(("Patient", source_key))
    if prev is not None and prev[1] != rid:
        # The source re-used this key for someone the master patient index tells apart
        # (e.g. the same urn:uuid in two bundles): keep both people as the source's own.
        source_key = f"{source_key}#{rid}"
        existing = _existing_sources(session, organization_id, [("Patient", source_key)])
    golden = session.execute(
        select(Resource.content).where(Resource.resource_type == "Patient", Resource.id == rid)
    ).scalar_one_or_none()
    incoming = dict(patient) if patient else _patient_from(identity_.demographics)
    incoming["resourceType"] = "Patient"
    incoming["identifier"] = [
        i for i in incoming.get("identifier", []) if i.get("system") not in MYNUMBER_SYSTEMS
    ]
    if golden:
        incoming = _merge_golden(orjson.loads(golden), incoming)
    if not incoming["identifier"]:
        incoming.pop("identifier")
    incoming["id"] = rid
    records = [
        # Hash what the source sent minus any My Number: a plain hash of a 12-digit number
        # could be reversed by trying them all.
        SourceRecord(
            source_key, incoming, source_hash=_hash(_without_mynumber(patient or incoming))
        )
    ]
    result = store_records(
        session,
        organization_id=organization_id,
        records=records,
        import_id=import_id,
        ids={0: rid},
        existing=existing,
        provenance=provenance,
    )
    resolution.patient_outcome = result.outcomes[0]
    if not resolution.created and result.outcomes[0].status == "updated":
        hooks.golden_patient_updated(session, rid)
    return resolution


def _without_mynumber(patient: dict[str, Any]) -> dict[str, Any]:
    out = dict(patient)
    out["identifier"] = [
        i for i in patient.get("identifier", []) or [] if i.get("system") not in MYNUMBER_SYSTEMS
    ]
    return out


def _merge_golden(old: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    """The resident's Patient after a source's update.

    What the source sends wins; what it does not send is kept (a clinic's bundle must not
    erase the kana reading or the address the city sent). Identifiers and names are
    unions, since every source's number and every written form of the name stay true.
    """
    out = dict(old)
    out.pop("meta", None)
    out.update({k: v for k, v in incoming.items() if k not in ("identifier", "name")})
    for key in ("identifier", "name"):
        merged = list(old.get(key, []))
        seen = {_same(key, x) for x in merged}
        for item in incoming.get(key, []):
            if _same(key, item) not in seen:
                seen.add(_same(key, item))
                merged.append(item)
        if merged:
            out[key] = merged
    out.setdefault("identifier", [])
    return out


def _same(key: str, item: dict[str, Any]) -> Any:
    """What makes two identifiers or two names the same (not their decoration)."""
    if key == "identifier":
        return (item.get("system"), item.get("value"))
    rep = tuple(sorted(x.get("valueCode", "") for x in item.get("extension", []) or []))
    return (item.get("family"), tuple(item.get("given", []) or []), rep or ("IDE",))


def _patient_from(demo: Demographics | None) -> dict[str, Any]:
    p: dict[str, Any] = {"resourceType": "Patient", "active": True}
    if demo is None:
        return p
    names: list[dict[str, Any]] = []
    if demo.family or demo.given:
        names.append(
            {"use": "official", "family": demo.family, "given": [demo.given] if demo.given else []}
        )
    if demo.family_kana or demo.given_kana:
        names.append(
            {
                "use": "official",
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation",
                        "valueCode": "SYL",
                    }
                ],
                "family": demo.family_kana,
                "given": [demo.given_kana] if demo.given_kana else [],
            }
        )
    if names:
        p["name"] = [{k: v for k, v in n.items() if v} for n in names]
    if demo.gender:
        p["gender"] = demo.gender
    if demo.birth_date:
        p["birthDate"] = demo.birth_date
    if demo.address or demo.postal_code or demo.city:
        addr = {
            "text": demo.address,
            "postalCode": demo.postal_code,
            "city": demo.city,
            "country": "JP",
        }
        p["address"] = [{k: v for k, v in addr.items() if v}]
    if demo.telecom:
        p["telecom"] = [{"system": "phone", "value": demo.telecom}]
    return p


def identity_from_patient(org: str, patient: dict[str, Any]) -> SourceIdentity:
    """Identifiers of a clinic's Patient: its own numbers, insurance, My Number (hashed)."""
    ids: list[tuple[str, str, str]] = []
    for ident in patient.get("identifier", []) or []:
        system, value = ident.get("system") or "", ident.get("value") or ""
        if not value:
            continue
        if system in MYNUMBER_SYSTEMS:
            ids.append(("mynumber", system, value))
        elif system in INSURANCE_MEMBER_SYSTEMS and value.count(":") == 3:
            # 被保険者個人識別子 "保険者番号:記号:番号:枝番" — the same number the insurer's
            # files carry, so a clinic's patient joins the resident the insurer knows.
            insurer, symbol, number, branch = value.split(":")
            ids.append(
                ("insurance", identity.insurance_system(insurer), f"{symbol}-{number}-{branch}")
            )
        elif system.startswith(JP_INSURANCE_PREFIX):
            ids.append(("insurance", system, value))
        else:
            ids.append(("mrn", f"{identity.mrn_system(org)}|{system}", value))
    if patient.get("id"):
        ids.append(("mrn", f"{identity.mrn_system(org)}|id", str(patient["id"])))
    name = (patient.get("name") or [{}])[0]
    demo = Demographics(
        family=name.get("family"),
        given=" ".join(name.get("given", []) or []) or None,
        birth_date=patient.get("birthDate"),
        gender=patient.get("gender"),
    )
    return SourceIdentity(organization_id=org, identifiers=ids, demographics=demo)


# ---- bundles ---------------------------------------------------------------------------------


@dataclass
class _Entry:
    index: int
    method: str
    url: str
    resource: dict[str, Any] | None
    full_url: str | None
    if_none_exist: str | None
    if_match: str | None
    source_key: str = ""
    resource_type: str = ""


def _key_from_full_url(full_url: str | None) -> str | None:
    if not full_url:
        return None
    if full_url.startswith(("urn:uuid:", "urn:oid:")):
        return full_url.split(":", 2)[2]
    return full_url.rstrip("/").split("/")[-1]


def _own_clause(org: str) -> Any:
    from sqlalchemy import exists

    return exists().where(
        ResourceSource.resource_pk == Resource.pk, ResourceSource.organization_id == org
    )


def _conditional(session: Session, org: str, rtype: str, query: str) -> list[tuple[str, int]]:
    """Resources of this source matching a conditional query: [(id, version)]."""
    req = fsearch.parse(rtype, parse_qsl(query, keep_blank_values=True))
    stmt = fsearch.statement(req, _own_clause(org))
    pks = list(session.scalars(stmt.limit(2)))
    rows = repo.by_pks(session, pks)
    return [(r.id, r.version_id) for r in rows]


def process_bundle(
    session: Session, bundle: Any, *, actor: Actor, import_id: str | None = None
) -> dict[str, Any]:
    """Apply a transaction (all or nothing) or batch (entry by entry) Bundle."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidInput("expected a Bundle resource")
    btype = bundle.get("type")
    if btype not in ("transaction", "batch"):
        raise InvalidInput(f"Bundle.type must be transaction or batch, not {btype!r}")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise InvalidInput("Bundle.entry must be an array")
    limit = get_settings().max_bundle_entries
    if len(entries) > limit:
        raise PayloadTooLarge(f"Bundle has {len(entries)} entries; the limit is {limit}")
    org = actor.organization_id
    if not org:
        raise Forbidden("only an organisation's client may submit records")
    import_id = import_id or repo.new_id()
    parsed = [_parse_entry(i, e) for i, e in enumerate(entries)]
    if btype == "transaction":
        errors = [iss for e in parsed for iss in _check_entry(e, actor)]
        if errors:
            raise InvalidInput("the transaction was rejected; nothing was written", issues=errors)
        responses = _apply(session, parsed, actor, import_id)
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": responses}
    out = []
    for e in parsed:
        errs = _check_entry(e, actor)
        if errs:
            out.append(_error_entry(InvalidInput("invalid entry", issues=errs)))
            continue
        nested = session.begin_nested()
        try:
            out += _apply(session, [e], actor, import_id)
            nested.commit()
        except PHRError as exc:
            nested.rollback()
            out.append(_error_entry(exc))
    return {"resourceType": "Bundle", "type": "batch-response", "entry": out}


def _error_entry(exc: PHRError) -> dict[str, Any]:
    return {"response": {"status": f"{exc.status_code}", "outcome": exc.operation_outcome()}}


def _parse_entry(i: int, e: Any) -> _Entry:
    if not isinstance(e, dict):
        return _Entry(i, "", "", None, None, None, None)
    req = e.get("request") or {}
    return _Entry(
        i,
        str(req.get("method") or "").upper(),
        str(req.get("url") or ""),
        e.get("resource"),
        e.get("fullUrl"),
        req.get("ifNoneExist"),
        req.get("ifMatch"),
    )


def _check_entry(e: _Entry, actor: Actor) -> list[dict[str, Any]]:
    where = f"Bundle.entry[{e.index}]"
    if e.method not in ("GET", "POST", "PUT", "DELETE"):
        return [
            issue(
                f"request.method {e.method!r} is not supported",
                expression=f"{where}.request.method",
            )
        ]
    if not e.url:
        return [issue("request.url is required", expression=f"{where}.request.url")]
    e.resource_type = e.url.split("?")[0].split("/")[0]
    if e.method in ("POST", "PUT"):
        problems = validate_resource(e.resource, expression=f"{where}.resource")
        if problems:
            return problems
        assert e.resource is not None
        if e.resource["resourceType"] != e.resource_type:
            return [
                issue(
                    f"resource type {e.resource['resourceType']} does not match url {e.url}",
                    expression=f"{where}.request.url",
                )
            ]
        interaction = "c" if e.method == "POST" else "u"
        if not scope_allows(actor.scopes, e.resource_type, interaction) and not scope_allows(
            actor.scopes, "Bundle", "c"
        ):
            return [
                issue(
                    f"scope does not allow {e.method} {e.resource_type}",
                    code="forbidden",
                    expression=where,
                )
            ]
    return []


def _apply(
    session: Session, entries: Sequence[_Entry], actor: Actor, import_id: str
) -> list[dict[str, Any]]:
    org = actor.organization_id
    assert org is not None
    responses: dict[int, dict[str, Any]] = {}
    # FHIR processing order: DELETE, POST, PUT, GET.
    for e in entries:
        if e.method == "DELETE":
            responses[e.index] = _delete(session, org, e)

    writes = [e for e in entries if e.method in ("POST", "PUT")]
    refmap: dict[str, str] = {}  # fullUrl / source reference -> "Type/platform-id"
    skip: dict[int, dict[str, Any]] = {}

    patient_outcomes: list[Outcome] = []
    # 1. People first: every Patient goes through the master patient index.
    patients = [e for e in writes if e.resource_type == "Patient"]
    for e in patients:
        assert e.resource is not None
        e.source_key = _entry_key(e)
        if e.if_none_exist:
            hits = _conditional(session, org, "Patient", e.if_none_exist)
            if hits:
                _remember(refmap, e, hits[0][0])
                skip[e.index] = _ok_entry("Patient", hits[0][0], hits[0][1], "200 OK")
                continue
        res = identity_from_patient(org, e.resource)
        resolution = upsert_person(
            session,
            organization_id=org,
            identity_=res,
            patient=e.resource,
            source_key=e.source_key,
            import_id=import_id,
            provenance=False,
        )
        patient_outcomes.append(resolution.patient_outcome)
        _remember(refmap, e, resolution.resident_id)
        row = session.execute(
            select(Resource.version_id).where(
                Resource.resource_type == "Patient", Resource.id == resolution.resident_id
            )
        ).scalar_one()
        skip[e.index] = _ok_entry(
            "Patient",
            resolution.resident_id,
            row,
            "201 Created" if resolution.created else "200 OK",
        )

    # 2. Everything else: map source keys to platform ids, then rewrite references.
    others = [e for e in writes if e.resource_type != "Patient"]
    records: list[SourceRecord] = []
    order: list[_Entry] = []
    for e in others:
        assert e.resource is not None
        e.source_key = _entry_key(e)
        if e.method == "POST" and e.if_none_exist:
            hits = _conditional(session, org, e.resource_type, e.if_none_exist)
            if hits:
                _remember(refmap, e, hits[0][0])
                skip[e.index] = _ok_entry(e.resource_type, hits[0][0], hits[0][1], "200 OK")
                continue
        if e.method == "PUT" and "?" in e.url:
            hits = _conditional(session, org, e.resource_type, e.url.split("?", 1)[1])
            if len(hits) > 1:
                raise PreconditionFailed(f"conditional update {e.url} matches several resources")
            if hits:
                e.resource["id"] = hits[0][0]
        records.append(SourceRecord(e.source_key, e.resource, source_hash=_hash(e.resource)))
        order.append(e)
    ids, existing = plan_ids(session, org, records)
    for i, e in enumerate(order):
        _remember(refmap, e, ids[i])
    resolver = _resolver(session, org, refmap)
    for e in order:
        assert e.resource is not None
        _rewrite(e.resource, resolver, f"Bundle.entry[{e.index}].resource")
        for ifm in [e.if_match] if e.if_match else []:
            _check_if_match(session, e.resource_type, e.resource.get("id") or "", ifm)
    _retarget_merged(session, org, records, ids, existing)
    result = store_records(
        session,
        organization_id=org,
        records=records,
        import_id=import_id,
        ids=ids,
        existing=existing,
        provenance=False,
    )
    # One Provenance per resident for the whole bundle, people included.
    write_provenance(session, org, [*patient_outcomes, *result.outcomes], import_id, utcnow())
    for e, o in zip(order, result.outcomes, strict=True):
        status = {"created": "201 Created", "merged": "200 OK"}.get(o.status, "200 OK")
        responses[e.index] = _ok_entry(o.resource_type, o.id, o.version_id, status, o.last_updated)
    responses.update(skip)

    for e in entries:
        if e.method == "GET":
            responses[e.index] = _get(session, actor, e)
    return [responses[e.index] for e in entries]


def _retarget_merged(
    session: Session,
    org: str,
    records: Sequence[SourceRecord],
    ids: dict[int, str],
    existing: dict[tuple[str, str], tuple[ResourceSource, str, int]],
) -> None:
    """Point records that are the same fact as another source's at that resource now.

    ``store_records`` will file such a record under the existing resource instead of
    creating it; other entries of the bundle that refer to it must then refer to the
    existing resource too, or their references would dangle. Two rounds, because a
    report's fact key depends on its results, which may themselves have been merged.
    """
    for _ in range(2):
        wanted: list[tuple[str, str]] = []
        keyed: dict[int, tuple[str, str]] = {}
        for i, rec in enumerate(records):
            if (rec.resource["resourceType"], rec.source_key) in existing:
                continue
            probe = dict(rec.resource, id=ids[i])
            resident, fk = patient_of(probe), fact_key(probe)
            if resident and fk:
                keyed[i] = (resident, fk)
                wanted.append((resident, fk))
        matches = _fact_matches(session, org, wanted) if wanted else {}
        moved: dict[str, str] = {}
        for i, key in keyed.items():
            hit = matches.get(key)
            if hit and hit[2] != ids[i]:
                rtype = records[i].resource["resourceType"]
                moved[f"{rtype}/{ids[i]}"] = f"{hit[1]}/{hit[2]}"
                ids[i] = hit[2]
        if not moved:
            return
        for rec in records:
            _rewrite(rec.resource, lambda ref, m=moved: m.get(ref, ref), "")  # type: ignore[misc]


def _entry_key(e: _Entry) -> str:
    assert e.resource is not None
    if e.method == "PUT" and "?" not in e.url and "/" in e.url:
        return e.url.split("/", 1)[1]
    if e.method == "PUT" and "?" in e.url:
        return "?" + e.url.split("?", 1)[1]
    key = _key_from_full_url(e.full_url) or e.resource.get("id")
    if key:
        return str(key)
    return "sha256:" + _hash(e.resource)


def _remember(refmap: dict[str, str], e: _Entry, platform_id: str) -> None:
    target = f"{e.resource_type}/{platform_id}"
    if e.full_url:
        refmap[e.full_url] = target
    if e.resource and e.resource.get("id"):
        refmap[f"{e.resource_type}/{e.resource['id']}"] = target
    refmap[f"{e.resource_type}/{e.source_key}"] = target


def _resolver(session: Session, org: str, refmap: dict[str, str]) -> Callable[[str], str | None]:
    """Map a source's reference to a platform reference; ``None`` if it cannot resolve.

    In order: entries of this bundle (fullUrl, ``Type/id``), conditional references
    resolved against this source's own records, this source's earlier records by its own
    id, then platform ids of records this source contributed or of shared reference data
    (Organization, Practitioner, ... — no resident key). A reference to a Patient must
    resolve: it decides whose record this is. Other unresolvable references are kept as
    sent (FHIR allows references to things the server does not hold).
    """
    cache: dict[str, str | None] = {}

    def resolve(ref: str) -> str | None:
        if ref in refmap:
            return refmap[ref]
        if ref.startswith("#"):
            return ref
        if ref in cache:
            return cache[ref]
        out: str | None = None
        if ref.startswith(("urn:uuid:", "urn:oid:")):
            out = None
        elif "?" in ref:
            rtype, query = ref.split("?", 1)
            hits = _conditional(session, org, rtype, query)
            out = f"{rtype}/{hits[0][0]}" if len(hits) == 1 else None
        else:
            parts = ref.rstrip("/").split("/")
            if "_history" in parts:
                parts = parts[: parts.index("_history")]
            if len(parts) >= 2:
                rtype, key = parts[-2], parts[-1]
                src = _existing_sources(session, org, [(rtype, key)])
                if (rtype, key) in src:
                    out = f"{rtype}/{src[(rtype, key)][1]}"
                elif _visible_platform_id(session, org, rtype, key):
                    out = f"{rtype}/{key}"
                else:
                    out = None if rtype == "Patient" else ref
        cache[ref] = out
        return out

    return resolve


def _visible_platform_id(session: Session, org: str, rtype: str, rid: str) -> bool:
    row = session.execute(
        select(Resource.pk).where(
            Resource.resource_type == rtype,
            Resource.id == rid,
            Resource.deleted.is_(False),
            (Resource.resident_id.is_(None)) | _own_clause(org),
        )
    ).first()
    return row is not None


def _rewrite(node: Any, resolve: Callable[[str], str | None], where: str) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "reference" and isinstance(v, str):
                new = resolve(v)
                if new is None:
                    raise UnprocessableResource(
                        f"unresolved reference {v!r}",
                        issues=[
                            issue(
                                f"reference {v!r} does not resolve to a resource in the "
                                "bundle or the store",
                                code="not-found",
                                expression=where,
                            )
                        ],
                    )
                node[k] = new
            else:
                _rewrite(v, resolve, where)
    elif isinstance(node, list):
        for item in node:
            _rewrite(item, resolve, where)


def _check_if_match(session: Session, rtype: str, rid: str, if_match: str) -> None:
    want = if_match.replace('W/"', "").strip('"')
    cur = session.execute(
        select(Resource.version_id).where(Resource.resource_type == rtype, Resource.id == rid)
    ).scalar_one_or_none()
    if cur is None or str(cur) != want:
        raise PreconditionFailed(f"{rtype}/{rid} is at version {cur}, not {want}")


def _ok_entry(
    rtype: str, rid: str, version: int, status: str, last: str | None = None
) -> dict[str, Any]:
    resp: dict[str, Any] = {
        "status": status,
        "location": f"{rtype}/{rid}/_history/{version}",
        "etag": f'W/"{version}"',
    }
    if last:
        resp["lastModified"] = last
    return {"response": resp}


def _delete(session: Session, org: str, e: _Entry) -> dict[str, Any]:
    rtype = e.resource_type
    if "?" in e.url:
        hits = _conditional(session, org, rtype, e.url.split("?", 1)[1])
        if len(hits) > 1:
            raise PreconditionFailed(f"conditional delete {e.url} matches several resources")
        ids = [h[0] for h in hits]
    else:
        key = e.url.split("/", 1)[1] if "/" in e.url else ""
        src = _existing_sources(session, org, [(rtype, key)])
        ids = [src[(rtype, key)][1]] if (rtype, key) in src else []
        if not ids:
            own = _conditional(session, org, rtype, f"_id={key}")
            ids = [h[0] for h in own]
    for rid in ids:
        repo.delete_resource(session, rtype, rid)
    return {"response": {"status": "204 No Content" if ids else "404 Not Found"}}


def _get(session: Session, actor: Actor, e: _Entry) -> dict[str, Any]:
    from phr.store.reader import RecordReader

    reader = RecordReader(session, actor, Purpose.TREATMENT)
    try:
        if "?" in e.url or "/" not in e.url:
            rtype, _, query = e.url.partition("?")
            req = fsearch.parse(rtype, parse_qsl(query, keep_blank_values=True))
            res = reader.search(req, query_text=query)
            return {
                "resource": {
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "total": res.total,
                    "entry": [{"resource": repo.load_json(r.content)} for r in res.matches],
                },
                "response": {"status": "200 OK"},
            }
        rtype, rid = e.url.split("/", 1)
        row = reader.read(rtype, rid)
        return {
            "resource": repo.load_json(row.content),
            "response": {"status": "200 OK", "etag": f'W/"{row.version_id}"'},
        }
    except NotFound as exc:
        return _error_entry(exc)
