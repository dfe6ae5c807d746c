"""Fixtures of the paramedic-flow tests: an EMS, two hospitals, a clinic that sent one
resident's records, the platform PIAs, and helpers to act as the resident."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.actors import Actor
from consent.policy import schemas as policy_schemas
from consent.policy import service as policy
from tests.conftest import OrgFactory, observation_entry, patient_bundle

SUBJECT = "urn:uuid:11111111-1111-4111-8111-111111111111"


def _entry(uuid: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{uuid}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def clinical_entries() -> list[dict[str, Any]]:
    """An allergy, a current medicine, an active problem and a lab result."""
    return [
        _entry(
            "22222222-2222-4222-8222-222222222222",
            {
                "resourceType": "AllergyIntolerance",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": {"text": "ペニシリン"},
                "patient": {"reference": SUBJECT},
                "recordedDate": "2020-01-01",
            },
        ),
        _entry(
            "33333333-3333-4333-8333-333333333333",
            {
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {"text": "ワルファリン錠1mg"},
                "subject": {"reference": SUBJECT},
                "authoredOn": "2026-10-01",
            },
        ),
        _entry(
            "44444444-4444-4444-8444-444444444444",
            {
                "resourceType": "Condition",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": {"text": "心房細動"},
                "subject": {"reference": SUBJECT},
                "onsetDateTime": "2019-05-01",
            },
        ),
        observation_entry("55555555-5555-4555-8555-555555555555", value=6.1),
    ]


@pytest.fixture
def pias(session: Session) -> None:
    from consent.pia.service import seed_platform_pias

    seed_platform_pias(session)
    session.commit()


@pytest.fixture
def ems(make_org: OrgFactory, pias: None) -> dict[str, Any]:
    return make_org("tsukuba-fire", "ems")


@pytest.fixture
def hospital(make_org: OrgFactory) -> dict[str, Any]:
    return make_org("gakuen-hospital", "hospital")


@pytest.fixture
def other_hospital(make_org: OrgFactory) -> dict[str, Any]:
    return make_org("other-hospital", "hospital")


Loader = Callable[..., str]


@pytest.fixture
def load_resident(client: TestClient, make_org: OrgFactory, session: Session) -> Loader:
    """Post a clinic's bundle for one resident; return the resident id."""
    clinic = make_org("clinic-a", "clinic")

    def load(**kw: Any) -> str:
        kw.setdefault("extra", clinical_entries())
        r = client.post("/fhir", json=patient_bundle(**kw), headers=clinic["headers"])
        assert r.status_code == 200, r.text
        patient_id = r.json()["entry"][0]["response"]["location"].split("/")[1]
        from phr.store.models import Resource

        row = session.query(Resource).filter_by(resource_type="Patient", id=patient_id).one()
        assert row.resident_id
        return str(row.resident_id)

    return load


@pytest.fixture
def resident(load_resident: Loader) -> str:
    return load_resident()


def set_emergency_consent(session: Session, resident_id: str, enabled: bool) -> None:
    policy.set_emergency_consent(
        session,
        Actor(kind="resident", resident_id=resident_id),
        policy_schemas.EmergencyConsentIn(enabled=enabled),
    )
    session.commit()
