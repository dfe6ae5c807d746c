"""The world of the security tests: the authorization matrices' resident (their record
from clinic A, the organisations around them: ``tests/consent/policy/conftest.py``) and a
second resident, the attacker, with a record and a token of their own."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import observation_entry, patient_bundle, user_token_headers

# Fixtures shared with the tests of the routes themselves.
from tests.consent.identity.conftest import issue, resident  # noqa: F401
from tests.consent.policy.conftest import world  # noqa: F401
from tests.consent.staff.conftest import cheap_argon2, make_staff  # noqa: F401
from tests.emergency.conftest import pias  # noqa: F401


def resident_ids(body: Any) -> set[str]:
    """Every resident id a FHIR answer names: Patient ids and subject/patient references."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("resourceType") == "Patient" and isinstance(node.get("id"), str):
                found.add(node["id"])
            ref = node.get("reference")
            if isinstance(ref, str) and ref.startswith("Patient/"):
                found.add(ref.split("/")[1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body)
    return found


@pytest.fixture
def attacker(
    client: TestClient,
    session: Session,
    world: dict[str, Any],  # noqa: F811
) -> dict[str, Any]:
    """Another resident of the city (a record at hospital B) with their own app token."""
    bundle = patient_bundle(
        mrn="99999",
        family="佐藤",
        given="次郎",
        birth="1980-01-01",
        gender="male",
        extra=[observation_entry("66666666-6666-4666-8666-666666666666", value=5.2)],
    )
    r = client.post("/fhir", json=bundle, headers=world["orgs"]["hospital"]["headers"])
    assert r.status_code == 200, r.text
    rid = r.json()["entry"][0]["response"]["location"].split("/")[1]
    headers = user_token_headers(session, subject_kind="resident", subject_id=rid, resident_id=rid)
    return {"id": rid, "headers": headers}
