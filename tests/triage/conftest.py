"""Fixtures of the triage tests: a resident with a record, real tokens, seeded PIAs and
the demo hospital registry."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import OrgFactory, patient_bundle
from tests.consent.audit.conftest import resident_token  # noqa: F401  (a fixture)
from tests.consent.policy.conftest import condition


def _medication(uuid: str, code: str, name: str, authored: str) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{uuid}",
        "resource": {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [
                    {"system": "urn:oid:1.2.392.100495.20.2.74", "code": code, "display": name}
                ]
            },
            "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
            "authoredOn": authored,
        },
        "request": {"method": "POST", "url": "MedicationRequest"},
    }


@pytest.fixture
def pias(session: Session) -> None:
    from consent.pia.service import seed_platform_pias

    seed_platform_pias(session)
    session.commit()


@pytest.fixture
def phr_resident(client: TestClient, make_org: OrgFactory) -> dict[str, Any]:
    """A 60-year-old on warfarin with diabetes, recorded by a clinic."""
    clinic = make_org("triage-clinic", "clinic")
    bundle = patient_bundle(
        birth="1966-04-01",
        extra=[
            _medication(
                "22222222-2222-4222-8222-222222222222",
                "3332001F1010",
                "ワーファリン錠1mg（ワルファリンカリウム）",
                "2026-10-20",
            ),
            condition("33333333-3333-4333-8333-333333333333", "E11.9", "2型糖尿病"),
        ],
    )
    r = client.post("/fhir", json=bundle, headers=clinic["headers"])
    assert r.status_code == 200, r.text
    locations = [e["response"]["location"].split("/")[1] for e in r.json()["entry"]]
    return {"id": locations[0], "medication": locations[1], "condition": locations[2]}


@pytest.fixture
def hospitals(session: Session) -> int:
    from phr.triage.demo import seed_hospitals

    n = seed_hospitals(session)
    session.commit()
    return n


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The vignette agreement, in every run's output (CI included)."""
    from tests.triage.test_vignettes import REPORT

    for line in REPORT:
        terminalreporter.write_line(f"triage {line}")
