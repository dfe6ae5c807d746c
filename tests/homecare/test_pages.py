"""The home-care screens through HTTP: the family's request (and the 119 page), the
station board and its event stream, the nurse's, doctor's and pharmacist's screens, the
figures; CSRF on every POST, wrong roles refused, English available."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.staff.models import StaffUser
from consent.staff.service import start_session
from phr.homecare.models import Request as HomecareRequest
from phr.homecare.models import Stock, Visit
from tests.homecare.conftest import World
from tests.web.conftest import csrf_of, sign_in


@pytest.fixture
def browsers(app: Any, session: Session, world: World) -> Iterator[dict[str, TestClient]]:
    opened: dict[str, TestClient] = {}
    for name, actor in (
        ("clerk", world.clerk),
        ("nurse", world.nurse),
        ("doctor", world.doctor),
        ("pharmacist", world.pharmacist),
        ("other", world.other_nurse),
    ):
        user = session.get(StaffUser, actor.user_id)
        assert user is not None
        c = TestClient(app)
        c.cookies.set("phr_staff", start_session(session, user))
        opened[name] = c
    session.commit()
    yield opened
    for c in opened.values():
        c.close()


@pytest.fixture
def family(client: TestClient, session: Session, world: World, tmp_path: Path) -> TestClient:
    from consent.identity import cards

    cards.issue_card(session, world.resident, out_dir=tmp_path / "cards")
    session.commit()
    sign_in(client, world.resident)
    return client


def post(c: TestClient, path: str, data: dict[str, Any], page: str) -> Any:
    r = c.post(path, data={"csrf_token": csrf_of(c.get(page).text), **data}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r


def test_the_whole_visit_through_the_screens(
    family: TestClient, browsers: dict[str, TestClient], session: Session, world: World
) -> None:
    page = family.get("/me/homecare?complaint=fever")
    assert page.status_code == 200 and "どうしましたか" in page.text
    r = post(
        family,
        "/me/homecare/requests",
        {"complaint": "fever", "what": "熱がある", "since": "昨夜から"},
        "/me/homecare",
    )
    assert r.headers["location"] == "/me/homecare?done=open"
    assert "受付済み" in family.get("/me/homecare").text
    req = session.query(HomecareRequest).filter_by(resident_id=world.resident).one()

    clerk = browsers["clerk"]
    board = clerk.get("/homecare/station")
    assert "熱がある" in board.text and "筑波 花子" in board.text
    assert 'data-events="/homecare/station/events"' in board.text
    assert "<script>" not in board.text and "homecare.js" in board.text
    events = clerk.get("/homecare/station/events?once=1")
    assert events.headers["content-type"].startswith("text/event-stream")
    assert "event: change" in events.text
    assert "熱がある" in clerk.get("/homecare/station/board").text
    post(
        clerk,
        f"/homecare/station/assign/{req.id}",
        {"nurse_id": world.nurse.user_id},
        "/homecare/station",
    )
    post(clerk, f"/homecare/station/dispatch/{req.id}", {}, "/homecare/station")

    nurse = browsers["nurse"]
    assert "到着" in nurse.get("/homecare/nurse").text
    r = post(nurse, f"/homecare/requests/{req.id}/arrive", {}, "/homecare/nurse")
    visit_path = r.headers["location"]
    vid = visit_path.rsplit("/", 1)[1]
    post(
        nurse,
        f"{visit_path}/vitals",
        {
            "respiratory_rate": "20",
            "spo2": "95",
            "systolic": "112",
            "diastolic": "70",
            "pulse": "96",
            "temperature": "38.6",
            "consciousness": "A",
        },
        visit_path,
    )
    assert "NEWS2 3点" in nurse.get(visit_path).text

    doctor = browsers["doctor"]
    assert vid in doctor.get("/homecare/doctor").text
    doc_page = doctor.get(visit_path).text
    assert "ペニシリン" in doc_page  # the allergy a hospital sent, under the consent
    post(
        doctor,
        f"{visit_path}/consultation",
        {"findings": "咽頭発赤", "instructions": "解熱薬", "decision": "home"},
        visit_path,
    )
    doc_page = doctor.get(visit_path).text
    assert "期限切れ" in doc_page and "カロナール" in doc_page
    r = post(
        doctor,
        f"{visit_path}/prescription",
        {"stock_id": [world.good], f"quantity_{world.good}": "1", f"dosage_{world.good}": "1回1錠"},
        visit_path,
    )
    assert r.headers["location"].endswith("done=prescribed")

    pharmacist = browsers["pharmacist"]
    assert vid in pharmacist.get("/homecare/pharmacist").text
    post(pharmacist, f"{visit_path}/guidance", {"text": "眠気に注意"}, visit_path)

    nurse_page = nurse.get(visit_path).text
    order_id = re.search(r'name="order_id" value="([^"]+)"', nurse_page)
    assert order_id
    post(nurse, f"{visit_path}/administration", {"order_id": order_id.group(1)}, visit_path)
    stock = session.get(Stock, world.good)
    assert stock is not None
    session.refresh(stock)
    assert stock.quantity == 9
    r = post(nurse, f"{visit_path}/administration", {"order_id": order_id.group(1)}, visit_path)
    assert "error=conflict" in r.headers["location"]
    post(nurse, f"{visit_path}/outcome", {"outcome": "treated_at_home"}, visit_path)
    visit = session.get(Visit, vid)
    assert visit is not None
    session.refresh(visit)
    assert visit.outcome == "treated_at_home"
    figures = clerk.get("/homecare/figures")
    assert figures.status_code == 200 and "在宅で治療" in figures.text
    csv = clerk.get("/homecare/figures.csv")
    assert csv.text.startswith("month,station_id,requests")
    assert "Home-care figures" in clerk.get("/homecare/figures?lang=en").text


def test_a_red_request_tells_the_family_to_call_119(family: TestClient) -> None:
    r = post(
        family,
        "/me/homecare/requests",
        {
            "complaint": "fever",
            "q_confused": "yes",
            "what": "呼びかけに反応が鈍い",
            "since": "30分前",
        },
        "/me/homecare",
    )
    assert r.headers["location"] == "/me/homecare?done=referred"
    page = family.get(r.headers["location"]).text
    assert "すぐに119番に電話してください" in page and 'href="tel:119"' in page


def test_every_post_needs_the_csrf_token(browsers: dict[str, TestClient], world: World) -> None:
    for path in ("/homecare/station/phone/new", "/homecare/visits/x/vitals"):
        r = browsers["clerk"].post(path, data={"csrf_token": "nope"}, follow_redirects=False)
        assert r.status_code == 403


def test_wrong_roles_and_other_stations_are_refused(
    browsers: dict[str, TestClient], world: World
) -> None:
    assert browsers["doctor"].get("/homecare/station").status_code == 403
    assert browsers["pharmacist"].get("/homecare/nurse").status_code == 403
    rid = world.request()
    assert rid not in browsers["other"].get("/homecare/station/board").text
    other = browsers["other"]
    r = post(other, f"/homecare/station/dispatch/{rid}", {}, "/homecare/station")
    assert "error=not_found" in r.headers["location"]


def test_staff_pages_need_the_staff_sign_in(client: TestClient) -> None:
    r = client.get("/homecare/station", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/auth/staff/login")
