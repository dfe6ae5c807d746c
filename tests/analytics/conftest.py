"""A small city for the analytics tests: residents of clinic A in three districts, most of
whom share their records for public health and statistics."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.actors import Actor
from consent.pia import service as pia
from consent.pia.schemas import PiaCreate
from consent.policy import schemas
from consent.policy import service as policy
from tests.conftest import OrgFactory
from tests.consent.pia.conftest import complete, orgs  # noqa: F401
from tests.consent.pia.test_api import cookie  # noqa: F401

SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
LOINC = "http://loinc.org"
FLU = {"system": "urn:oid:1.2.392.200119.4.403.1", "code": "FLU", "display": "インフルエンザ"}


def resident_bundle(
    n: int,
    *,
    district: str,
    birth: str = "1950-06-01",
    gender: str = "female",
    vaccinated: bool = False,
    medicines: int = 0,
    observations: dict[str, float] | None = None,
    acp: bool = False,
) -> dict[str, Any]:
    pid = f"urn:uuid:{n:08d}-0000-4000-8000-000000000000"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": pid,
            "resource": {
                "resourceType": "Patient",
                "identifier": [
                    {"system": "urn:oid:1.2.392.100495.20.3.51.11234567", "value": f"A{n}"}
                ],
                "name": [{"family": f"市民{n}", "given": ["一"]}],
                "gender": gender,
                "birthDate": birth,
                "address": [{"city": "つくば市", "district": district}],
            },
            "request": {"method": "POST", "url": "Patient"},
        }
    ]

    def add(rtype: str, body: dict[str, Any]) -> None:
        entries.append(
            {
                "fullUrl": f"urn:uuid:{n:08d}-{len(entries):04d}-4000-8000-000000000001",
                "resource": {"resourceType": rtype, **body},
                "request": {"method": "POST", "url": rtype},
            }
        )

    if vaccinated:
        add("Immunization", {"status": "completed", "vaccineCode": {"coding": [FLU]},
                             "patient": {"reference": pid},
                             "occurrenceDateTime": "2026-10-20"})  # fmt: skip
    for m in range(medicines):
        add("MedicationStatement", {"status": "active", "subject": {"reference": pid},
                                    "medicationCodeableConcept": {"text": f"薬{m}"}})  # fmt: skip
    if acp:  # an advance directive (ACP): ordinary data, unlike privacy consents
        add("Consent", {"status": "active", "patient": {"reference": pid},
                        "scope": {"coding": [{"system": SCOPE, "code": "adr"}]},
                        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
                        "policyRule": {"text": "ACP"}})  # fmt: skip
    for code, value in (observations or {}).items():
        add("Observation", {"status": "final", "subject": {"reference": pid},
                            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                            "effectiveDateTime": "2026-06-01",
                            "valueQuantity": {"value": value}})  # fmt: skip
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@pytest.fixture
def city(session: Session, client: TestClient, make_org: OrgFactory) -> Any:
    clinic = make_org("clinic-a", "clinic")
    make_org("city-e", "municipality", scopes=["system/*.rs"])

    def add(n: int, *, consent: bool = True, **kw: Any) -> str:
        r = client.post("/fhir", json=resident_bundle(n, **kw), headers=clinic["headers"])
        assert r.status_code == 200, r.text
        pid = str(r.json()["entry"][0]["response"]["location"].split("/")[1])
        if consent:
            policy.create_consent(
                session,
                Actor(kind="resident", resident_id=pid, client_id="app"),
                schemas.ConsentCreate(recipients=[{"kind": "any"}], purposes=["PUBHLTH"]),
            )
            session.commit()
        return pid

    return add


def approve(session: Session, service_id: str, purposes: list[str]) -> None:
    doc = complete(service_id, purpose_codes=purposes, resource_types=["Patient"])
    draft = pia.create_draft(session, data=PiaCreate.model_validate(doc), by="alice@care")
    pia.submit(session, pia_id=draft.id, by="alice@care")
    pia.approve(session, pia_id=draft.id, by="bob@platform")
    session.commit()
