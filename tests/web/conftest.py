"""A resident with records from two clinics and the city, a demo card, and a browser-like
client signed in through the web app's demo-card sign-in."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.web import story


def ingest_story(session: Session, person: story.Person, **options: Any) -> str:
    """Register the story's organisations, send their bundles; return the resident id."""
    from consent.actors import Actor
    from consent.identity.clients import register_organization
    from fhir_gateway.identity import MYNUMBER_SYSTEM, hash_mynumber
    from fhir_gateway.ingest import process_bundle
    from fhir_gateway.models import IdentityLink

    for (org_id, name, kind), bundle in story.bundles(person, **options):
        register_organization(session, id=org_id, name=name, kind=kind)
        actor = Actor(
            kind="organization",
            organization_id=org_id,
            organization_kind=kind,
            client_id=f"{org_id}-client",
            scopes=frozenset({"system/*.cruds"}),
        )
        process_bundle(session, bundle, actor=actor)
    rid = session.scalar(
        select(IdentityLink.resident_id).where(
            IdentityLink.kind == "mynumber",
            IdentityLink.system == MYNUMBER_SYSTEM,
            IdentityLink.value == hash_mynumber(person.number),
        )
    )
    assert rid is not None
    session.commit()
    return str(rid)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def sign_in(client: TestClient, resident_id: str) -> None:
    page = client.get("/me/signin")
    assert page.status_code == 200, page.text
    r = client.post(
        "/me/signin/demo",
        data={"csrf_token": csrf_of(page.text), "resident_id": resident_id, "return_to": "/me"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/me"


@pytest.fixture
def hanako(session: Session, tmp_path: Path) -> str:
    from consent.identity import cards

    rid = ingest_story(session, story.HANAKO)
    cards.issue_card(session, rid, out_dir=tmp_path / "cards")
    session.commit()
    return rid


@pytest.fixture
def taro(session: Session, tmp_path: Path) -> str:
    from consent.identity import cards

    rid = ingest_story(session, story.TARO, years=2, per_year=2)
    cards.issue_card(session, rid, out_dir=tmp_path / "cards")
    session.commit()
    return rid


@pytest.fixture
def as_resident(client: TestClient) -> Callable[[str], TestClient]:
    def go(resident_id: str) -> TestClient:
        sign_in(client, resident_id)
        return client

    return go
