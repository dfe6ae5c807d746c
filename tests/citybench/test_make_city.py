"""bench/make_city.py at a tiny size: valid FHIR, stored through the real write path,
searchable through the FHIR API, the same city for the same seed."""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from phr.store.models import Resident, Resource
from tests.conftest import DRUGS_CSV, OrgFactory, needs

pytestmark = needs(DRUGS_CSV.exists(), f"needs the MHLW drug list at {DRUGS_CSV}")

BENCH = Path(__file__).resolve().parents[2] / "bench"
N = 50
STORED = 20  # written through the store (the rest is checked in memory)


@pytest.fixture(scope="module")
def make_city() -> Any:
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("make_city")
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def catalogue() -> Any:
    from phr.demo.drugs import Catalogue

    return Catalogue.load(DRUGS_CSV)


def _city(make_city: Any, catalogue: Any, seed: int) -> list[Any]:
    return [make_city.generate_person(seed, i, catalogue) for i in range(N)]


def _dump(people: list[Any]) -> list[Any]:
    return [(p.id, [(rid, rec.resource) for rec, rid in p.records]) for p in people]


def test_same_seed_same_city_other_seed_other_city(make_city: Any, catalogue: Any) -> None:
    a, b = _city(make_city, catalogue, 11), _city(make_city, catalogue, 11)
    assert _dump(a) == _dump(b)
    c = _city(make_city, catalogue, 12)
    assert {p.id for p in a}.isdisjoint({p.id for p in c})
    assert [p.birth_date for p in a] != [p.birth_date for p in c]
    # resident i does not depend on how many are generated
    assert _dump([make_city.generate_person(11, 7, catalogue)]) == _dump(a[7:8])


def test_every_resource_is_valid_fhir_r4b(make_city: Any, catalogue: Any) -> None:
    types: Counter[str] = Counter()
    for p in _city(make_city, catalogue, 11)[:STORED]:
        for rec, rid in p.records:
            body = {**rec.resource, "id": rid}
            get_fhir_model_class(body["resourceType"]).model_validate(body)
            types[body["resourceType"]] += 1
    assert types["Patient"] == STORED
    for t in ("Condition", "MedicationRequest", "MedicationDispense", "Observation"):
        assert types[t] > 0, t
    assert types["Immunization"] > 0


def test_medicines_carry_codes_of_the_national_drug_list(make_city: Any, catalogue: Any) -> None:
    codes = [
        c["code"]
        for p in _city(make_city, catalogue, 11)
        for rec, _ in p.records
        if rec.resource["resourceType"] == "MedicationRequest"
        for c in rec.resource["medicationCodeableConcept"]["coding"]
    ]
    assert codes and set(codes) <= catalogue.codes


def test_stored_city_is_searchable_through_the_fhir_api(
    make_city: Any, catalogue: Any, session: Session, client: TestClient, make_org: OrgFactory
) -> None:
    org = make_org(make_city.ORG, kind="hospital")
    people = _city(make_city, catalogue, 11)[:STORED]
    counts = make_city.store_people(session, people)
    session.commit()
    expected = Counter(rec.resource["resourceType"] for p in people for rec, _ in p.records)
    for t, n in expected.items():
        assert counts[t] == n
        stored = session.scalar(
            select(func.count()).select_from(Resource).where(Resource.resource_type == t)
        )
        assert stored is not None and stored >= n
    assert (
        session.scalar(
            select(func.count())
            .select_from(Resident)
            .where(Resident.id.in_([p.id for p in people]))
        )
        == STORED
    )

    # the person with most checkups: their HbA1c results by patient and code
    def hba1c(p: Any) -> int:
        return sum(
            1
            for rec, _ in p.records
            if rec.resource["resourceType"] == "Observation"
            and rec.resource["code"]["coding"][0]["code"] == "4548-4"
        )

    person = max(people, key=hba1c)
    assert hba1c(person) > 0
    r = client.get(
        "/fhir/Observation",
        params={"patient": person.id, "code": "http://loinc.org|4548-4", "_count": 100},
        headers=org["headers"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["total"] == hba1c(person)

    patient = person.records[0][0].resource
    r = client.get(
        "/fhir/Patient",
        params={"family": patient["name"][0]["family"], "birthdate": patient["birthDate"]},
        headers=org["headers"],
    )
    assert r.status_code == 200, r.text
    assert person.id in {e["resource"]["id"] for e in r.json()["entry"]}

    r = client.get(f"/fhir/Patient/{person.id}/$everything", headers=org["headers"])
    assert r.status_code == 200, r.text
    everything = {e["resource"]["id"] for e in r.json()["entry"]}
    assert {rid for _, rid in person.records} <= everything
