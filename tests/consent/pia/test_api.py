"""The staff workflow API: who may draft, submit, approve and publish (staff session cookie)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.staff.service import create_staff, start_session

from .conftest import complete

Cookie = Callable[..., dict[str, str]]


@pytest.fixture
def cookie(session: Session, orgs: dict[str, str]) -> Cookie:
    """A signed-in staff member's cookie (the TOTP step is the staff module's business)."""

    def make(org: str, username: str, role: str = "administrator") -> dict[str, str]:
        user, _ = create_staff(
            session,
            organization_id=org,
            username=username,
            display_name=username,
            role=role,
            password="correct horse battery staple",
        )
        token = start_session(session, user)
        session.commit()
        return {"phr_staff": token}

    return make


@pytest.fixture
def operator(cookie: Cookie) -> dict[str, str]:
    return cookie("tsukuba-care-co", "alice")


@pytest.fixture
def platform(cookie: Cookie) -> dict[str, str]:
    return cookie("platform", "bob")


def _post(client: TestClient, url: str, who: dict[str, str] | None, body: Any = None) -> Any:
    client.cookies.clear()
    if who:
        client.cookies.update(who)
    return client.post(url, json=body) if body is not None else client.post(url)


def _draft(client: TestClient, who: dict[str, str], **kw: Any) -> dict[str, Any]:
    r = _post(client, "/api/pia", who, complete(**kw))
    assert r.status_code == 201, r.text
    return r.json()


def test_staff_routes_need_a_staff_session(client: TestClient, orgs: dict[str, str]) -> None:
    assert _post(client, "/api/pia", None, complete()).status_code == 401
    client.cookies.clear()
    assert client.get("/api/pia").status_code == 401
    assert client.get("/api/pia/some-id").status_code == 401


def test_an_operator_administrator_drafts_and_submits_for_their_own_organisation(
    client: TestClient, operator: dict[str, str]
) -> None:
    body = _draft(client, operator)
    assert body["status"] == "draft" and body["organization_id"] == "tsukuba-care-co"
    assert body["created_by"] == "alice@tsukuba-care-co"
    assert body["unanswered"] == [] and body["overall"]["code"] == "low"
    r = _post(client, f"/api/pia/{body['id']}/submit", operator)
    assert r.status_code == 200 and r.json()["status"] == "submitted"


def test_an_operator_cannot_draft_for_another_organisation(
    client: TestClient, operator: dict[str, str]
) -> None:
    r = _post(client, "/api/pia", operator, complete(organization_id="other-co"))
    assert r.status_code == 403


def test_staff_who_are_not_administrators_are_forbidden(client: TestClient, cookie: Cookie) -> None:
    clerk = cookie("tsukuba-care-co", "carol", role="clerk")
    assert _post(client, "/api/pia", clerk, complete()).status_code == 403


def test_an_operator_cannot_approve_or_publish_but_the_platform_can(
    client: TestClient, operator: dict[str, str], platform: dict[str, str]
) -> None:
    pia = _draft(client, operator)
    _post(client, f"/api/pia/{pia['id']}/submit", operator)
    assert _post(client, f"/api/pia/{pia['id']}/approve", operator).status_code == 403
    r = _post(client, f"/api/pia/{pia['id']}/approve", platform, {"review_due": "2099-03-31"})
    assert r.status_code == 200, r.text
    assert r.json()["approved_by"] == "bob@platform" and r.json()["review_due"] == "2099-03-31"
    assert r.json()["in_force"] is True
    assert _post(client, f"/api/pia/{pia['id']}/publish", operator).status_code == 403
    r = _post(client, f"/api/pia/{pia['id']}/publish", platform)
    assert r.status_code == 200 and r.json()["status"] == "published"


def test_another_organisations_assessment_is_not_found(
    client: TestClient, operator: dict[str, str], cookie: Cookie
) -> None:
    pia = _draft(client, operator)
    stranger = cookie("other-co", "dave")
    client.cookies.clear()
    client.cookies.update(stranger)
    assert client.get(f"/api/pia/{pia['id']}").status_code == 404
    assert _post(client, f"/api/pia/{pia['id']}/submit", stranger).status_code == 404
    client.cookies.clear()
    client.cookies.update(stranger)
    assert client.get("/api/pia").json() == []


def test_illegal_transitions_answer_409_and_edits_after_submission_too(
    client: TestClient, operator: dict[str, str], platform: dict[str, str]
) -> None:
    pia = _draft(client, operator)
    assert _post(client, f"/api/pia/{pia['id']}/publish", platform).status_code == 409
    _post(client, f"/api/pia/{pia['id']}/submit", operator)
    client.cookies.clear()
    client.cookies.update(operator)
    r = client.put(f"/api/pia/{pia['id']}", json={"retention": "1年"})
    assert r.status_code == 409 and r.json()["error"] == "conflict"


def test_a_draft_is_edited_with_put_and_bad_input_is_a_400(
    client: TestClient, operator: dict[str, str]
) -> None:
    pia = _draft(client, operator)
    client.cookies.clear()
    client.cookies.update(operator)
    r = client.put(f"/api/pia/{pia['id']}", json={"retention": "1年", "answers": {"I01.1": "no"}})
    assert r.status_code == 200 and r.json()["retention"] == "1年"
    assert r.json()["unanswered"] != []
    bad = client.put(
        f"/api/pia/{pia['id']}", json={"risks": [{"description": "x", "likelihood": 5}]}
    )
    assert bad.status_code == 400


def test_withdraw_needs_a_reason_and_the_return_is_for_the_platform(
    client: TestClient, operator: dict[str, str], platform: dict[str, str]
) -> None:
    pia = _draft(client, operator)
    _post(client, f"/api/pia/{pia['id']}/submit", operator)
    assert (
        _post(client, f"/api/pia/{pia['id']}/return", operator, {"reason": "x"}).status_code == 403
    )
    r = _post(client, f"/api/pia/{pia['id']}/return", platform, {"reason": "リスクを追加"})
    assert r.status_code == 200 and r.json()["status"] == "draft"
    assert _post(client, f"/api/pia/{pia['id']}/withdraw", operator, {}).status_code == 400
    r = _post(client, f"/api/pia/{pia['id']}/withdraw", operator, {"reason": "中止"})
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"


def test_the_platform_lists_all_and_an_operator_its_own(
    client: TestClient, operator: dict[str, str], platform: dict[str, str], cookie: Cookie
) -> None:
    _draft(client, operator)
    other = cookie("other-co", "erin")
    _draft(client, other, service_id="analytics", organization_id="other-co")
    client.cookies.clear()
    client.cookies.update(platform)
    assert {p["service_id"] for p in client.get("/api/pia").json()} == {"shelter", "analytics"}
    client.cookies.clear()
    client.cookies.update(operator)
    assert [p["service_id"] for p in client.get("/api/pia").json()] == ["shelter"]


def test_an_operator_cannot_take_over_a_service_of_another_organisation(
    client: TestClient, operator: dict[str, str], cookie: Cookie
) -> None:
    other = cookie("other-co", "frank")
    _draft(client, other, organization_id="other-co")
    r = _post(client, "/api/pia", operator, complete())
    assert r.status_code == 403
