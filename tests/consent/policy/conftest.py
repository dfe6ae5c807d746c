"""The world of the authorization matrices: one resident whose record comes from clinic
A, the organisations around them, and what a caller can see of that record."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from consent.policy import schemas, service
from tests.conftest import OrgFactory, observation_entry, patient_bundle

ICD10 = "http://hl7.org/fhir/sid/icd-10"
SEARCHED = ("Patient", "Observation", "Condition", "AllergyIntolerance")


def condition(uuid: str, code: str, display: str) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{uuid}",
        "resource": {
            "resourceType": "Condition",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "code": {"coding": [{"system": ICD10, "code": code, "display": display}]},
            "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
            "onsetDateTime": "2020-01-01",
        },
        "request": {"method": "POST", "url": "Condition"},
    }


def allergy(uuid: str) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{uuid}",
        "resource": {
            "resourceType": "AllergyIntolerance",
            "code": {"text": "ペニシリン"},
            "patient": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
        },
        "request": {"method": "POST", "url": "AllergyIntolerance"},
    }


@pytest.fixture
def world(client: TestClient, make_org: OrgFactory) -> dict[str, Any]:
    orgs = {
        "owner": make_org("clinic-a", "clinic"),
        "hospital": make_org("hospital-b", "hospital"),
        "ems": make_org("ems-c", "ems", scopes=["system/*.rs"]),
        "pharmacy": make_org("pharmacy-d", "pharmacy", scopes=["system/*.rs"]),
        "city": make_org("city-e", "municipality", scopes=["system/*.rs"]),
    }
    b = patient_bundle(
        extra=[
            observation_entry("22222222-2222-4222-8222-222222222222"),
            condition("33333333-3333-4333-8333-333333333333", "E11.9", "2型糖尿病"),
            condition("44444444-4444-4444-8444-444444444444", "F32.9", "うつ病"),
            allergy("55555555-5555-4555-8555-555555555555"),
        ]
    )
    r = client.post("/fhir", json=b, headers=orgs["owner"]["headers"])
    assert r.status_code == 200, r.text
    ids = [e["response"]["location"].split("/")[1] for e in r.json()["entry"]]
    return {
        "orgs": orgs,
        "patient": ids[0],
        "obs": ids[1],
        "diabetes": ids[2],
        "depression": ids[3],
        "allergy": ids[4],
    }


def resident(world: dict[str, Any]) -> Actor:
    return Actor(kind="resident", resident_id=world["patient"], client_id="resident-app")


def visible(
    client: TestClient,
    world: dict[str, Any],
    who: str | None = None,
    purpose: Purpose = Purpose.TREATMENT,
    *,
    headers: dict[str, str] | None = None,
) -> set[str]:
    """Everything this organisation (or the bearer of ``headers``) can see of the resident,
    through several routes."""
    base = headers if headers is not None else world["orgs"][who or ""]["headers"]
    h = {**base, "X-Purpose-Of-Use": purpose.value}
    seen: set[str] = set()
    for rtype in SEARCHED:
        b = client.get(f"/fhir/{rtype}", params={"_count": 100}, headers=h).json()
        got = {e["resource"]["id"] for e in b.get("entry", [])}
        assert b["total"] == len(got), "totals must not count what is hidden"
        seen |= got
    everything = client.get(f"/fhir/Patient/{world['patient']}/$everything", headers=h)
    if everything.status_code == 200:
        ev = {
            e["resource"]["id"]
            for e in everything.json()["entry"]
            if e["resource"]["resourceType"] in SEARCHED
        }
        assert ev == seen, "$everything shows exactly what searches show"
    else:
        assert everything.status_code == 404 and world["patient"] not in seen
    for key in ("obs", "diabetes", "depression", "allergy"):
        status = client.get(f"/fhir/{_type(key)}/{world[key]}", headers=h).status_code
        assert (status == 200) == (world[key] in seen), (who, key, status)
    return seen


def _type(key: str) -> str:
    return {
        "obs": "Observation",
        "diabetes": "Condition",
        "depression": "Condition",
        "allergy": "AllergyIntolerance",
    }[key]


def ids(world: dict[str, Any], *keys: str) -> set[str]:
    return {world[k] for k in keys}


def permit(session: Session, world: dict[str, Any], **kw: Any) -> schemas.ConsentRead:
    return service.create_consent(session, resident(world), schemas.ConsentCreate(**kw))
