"""Correctness peer: the same FHIR searches against this server and Medplum's in-memory
FHIR router (``bench/peer``), loaded with the same Synthea bundles; result sets compared.

Both servers receive every bundle as a transaction (``POST /fhir``). Each server gives its
own ids (ours maps a source's ids to platform ids and keeps one golden Patient per
resident, docs/adr/0002), so a resource is identified on both sides by a stable key: the
Synthea ``fullUrl`` of the entry that created it, read from the transaction response
(``entry[i].response.location`` answers ``entry[i]`` of the request). Searches that name a
resource (``patient=``, ``_id=``) are written with keys and translated into each server's
ids; Organization/Practitioner entries repeated in several bundles are one resource here
and one per bundle in Medplum, so such a key stands for all its Medplum ids (OR).

For every query the whole result is fetched (every page: our ``next`` links, Medplum's
``_offset``), mapped to keys and compared as sets; with ``_sort``, the sequence of sort
values must agree as well. A query either must match exactly (``equal``) or carries a
documented difference that is checked too (e.g. ``ours-subset``: Medplum's in-memory
matcher does substring matching where FHIR says starts-with); any other difference is a
mismatch and the exit status is 1.

    python bench/peer_compare.py --database-url postgresql+psycopg://phr:phr@127.0.0.1/phr_peer
    python bench/peer_compare.py --bundles 5 --repeats 3        # a quick look

Needs ``npm ci`` in ``bench/peer`` (Node 20.19+). The database's public schema is DROPPED.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import select
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

try:  # ``python bench/peer_compare.py`` or imported by the tests
    import common
except ImportError:  # pragma: no cover - imported as bench.peer_compare
    from bench import common

PEER_DIR = Path(__file__).resolve().parent / "peer"
ORG = "peer-hospital"
PAGE = 1000  # page size when a query does not set _count (our server's maximum)

# ---- the two servers ---------------------------------------------------------------------------


@dataclass
class Target:
    """One FHIR server as the comparison sees it."""

    name: str
    client: httpx.Client  # base_url ends at the server root; FHIR is under /fhir
    headers: dict[str, str] = field(default_factory=dict)
    pages_by_offset: bool = False  # Medplum: no next links, page with _offset
    ids: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (type, key) -> ids
    keys: dict[tuple[str, str], str] = field(default_factory=dict)  # (type, id) -> key
    marks: dict[str, str] = field(default_factory=dict)  # e.g. "mid": a _lastUpdated instant

    def post_bundle(self, raw: bytes) -> dict[str, Any]:
        r = self.client.post(
            "/fhir",
            content=raw,
            headers={**self.headers, "Content-Type": "application/fhir+json"},
        )
        if r.status_code >= 300:
            raise RuntimeError(f"{self.name}: bundle refused ({r.status_code}): {r.text[:500]}")
        return dict(r.json())

    def get(self, path: str, params: Sequence[tuple[str, str]]) -> tuple[dict[str, Any], float]:
        t0 = time.perf_counter()
        r = self.client.get(path, params=list(params), headers=self.headers)
        ms = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            raise QueryError(f"{self.name}: {r.status_code} {r.text[:300]}")
        return dict(r.json()), ms


class QueryError(Exception):
    pass


def read_bundles(files: Sequence[Path]) -> list[bytes]:
    """Bundles as compact JSON bytes, in the given order."""
    return [json.dumps(json.loads(p.read_bytes()), separators=(",", ":")).encode() for p in files]


def load(target: Target, bundles: Sequence[bytes], mark_after: int | None = None) -> int:
    """Send every bundle as a transaction and remember which id each Synthea entry got.

    With ``mark_after``, the instant between bundle ``mark_after - 1`` and ``mark_after``
    is kept as ``marks["mid"]`` (whole seconds, a second clear of both sides) for the
    ``_lastUpdated`` queries."""
    n = 0
    for i, raw in enumerate(bundles):
        if mark_after is not None and i == mark_after:
            target.marks["mid"] = _mark_instant()
        sent = json.loads(raw)
        answer = target.post_bundle(raw)
        for req_entry, resp_entry in zip(sent["entry"], answer.get("entry", []), strict=True):
            loc = resp_entry["response"]["location"]
            rtype, rid = loc.split("/")[:2]
            key = _key(req_entry)
            target.keys[(rtype, rid)] = key
            ids = target.ids.setdefault((rtype, key), [])
            if rid not in ids:
                ids.append(rid)
            n += 1
    return n


def _key(entry: dict[str, Any]) -> str:
    full = entry.get("fullUrl") or ""
    return full.rsplit(":", 1)[-1].rsplit("/", 1)[-1] or str(entry["resource"].get("id"))


def _mark_instant() -> str:
    time.sleep(1.1)
    now = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.1)
    return now.isoformat().replace("+00:00", "Z")


# ---- the battery -------------------------------------------------------------------------------

# Placeholders in query values: {ref:Type:key} -> Type/id (OR of all ids of the key),
# {id:Type:key} -> id(s), {mark:mid} -> an instant recorded while loading.
_PLACEHOLDER = re.compile(r"\{(ref|id|mark):([^}]+)\}")

EXPECTATIONS = {
    "equal": "identical result sets",
    "ours-subset": "ours is a subset of the peer's (the peer over-matches, see note)",
    "peer-subset": "the peer's is a subset of ours (a documented latitude, see note)",
    "peer-empty": "the peer cannot evaluate this parameter type and answers nothing",
}


@dataclass
class Query:
    label: str
    rtype: str
    params: list[tuple[str, str]]
    kind: str  # parameter type exercised, for the table
    expect: str = "equal"
    note: str = ""
    sort: str | None = None  # element whose values must come out in the same order
    sort_note: str = ""  # why the peer's order may differ (a repeating element)
    # When the peer cannot answer: which loaded resources the spec says match.
    oracle: Callable[[dict[str, Any]], bool] | None = None

    @property
    def descending(self) -> bool:
        return any(k == "_sort" and v.startswith("-") for k, v in self.params)

    def text(self) -> str:
        return f"{self.rtype}?" + "&".join(f"{k}={v}" for k, v in self.params)


def resolve(target: Target, value: str) -> str:
    def sub(m: re.Match[str]) -> str:
        what, arg = m.group(1), m.group(2)
        if what == "mark":
            return target.marks[arg]
        rtype, key = arg.split(":", 1)
        ids = target.ids.get((rtype, key), [])
        if not ids:
            raise QueryError(f"{target.name}: no {rtype} loaded for key {key}")
        return ",".join(f"{rtype}/{i}" if what == "ref" else i for i in ids)

    return _PLACEHOLDER.sub(sub, value)


@dataclass
class Facts:
    """Values picked from the bundles so that every query has something to find."""

    patients: list[dict[str, Any]]  # resources, with "_key"
    obs_codes: list[tuple[str, str]]  # (system, code), most frequent first
    quantity: tuple[str, float, str, str]  # (code, a value, unit system, unit code)
    condition_code: str
    immunization_code: str
    med_code: str
    encounter_class: str
    obs_date: str  # an Observation effectiveDateTime (day)
    resources: list[tuple[str, str, dict[str, Any]]]  # (type, key, resource) as sent

    @classmethod
    def of(cls, bundles: Sequence[bytes]) -> Facts:
        patients: list[dict[str, Any]] = []
        resources: list[tuple[str, str, dict[str, Any]]] = []
        counts: dict[str, Counter[Any]] = {
            k: Counter() for k in ("obs", "qty", "cond", "imm", "med", "cls", "day")
        }
        for raw in bundles:
            for e in json.loads(raw)["entry"]:
                r = e["resource"]
                t = r["resourceType"]
                resources.append((t, _key(e), r))
                if t == "Patient":
                    patients.append({**r, "_key": _key(e)})
                elif t == "Observation":
                    c = r["code"]["coding"][0]
                    counts["obs"][(c["system"], c["code"])] += 1
                    q = r.get("valueQuantity")
                    if q and isinstance(q.get("value"), int | float):
                        counts["qty"][(c["code"], q.get("system"), q.get("code"))] += 1
                    if "effectiveDateTime" in r:
                        counts["day"][r["effectiveDateTime"][:10]] += 1
                elif t == "Condition":
                    counts["cond"][r["code"]["coding"][0]["code"]] += 1
                elif t == "Immunization":
                    counts["imm"][r["vaccineCode"]["coding"][0]["code"]] += 1
                elif t == "MedicationRequest" and "medicationCodeableConcept" in r:
                    counts["med"][r["medicationCodeableConcept"]["coding"][0]["code"]] += 1
                elif t == "Encounter":
                    counts["cls"][r["class"]["code"]] += 1
        qtys = [k for k, _ in counts["qty"].most_common()]
        # Body height when there is one (values spread over a wide range), else the most common.
        qcode, qsys, qunit = next((k for k in qtys if k[0] == "8302-2"), qtys[0])
        qvalue = _median_value(bundles, qcode)
        return cls(
            patients=patients,
            obs_codes=[k for k, _ in counts["obs"].most_common()],
            quantity=(qcode, qvalue, qsys or "", qunit or ""),
            condition_code=counts["cond"].most_common(1)[0][0],
            immunization_code=counts["imm"].most_common(1)[0][0],
            med_code=counts["med"].most_common(1)[0][0],
            encounter_class=counts["cls"].most_common(1)[0][0],
            obs_date=counts["day"].most_common(1)[0][0],
            resources=resources,
        )


def _median_value(bundles: Sequence[bytes], code: str) -> float:
    vals = [
        float(e["resource"]["valueQuantity"]["value"])
        for raw in bundles
        for e in json.loads(raw)["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["code"]["coding"][0]["code"] == code
        and "valueQuantity" in e["resource"]
    ]
    return round(statistics.median(vals), 1)


STRING_NOTE = (
    "Medplum's in-memory matcher (core/search/match.ts matchesStringValue) tests "
    "substring containment for every string search, ignoring :exact; FHIR R4 search "
    "§3.1.1.4.7 (string): the default is 'equals or starts with', :exact is exact "
    "equality - ours follows the spec"
)
TOKEN_CASE_NOTE = (
    "Medplum's in-memory matcher (match.ts matchesTokenValue) lower-cases codes; FHIR R4 "
    "search §3.1.1.4.10 (token): case sensitivity follows the code system, and "
    "AdministrativeGender (http://hl7.org/fhir/administrative-gender) is case-sensitive - "
    "'FEMALE' is not a code of it, ours matches nothing"
)
AP_NOTE = (
    "FHIR R4 search §3.1.1.4.5 leaves 'ap' to the server ('the recommended value for the "
    "approximation is 10% of the stated value (or for a date, 10% of the gap between now "
    "and the date)'); ours widens the range on each side by its width plus 10% of it (at "
    "least a tenth of a day), Medplum's matcher treats ap as plain overlap (match.ts "
    "matchesDateValue)"
)
SORT_NOTE = (
    "a patient with two names (official and maiden): Medplum's MemoryRepository "
    "sortComparator (fhir-router repo.ts) compares JSON.stringify of all the values in "
    "document order, i.e. sorts by the first family name; FHIR R4 search.html#_sort: a "
    "repeating element sorts by 'the item ... that comes earliest in the specified sort "
    "order' (lowest ascending, highest descending). Ours follows the spec, and its order "
    "is checked against that rule on the returned resources"
)
QUANTITY_NOTE = (
    "Medplum's in-memory matcher (core/search/match.ts matchesSearchFilter) has no case "
    "for quantity parameters and rejects every resource; ours is checked instead against "
    "Observation.valueQuantity read from the bundles with the R4 rules (§3.1.1.4.5 "
    "prefixes; eq on the implicit precision of the value: 5.4 means [5.35, 5.45))"
)


def quantity_match(
    prefix: str, text: str, system: str = "", code: str = "", obs_code: str = ""
) -> Callable[[dict[str, Any]], bool]:
    """FHIR R4 quantity search on Observation.valueQuantity (the oracle of the quantity
    queries, which the peer cannot answer)."""
    number = float(text)
    decimals = len(text.split(".")[1]) if "." in text else 0
    half = 0.5 * 10 ** (-decimals)
    tests: dict[str, Callable[[float], bool]] = {
        "eq": lambda v: number - half <= v < number + half,
        "gt": lambda v: v > number,
        "lt": lambda v: v < number,
        "ge": lambda v: v >= number,
        "le": lambda v: v <= number,
    }

    def match(r: dict[str, Any]) -> bool:
        q = r.get("valueQuantity") or {}
        if not isinstance(q.get("value"), int | float):
            return False
        if obs_code and obs_code not in {c.get("code") for c in r["code"].get("coding", [])}:
            return False
        if system and q.get("system") != system:
            return False
        if code and (q.get("code") or q.get("unit")) != code:
            return False
        return tests[prefix](float(q["value"]))

    return match


def battery(f: Facts) -> list[Query]:
    """The searches, covering every parameter type our server supports."""
    p0, p1 = f.patients[0], f.patients[min(1, len(f.patients) - 1)]
    fam0 = p0["name"][0]["family"]
    given0 = p0["name"][0]["given"][0]
    loinc, loinc2 = f.obs_codes[0], f.obs_codes[1]
    birth = p0["birthDate"]
    year = birth[:4]
    qcode, qval, qsys, qunit = f.quantity
    synthea_id = next(
        i["value"] for i in p0["identifier"] if i.get("system", "").endswith("synthea")
    )
    ssn = next(i for i in p0["identifier"] if i.get("system", "").endswith("us-ssn"))
    ref0 = f"{{ref:Patient:{p0['_key']}}}"
    ref1 = f"{{ref:Patient:{p1['_key']}}}"
    q = Query
    return [
        # token
        q("gender", "Patient", [("gender", "female")], "token"),
        q("gender OR", "Patient", [("gender", "female,male")], "token"),
        q(
            "identifier system|value",
            "Patient",
            [("identifier", f"{ssn['system']}|{ssn['value']}")],
            "token",
        ),
        q("identifier value only", "Patient", [("identifier", synthea_id)], "token"),
        q("code", "Observation", [("code", loinc[1])], "token"),
        q("code system|code", "Observation", [("code", f"{loinc[0]}|{loinc[1]}")], "token"),
        q("code OR codes", "Observation", [("code", f"{loinc[1]},{loinc2[1]}")], "token"),
        q("code system|", "Condition", [("code", "http://snomed.info/sct|")], "token"),
        q("code :not", "Observation", [("patient", ref0), ("code:not", loinc[1])], "token"),
        q("category", "Observation", [("category", "vital-signs")], "token"),
        q(
            "token in other case",
            "Patient",
            [("gender", "FEMALE")],
            "token",
            "ours-subset",
            TOKEN_CASE_NOTE,
        ),
        q("status", "Observation", [("status", "final")], "token"),
        q("clinical-status", "Condition", [("clinical-status", "active")], "token"),
        q("Condition code", "Condition", [("code", f.condition_code)], "token"),
        q("vaccine-code", "Immunization", [("vaccine-code", f.immunization_code)], "token"),
        q(
            "MedicationRequest code+status",
            "MedicationRequest",
            [("code", f.med_code), ("status", "stopped")],
            "token",
        ),
        q("Encounter class", "Encounter", [("class", f.encounter_class)], "token"),
        # string
        q("family prefix", "Patient", [("family", fam0[:3])], "string"),
        q("family whole", "Patient", [("family", fam0)], "string"),
        q("given prefix, other case", "Patient", [("given", given0[:2].lower())], "string"),
        q("name", "Patient", [("name", fam0)], "string"),
        q("family :exact", "Patient", [("family:exact", fam0)], "string"),
        q("family :contains", "Patient", [("family:contains", fam0[1:4])], "string"),
        q(
            "name inside a word",
            "Patient",
            [("name", fam0[1:4])],
            "string",
            "ours-subset",
            STRING_NOTE,
        ),
        q("address-city", "Patient", [("address-city", p0["address"][0]["city"])], "string"),
        # date
        q("birthdate eq day", "Patient", [("birthdate", birth)], "date"),
        q("birthdate eq year", "Patient", [("birthdate", year)], "date"),
        q("birthdate lt", "Patient", [("birthdate", "lt1960-01-01")], "date"),
        q("birthdate ge", "Patient", [("birthdate", "ge1990")], "date"),
        q(
            "birthdate range",
            "Patient",
            [("birthdate", "ge1950-01-01"), ("birthdate", "lt1980-01-01")],
            "date",
        ),
        q("birthdate gt month", "Patient", [("birthdate", "gt2000-06")], "date"),
        q("birthdate le", "Patient", [("birthdate", f"le{birth}")], "date"),
        q("Observation date eq day", "Observation", [("date", f.obs_date)], "date"),
        q(
            "Observation date ge+lt",
            "Observation",
            [("date", "ge2015-01-01"), ("date", "lt2016-01-01"), ("code", loinc[1])],
            "date",
        ),
        q(
            "Observation date sa",
            "Observation",
            [("patient", ref0), ("date", "sa2015-01-01")],
            "date",
        ),
        q(
            "Observation date eb",
            "Observation",
            [("patient", ref0), ("date", "eb2012-01-01")],
            "date",
        ),
        q(
            "Observation date ne year",
            "Observation",
            [("patient", ref0), ("date", "ne2016")],
            "date",
        ),
        q("Condition onset-date le", "Condition", [("onset-date", "le2000-01-01")], "date"),
        q("Immunization date gt", "Immunization", [("date", "gt2018-01-01T00:00:00Z")], "date"),
        q("Encounter date eq month", "Encounter", [("date", f.obs_date[:7])], "date"),
        q("Encounter date eq day", "Encounter", [("date", f.obs_date)], "date"),
        q(
            "Encounter date ge day",
            "Encounter",
            [("patient", ref0), ("date", f"ge{f.obs_date}")],
            "date",
        ),
        q(
            "birthdate ap year",
            "Patient",
            [("birthdate", f"ap{year}")],
            "date",
            "peer-subset",
            AP_NOTE,
        ),
        # reference
        q("patient", "Observation", [("patient", ref0)], "reference"),
        q("subject", "Condition", [("subject", ref0)], "reference"),
        q("patient OR two", "Immunization", [("patient", f"{ref0},{ref1}")], "reference"),
        q("patient + code", "Observation", [("patient", ref0), ("code", loinc[1])], "reference"),
        q("Encounter patient", "Encounter", [("patient", ref1)], "reference"),
        # quantity
        q(
            "value-quantity eq",
            "Observation",
            [("value-quantity", f"{qval}")],
            "quantity",
            "peer-empty",
            QUANTITY_NOTE,
            oracle=quantity_match("eq", f"{qval}"),
        ),
        q(
            "value-quantity gt|sys|code",
            "Observation",
            [("value-quantity", f"gt{qval}|{qsys}|{qunit}")],
            "quantity",
            "peer-empty",
            QUANTITY_NOTE,
            oracle=quantity_match("gt", f"{qval}", qsys, qunit),
        ),
        q(
            "value-quantity le + code",
            "Observation",
            [("code", qcode), ("value-quantity", f"le{qval}")],
            "quantity",
            "peer-empty",
            QUANTITY_NOTE,
            oracle=quantity_match("le", f"{qval}", obs_code=qcode),
        ),
        q(
            "value-quantity ge kg",
            "Observation",
            [("value-quantity", "ge80||kg")],
            "quantity",
            "peer-empty",
            QUANTITY_NOTE,
            oracle=quantity_match("ge", "80", code="kg"),
        ),
        # _id, _lastUpdated
        q("_id", "Patient", [("_id", f"{{id:Patient:{p0['_key']}}}")], "_id"),
        q(
            "_id OR",
            "Patient",
            [("_id", f"{{id:Patient:{p0['_key']}}},{{id:Patient:{p1['_key']}}}")],
            "_id",
        ),
        q("_lastUpdated ge", "Patient", [("_lastUpdated", "ge{mark:mid}")], "_lastUpdated"),
        q("_lastUpdated lt", "Condition", [("_lastUpdated", "lt{mark:mid}")], "_lastUpdated"),
        # _sort, _count and paging
        q("_sort birthdate", "Patient", [("_sort", "birthdate")], "_sort", sort="birthDate"),
        q("_sort -birthdate", "Patient", [("_sort", "-birthdate")], "_sort", sort="birthDate"),
        q(
            "_sort family, _count=2 pages",
            "Patient",
            [("_sort", "family"), ("_count", "2")],
            "_sort",
            sort="family",
            sort_note=SORT_NOTE,
        ),
        q(
            "_sort -family, _count=3 pages",
            "Patient",
            [("_sort", "-family"), ("_count", "3")],
            "_sort",
            sort="family",
            sort_note=SORT_NOTE,
        ),
        q("_count=25 pages", "Observation", [("code", loinc[1]), ("_count", "25")], "_count"),
        q(
            "_count=100 pages, date sort",
            "Observation",
            [("patient", ref0), ("_sort", "date"), ("_count", "100")],
            "_count",
            sort="effectiveDateTime",
        ),
        # _include, _revinclude
        q(
            "_include patient",
            "Observation",
            [("code", loinc2[1]), ("_include", "Observation:patient")],
            "_include",
        ),
        q(
            "_include subject",
            "Condition",
            [("code", f.condition_code), ("_include", "Condition:subject")],
            "_include",
        ),
        q(
            "_revinclude",
            "Patient",
            [("_id", f"{{id:Patient:{p0['_key']}}}"), ("_revinclude", "Immunization:patient")],
            "_revinclude",
        ),
        # combinations
        q(
            "gender + birthdate",
            "Patient",
            [("gender", "male"), ("birthdate", "lt1970")],
            "combination",
        ),
        q(
            "code + category + date",
            "Observation",
            [
                ("category", "laboratory"),
                ("code", f.obs_codes[min(6, len(f.obs_codes) - 1)][1]),
                ("date", "ge2012"),
            ],
            "combination",
        ),
        q(
            "status + patient + date",
            "Immunization",
            [("status", "completed"), ("patient", ref1), ("date", "ge2014")],
            "combination",
        ),
    ]


# ---- running a query ---------------------------------------------------------------------------


@dataclass
class Answer:
    keys: set[tuple[str, str, str]]  # (mode, type, key)
    order: list[Any]  # sort values of the matches, in page order
    pages: int
    ms: float


def fetch(target: Target, query: Query) -> Answer:
    """Every page of the query's result on one server, mapped to keys."""
    params = [(k, resolve(target, v)) for k, v in query.params]
    given = dict(params).get("_count")
    count = int(given) if given else PAGE
    if not given:
        params.append(("_count", str(count)))
    keys: set[tuple[str, str, str]] = set()
    order: list[Any] = []
    pages = 0
    total_ms = 0.0
    path: str | None = f"/fhir/{query.rtype}"
    offset = 0
    page_params: list[tuple[str, str]] = params
    while path is not None:
        if target.pages_by_offset:
            page_params = [*params, ("_offset", str(offset))]
        body, ms = target.get(path, page_params)
        total_ms += ms
        pages += 1
        matches = 0
        for e in body.get("entry", []) or []:
            r = e["resource"]
            if r["resourceType"] == "OperationOutcome":
                raise QueryError(f"{target.name}: {json.dumps(r)[:300]}")
            mode = (e.get("search") or {}).get("mode", "match")
            key = target.keys.get((r["resourceType"], r["id"]), f"?{r['id']}")
            keys.add((mode, r["resourceType"], key))
            if mode == "match":
                matches += 1
                if query.sort:
                    order.append(_sort_value(r, query.sort, query.descending))
        if target.pages_by_offset:
            offset += count
            path = path if matches == count and count > 0 else None
        else:
            nxt = next((lk["url"] for lk in body.get("link", []) if lk["relation"] == "next"), None)
            path, page_params = _split_url(nxt) if nxt else (None, [])
        if pages > 10_000:
            raise QueryError(f"{target.name}: paging does not end")
    return Answer(keys, order, pages, total_ms)


def _split_url(url: str) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(url)
    return parts.path, parse_qsl(parts.query, keep_blank_values=True)


def _sort_value(resource: dict[str, Any], element: str, descending: bool) -> Any:
    """The value a resource sorts by under R4 search.html#_sort: of a repeating element,
    the one that comes earliest in the sort order."""
    if element == "family":
        families = [(n.get("family") or "").lower() for n in resource.get("name") or [{}]]
        return max(families) if descending else min(families)
    return resource.get(element)


def _in_order(values: Sequence[Any], descending: bool) -> bool:
    return all((a >= b) if descending else (a <= b) for a, b in itertools.pairwise(values))


@dataclass
class Outcome:
    query: Query
    ours: Answer
    peer: Answer
    ours_ms: list[float]
    peer_ms: list[float]
    status: str  # "match", "explained", "MISMATCH", "error"
    detail: str = ""

    def row(self) -> dict[str, Any]:
        o, p = self.ours, self.peer
        return {
            "query": self.query.label,
            "type": self.query.kind,
            "ours n": len([k for k in o.keys if k[0] == "match"]),
            "peer n": len([k for k in p.keys if k[0] == "match"]),
            "incl": len([k for k in o.keys if k[0] == "include"]),
            "pages": f"{o.pages}/{p.pages}",
            "ours p50 ms": statistics.median(self.ours_ms),
            "peer p50 ms": statistics.median(self.peer_ms),
            "result": self.status,
        }


def judge(
    query: Query, ours: Answer, peer: Answer, resources: Sequence[tuple[str, str, dict[str, Any]]]
) -> tuple[str, str]:
    """Compare two answers under the query's expectation."""
    only_ours = sorted(ours.keys - peer.keys)
    only_peer = sorted(peer.keys - ours.keys)
    diff = f"only ours: {_show(only_ours)}; only peer: {_show(only_peer)}"
    if query.expect == "equal":
        if only_ours or only_peer:
            return "MISMATCH", diff
        if query.sort and not _in_order(ours.order, query.descending):
            return "MISMATCH", f"ours is not in the R4 sort order: {ours.order}"
        if query.sort and ours.order != peer.order:
            pairs = enumerate(zip(ours.order, peer.order, strict=False))
            first = next((i for i, (a, b) in pairs if a != b), len(peer.order))
            where = f"from position {first}: ours {ours.order[first : first + 4]}, "
            where += f"peer {peer.order[first : first + 4]}"
            if query.sort_note:
                return "explained", f"order differs {where}; {query.sort_note}"
            return "MISMATCH", f"sort order differs {where}"
        return "match", ""
    if query.expect in ("ours-subset", "peer-subset") and not only_ours and not only_peer:
        return "match", ""  # a permitted difference that did not occur
    if query.expect == "ours-subset":
        if only_ours:
            return "MISMATCH", f"expected ours ⊂ peer: {diff}"
        return "explained", f"{len(only_peer)} more on the peer: {query.note}"
    if query.expect == "peer-subset":
        if only_peer:
            return "MISMATCH", f"expected peer ⊂ ours: {diff}"
        return "explained", f"{len(only_ours)} more in ours: {query.note}"
    if query.expect == "peer-empty":
        if peer.keys:
            return "MISMATCH", f"expected the peer empty: {diff}"
        if query.oracle:
            want = {
                ("match", t, k) for t, k, r in resources if t == query.rtype and query.oracle(r)
            }
            if ours.keys != want:
                extra, missing = sorted(ours.keys - want), sorted(want - ours.keys)
                return (
                    "MISMATCH",
                    f"against the spec: extra {_show(extra)}; missing {_show(missing)}",
                )
            return "explained", f"ours = the {len(want)} the spec selects; {query.note}"
        return "explained", query.note
    raise ValueError(query.expect)


def _show(keys: Sequence[tuple[str, str, str]], n: int = 6) -> str:
    shown = ", ".join(f"{t}/{k}" + (f" ({m})" if m != "match" else "") for m, t, k in keys[:n])
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return f"[{shown}{more}]" if keys else "none"


def compare(
    ours: Target,
    peer: Target,
    queries: Sequence[Query],
    resources: Sequence[tuple[str, str, dict[str, Any]]],
    repeats: int = 1,
    progress: bool = False,
) -> list[Outcome]:
    out: list[Outcome] = []
    for i, query in enumerate(queries, 1):
        if progress:
            print(f"[{i}/{len(queries)}] {query.label}", file=sys.stderr, flush=True)
        try:
            o_runs = [fetch(ours, query) for _ in range(repeats)]
            p_runs = [fetch(peer, query) for _ in range(repeats)]
        except QueryError as exc:
            empty = Answer(set(), [], 0, 0.0)
            out.append(Outcome(query, empty, empty, [0.0], [0.0], "error", str(exc)))
            continue
        status, detail = judge(query, o_runs[0], p_runs[0], resources)
        out.append(
            Outcome(
                query,
                o_runs[0],
                p_runs[0],
                [a.ms for a in o_runs],
                [a.ms for a in p_runs],
                status,
                detail,
            )
        )
    return out


def unexplained(outcomes: Sequence[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.status in ("MISMATCH", "error")]


# ---- the peer process --------------------------------------------------------------------------


def peer_ready() -> str | None:
    """Why the peer cannot run here, or None."""
    if not (PEER_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
        return f"no node_modules in {PEER_DIR}: run `npm ci` there"
    try:
        subprocess.run(["node", "--version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "node is not installed"
    return None


@contextmanager
def run_peer(timeout: float = 60) -> Iterator[str]:
    """The Medplum peer on a free loopback port; yields its base URL (without /fhir)."""
    why = peer_ready()
    if why:
        raise RuntimeError(why)
    proc = subprocess.Popen(
        ["node", "server.mjs", "--port", "0"],
        cwd=PEER_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline().decode() if ready else ""
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not m:
            proc.kill()
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"the Medplum peer did not start: {line}{err[-2000:]}")
        yield f"http://127.0.0.1:{m.group(1)}"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe:
                pipe.close()


# ---- the report --------------------------------------------------------------------------------


def report(outcomes: Sequence[Outcome], info: dict[str, Any]) -> str:
    lines = [
        "## Correctness peer: this server against Medplum's in-memory FHIR router",
        "",
        f"{info['bundles']} Synthea bundles, {info['resources']} resources; "
        f"p50 of {info['repeats']} runs of each query (all pages), client side over "
        "loopback HTTP; ours is uvicorn (1 worker) on PostgreSQL. Figures taken on a "
        "shared, busy 2-core machine.",
        "",
        common.markdown_table([o.row() for o in outcomes]),
        "",
    ]
    counted = Counter(o.status for o in outcomes)
    lines.append("Result: " + ", ".join(f"{n} {s}" for s, n in sorted(counted.items())) + ".")
    notes = [o for o in outcomes if o.status != "match"]
    if notes:
        lines += ["", "### Differences", ""]
        for o in notes:
            lines.append(f"- **{o.query.label}** `{o.query.text()}` — {o.status}: {o.detail}")
    return "\n".join(lines)


# ---- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    common.add_common_arguments(p)
    p.add_argument("--bundles", type=int, default=0, help="load only the first N bundles (0: all)")
    p.add_argument("--repeats", type=int, default=5, help="runs of each query for the p50")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    why = peer_ready()
    if why:
        raise SystemExit(why)
    bundles = common.load_bundles(args.synthea)
    if args.bundles:
        bundles = bundles[: args.bundles]
    mid = len(bundles) // 2
    common.reset_database(args.database_url)
    with common.run_server(args.database_url, workers=1) as server, run_peer() as peer_url:
        creds = common.register_client(server.env, ORG, kind="hospital")
        tok = common.token(server.base_url, creds)
        with (
            httpx.Client(base_url=server.base_url, timeout=300) as oc,
            httpx.Client(base_url=peer_url, timeout=300) as pc,
        ):
            ours = Target("ours", oc, {"Authorization": f"Bearer {tok}"})
            peer = Target("medplum", pc, pages_by_offset=True)
            t0 = time.perf_counter()
            n = load(ours, bundles, mark_after=mid)
            t_ours = time.perf_counter() - t0
            t0 = time.perf_counter()
            load(peer, bundles, mark_after=mid)
            t_peer = time.perf_counter() - t0
            print(
                f"loaded {len(bundles)} bundles ({n} resources): ours {t_ours:.1f} s, "
                f"peer {t_peer:.1f} s (both include a 2.2 s pause for _lastUpdated)",
                file=sys.stderr,
            )
            common.vacuum_analyze(args.database_url)
            facts = Facts.of(bundles)
            outcomes = compare(
                ours, peer, battery(facts), facts.resources, args.repeats, progress=True
            )
    info = {"bundles": len(bundles), "resources": n, "repeats": args.repeats}
    print(report(outcomes, info))
    print()
    print(common.machine_table(common.machine(args.database_url)))
    common.write_json(
        args.json,
        {
            "info": info,
            "machine": common.machine(args.database_url),
            "queries": [{**o.row(), "text": o.query.text(), "detail": o.detail} for o in outcomes],
        },
    )
    bad = unexplained(outcomes)
    if bad:
        print(f"\n{len(bad)} unexplained mismatch(es)", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
