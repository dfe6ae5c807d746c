"""The triage API: anonymous triage, signed-in triage under consent, severity scores for
organisations, the hospital registry, ranking and mass-casualty assignment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from consent.models import AuditEntry
from phr.store import search as fsearch
from phr.store.reader import RecordReader
from tests.conftest import OrgFactory

HeadInjury = {"complaint": "injury_fall", "answers": {"head_hit": True}}
NEWS2_BODY = {
    "respiratory_rate": 22,
    "spo2": 95,
    "spo2_scale": 1,
    "on_oxygen": False,
    "systolic_bp": 105,
    "pulse": 112,
    "consciousness": "A",
    "temperature": 38.4,
}


def scene_patient(pid: str, urgency: str, needs: list[str]) -> dict[str, Any]:
    """A patient at the scene of an incident near Gakuen."""
    return {"id": pid, "latitude": 36.085, "longitude": 140.110, "urgency": urgency, "needs": needs}


def own_records(session: Session, rid: str, rtype: str) -> list[dict[str, Any]]:
    reader = RecordReader(session, Actor(kind="resident", resident_id=rid), Purpose.PATIENT_ACCESS)
    from phr.store import repository as repo

    rows = reader.search(fsearch.parse(rtype, [("patient", rid)])).matches
    return [repo.load_json(r.content) for r in rows]


class TestComplaints:
    def test_the_list_has_adult_and_child_protocols(self, client: TestClient) -> None:
        r = client.get("/api/triage/complaints")
        assert r.status_code == 200
        ids = {c["id"] for c in r.json()}
        assert {
            "chest_pain",
            "difficulty_breathing",
            "abdominal_pain",
            "headache",
            "fever",
            "dizziness_fainting",
            "injury_fall",
            "vomiting_diarrhoea",
            "allergic_reaction",
            "child_fever",
            "child_convulsion",
        } <= ids
        assert {c["population"] for c in r.json()} >= {"adult", "child"}

    def test_a_protocol_has_bilingual_questions_and_sources(self, client: TestClient) -> None:
        r = client.get("/api/triage/complaints/child_fever").json()
        assert r["questions"][0]["text"]["ja"] and r["questions"][0]["text"]["en"]
        assert "nice_ng143" in r["sources"]
        assert client.get("/api/triage/complaints/nope").status_code == 404

    def test_every_protocol_is_a_valid_fhir_questionnaire(self, client: TestClient) -> None:
        from fhir_gateway.validation import validate_resource

        for c in client.get("/api/triage/complaints").json():
            r = client.get(f"/api/triage/complaints/{c['id']}/questionnaire")
            assert r.status_code == 200
            q = r.json()
            assert validate_resource(q) == [] and q["url"].endswith(c["id"])
            assert q["_title"]["extension"][0]["extension"][1]["valueString"] == c["title"]["en"]


class TestAnonymousTriage:
    def test_works_without_a_token_and_writes_nothing(self, client: TestClient) -> None:
        r = client.post(
            "/api/triage/evaluate",
            json={"complaint": "chest_pain", "answers": {"pressing_now": True, "cold_sweat": True}},
        )
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["urgency"] == "red" and out["needs"] == ["cath_lab"]
        assert out["next_steps"][0]["contact"] == "119"
        assert out["phr"]["status"] == "anonymous" and out["recorded"] is None
        assert out["findings"][0]["source"].startswith("NICE CG95")

    def test_self_reported_risk_factors_raise_urgency_with_the_reason(
        self, client: TestClient
    ) -> None:
        plain = client.post("/api/triage/evaluate", json=HeadInjury).json()
        assert plain["urgency"] == "green"
        r = client.post(
            "/api/triage/evaluate", json={**HeadInjury, "risk_factors": ["anticoagulant"]}
        ).json()
        assert r["urgency"] == "orange" and r["base_urgency"] == "green"
        raised = [f for f in r["findings"] if f["kind"] == "risk_factor"]
        assert raised[0]["factor"] == "anticoagulant" and raised[0]["raised"]
        assert "as you told us" in raised[0]["reason"]["en"]

    def test_bad_answers_are_refused(self, client: TestClient) -> None:
        r = client.post(
            "/api/triage/evaluate", json={"complaint": "fever", "answers": {"temperature": "hot"}}
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_input"
        r = client.post(
            "/api/triage/evaluate", json={"complaint": "fever", "answers": {"nope": True}}
        )
        assert r.status_code == 400

    def test_a_protocol_for_the_wrong_age_group_is_refused(self, client: TestClient) -> None:
        r = client.post("/api/triage/evaluate", json={"complaint": "headache", "age": 6})
        assert r.status_code == 400 and "child_fever" in r.json()["message"]
        r = client.post("/api/triage/evaluate", json={"complaint": "child_fever", "age": 40})
        assert r.status_code == 400

    def test_a_bad_token_is_not_treated_as_anonymous(self, client: TestClient) -> None:
        r = client.post(
            "/api/triage/evaluate", json=HeadInjury, headers={"Authorization": "Bearer nonsense"}
        )
        assert r.status_code == 401

    def test_next_steps_follow_the_time_of_day(self, client: TestClient) -> None:
        body = {"complaint": "fever", "answers": {"temperature": 40.2}}
        day = client.post(
            "/api/triage/evaluate", json={**body, "at": "2026-11-25T10:00:00+09:00"}
        ).json()
        night = client.post(
            "/api/triage/evaluate", json={**body, "at": "2026-11-25T23:00:00+09:00"}
        ).json()
        assert day["urgency"] == night["urgency"] == "yellow"
        assert day["next_steps"][0]["id"] == "family_doctor"
        assert night["next_steps"][0]["id"] == "night_clinic"
        child = client.post(
            "/api/triage/evaluate",
            json={
                "complaint": "child_fever",
                "answers": {"temperature": 38.5},
                "age": 2,
                "at": "2026-11-25T23:00:00+09:00",
            },
        ).json()
        assert child["urgency"] == "green"
        assert "child_online_clinic" in {s["id"] for s in child["next_steps"]}


class TestSignedInTriage:
    @pytest.fixture
    def signed_in(
        self,
        pias: None,
        phr_resident: dict[str, Any],
        resident_token: Callable[[str], dict[str, str]],
    ) -> dict[str, str]:
        """The resident's token headers, with the platform's PIAs in force."""
        return resident_token(phr_resident["id"])

    def test_without_consent_the_advice_is_anonymous_level_and_says_why(
        self,
        client: TestClient,
        session: Session,
        phr_resident: dict[str, Any],
        signed_in: dict[str, str],
    ) -> None:
        h = signed_in
        r = client.post("/api/triage/evaluate", json=HeadInjury, headers=h)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["urgency"] == "green"
        assert out["phr"]["status"] == "not_permitted"
        assert "not consented" in out["phr"]["reason"]["en"]
        # The result is still the resident's own record.
        assert out["recorded"] is not None
        ras = own_records(session, phr_resident["id"], "RiskAssessment")
        assert [ra["prediction"][0]["outcome"]["coding"][0]["code"] for ra in ras] == ["green"]

    def test_with_consent_phr_risk_factors_raise_urgency_and_are_recorded(
        self,
        client: TestClient,
        session: Session,
        phr_resident: dict[str, Any],
        signed_in: dict[str, str],
    ) -> None:
        h = signed_in
        c = client.put("/api/triage/me/consent", json={"enabled": True}, headers=h)
        assert c.status_code == 200, c.text
        out = client.post("/api/triage/evaluate", json=HeadInjury, headers=h).json()
        assert out["phr"]["status"] == "used"
        assert out["phr"]["factors"]["anticoagulant"] == [
            f"MedicationRequest/{phr_resident['medication']}"
        ]
        assert out["phr"]["factors"]["diabetes"] == [f"Condition/{phr_resident['condition']}"]
        assert out["urgency"] == "orange" and out["base_urgency"] == "green"
        reason = next(f for f in out["findings"] if f["factor"] == "anticoagulant")
        assert "from your health record" in reason["reason"]["en"]

        qr = own_records(session, phr_resident["id"], "QuestionnaireResponse")
        form = client.get("/api/triage/complaints/injury_fall/questionnaire").json()
        assert qr[0]["questionnaire"] == f"{form['url']}|{form['version']}"
        assert {i["linkId"] for i in qr[0]["item"]} <= {i["linkId"] for i in form["item"]}
        ra = own_records(session, phr_resident["id"], "RiskAssessment")
        assert qr[0]["id"] == out["recorded"]["QuestionnaireResponse"]
        assert qr[0]["item"][0]["answer"] == [{"valueBoolean": True}]
        assert ra[0]["prediction"][0]["outcome"]["coding"][0]["code"] == "orange"
        basis = {b["reference"] for b in ra[0]["basis"]}
        assert f"QuestionnaireResponse/{qr[0]['id']}" in basis
        assert f"MedicationRequest/{phr_resident['medication']}" in basis

        # The read is in the resident's access log, as the triage service for TRIAGE.
        session.commit()
        logged = session.scalars(
            select(AuditEntry).where(
                AuditEntry.resident_id == phr_resident["id"], AuditEntry.action == "triage"
            )
        ).all()
        assert [(e.service, e.purpose) for e in logged] == [("triage", "TRIAGE")]

        mine = client.get("/api/triage/me/results", headers=h).json()
        assert [(m["complaint"], m["urgency"], m["questionnaire_response"]) for m in mine] == [
            ("injury_fall", "orange", qr[0]["id"])
        ]

        # Revoking stops it at once.
        client.put("/api/triage/me/consent", json={"enabled": False}, headers=h)
        again = client.post("/api/triage/evaluate", json=HeadInjury, headers=h).json()
        assert again["phr"]["status"] == "not_permitted" and again["urgency"] == "green"

    def test_a_consent_to_another_purpose_does_not_let_triage_read(
        self, client: TestClient, phr_resident: dict[str, Any], signed_in: dict[str, str]
    ) -> None:
        h = signed_in
        r = client.post(
            "/api/me/consents",
            headers=h,
            json={"recipients": [{"kind": "any"}], "purposes": ["TREAT"]},
        )
        assert r.status_code == 201, r.text
        out = client.post("/api/triage/evaluate", json=HeadInjury, headers=h).json()
        assert out["phr"]["status"] == "not_permitted" and out["urgency"] == "green"

    def test_without_an_approved_pia_the_record_is_not_read(
        self,
        client: TestClient,
        phr_resident: dict[str, Any],
        resident_token: Callable[[str], dict[str, str]],
    ) -> None:
        h = resident_token(phr_resident["id"])
        client.put("/api/triage/me/consent", json={"enabled": True}, headers=h)
        out = client.post("/api/triage/evaluate", json=HeadInjury, headers=h).json()
        assert out["phr"]["status"] == "not_permitted"
        assert "privacy impact assessment" in out["phr"]["reason"]["en"]
        assert out["urgency"] == "green"

    def test_asking_for_someone_else_neither_reads_nor_writes(
        self,
        client: TestClient,
        session: Session,
        phr_resident: dict[str, Any],
        signed_in: dict[str, str],
    ) -> None:
        h = signed_in
        client.put("/api/triage/me/consent", json={"enabled": True}, headers=h)
        out = client.post(
            "/api/triage/evaluate",
            headers=h,
            json={
                "complaint": "child_fever",
                "answers": {"temperature": 38.2},
                "age": 4,
                "subject": "other",
            },
        ).json()
        assert out["phr"]["status"] == "not_self" and out["recorded"] is None
        assert own_records(session, phr_resident["id"], "RiskAssessment") == []

    def test_a_resident_can_ask_not_to_keep_the_result(
        self,
        client: TestClient,
        session: Session,
        phr_resident: dict[str, Any],
        signed_in: dict[str, str],
    ) -> None:
        h = signed_in
        out = client.post(
            "/api/triage/evaluate", headers=h, json={**HeadInjury, "record": False}
        ).json()
        assert out["recorded"] is None and out["urgency"] == "green"
        assert own_records(session, phr_resident["id"], "QuestionnaireResponse") == []


class TestScores:
    def test_news2_needs_an_authenticated_organisation(
        self,
        client: TestClient,
        make_org: OrgFactory,
        phr_resident: dict[str, Any],
        resident_token: Callable[[str], dict[str, str]],
    ) -> None:
        assert client.post("/api/triage/news2", json=NEWS2_BODY).status_code == 401
        assert client.get("/api/triage/me/results").status_code == 401
        h = resident_token(phr_resident["id"])
        assert client.post("/api/triage/news2", json=NEWS2_BODY, headers=h).status_code == 403
        ems = make_org("ems-x", "ems", scopes=["system/*.rs"])
        assert client.get("/api/triage/me/results", headers=ems["headers"]).status_code == 403
        r = client.post("/api/triage/news2", json=NEWS2_BODY, headers=ems["headers"])
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["points"] == {
            "respiratory_rate": 2,
            "spo2": 1,
            "on_oxygen": 0,
            "systolic_bp": 1,
            "pulse": 2,
            "consciousness": 0,
            "temperature": 1,
        }
        assert (out["score"], out["risk"]) == (7, "high")
        assert set(out) == {"score", "points", "risk"}

    def test_news2_takes_exactly_its_fields(self, client: TestClient, make_org: OrgFactory) -> None:
        ems = make_org("ems-y", "ems", scopes=["system/*.rs"])
        for bad in (
            {**NEWS2_BODY, "extra": 1},
            {**NEWS2_BODY, "spo2_scale": 3},
            {**NEWS2_BODY, "consciousness": "X"},
            {k: v for k, v in NEWS2_BODY.items() if k != "pulse"},
        ):
            r = client.post("/api/triage/news2", json=bad, headers=ems["headers"])
            assert r.status_code == 400, bad

    def test_qsofa_shock_index_and_jtas(self, client: TestClient, make_org: OrgFactory) -> None:
        h = make_org("ems-z", "ems", scopes=["system/*.rs"])["headers"]
        q = client.post(
            "/api/triage/qsofa",
            headers=h,
            json={"respiratory_rate": 24, "systolic_bp": 95, "gcs": 15},
        ).json()
        assert q == {
            "score": 2,
            "criteria": {
                "respiratory_rate_ge_22": True,
                "altered_mentation": False,
                "systolic_bp_le_100": True,
            },
            "positive": True,
        }
        si = client.post(
            "/api/triage/shock-index", headers=h, json={"pulse": 120, "systolic_bp": 100}
        ).json()
        assert si == {"value": 1.2, "band": "shock"}
        j = client.post(
            "/api/triage/jtas",
            headers=h,
            json={
                "complaint": "chest_pain",
                "answers": {"pressing_now": True},
                "spo2": 97,
                "pulse": 88,
                "systolic_bp": 135,
            },
        ).json()
        assert j["level"] == 2 and j["name"]["en"] == "emergent"
        assert j["needs"] == ["cath_lab"]
        j = client.post("/api/triage/jtas", headers=h, json={"gcs": 8, "spo2": 97}).json()
        assert j["level"] == 1


class TestHospitals:
    def test_the_registry_lists_the_demo_hospitals(
        self, client: TestClient, make_org: OrgFactory, hospitals: int
    ) -> None:
        h = make_org("ems-h", "ems", scopes=["system/*.rs"])["headers"]
        rows = client.get("/api/triage/hospitals", headers=h).json()
        assert len(rows) == hospitals >= 8
        gakuen = next(r for r in rows if r["id"] == "tsukuba-gakuen-hospital")
        assert "cath_lab" in gakuen["capabilities"] and gakuen["accepts_24h"]

    def test_a_hospital_updates_only_its_own_availability(
        self, client: TestClient, make_org: OrgFactory, hospitals: int
    ) -> None:
        own = make_org("tsukuba-gakuen-hospital", "hospital")["headers"]
        other = make_org("hojo-memorial-hospital", "hospital")["headers"]
        body = {"accepting": True, "free_beds": 1, "unavailable": ["cath_lab"]}
        url = "/api/triage/hospitals/tsukuba-gakuen-hospital/availability"
        assert client.put(url, json=body, headers=other).status_code == 403
        r = client.put(url, json=body, headers=own)
        assert r.status_code == 200 and r.json()["unavailable"] == ["cath_lab"]
        bad = client.put(url, json={**body, "unavailable": ["burns"]}, headers=own)
        assert bad.status_code == 400

    def test_ranking_for_one_patient_respects_capability_and_availability(
        self, client: TestClient, make_org: OrgFactory, hospitals: int
    ) -> None:
        ems = make_org("ems-r", "ems", scopes=["system/*.rs"])["headers"]
        patient = {
            "id": "p1",
            "latitude": 36.0830,
            "longitude": 140.1110,
            "urgency": "red",
            "needs": ["cath_lab"],
        }
        ranked = client.post("/api/triage/hospitals/rank", json=patient, headers=ems).json()
        assert ranked[0]["hospital"] == "tsukuba-gakuen-hospital"
        assert ranked[0]["minutes"] < ranked[1]["minutes"]
        assert "cath_lab" in ranked[0]["reason"]
        own = make_org("tsukuba-gakuen-hospital", "hospital")["headers"]
        client.put(
            "/api/triage/hospitals/tsukuba-gakuen-hospital/availability",
            headers=own,
            json={"accepting": True, "free_beds": 3, "unavailable": ["cath_lab"]},
        )
        ranked = client.post("/api/triage/hospitals/rank", json=patient, headers=ems).json()
        assert "tsukuba-gakuen-hospital" not in {r["hospital"] for r in ranked}
        assert "call ahead" not in ranked[0]["reason"]
        assert client.post("/api/triage/hospitals/rank", json=patient).status_code == 401

    def test_mass_casualty_assignment_respects_capacity_and_capability(
        self, client: TestClient, make_org: OrgFactory, hospitals: int
    ) -> None:
        ems = make_org("ems-m", "ems", scopes=["system/*.rs"])["headers"]
        # A bus crash near Gakuen: 16 patients, 6 needing trauma care, 2 burns.
        patients = [
            scene_patient(
                f"p{i}",
                ["red", "orange", "yellow", "green"][i % 4],
                ["trauma"] if i < 6 else (["burns"] if i < 8 else []),
            )
            for i in range(16)
        ]
        r = client.post("/api/triage/mci/assign", json={"patients": patients}, headers=ems)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["unassigned"] == 0 and out["seconds"] < 1
        registry = {h["id"]: h for h in client.get("/api/triage/hospitals", headers=ems).json()}
        load: dict[str, int] = {}
        for a in out["assignments"]:
            load[a["hospital"]] = load.get(a["hospital"], 0) + 1
            need = next(p["needs"] for p in patients if p["id"] == a["patient"])
            assert set(need) <= set(registry[a["hospital"]]["capabilities"]), a
            assert a["reason"]
        assert all(n <= registry[h]["free_beds"] for h, n in load.items())

    def test_patients_beyond_capacity_are_left_unassigned_least_urgent_first(
        self, client: TestClient, make_org: OrgFactory, hospitals: int
    ) -> None:
        ems = make_org("ems-n", "ems", scopes=["system/*.rs"])["headers"]
        # Burns: only two hospitals treat them (8 + 8 beds); 20 patients need burns care.
        patients = [
            scene_patient(f"b{i}", "red" if i < 4 else "green", ["burns"]) for i in range(20)
        ]
        out = client.post("/api/triage/mci/assign", json={"patients": patients}, headers=ems).json()
        assert out["unassigned"] == 4
        left = {a["patient"] for a in out["assignments"] if a["hospital"] is None}
        assert left.isdisjoint({"b0", "b1", "b2", "b3"})
        assert all(
            "more urgent" in a["reason"] for a in out["assignments"] if a["hospital"] is None
        )
