"""The shelter module over HTTP: the JSON API with a shelter's client (and refused to
others), and the desk's pages on the staff session (role, CSRF, Japanese and English)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.staff.service import configure_password_hasher, create_staff, start_session
from tests.conftest import OrgFactory
from tests.shelter.conftest import SHELTER, disaster_consent, needs_drug_list
from tests.web.conftest import csrf_of
from tests.web.test_pages import text_of

pytestmark = needs_drug_list
API = "/modules/shelter/api"
HANAKO = {"family": "筑波", "given": "花子", "birth_date": "1950-04-01", "sex": "female"}


def test_the_json_api_flow(
    session: Session, client: TestClient, world: dict[str, Any], make_org: OrgFactory
) -> None:
    disaster_consent(session, world["hanako"])
    h = make_org(SHELTER, "shelter")["headers"]
    intake = client.post(f"{API}/intakes", headers=h).json()
    r = client.post(f"{API}/intakes/{intake['id']}/identify/demographic", json=HANAKO, headers=h)
    assert r.status_code == 200 and r.json()["identified"] is True, r.text
    before = client.get(f"{API}/intakes/{intake['id']}", headers=h).json()
    assert before["consent"] == "none" and before["patient"] is None
    bad = client.post(
        f"{API}/intakes/{intake['id']}/confirm",
        json={"method": "birth_date", "birth_date": "1951-04-01"},
        headers=h,
    )
    assert bad.status_code == 403
    ok = client.post(
        f"{API}/intakes/{intake['id']}/confirm",
        json={"method": "birth_date", "birth_date": "1950-04-01"},
        headers=h,
    )
    assert ok.status_code == 200 and ok.json()["status"] == "checked_in"
    view = client.get(f"{API}/intakes/{intake['id']}", headers=h).json()
    assert view["patient"]["name"] == "筑波 花子"
    assert {m["name"] for m in view["medicines"]} >= {"ワルファリンカリウム"}
    listed = client.get(f"{API}/evacuees?needs_support=true", headers=h).json()
    assert [e["intake_id"] for e in listed] == [intake["id"]]
    # A clinic or an EMS client cannot use the shelter's intake.
    ems = make_org("fire", "ems")["headers"]
    assert client.post(f"{API}/intakes", headers=ems).status_code == 403
    assert client.get(f"{API}/intakes/{intake['id']}", headers=ems).status_code == 403
    assert client.post(f"{API}/intakes/{intake['id']}/leave", headers=h).json()["status"] == "left"
    assert client.get(f"{API}/intakes/{intake['id']}", headers=h).json()["patient"] is None


@pytest.fixture
def desk_browser(app: Any, session: Session, world: dict[str, Any]) -> Iterator[Any]:
    configure_password_hasher(PasswordHasher.from_parameters(profiles.CHEAPEST))
    opened: list[TestClient] = []

    def make(org: str = SHELTER, role: str = "shelter_staff") -> TestClient:
        user, _ = create_staff(
            session, organization_id=org, username=f"u{len(opened)}", display_name="desk",
            role=role, password="correct horse battery staple",
        )  # fmt: skip
        c = TestClient(app)
        c.cookies.set("phr_staff", start_session(session, user))
        session.commit()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()
    configure_password_hasher(None)


def post(c: TestClient, path: str, data: dict[str, Any], page: str) -> Any:
    return c.post(path, data={"csrf_token": csrf_of(c.get(page).text), **data},
                  follow_redirects=False)  # fmt: skip


def test_the_desk_pages(session: Session, world: dict[str, Any], desk_browser: Any) -> None:
    disaster_consent(session, world["hanako"])
    c = desk_browser()
    home = c.get("/modules/shelter/")
    assert home.status_code == 200 and "避難所" in text_of(home.text)
    assert "script-src 'self'" in home.headers["content-security-policy"]
    assert c.post("/modules/shelter/intakes", data={}).status_code == 403  # no CSRF token
    r = post(c, "/modules/shelter/intakes", {}, "/modules/shelter/")
    assert r.status_code == 303
    page = r.headers["location"]
    r = post(c, f"{page}/identify/demographic", HANAKO, page)
    assert r.headers["location"].endswith("done=searched")
    waiting = c.get(page).text
    assert "花子" not in text_of(waiting) and "候補者がいます" in text_of(waiting)
    r = post(c, f"{page}/confirm", {"method": "birth_date", "birth_date": "1950-04-01"}, page)
    assert r.headers["location"].endswith("done=checked_in")
    shown = text_of(c.get(page).text)
    assert "筑波 花子" in shown and "ワルファリンカリウム" in shown and "あと18日" in shown
    assert "ペニシリン" in shown and "腎透析状態" in shown and "人工透析" in shown
    english = text_of(c.get(page + "?lang=en").text)
    assert "Medicines to continue" in english and "18 days left" in english
    listing = text_of(c.get("/modules/shelter/?needs=1").text)
    assert "筑波 花子" in listing and "ワルファリン" not in listing
    # Another role is refused.
    nurse = desk_browser("takezono-naika", "nurse")
    assert nurse.get("/modules/shelter/").status_code == 403
    assert re.search(r"避難所職員", text_of(nurse.get("/modules/shelter/").text))


def test_the_resident_turns_the_disaster_consent_on_in_the_web_app(
    session: Session, client: TestClient, world: dict[str, Any], tmp_path: Any
) -> None:
    from consent.identity import cards
    from consent.policy import service as policy
    from tests.web.conftest import sign_in

    cards.issue_card(session, world["hanako"], out_dir=tmp_path / "cards")
    session.commit()
    sign_in(client, world["hanako"])
    page = client.get("/me/emergency")
    assert "災害時に避難所へ見せますか" in text_of(page.text)
    r = client.post(
        "/me/disaster",
        data={"csrf_token": csrf_of(page.text), "enabled": "on"},
        follow_redirects=False,
    )
    assert r.headers["location"].endswith("done=disaster_on")
    from consent.actors import Actor

    [c] = [
        c
        for c in policy.list_consents(session, Actor(kind="resident", resident_id=world["hanako"]))
        if c.status == "active"
    ]
    assert c.disaster and not c.emergency
    assert 'id="dis-on" name="enabled" value="on" checked' in client.get("/me/emergency").text
