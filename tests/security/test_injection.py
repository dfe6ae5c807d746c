"""Injection through search parameters: every search parameter of every resource type the
CapabilityStatement declares gets SQL metacharacters, LIKE wildcards, NUL and other odd
unicode, very long values, and abused modifiers and prefixes. The answer is 200 with the
honest result (nothing, for values nothing can match) or 400 with an OperationOutcome;
never 5xx; and never a record of a resident the caller may not see.

Each parameter gets a rotating share of the values (every value reaches every kind of
parameter); ``PHR_INJECTION_FULL=1`` sends every value and modifier to every parameter
(~25,000 requests, by hand)."""

from __future__ import annotations

import os
from itertools import cycle, islice
from typing import Any

from fastapi.testclient import TestClient

from fhir_gateway.api.capability import COMMON_SEARCH
from tests.security.conftest import resident_ids

# Values that match nothing unless they are interpreted as SQL or as a LIKE pattern.
MUST_MATCH_NOTHING = (
    "' OR 1=1--",
    "' OR '1'='1",
    '" OR ""="',
    "1' OR '1'='1' /*",
    "x'); DROP TABLE resource;--",
    "1 UNION SELECT resource_json FROM resource--",
    "%",
    "_",
    "%%",
    "a%",
    "%a",
    "_%_",
    "*",
    "\\%",
    "')--",
)
# Odd input: may be refused (400) or match nothing; never a 5xx.
ODD = (
    "\\",  # FHIR's escape character escaping nothing: an empty value (matches all)
    "\x00",
    "筑波\x00花子",
    "\u202e\u0000\ufeff",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "\ud7ff",
    "A" * 20_000,
    "|",
    "||",
    "|' OR 1=1--",
    "http://loinc.org|' OR 1=1--",
    ",,,",
    "ge1900-01-01' --",
    "eq",
    "gtgt2020",
    "ap2020-13-45",
    "9999999999999999999999999",
    "1e309",
    "NaN",
    "-Infinity",
    "Patient/../Observation/x",
    "Patient/' OR 1=1--",
    "urn:uuid:' OR 1=1--",
    "$everything",
    "5.4|http://unitsofmeasure.org|%",
)
VALUES = MUST_MATCH_NOTHING + ODD
MODIFIERS = (
    ":missing",
    ":exact",
    ":contains",
    ":not",
    ":text",
    ":above",
    ":below",
    ":in",
    ":Patient",
    ":identifier",
    ":' OR 1=1--",
    ":missing:missing",
    "",
)
MISSING_VALUES = ("true", "false", "maybe", "' OR 1=1--")
COMMON = {p["name"] for p in COMMON_SEARCH}
CONTROL = {"_count", "_offset", "_sort", "_include", "_revinclude", "_total", "_summary"}
SHARE = len(VALUES) if os.environ.get("PHR_INJECTION_FULL") else 1


def searchable(client: TestClient) -> list[tuple[str, list[dict[str, str]]]]:
    cap = client.get("/fhir/metadata").json()
    return [(r["type"], r["searchParam"]) for r in cap["rest"][0]["resource"]]


def search(client: TestClient, rtype: str, params: list[tuple[str, str]], h: Any) -> Any:
    return client.get(f"/fhir/{rtype}", params=params, headers=h)


class Caller:
    def __init__(self, client: TestClient, headers: dict[str, str], allowed: set[str]) -> None:
        self.client, self.headers, self.allowed = client, headers, allowed
        self.wrong: list[str] = []
        self.sent = 0

    def check(self, rtype: str, name: str, value: str, *, nothing: bool) -> None:
        self.sent += 1
        r = search(self.client, rtype, [(name, value)], self.headers)
        where = f"{rtype}?{name}={value[:40]!r}"
        if r.status_code == 400:
            if r.json().get("resourceType") != "OperationOutcome":
                self.wrong.append(f"{where}: 400 without OperationOutcome")
            return
        if r.status_code != 200:
            self.wrong.append(f"{where}: {r.status_code} {r.text[:200]}")
            return
        body = r.json()
        leaked = resident_ids(body) - self.allowed
        if leaked:
            self.wrong.append(f"{where}: another resident's records {sorted(leaked)}")
        if nothing and body.get("entry"):
            self.wrong.append(f"{where}: matched {len(body['entry'])} (should match nothing)")


def sweep(caller: Caller, types: list[tuple[str, list[dict[str, str]]]]) -> None:
    """Every parameter gets ``SHARE`` values in turn; the first parameter of each kind
    (token, string, date, reference, quantity, number) gets every value and every
    modifier."""
    values = cycle(VALUES)
    kinds_done: set[str] = set()
    common_done: set[str] = set()
    for rtype, params in types:
        for p in params:
            name, kind = p["name"], p["type"]
            if name in COMMON:
                # _id, _count, _sort ...: one code path for every type; sweep them once
                if name in common_done and len(VALUES) != SHARE:
                    continue
                common_done.add(name)
            first_of_kind = kind not in kinds_done and name not in CONTROL
            kinds_done.add(kind)
            chosen = VALUES if first_of_kind else tuple(islice(values, SHARE))
            for value in chosen:
                nothing = value in MUST_MATCH_NOTHING and name not in CONTROL
                caller.check(rtype, name, value, nothing=nothing)
            if first_of_kind or len(VALUES) == SHARE:
                for modifier in MODIFIERS:
                    if "missing" in modifier:
                        for value in MISSING_VALUES:
                            caller.check(rtype, name + modifier, value, nothing=False)
                    else:
                        # "%" matches nothing, and "not %" everything the caller may see
                        nothing = modifier not in (":not", ":missing")
                        caller.check(rtype, name + modifier, "%", nothing=nothing)


def test_every_search_parameter_resists_injection_by_an_organisation(
    client: TestClient, world: dict[str, Any], attacker: dict[str, Any]
) -> None:
    """Hospital B holds the attacker's record, and none of the world resident's."""
    caller = Caller(client, world["orgs"]["hospital"]["headers"], {attacker["id"]})
    types = searchable(client)
    assert len(types) > 30
    sweep(caller, types)
    assert caller.sent > 500
    assert caller.wrong == []


def test_a_resident_injecting_into_searches_sees_only_their_own_record(
    client: TestClient, world: dict[str, Any], attacker: dict[str, Any]
) -> None:
    caller = Caller(client, attacker["headers"], {attacker["id"]})
    for rtype in ("Patient", "Observation", "Condition"):
        for name in ("_id", "patient" if rtype != "Patient" else "name", "_lastUpdated"):
            for value in MUST_MATCH_NOTHING:
                caller.check(rtype, name, value, nothing=True)
    assert caller.wrong == []


def test_the_honest_search_still_works_beside_the_injections(
    client: TestClient, world: dict[str, Any], attacker: dict[str, Any]
) -> None:
    h = world["orgs"]["hospital"]["headers"]
    mine = search(client, "Patient", [("family", "佐藤")], h).json()
    assert [e["resource"]["id"] for e in mine["entry"]] == [attacker["id"]]
    assert search(client, "Patient", [("family", "筑波")], h).json()["total"] == 0
    owner = world["orgs"]["owner"]["headers"]
    assert search(client, "Patient", [("family", "筑波")], owner).json()["total"] == 1
    assert search(client, "Patient", [("family", "%")], owner).json()["total"] == 0
