"""The JSON API (``/api/homecare``) with the tokens apps get: the resident's own requests,
the staff's steps, one error shape, and no access without a token."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.actors import Actor
from tests.conftest import user_token_headers
from tests.homecare.conftest import World


def _staff(session: Session, actor: Actor) -> dict[str, str]:
    return user_token_headers(
        session,
        subject_kind="staff",
        subject_id=actor.user_id or "",
        organization_id=actor.organization_id,
        role=actor.role,
    )


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def test_a_visit_through_the_api(client: TestClient, session: Session, world: World) -> None:
    w = world
    me = user_token_headers(
        session, subject_kind="resident", subject_id=w.resident, resident_id=w.resident
    )
    req = _ok(
        client.post(
            "/api/homecare/me/requests",
            headers=me,
            json={"complaint": "fever", "what": "発熱", "since": "今朝"},
        ),
        201,
    )
    assert req["status"] == "open" and not req["call_119"]
    assert [r["id"] for r in _ok(client.get("/api/homecare/me/requests", headers=me))] == [
        req["id"]
    ]
    clerk, nurse, doctor = (
        _staff(session, w.clerk),
        _staff(session, w.nurse),
        _staff(session, w.doctor),
    )
    assert [r["id"] for r in _ok(client.get("/api/homecare/board", headers=clerk))] == [req["id"]]
    _ok(
        client.post(
            f"/api/homecare/requests/{req['id']}/assign",
            headers=clerk,
            json={"nurse_id": w.nurse.user_id},
        )
    )
    _ok(client.post(f"/api/homecare/requests/{req['id']}/dispatch", headers=clerk))
    visit = _ok(client.post(f"/api/homecare/requests/{req['id']}/arrive", headers=nurse), 201)
    vitals = _ok(
        client.post(
            f"/api/homecare/visits/{visit['id']}/vitals",
            headers=nurse,
            json={
                "respiratory_rate": 25,
                "spo2": 91,
                "systolic": 100,
                "pulse": 112,
                "consciousness": "A",
                "temperature": 39.2,
            },
        ),
        201,
    )
    # RCP 2017: RR 25 → 3, SpO2 91 → 3, SBP 100 → 2, pulse 112 → 2, 39.2 °C → 2
    assert (vitals["news2"], vitals["risk"]) == (12, "high")
    summary = _ok(client.get(f"/api/homecare/visits/{visit['id']}/summary", headers=doctor))
    assert summary["consent"] and summary["name"]
    refused = client.post(
        f"/api/homecare/visits/{visit['id']}/prescription",
        headers=doctor,
        json={"lines": [{"stock_id": w.good, "quantity": 1, "dosage": "1錠"}]},
    )
    assert refused.status_code == 409 and "error" in refused.json()
    stock = _ok(client.get(f"/api/homecare/enrolments/{w.enrolment}/stock", headers=doctor))
    assert {s["lot"]: s["expired"] for s in stock} == {"A1": False, "OLD": True}
    assert client.get("/api/homecare/figures.csv", headers=clerk).text.startswith("month,")


def test_no_token_no_access(client: TestClient) -> None:
    assert client.get("/api/homecare/board").status_code == 401
    assert client.post("/api/homecare/me/requests", json={}).status_code in (401, 422)
