"""Pseudonymised research extracts: consented residents only, no direct identifiers,
keyed pseudonyms, shifted dates, no free text, and k-anonymity enforced."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from consent.policy import schemas
from consent.policy import service as policy
from phr.research.pseudonymise import SHIFT_DAYS, Pseudonymiser
from phr.research.service import k_report
from tests.analytics.conftest import approve
from tests.consent.pia.test_api import Cookie

NOTE = "自宅で転倒。娘の山田花子さんが付き添い。"


@pytest.fixture
def analyst(client: TestClient, cookie: Cookie) -> None:
    client.cookies.update(cookie("city-e", "hanako", role="analyst"))


def research_consent(session: Session, pid: str) -> None:
    policy.create_consent(
        session,
        Actor(kind="resident", resident_id=pid, client_id="app"),
        schemas.ConsentCreate(recipients=[{"kind": "any"}], purposes=[Purpose.RESEARCH]),
    )
    session.commit()


def cohort(session: Session, city: Any, n: int, start: int = 0) -> list[str]:
    """``n`` women in their seventies of 北条 consenting to research, each with an
    HbA1c Observation; plus 3 who only consented to public health."""
    ids = []
    for i in range(start, start + n):
        pid = city(i, district="北条", observations={"4548-4": 6.5})
        research_consent(session, pid)
        ids.append(pid)
    for i in range(start + n, start + n + 3):
        city(i, district="北条", observations={"4548-4": 7.5})
    return ids


def post(client: TestClient, **body: Any) -> Any:
    return client.post(
        "/api/research/extracts",
        json={"project": "dm-2026", "types": ["Patient", "Observation"], **body},
    )


def test_an_extract_is_pseudonymised_and_limited_to_research_consents(
    session: Session, client: TestClient, city: Any, analyst: None
) -> None:
    ids = cohort(session, city, 10)
    approve(session, "research", ["HRESCH"])
    r = post(client)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["report"]["k_achieved"] == 10 and body["report"]["accepted"]
    assert len(body["subjects"]) == 10  # the 3 without a research consent are not there
    assert {(s["age_band"], s["sex"], s["district"]) for s in body["subjects"]} == {
        ("70-79", "female", "北条")
    }
    text = orjson.dumps(body).decode()
    for pid in ids:
        assert pid not in text  # no platform id anywhere
    assert "市民" not in text and "A1" not in text and "1950-06-01" not in text
    obs = body["resources"]
    assert len(obs) == 10 and all("meta" not in o for o in obs)
    subjects = {s["subject"] for s in body["subjects"]}
    assert {o["subject"]["reference"].split("/")[1] for o in obs} == subjects
    assert all(o["valueQuantity"]["value"] == 6.5 for o in obs)  # the 7.5s are not there
    shifted = {o["effectiveDateTime"][:10] for o in obs}
    assert all(abs((date.fromisoformat(d) - date(2026, 6, 1)).days) <= SHIFT_DAYS for d in shifted)
    assert len(shifted) > 1  # each person has their own shift


def test_an_extract_below_k_is_refused(
    session: Session, client: TestClient, city: Any, analyst: None
) -> None:
    cohort(session, city, 9)
    approve(session, "research", ["HRESCH"])
    r = post(client)
    assert r.status_code == 422
    assert "k-anonymity 9 is below 10" in r.json()["message"]
    report = r.json()["details"][0]["report"]
    assert report["subjects_in_classes_below_k"] == 9 and report["accepted"] is False
    assert post(client, k=5).status_code == 400  # k cannot be lowered below 10


def test_without_the_service_pia_nothing_is_read(
    session: Session, client: TestClient, city: Any, analyst: None
) -> None:
    cohort(session, city, 10)
    r = post(client)
    assert r.status_code == 422 and r.json()["details"][0]["report"]["subjects"] == 0


def test_pseudonyms_are_keyed_per_project_and_free_text_goes() -> None:
    a, b = Pseudonymiser("p1"), Pseudonymiser("p2")
    assert a.pseudonym("Patient", "x") == Pseudonymiser("p1").pseudonym("Patient", "x")
    assert a.pseudonym("Patient", "x") != b.pseudonym("Patient", "x")
    res = {
        "resourceType": "Condition", "id": "c1", "text": {"div": NOTE}, "note": [{"text": NOTE}],
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "W19",
                             "display": "転倒"}], "text": NOTE},
        "subject": {"reference": "Patient/p", "display": "山田太郎"},
        "onsetDateTime": "2026-03-01T10:00:00+09:00",
    }  # fmt: skip
    out = a.resource(res, "p")
    assert NOTE not in orjson.dumps(out).decode() and "山田" not in orjson.dumps(out).decode()
    assert out["code"]["coding"][0]["code"] == "W19"
    assert out["subject"] == {"reference": f"Patient/{a.pseudonym('Patient', 'p')}"}
    shift = a.shift_days("p")
    assert out["onsetDateTime"].endswith("T10:00:00+09:00") and -180 <= shift <= 180
    assert (
        date.fromisoformat(out["onsetDateTime"][:10]).toordinal() - date(2026, 3, 1).toordinal()
        == shift
    )


def test_k_report() -> None:
    subjects = [{"age_band": "70-79", "sex": "female"}] * 12 + [
        {"age_band": "80-89", "sex": "male"}
    ] * 3
    r = k_report(subjects, ["age_band", "sex"], 10)
    assert (r["k_achieved"], r["classes_below_k"], r["accepted"]) == (3, 1, False)
    assert r["max_reidentification_risk"] == round(1 / 3, 4)
    assert k_report(subjects, [], 10)["k_achieved"] == 15  # no quasi-identifier: one class
