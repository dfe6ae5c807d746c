"""Translate FHIR search parameters into SQL over the index tables.

Supported: token (``system|code``, ``|code``, ``code``, ``system|``, ``:not``),
string (starts-with; ``:exact``, ``:contains``), date (``eq ne gt lt ge le sa eb ap``),
reference (``Type/id``, ``id``, absolute URL), quantity (prefixes, ``number|system|code``),
``_id``, ``_lastUpdated``, ``:missing``. Repeated parameters are AND, comma-separated
values OR (http://hl7.org/fhir/R4/search.html).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, not_, or_, select

from phr.errors import InvalidInput, issue
from phr.store.indexer import date_range, normalise_string
from phr.store.models import (
    Resource,
    SearchDate,
    SearchQuantity,
    SearchReference,
    SearchString,
    SearchToken,
)
from phr.store.params import Param, params_for

RESULT_PARAMS = {
    "_count",
    "_offset",
    "_sort",
    "_include",
    "_revinclude",
    "_total",
    "_summary",
    "_elements",
    "_format",
    "_pretty",
}
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


@dataclass
class SearchRequest:
    resource_type: str
    params: list[tuple[str, str]]
    count: int = 50
    offset: int = 0
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (param, descending)
    include: list[str] = field(default_factory=list)
    revinclude: list[str] = field(default_factory=list)
    total: str = "accurate"
    summary_count: bool = False
    ignored: list[str] = field(default_factory=list)


def parse(
    resource_type: str,
    query: Sequence[tuple[str, str]],
    *,
    default_count: int = 50,
    max_count: int = 1000,
    strict: bool = True,
) -> SearchRequest:
    """Parse search parameters. Unknown ones are an error when ``strict`` (the FHIR
    ``Prefer: handling=strict``); otherwise they are ignored and listed in ``ignored``."""
    req = SearchRequest(resource_type, [], count=default_count)
    known = params_for(resource_type)
    unknown: list[str] = []
    for name, value in query:
        base = name.split(":", 1)[0]
        if base == "_count":
            req.count = _int(name, value, 0, max_count)
        elif base == "_offset":
            req.offset = _int(name, value, 0, 10**9)
        elif base == "_sort":
            for part in value.split(","):
                part = part.strip()
                if not part:
                    continue
                desc = part.startswith("-")
                p = part.lstrip("-")
                if p not in ("_id", "_lastUpdated") and p not in known:
                    raise InvalidInput(f"unknown sort parameter {p!r} for {resource_type}")
                req.sort.append((p, desc))
        elif base == "_include":
            req.include.append(value)
        elif base == "_revinclude":
            req.revinclude.append(value)
        elif base == "_total":
            req.total = value
        elif base == "_summary":
            if value == "count":
                req.summary_count = True
        elif base in RESULT_PARAMS:
            continue
        elif base in ("_id", "_lastUpdated") or base in known:
            req.params.append((name, value))
        else:
            unknown.append(base)
    req.ignored = sorted(set(unknown))
    if unknown and strict:
        raise InvalidInput(
            "unknown search parameter(s): " + ", ".join(sorted(set(unknown))),
            issues=[
                issue(f"unknown search parameter {u!r} for {resource_type}", code="not-supported")
                for u in sorted(set(unknown))
            ],
        )
    return req


def _int(name: str, value: str, lo: int, hi: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer") from None
    return max(lo, min(hi, n))


def _single_patient(req: SearchRequest) -> str | None:
    """The resident when the search is restricted to one Patient (``patient=ID``)."""
    for name, raw in req.params:
        if name == "patient" and raw and "," not in raw:
            ttype, tid = _parse_reference(raw, "")
            if ttype in (None, "Patient"):
                return tid
    return None


def where_clauses(req: SearchRequest) -> list[ColumnElement[bool]]:
    known = params_for(req.resource_type)
    conds: list[ColumnElement[bool]] = []
    # Index rows carry the resident key: with one patient, every index lookup is narrowed
    # to that resident's rows instead of the whole city's.
    resident = _single_patient(req)
    for name, raw in req.params:
        base, _, modifier = name.partition(":")
        if base == "_id":
            conds.append(Resource.id.in_([v for v in raw.split(",") if v]))
            continue
        if base == "_lastUpdated":
            conds.append(_date_on_column(raw))
            continue
        param = known[base]
        if modifier == "missing":
            has = _exists_any(param, req.resource_type)
            conds.append(not_(has) if raw == "true" else has)
            continue
        values = _split(raw)
        ors = [_one(param, req.resource_type, modifier, v, resident) for v in values]
        if modifier == "not" and param.kind == "token":
            conds.append(not_(or_(*ors)))
        else:
            conds.append(or_(*ors) if len(ors) > 1 else ors[0])
    return conds


def _split(raw: str) -> list[str]:
    out, cur, esc = [], [], False
    for ch in raw:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [v for v in out if v != ""] or [""]


def _exists_any(param: Param, rtype: str) -> ColumnElement[bool]:
    model: Any = {
        "token": SearchToken,
        "string": SearchString,
        "date": SearchDate,
        "reference": SearchReference,
        "quantity": SearchQuantity,
    }[param.kind]
    return exists().where(
        model.resource_pk == Resource.pk, model.resource_type == rtype, model.param == param.name
    )


def _in_index(
    model: Any, rtype: str, pname: str, *conds: ColumnElement[bool], resident: str | None = None
) -> ColumnElement[bool]:
    extra = [model.resident_id == resident] if resident else []
    sub = select(model.resource_pk).where(
        model.resource_type == rtype, model.param == pname, *conds, *extra
    )
    return Resource.pk.in_(sub)


def _one(
    param: Param, rtype: str, modifier: str, value: str, resident: str | None = None
) -> ColumnElement[bool]:
    if param.kind == "token":
        if modifier not in ("", "not", "exact"):
            raise InvalidInput(f"modifier :{modifier} is not supported on token {param.name}")
        if "|" in value:
            system, code = value.split("|", 1)
            conds: list[ColumnElement[bool]] = []
            if code:
                conds.append(SearchToken.code == code)
            if system:
                conds.append(SearchToken.system == system)
            else:
                conds.append(SearchToken.system.is_(None))
            return _in_index(SearchToken, rtype, param.name, *conds, resident=resident)
        return _in_index(
            SearchToken, rtype, param.name, SearchToken.code == value, resident=resident
        )
    if param.kind == "string":
        v = normalise_string(value)
        if modifier == "exact":
            cond = SearchString.value == v
        elif modifier == "contains":
            cond = SearchString.value.contains(v, autoescape=True)
        elif modifier == "":
            cond = SearchString.value.startswith(v, autoescape=True)
        else:
            raise InvalidInput(f"modifier :{modifier} is not supported on string {param.name}")
        return _in_index(SearchString, rtype, param.name, cond, resident=resident)
    if param.kind == "date":
        prefix, text = _prefix(value)
        rng = date_range(text)
        if rng is None:
            raise InvalidInput(f"{param.name}: {value!r} is not a FHIR date")
        return _in_index(
            SearchDate,
            rtype,
            param.name,
            _date_cond(prefix, rng, SearchDate.low, SearchDate.high),
            resident=resident,
        )
    if param.kind == "reference":
        if modifier and modifier not in param.targets and modifier != "identifier":
            # :Type modifier restricts the target type
            pass
        ttype, tid = _parse_reference(value, modifier)
        if param.name == "patient" and (ttype in (None, "Patient")):
            # Patient compartment: every row carries the resident key and a Patient's id
            # is the resident id (see fhir_gateway.identity), so this is one indexed column.
            return Resource.resident_id == tid
        conds = [SearchReference.target_id == tid]
        if ttype:
            conds.append(SearchReference.target_type == ttype)
        return _in_index(SearchReference, rtype, param.name, *conds, resident=resident)
    if param.kind == "quantity":
        prefix, text = _prefix(value)
        parts = text.split("|")
        try:
            number = float(parts[0])
        except ValueError:
            raise InvalidInput(f"{param.name}: {value!r} is not a quantity") from None
        qconds: list[ColumnElement[bool]] = [_num_cond(prefix, number, parts[0])]
        if len(parts) >= 3:
            if parts[1]:
                qconds.append(SearchQuantity.system == parts[1])
            if parts[2]:
                qconds.append(SearchQuantity.code == parts[2])
        return _in_index(SearchQuantity, rtype, param.name, *qconds, resident=resident)
    raise InvalidInput(f"unsupported parameter kind for {param.name}")  # pragma: no cover


def _parse_reference(value: str, modifier: str) -> tuple[str | None, str]:
    v = value
    if v.startswith(("http://", "https://")):
        parts = v.rstrip("/").split("/")
        return parts[-2], parts[-1]
    if "/" in v:
        t, i = v.split("/", 1)
        return t, i
    return (modifier or None), v


def _prefix(value: str) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in PREFIXES and not value[:2].isdigit():
        return value[:2], value[2:]
    return "eq", value


def _date_cond(
    prefix: str, rng: tuple[datetime, datetime], low: Any, high: Any
) -> ColumnElement[bool]:
    pl, ph = rng
    if prefix == "eq":
        return and_(low >= pl, high <= ph)
    if prefix == "ne":
        return or_(low < pl, high > ph)
    if prefix == "gt":
        return high > ph
    if prefix == "lt":
        return low < pl
    if prefix == "ge":
        return high > pl
    if prefix == "le":
        return low < ph
    if prefix == "sa":
        return low >= ph
    if prefix == "eb":
        return high <= pl
    if prefix == "ap":
        width = (ph - pl) or timedelta(days=1)
        slack = max(width, timedelta(days=1)) * 0.1 + width
        return and_(low < ph + slack, high > pl - slack)
    return false()


def _date_on_column(raw: str) -> ColumnElement[bool]:
    prefix, text = _prefix(raw)
    rng = date_range(text)
    if rng is None:
        raise InvalidInput(f"_lastUpdated: {raw!r} is not a FHIR date")
    col = Resource.last_updated
    pl, ph = rng
    return {
        "eq": and_(col >= pl, col < ph),
        "ne": or_(col < pl, col >= ph),
        "gt": col >= ph,
        "lt": col < pl,
        "ge": col >= pl,
        "le": col < ph,
        "sa": col >= ph,
        "eb": col < pl,
        "ap": and_(col >= pl - (ph - pl), col < ph + (ph - pl)),
    }[prefix]


def _num_cond(prefix: str, number: float, text: str) -> ColumnElement[bool]:
    col = SearchQuantity.value
    # Implicit precision: "5.4" means [5.35, 5.45).
    decimals = len(text.split(".")[1]) if "." in text else 0
    half = 0.5 * 10 ** (-decimals)
    return {
        "eq": and_(col >= number - half, col < number + half),
        "ne": or_(col < number - half, col >= number + half),
        "gt": col > number,
        "lt": col < number,
        "ge": col >= number,
        "le": col <= number,
        "sa": col > number,
        "eb": col < number,
        "ap": and_(col >= number * 0.9, col <= number * 1.1),
    }[prefix]


def sort_columns(req: SearchRequest) -> list[Any]:
    known = params_for(req.resource_type)
    cols: list[Any] = []
    for name, desc in req.sort:
        if name == "_id":
            col: Any = Resource.id
        elif name == "_lastUpdated":
            col = Resource.last_updated
        else:
            # A repeating element sorts by "the item in the set of multiple parameters that
            # comes earliest in the specified sort order" (R4 search.html#_sort): the lowest
            # value ascending, the highest descending.
            p = known[name]
            pick: Any = func.max if desc else func.min
            model: Any
            if p.kind == "date":
                model, agg = SearchDate, pick(SearchDate.high if desc else SearchDate.low)
            elif p.kind == "string":
                model, agg = SearchString, pick(SearchString.value)
            elif p.kind == "quantity":
                model, agg = SearchQuantity, pick(SearchQuantity.value)
            elif p.kind == "token":
                model, agg = SearchToken, pick(SearchToken.code)
            else:
                model, agg = SearchReference, pick(SearchReference.target_id)
            col = (
                select(agg)
                .where(model.resource_pk == Resource.pk, model.param == name)
                .scalar_subquery()
            )
        cols.append(col.desc().nulls_last() if desc else col.asc().nulls_last())
    cols.append(Resource.pk.desc() if any(d for _, d in req.sort[:1]) else Resource.pk.asc())
    return cols


def statement(req: SearchRequest, access: ColumnElement[bool]) -> Select[Any]:
    """``SELECT pk`` of the matching, visible, live resources (no order, no limit)."""
    return select(Resource.pk).where(
        Resource.resource_type == req.resource_type,
        Resource.deleted.is_(False),
        access,
        *where_clauses(req),
    )
