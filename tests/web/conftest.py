"""A resident with records from two clinics and the city, a demo card, and a browser-like
client signed in through the web app's demo-card sign-in."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.web import story
from tests.web.story import ingest_story


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
