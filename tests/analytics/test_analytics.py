"""Municipal analytics: consented residents only, aggregates only, small cells suppressed."""

from __future__ import annotations

import csv
import io
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.actors import Purpose
from consent.models import AuditEntry
from phr.analytics import indicators
from phr.analytics.suppression import suppress
from tests.analytics.conftest import FLU, approve
from tests.consent.pia.test_api import Cookie

FLU_KEY = f"{FLU['system']}|{FLU['code']}"


@pytest.fixture
def analyst(client: TestClient, cookie: Cookie, city: Any) -> dict[str, str]:
    c = cookie("city-e", "hanako", role="analyst")
    client.cookies.update(c)
    return c


def populate(city: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"consented": [], "not": []}
    for i in range(12):  # 北条: 12 people in their seventies, all vaccinated
        out["consented"].append(
            city(i, district="北条", vaccinated=True, medicines=6 if i < 10 else 1)
        )
    for i in range(12, 23):  # 吾妻: 11, none vaccinated, all with an advance directive
        out["consented"].append(city(i, district="吾妻", acp=True))
    for i in range(23, 26):  # 大穂: 3 — too few to publish
        out["consented"].append(city(i, district="大穂", vaccinated=True))
    for i in range(26, 31):  # 北条, vaccinated, but no consent for statistics
        out["not"].append(city(i, district="北条", vaccinated=True, consent=False))
    return out


def cells(client: TestClient, name: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/analytics/{name}", params={"start": "2026-01-01", "end": "2026-11-24"})
    assert r.status_code == 200, r.text
    return list(r.json()["cells"])


def test_small_cells_are_suppressed_and_only_consented_residents_count(
    session: Session, client: TestClient, city: Any, analyst: dict[str, str]
) -> None:
    people = populate(city)
    assert cells(client, "vaccination") == []  # no PIA for the service yet: nothing
    approve(session, "analytics", ["PUBHLTH"])
    got = {c["district"]: c for c in cells(client, "vaccination")}
    assert set(got) == {"北条", "吾妻", "大穂"}
    assert got["北条"] == {
        "vaccine": FLU_KEY,
        "age_band": "70-79",
        "district": "北条",
        "numerator": 12,
        "denominator": 12,
        "rate": 1.0,
        "suppressed": False,
    }  # fmt: skip — the 5 who did not consent are not counted
    assert got["大穂"]["suppressed"] and got["大穂"]["numerator"] is None
    # 吾妻 would give 大穂 away from the overall figures: suppressed as well.
    assert got["吾妻"]["suppressed"] and got["吾妻"]["denominator"] is None
    poly = {c["age_band"]: c for c in cells(client, "polypharmacy")}
    assert poly["70-79"]["numerator"] == 10 and poly["70-79"]["denominator"] == 26
    assert poly["total"]["denominator"] == 26
    acp = {c["age_band"]: c for c in cells(client, "acp")}
    assert (acp["70-79"]["numerator"], acp["70-79"]["denominator"]) == (11, 26)
    # The computation is logged once per consenting resident, for the service, with the
    # analyst's name; no one else's data was used.
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.service == "analytics", AuditEntry.action == "export")
    ).all()
    used = {e.resident_id for e in entries} - {None}  # the run without a PIA read no one
    assert used == set(people["consented"])
    assert {e.user_id for e in entries} == {"hanako@city-e"}


def test_emergency_consent_uptake_counts_only_residents_who_shared_for_statistics(
    session: Session, client: TestClient, city: Any, analyst: dict[str, str]
) -> None:
    from consent.actors import Actor
    from consent.policy import schemas
    from consent.policy import service as policy

    people = populate(city)
    approve(session, "analytics", ["PUBHLTH"])
    switched_on = people["consented"][:10] + people["not"][:2]
    for rid in switched_on:
        policy.set_emergency_consent(
            session,
            Actor(kind="resident", resident_id=rid, client_id="app"),
            schemas.EmergencyConsentIn(enabled=True),
        )
    session.commit()
    up = {c["age_band"]: c for c in cells(client, "emergency-consent")}
    # 10 of the 26 who shared for statistics; the 2 who did not share are not counted.
    assert (up["70-79"]["numerator"], up["70-79"]["denominator"]) == (10, 26)
    # The pre-consents themselves stay unreadable to the analytics reader.
    from phr.analytics.service import service_actor
    from phr.store.reader import RecordReader

    reader = RecordReader(session, service_actor("hanako"), Purpose.PUBLIC_HEALTH)
    rows = list(reader.export(types=["Consent"], shared=False, detail="test"))
    assert all('"patient-privacy"' not in content for _, _, content in rows)


def test_csv_download_carries_the_suppression(
    session: Session, client: TestClient, city: Any, analyst: dict[str, str]
) -> None:
    populate(city)
    approve(session, "analytics", ["PUBHLTH"])
    r = client.get("/api/analytics/vaccination", params={"format": "csv", "start": "2026-01-01"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    small = next(x for x in rows if x["district"] == "大穂")
    assert small["suppressed"] == "True" and small["numerator"] == "" and small["denominator"] == ""
    parquet = client.get("/api/analytics/vaccination", params={"format": "parquet"})
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert parquet.status_code == 400 and "pyarrow" in parquet.json()["message"]
    else:
        table = pd.read_parquet(io.BytesIO(parquet.content))
        assert table.loc[table["district"] == "大穂", "numerator"].isna().all()
    page = client.get("/analytics")
    assert page.status_code == 200 and "北条" in page.text and "—" in page.text


def test_only_municipal_analysts(client: TestClient, cookie: Cookie, city: Any) -> None:
    assert client.get("/api/analytics/vaccination").status_code == 401
    client.cookies.update(cookie("clinic-a", "doc", role="doctor"))
    assert client.get("/api/analytics/vaccination").status_code == 403
    client.cookies.clear()
    client.cookies.update(cookie("city-e", "ana", role="analyst"))
    assert client.get("/api/analytics/nonsense").status_code == 404


def frame(**values: Any) -> pd.DataFrame:
    base = {f"value_{c}": None for c in indicators.observation_codes()}
    return pd.DataFrame([{**base, "sex": "male", **values}])


@pytest.mark.parametrize(
    ("values", "meets"),
    [
        # Men: waist 85 cm or more and two of lipids / blood pressure / glucose.
        ({"value_8280-0": 85, "value_8480-6": 130, "value_2571-8": 150}, True),
        ({"value_8280-0": 84.9, "value_8480-6": 140, "value_2571-8": 200}, False),
        ({"value_8280-0": 90, "value_8480-6": 140}, False),  # one component only
        ({"value_8280-0": 90, "value_8462-4": 85, "value_2085-9": 39}, True),  # DBP, low HDL
        ({"value_8280-0": 90, "value_1558-6": 110, "value_2085-9": 40}, False),  # HDL 40: not low
        ({"value_8280-0": 90, "value_1558-6": 110, "value_8480-6": 129, "value_8462-4": 85}, True),
        # Women: waist 90 cm or more.
        ({"sex": "female", "value_8280-0": 89, "value_8480-6": 140, "value_1558-6": 120}, False),
        ({"sex": "female", "value_8280-0": 90, "value_8480-6": 140, "value_1558-6": 120}, True),
    ],
)
def test_japanese_metabolic_syndrome_criteria(values: dict[str, Any], meets: bool) -> None:
    assert bool(indicators.metabolic_syndrome_flags(frame(**values)).iloc[0]) is meets


def test_suppression_rules() -> None:
    t = pd.DataFrame({"d": ["a", "b"], "numerator": [0, 5], "denominator": [30, 9]})
    s = suppress(t).set_index("d")
    assert list(s["suppressed"]) == [True, True]  # b: 9 people; a: so b cannot be derived
    t = pd.DataFrame({"d": ["a", "b", "c"], "numerator": [0, 12, 9], "denominator": [30, 40, 50]})
    s = suppress(t).set_index("d")
    assert s.loc["c", "suppressed"]  # 9 people have it
    assert s.loc["a", "suppressed"]  # the smallest other cell, so 9 cannot be subtracted
    assert not s.loc["b", "suppressed"] and s.loc["b", "rate"] == 0.3
    t = pd.DataFrame({"d": ["a", "b"], "numerator": [0, 12], "denominator": [30, 40]})
    assert not suppress(t)["suppressed"].any()  # none of 30 singles no one out


def test_the_demo_seeds_the_population_services_pias(session: Session) -> None:
    from consent.pia.service import pia_approved, seed_platform_pias
    from phr.analytics.demo import seed_population_pias

    seed_platform_pias(session)
    assert seed_population_pias(session) == 2
    assert pia_approved(session, "analytics") and pia_approved(session, "research")
    assert seed_population_pias(session) == 0
