"""Residents with golden Patients (sex, birth date, postal code), EMS and other actors, and
face templates made to a chosen similarity."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session

from consent.actors import Actor
from phr.biometrics import service
from phr.biometrics.extractor import TEMPLATE_DIM
from phr.store.indexer import utcnow
from phr.store.models import Resident
from phr.store.repository import Put, put_many
from tests.conftest import SHARED
from tests.consent.audit.conftest import resident_token  # noqa: F401  (a fixture)

ORL_DIR = next(
    (
        d / "data" / "faces-orl"
        for d in (SHARED, SHARED.parent.parent / "shared")
        if (d / "data" / "faces-orl").is_dir()
    ),
    SHARED / "data" / "faces-orl",
)

EMS = Actor(
    kind="organization",
    client_id="ems-client",
    organization_id="ems-1",
    organization_kind="ems",
    scopes=frozenset({"system/*.rs"}),
)
PARAMEDIC = Actor(
    kind="staff",
    user_id="medic-1",
    client_id="ems-tablet",
    organization_id="ems-1",
    organization_kind="ems",
    role="paramedic",
)


@pytest.fixture(autouse=True)
def fresh_index() -> Iterator[None]:
    """Each test's database is rolled back under the process's index: start from none."""
    service.reset_index()
    yield
    service.reset_index()


@pytest.fixture(autouse=True)
def ems_org(session: Session) -> None:
    from consent.identity.clients import register_organization

    register_organization(session, id="ems-1", name="つくば市消防本部", kind="ems")
    session.flush()


MakeResident = Callable[..., Actor]


@pytest.fixture
def make_resident(session: Session) -> MakeResident:
    """A resident with a golden Patient; returns the resident's actor."""

    def make(
        rid: str,
        *,
        gender: str | None = "female",
        birth: str | None = "1950-04-01",
        postal: str | None = "305-0031",
    ) -> Actor:
        session.add(Resident(id=rid, created_at=utcnow(), status="active"))
        session.flush()
        patient: dict[str, Any] = {
            "resourceType": "Patient",
            "id": rid,
            "name": [{"family": "筑波", "given": ["花子"]}],
        }
        if gender:
            patient["gender"] = gender
        if birth:
            patient["birthDate"] = birth
        if postal:
            patient["address"] = [{"use": "home", "postalCode": postal, "country": "JP"}]
        put_many(session, [Put(patient, rid)])
        session.flush()
        return Actor(kind="resident", resident_id=rid, client_id="resident-app")

    return make


def random_unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(TEMPLATE_DIM)
    return v / np.linalg.norm(v)


def at_similarity(base: np.ndarray, cos: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector whose cosine similarity with ``base`` (unit) is exactly ``cos``."""
    r = rng.standard_normal(TEMPLATE_DIM)
    r -= r.dot(base) * base
    r /= np.linalg.norm(r)
    return cos * base + np.sqrt(1 - cos * cos) * r


def orl_image(subject: int, image: int) -> Path:
    return ORL_DIR / f"s{subject}" / f"{image}.pgm"
