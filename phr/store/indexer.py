"""Extract search index values from a FHIR resource (dict) on write."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from phr.store.params import Param, params_for

MAX_LEN = 255


@dataclass
class IndexRows:
    token: list[dict[str, Any]]
    string: list[dict[str, Any]]
    date: list[dict[str, Any]]
    reference: list[dict[str, Any]]
    quantity: list[dict[str, Any]]


def walk(node: Any, path: str) -> Iterator[Any]:
    """Values at a dotted path, arrays flattened."""
    parts = path.split(".")

    def rec(value: Any, i: int) -> Iterator[Any]:
        if value is None:
            return
        if isinstance(value, list):
            for v in value:
                yield from rec(v, i)
            return
        if i == len(parts):
            yield value
            return
        if isinstance(value, dict):
            yield from rec(value.get(parts[i]), i + 1)

    yield from rec(node, 0)


def values(resource: dict[str, Any], param: Param) -> Iterator[Any]:
    for path in param.paths:
        yield from walk(resource, path)


def normalise_string(s: str) -> str:
    return s.strip().lower()[:MAX_LEN]


def _tokens(value: Any) -> Iterator[tuple[str | None, str]]:
    if isinstance(value, bool):
        yield None, "true" if value else "false"
    elif isinstance(value, str):
        yield None, value
    elif isinstance(value, dict):
        if "coding" in value or ("text" in value and "code" not in value):
            for c in value.get("coding", []) or []:
                if c.get("code"):
                    yield c.get("system"), c["code"]
        elif "code" in value:  # Coding
            yield value.get("system"), value["code"]
        elif "value" in value and isinstance(value["value"], str):  # Identifier, ContactPoint
            yield value.get("system"), value["value"]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        # HumanName and Address: every textual part is searchable.
        for key in (
            "text",
            "family",
            "given",
            "prefix",
            "suffix",
            "line",
            "city",
            "district",
            "state",
            "postalCode",
            "country",
        ):
            v = value.get(key)
            if isinstance(v, str):
                yield v
            elif isinstance(v, list):
                yield from (x for x in v if isinstance(x, str))
        # Japanese names often carry the reading (kana) as an extension-free second name.


_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def date_range(text: str) -> tuple[datetime, datetime] | None:
    """[low, high) in naive UTC for a FHIR date, dateTime or instant at its precision;
    None when it is not one (the pattern alone lets month 13 or 25:61 through)."""
    m = _DATE_RE.match(text.strip())
    if not m:
        return None
    try:
        return _range(m)
    except (ValueError, OverflowError):
        return None


def _range(m: re.Match[str]) -> tuple[datetime, datetime]:
    y = int(m["y"])
    if m["m"] is None:
        return datetime(y, 1, 1), datetime(y + 1, 1, 1)
    mo = int(m["m"])
    if m["d"] is None:
        low = datetime(y, mo, 1)
        high = datetime(y + (mo == 12), mo % 12 + 1, 1)
        return low, high
    d = int(m["d"])
    if m["H"] is None:
        low = datetime(y, mo, d)
        return low, low + timedelta(days=1)
    sec = int(m["S"] or 0)
    micro = round(float(m["f"]) * 1_000_000) if m["f"] else 0
    low = datetime(y, mo, d, int(m["H"]), int(m["M"]), sec, min(micro, 999_999))
    tz = m["tz"]
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
        low = low - sign * offset
    if m["f"]:
        step = timedelta(microseconds=1)
    elif m["S"] is not None:
        step = timedelta(seconds=1)
    else:
        step = timedelta(minutes=1)
    return low, low + step


def _dates(value: Any) -> Iterator[tuple[datetime, datetime]]:
    if isinstance(value, str):
        r = date_range(value)
        if r:
            yield r
    elif isinstance(value, dict) and ("start" in value or "end" in value):  # Period
        start = date_range(value["start"]) if value.get("start") else None
        end = date_range(value["end"]) if value.get("end") else None
        low = start[0] if start else datetime(1, 1, 1)
        high = end[1] if end else datetime(9999, 12, 31)
        yield low, high


def _references(value: Any) -> Iterator[tuple[str | None, str]]:
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and ref:
            parts = ref.split("/")
            if "/_history/" in ref:
                i = parts.index("_history")
                yield parts[i - 2], parts[i - 1]
            elif (
                len(parts) >= 2 and not ref.startswith(("urn:", "http://", "https://"))
            ) or ref.startswith(("http://", "https://")):
                yield parts[-2], parts[-1]
            else:
                yield None, ref[:MAX_LEN]
        # identifier-only logical reference
        ident = value.get("identifier")
        if isinstance(ident, dict) and ident.get("value") and not ref:
            yield None, f"{ident.get('system', '')}|{ident['value']}"[:MAX_LEN]


def _quantities(value: Any) -> Iterator[tuple[float, str | None, str | None]]:
    if isinstance(value, dict) and isinstance(value.get("value"), int | float):
        yield float(value["value"]), value.get("system"), value.get("code") or value.get("unit")


def extract(resource: dict[str, Any], resource_pk: int, resident_id: str | None) -> IndexRows:
    rtype = resource["resourceType"]
    rows = IndexRows([], [], [], [], [])
    base = {"resource_pk": resource_pk, "resident_id": resident_id, "resource_type": rtype}
    for param in params_for(rtype).values():
        seen: set[Any] = set()
        for v in values(resource, param):
            if param.kind == "token":
                for system, code in _tokens(v):
                    key = (system, code)
                    if key not in seen and code:
                        seen.add(key)
                        rows.token.append(
                            {
                                **base,
                                "param": param.name,
                                "system": (system or None) and system[:MAX_LEN],
                                "code": str(code)[:MAX_LEN],
                            }
                        )
            elif param.kind == "string":
                for s in _strings(v):
                    n = normalise_string(s)
                    if n and n not in seen:
                        seen.add(n)
                        rows.string.append({**base, "param": param.name, "value": n})
            elif param.kind == "date":
                for low, high in _dates(v):
                    if (low, high) not in seen:
                        seen.add((low, high))
                        rows.date.append({**base, "param": param.name, "low": low, "high": high})
            elif param.kind == "reference":
                for ttype, tid in _references(v):
                    if param.targets and ttype and ttype not in param.targets:
                        continue
                    if (ttype, tid) not in seen:
                        seen.add((ttype, tid))
                        rows.reference.append(
                            {**base, "param": param.name, "target_type": ttype, "target_id": tid}
                        )
            elif param.kind == "quantity":
                for num, qsystem, qcode in _quantities(v):
                    rows.quantity.append(
                        {
                            **base,
                            "param": param.name,
                            "value": num,
                            "system": qsystem,
                            "code": (qcode or None) and qcode[:64],
                        }
                    )
    return rows


def patient_of(resource: dict[str, Any]) -> str | None:
    """The Patient id whose compartment the resource belongs to, if any."""
    if resource.get("resourceType") == "Patient":
        return resource.get("id")
    for key in ("subject", "patient", "beneficiary", "for"):
        ref = resource.get(key)
        if isinstance(ref, dict):
            r = ref.get("reference")
            if isinstance(r, str) and r.startswith("Patient/"):
                return r.split("/")[1]
    return None


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def iso_instant(dt: datetime) -> str:
    return dt.replace(tzinfo=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def flatten(items: Iterable[IndexRows]) -> IndexRows:
    out = IndexRows([], [], [], [], [])
    for r in items:
        out.token += r.token
        out.string += r.string
        out.date += r.date
        out.reference += r.reference
        out.quantity += r.quantity
    return out
