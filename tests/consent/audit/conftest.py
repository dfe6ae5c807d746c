"""Fixtures of the access-log tests: a clinic with one resident's records, and helpers to
read the chain and to act as a resident."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consent.actors import Actor
from consent.models import AuditEntry
from tests.conftest import OrgFactory, observation_entry, patient_bundle, user_token_headers


@pytest.fixture
def clinic(make_org: OrgFactory) -> dict[str, Any]:
    return make_org("clinic-a", "clinic")


@pytest.fixture
def loaded(client: TestClient, clinic: dict[str, Any]) -> dict[str, str]:
    """One resident with three lab results, posted by clinic-a."""
    b = patient_bundle(
        extra=[
            observation_entry("22222222-2222-4222-8222-222222222222", value=6.1),
            observation_entry("33333333-3333-4333-8333-333333333333", value=6.8),
            observation_entry("44444444-4444-4444-8444-444444444444", code="2093-3", value=210),
        ]
    )
    r = client.post("/fhir", json=b, headers=clinic["headers"])
    assert r.status_code == 200, r.text
    ids = [e["response"]["location"].split("/")[1] for e in r.json()["entry"]]
    return {"patient": ids[0], "obs1": ids[1], "obs2": ids[2], "obs3": ids[3]}


def entry_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def last_entries(session: Session, n: int) -> list[AuditEntry]:
    rows = session.scalars(select(AuditEntry).order_by(AuditEntry.pk.desc()).limit(n)).all()
    return list(reversed(rows))


@pytest.fixture
def as_actor(app: FastAPI) -> Iterator[Callable[[Actor | None], None]]:
    """Make every request of the test client come from this actor (None: back to tokens).

    Resident tokens come from the sign-in flow of the identity service; these tests are
    about what the access-log routes do for a resident, so they stand in for it.
    """
    from consent.identity.oauth import current_actor

    def use(actor: Actor | None) -> None:
        if actor is None:
            app.dependency_overrides.pop(current_actor, None)
        else:
            app.dependency_overrides[current_actor] = lambda: actor

    yield use
    app.dependency_overrides.pop(current_actor, None)


@pytest.fixture
def resident_token(session: Session) -> Callable[[str], dict[str, str]]:
    """Authorization headers of a real resident access token (an app approved by them)."""
    from phr.store.indexer import utcnow
    from phr.store.models import Resident

    def make(rid: str) -> dict[str, str]:
        if session.get(Resident, rid) is None:
            session.add(Resident(id=rid, created_at=utcnow(), status="active"))
        return user_token_headers(session, subject_kind="resident", subject_id=rid, resident_id=rid)

    return make
