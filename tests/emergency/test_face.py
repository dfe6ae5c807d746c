"""Face identification inside the paramedic flow: the biometric shortlist joins the
incident as candidates, nothing opens before a confirmation, and an unknown face
identifies no one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.actors import Actor
from phr.biometrics import service as biometrics
from tests.biometrics.conftest import at_similarity, random_unit

from .conftest import Loader, set_emergency_consent
from .test_flow import BASE, open_incident, summary


@pytest.fixture(autouse=True)
def fresh_index() -> Iterator[None]:
    biometrics.reset_index()
    yield
    biometrics.reset_index()


def enroll(session: Session, resident: str, vector: np.ndarray) -> None:
    biometrics.enroll(
        session,
        Actor(kind="resident", resident_id=resident, client_id="resident-app"),
        consent=True,
        vectors=[vector.tolist()],
    )
    session.commit()


def face(client: TestClient, ems: dict[str, Any], incident: str, probe: np.ndarray) -> Any:
    r = client.post(
        f"{BASE}/{incident}/identify/face",
        json={"embedding": probe.tolist(), "sex": "female"},
        headers={**ems["headers"], "X-Purpose-Of-Use": "ETREAT"},
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_a_face_match_is_a_candidate_that_opens_the_summary_only_once_confirmed(
    client: TestClient, ems: dict[str, Any], load_resident: Loader, session: Session
) -> None:
    rng = np.random.default_rng(7)
    hanako = load_resident()
    set_emergency_consent(session, hanako, True)
    template = random_unit(rng)
    enroll(session, hanako, template)
    incident = open_incident(client, ems)

    found = face(client, ems, incident, at_similarity(template, 0.97, rng))
    assert found["identified"] is True
    (candidate,) = found["candidates"]
    assert summary(client, ems, incident).status_code in (403, 404, 409)

    r = client.post(
        f"{BASE}/{incident}/confirm",
        json={"candidate_id": candidate["id"], "method": "visual", "photo_checked": True},
        headers=ems["headers"],
    )
    assert r.status_code == 200, r.text
    got = summary(client, ems, incident)
    assert got.status_code == 200, got.text
    assert got.json()["allergies"], got.json()


def test_an_unknown_face_identifies_no_one(
    client: TestClient, ems: dict[str, Any], load_resident: Loader, session: Session
) -> None:
    rng = np.random.default_rng(8)
    hanako = load_resident()
    enroll(session, hanako, random_unit(rng))
    incident = open_incident(client, ems)
    found = face(client, ems, incident, random_unit(rng))
    assert found == {"identified": False, "message": found["message"], "candidates": []}


def test_probe_must_be_a_template_or_a_photo(
    client: TestClient, ems: dict[str, Any], resident: str
) -> None:
    incident = open_incident(client, ems)
    r = client.post(f"{BASE}/{incident}/identify/face", json={}, headers=ems["headers"])
    assert r.status_code == 400
