"""The published results: HTML pages and JSON, no sign-in, everything escaped."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.pia import service

from .conftest import DraftFactory, risk

BOB = "bob@platform"


def _publish(session: Session, approved: DraftFactory, service_id: str, **kw: object) -> None:
    pia = approved(service_id, **kw)
    service.publish(session, pia_id=pia.id, by=BOB)
    session.commit()


def test_the_list_shows_only_published_assessments(
    client: TestClient, session: Session, approved: DraftFactory, draft: DraftFactory
) -> None:
    _publish(session, approved, "shelter")
    approved("analytics")  # approved, not published
    draft("triage-x")
    session.commit()
    r = client.get("/pia")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "避難所での要支援者の受入れ" in r.text
    assert "つくばケア株式会社" in r.text
    assert "/pia/shelter" in r.text
    assert "/pia/analytics" not in r.text and "/pia/triage-x" not in r.text
    data = client.get("/api/pia/public").json()
    assert [a["service_id"] for a in data] == ["shelter"]
    assert data[0]["overall"] == {"value": 1, "code": "low", "ja": "低", "en": "low"}


def test_the_summary_page_shows_data_handled_risks_levels_and_mitigations(
    client: TestClient, session: Session, approved: DraftFactory
) -> None:
    _publish(
        session,
        approved,
        "shelter",
        risks=[risk(), risk(description="誤った受入れ判断", impact_physical=4, likelihood=2)],
    )
    r = client.get("/pia/shelter")
    assert r.status_code == 200
    for text in [
        "避難所での適切な支援",  # purpose
        "服薬 Medicines",  # data
        "避難所の保健師",  # recipient
        "災害の終了後90日で消去",  # retention
        "誤った受入れ判断",
        "暗号化とアクセス制御",
        "高",
        "high",
        "安全管理措置",
    ]:
        assert text in r.text, text
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    body = client.get("/api/pia/public/shelter").json()
    assert body["overall"]["code"] == "high"
    assert [x["level"]["code"] for x in body["risks"]] == ["high", "low"]
    assert "answers" not in body and "created_by" not in body


def test_names_and_texts_are_escaped(
    client: TestClient, session: Session, approved: DraftFactory
) -> None:
    evil = "<script>alert('x')</script>"
    _publish(
        session,
        approved,
        "shelter",
        service_name=evil,
        purposes=[f"目的 {evil}"],
        risks=[risk(description=evil, mitigation='"><img src=x onerror=alert(1)>')],
    )
    for url in ["/pia", "/pia/shelter"]:
        text = client.get(url).text
        assert "<script>alert" not in text and "<img src=x" not in text
        assert "&lt;script&gt;" in text


def test_an_unpublished_service_has_no_public_page(
    client: TestClient, session: Session, approved: DraftFactory
) -> None:
    approved("shelter")
    session.commit()
    r = client.get("/pia/shelter")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert client.get("/api/pia/public/shelter").status_code == 404
    r = client.get("/pia/%3Cb%3Ex")
    assert "<b>x" not in r.text


def test_the_questionnaire_is_public(client: TestClient) -> None:
    body = client.get("/api/pia/questionnaire").json()
    assert len(body["items"]) == 22
    assert sum(len(i["questions"]) for i in body["items"]) == 64
