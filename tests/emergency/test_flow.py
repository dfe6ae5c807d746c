"""The paramedic flow end to end, through the HTTP API with real tokens."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.actors import Actor
from consent.models import AuditEntry, Notification
from consent.notifications import add_watcher
from phr.acp import schemas as acp_schemas
from phr.acp import service as acp_service
from tests.emergency.conftest import Loader, set_emergency_consent

BASE = "/api/emergency/incidents"
HANAKO = {"family": "筑波", "given": "花子", "birth_date": "1950-04-01", "sex": "female"}


def open_incident(client: TestClient, ems: dict[str, Any]) -> str:
    r = client.post(BASE, json={"district": "tsukuba-north"}, headers=ems["headers"])
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def identify(client: TestClient, ems: dict[str, Any], incident: str, **query: Any) -> Any:
    r = client.post(
        f"{BASE}/{incident}/identify/demographic", json=query or HANAKO, headers=ems["headers"]
    )
    assert r.status_code == 200, r.text
    return r.json()


def confirmed_incident(client: TestClient, ems: dict[str, Any]) -> str:
    incident = open_incident(client, ems)
    cand = identify(client, ems, incident)["candidates"][0]["id"]
    r = client.post(
        f"{BASE}/{incident}/confirm",
        json={"candidate_id": cand, "method": "birth_date", "birth_date": "1950-04-01"},
        headers=ems["headers"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "identified"
    return incident


def save_acp(session: Session, resident: str) -> None:
    acp_service.save(
        session=session,
        actor=Actor(kind="resident", resident_id=resident),
        body=acp_schemas.AcpSave(
            content=acp_schemas.AcpContent(
                own_words="延命より家で穏やかに過ごしたい",
                treatments=acp_schemas.Treatments(
                    resuscitation="do_not_want", intubation="do_not_want", transfusion="want"
                ),
                place_of_death="home",
                contacts=[acp_schemas.Person(name="筑波 一郎", relationship="長男", phone="090")],
                family_doctor=acp_schemas.FamilyDoctor(name="山田医師", clinic="山田医院"),
            )
        ),
    )
    session.commit()


def summary(client: TestClient, org: dict[str, Any], incident: str) -> Any:
    return client.get(f"{BASE}/{incident}/summary", headers=org["headers"])


class TestConsent:
    def test_paramedic_without_emergency_consent_sees_nothing(
        self, client: TestClient, ems: dict[str, Any], resident: str
    ) -> None:
        incident = confirmed_incident(client, ems)
        r = summary(client, ems, incident)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["consent"] == "none"
        assert "no emergency consent on file" in body["message"]
        assert body["patient"] is None and body["acp"] is None
        for key in ("allergies", "medications", "problems", "results", "contacts"):
            assert body[key] == []
        doc = client.get(f"{BASE}/{incident}/summary/$document", headers=ems["headers"])
        assert doc.status_code == 404

    def test_revoked_emergency_consent_shows_nothing(
        self, client: TestClient, ems: dict[str, Any], resident: str, session: Session
    ) -> None:
        set_emergency_consent(session, resident, True)
        incident = confirmed_incident(client, ems)
        assert summary(client, ems, incident).json()["consent"] == "granted"
        set_emergency_consent(session, resident, False)
        body = summary(client, ems, incident).json()
        assert body["consent"] == "none" and body["medications"] == []

    def test_with_consent_the_summary_has_each_item_with_source_and_date(
        self, client: TestClient, ems: dict[str, Any], resident: str, session: Session
    ) -> None:
        set_emergency_consent(session, resident, True)
        save_acp(session, resident)
        incident = confirmed_incident(client, ems)
        body = summary(client, ems, incident).json()
        assert body["consent"] == "granted"
        assert body["patient"]["birth_date"] == "1950-04-01"
        assert [a["text"] for a in body["allergies"]] == ["ペニシリン"]
        assert [m["text"] for m in body["medications"]] == ["ワルファリン錠1mg"]
        assert [p["text"] for p in body["problems"]] == ["心房細動"]
        assert [r["text"] for r in body["results"]] == ["HbA1c"]
        for item in body["allergies"] + body["medications"] + body["problems"]:
            assert item["source"] == "clinic-a (clinic)" and item["date"]
        acp = body["acp"]
        assert acp["version"] == 1 and acp["recorded_at"]
        assert acp["do_not"] == ["心肺蘇生", "気管挿管・人工呼吸器"]
        assert acp["do"] == ["輸血"]
        assert acp["own_words"] == "延命より家で穏やかに過ごしたい"
        assert body["contacts"][0]["name"] == "筑波 一郎" and body["contacts"][0]["source"] == "ACP"
        assert body["family_doctor"][0]["name"] == "山田医師 山田医院"

    def test_the_fhir_document_has_the_advance_directives_section(
        self, client: TestClient, ems: dict[str, Any], resident: str, session: Session
    ) -> None:
        set_emergency_consent(session, resident, True)
        save_acp(session, resident)
        incident = confirmed_incident(client, ems)
        r = client.get(f"{BASE}/{incident}/summary/$document", headers=ems["headers"])
        assert r.status_code == 200, r.text
        bundle = r.json()
        assert bundle["type"] == "document"
        composition = bundle["entry"][0]["resource"]
        codes = [s["code"]["coding"][0]["code"] for s in composition["section"]]
        assert {"48765-2", "10160-0", "11450-4", "42348-3"} <= set(codes)
        ad = composition["section"][codes.index("42348-3")]
        urls = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
        targets = [urls[e["reference"]] for e in ad["entry"]]
        assert targets[0]["resourceType"] == "Consent"
        assert targets[0]["scope"]["coding"][0]["code"] == "adr"
        assert any(t["resourceType"] == "Observation" for t in targets)
        from fhir.resources.R4B.bundle import Bundle

        Bundle.model_validate(bundle)


class TestIdentification:
    def test_an_unconfirmed_candidate_unlocks_nothing(
        self, client: TestClient, ems: dict[str, Any], resident: str, session: Session
    ) -> None:
        set_emergency_consent(session, resident, True)
        incident = open_incident(client, ems)
        found = identify(client, ems, incident)
        assert found["identified"] and len(found["candidates"]) == 1
        # A candidate carries no name, no birth date, no resident id.
        assert resident not in str(found)
        assert summary(client, ems, incident).status_code == 409
        r = client.post(f"{BASE}/{incident}/vitals", json={"pulse": 80}, headers=ems["headers"])
        assert r.status_code == 409

    def test_a_wrong_birth_date_does_not_confirm(
        self, client: TestClient, ems: dict[str, Any], resident: str, session: Session
    ) -> None:
        set_emergency_consent(session, resident, True)
        incident = open_incident(client, ems)
        cand = identify(client, ems, incident)["candidates"][0]["id"]
        r = client.post(
            f"{BASE}/{incident}/confirm",
            json={"candidate_id": cand, "method": "birth_date", "birth_date": "1950-04-02"},
            headers=ems["headers"],
        )
        assert r.status_code == 403
        assert summary(client, ems, incident).status_code == 409
        # The refusal is in the access log although the request failed.
        denied = session.scalars(
            select(AuditEntry.detail).where(
                AuditEntry.action == "incident-confirm", AuditEntry.outcome == "deny"
            )
        ).all()
        assert any("by birth_date" in d for d in denied)

    def test_demographic_search_with_two_matches_returns_none(
        self, client: TestClient, ems: dict[str, Any], load_resident: Loader
    ) -> None:
        first = load_resident(mrn="1")
        second = load_resident(mrn="2")
        assert first != second
        incident = open_incident(client, ems)
        found = identify(client, ems, incident)
        assert found == {
            "identified": False,
            "message": found["message"],
            "candidates": [],
        }
        assert "not identified" in found["message"]

    def test_the_match_must_be_exact(
        self, client: TestClient, ems: dict[str, Any], resident: str
    ) -> None:
        incident = open_incident(client, ems)
        assert not identify(client, ems, incident, **{**HANAKO, "given": "花"})["identified"]
        assert not identify(client, ems, incident, **{**HANAKO, "sex": "male"})["identified"]
        assert identify(client, ems, incident, **{**HANAKO, "family": " 筑波 "})["identified"]

    def test_lookups_per_incident_are_limited(
        self, client: TestClient, ems: dict[str, Any], resident: str
    ) -> None:
        incident = open_incident(client, ems)
        wrong = {**HANAKO, "birth_date": "1950-01-01"}
        for _ in range(10):
            assert not identify(client, ems, incident, **wrong)["identified"]
        r = client.post(
            f"{BASE}/{incident}/identify/demographic", json=HANAKO, headers=ems["headers"]
        )
        assert r.status_code == 429 and r.json()["error"] == "too_many_attempts"

    def test_the_digital_id_card_proposes_and_confirms(
        self, client: TestClient, ems: dict[str, Any], resident: str, session: Session
    ) -> None:
        from consent.identity.cards import issue_card

        card = issue_card(session, resident)
        session.commit()
        pem = card.certificate_path.read_text()
        incident = open_incident(client, ems)
        r = client.post(
            f"{BASE}/{incident}/identify/card", json={"certificate": pem}, headers=ems["headers"]
        )
        assert r.status_code == 200 and r.json()["identified"], r.text
        cand = r.json()["candidates"][0]
        assert cand["method"] == "card"
        r = client.post(
            f"{BASE}/{incident}/confirm",
            json={"candidate_id": cand["id"], "method": "card", "certificate": pem},
            headers=ems["headers"],
        )
        assert r.status_code == 200 and r.json()["confirmed_method"] == "card", r.text

    def test_a_revoked_card_identifies_no_one(
        self, client: TestClient, ems: dict[str, Any], resident: str, session: Session
    ) -> None:
        from consent.identity.cards import issue_card

        card = issue_card(session, resident, revoke=True)
        session.commit()
        incident = open_incident(client, ems)
        r = client.post(
            f"{BASE}/{incident}/identify/card",
            json={"certificate": card.certificate_path.read_text()},
            headers=ems["headers"],
        )
        assert r.status_code == 200
        assert r.json()["identified"] is False and "revoked_certificate" in r.json()["message"]

    def test_face_candidates_from_the_face_route_need_visual_confirmation(
        self,
        client: TestClient,
        ems: dict[str, Any],
        load_resident: Loader,
        session: Session,
    ) -> None:
        from phr.emergency.service import Proposed, add_candidates

        hanako = load_resident()
        taro = load_resident(mrn="9", given="太郎", gender="male")
        incident = open_incident(client, ems)
        rows = add_candidates(
            session, incident, "face", [Proposed(taro, 0.71), Proposed(hanako, 0.93)]
        )
        session.commit()
        assert [r.resident_id for r in rows] == [hanako, taro]  # best first
        unchecked = {"candidate_id": rows[0].pk, "method": "visual", "photo_checked": False}
        r = client.post(f"{BASE}/{incident}/confirm", json=unchecked, headers=ems["headers"])
        assert r.status_code == 403
        checked = {**unchecked, "photo_checked": True}
        r = client.post(f"{BASE}/{incident}/confirm", json=checked, headers=ems["headers"])
        assert r.status_code == 200, r.text
        statuses = {c["id"]: c["status"] for c in r.json()["candidates"]}
        assert statuses == {rows[0].pk: "confirmed", rows[1].pk: "rejected"}


class TestHandover:
    def test_the_hospital_sees_the_handover_only_for_its_own_incident(
        self,
        client: TestClient,
        ems: dict[str, Any],
        hospital: dict[str, Any],
        other_hospital: dict[str, Any],
        resident: str,
        session: Session,
    ) -> None:
        set_emergency_consent(session, resident, True)
        save_acp(session, resident)
        incident = confirmed_incident(client, ems)
        # Before the status report the hospital knows nothing of it.
        assert (
            client.get(f"{BASE}/{incident}/handover", headers=hospital["headers"]).status_code
            == 404
        )
        r = client.post(
            f"{BASE}/{incident}/vitals",
            json={"systolic": 92, "diastolic": 60, "pulse": 118, "spo2": 91, "jcs": 10},
            headers=ems["headers"],
        )
        assert r.status_code == 200 and len(r.json()["references"]) == 4, r.text
        r = client.post(
            f"{BASE}/{incident}/findings",
            json={"text": "右片麻痺、発語なし"},
            headers=ems["headers"],
        )
        assert r.status_code == 200, r.text
        r = client.post(
            f"{BASE}/{incident}/status-report",
            json={
                "hospital_id": "gakuen-hospital",
                "chief_complaint": "意識障害",
                "summary": "70代女性、JCS10、右片麻痺",
                "eta_minutes": 12,
            },
            headers=ems["headers"],
        )
        assert r.status_code == 200 and r.json()["status"] == "reported", r.text
        incoming = client.get("/api/emergency/incoming", headers=hospital["headers"]).json()
        assert [i["id"] for i in incoming] == [incident]
        h = client.get(f"{BASE}/{incident}/handover", headers=hospital["headers"])
        assert h.status_code == 200, h.text
        body = h.json()
        assert body["status_reports"][0]["chief_complaint"] == "意識障害"
        assert body["summary"]["consent"] == "granted"
        assert body["summary"]["acp"]["do_not"] == ["心肺蘇生", "気管挿管・人工呼吸器"]
        vitals = {v["text"] for v in body["summary"]["vitals"]}
        assert {"Heart rate", "Oxygen saturation by pulse oximetry"} <= vitals
        # Another hospital: nothing, not even that the incident exists.
        assert client.get("/api/emergency/incoming", headers=other_hospital["headers"]).json() == []
        for path in ("handover", "summary"):
            r = client.get(f"{BASE}/{incident}/{path}", headers=other_hospital["headers"])
            assert r.status_code == 404
        assert summary(client, other_hospital, incident).status_code == 404

    def test_closing_ends_what_the_crew_and_hospital_see(
        self,
        client: TestClient,
        ems: dict[str, Any],
        hospital: dict[str, Any],
        resident: str,
        session: Session,
    ) -> None:
        set_emergency_consent(session, resident, True)
        incident = confirmed_incident(client, ems)
        client.post(
            f"{BASE}/{incident}/status-report",
            json={"hospital_id": "gakuen-hospital", "chief_complaint": "胸痛"},
            headers=ems["headers"],
        )
        r = client.post(f"{BASE}/{incident}/close", headers=ems["headers"])
        assert r.status_code == 200 and r.json()["status"] == "closed"
        assert summary(client, ems, incident).status_code == 409
        r = client.get(f"/fhir/Patient/{resident}", headers=ems["headers"], params={})
        assert r.status_code == 404


class TestAuditAndNotifications:
    def test_every_step_is_audited_and_told_to_the_resident_and_trusted_person(
        self,
        client: TestClient,
        ems: dict[str, Any],
        hospital: dict[str, Any],
        resident: str,
        session: Session,
    ) -> None:
        set_emergency_consent(session, resident, True)
        add_watcher(
            session,
            resident_id=resident,
            trusted_person_id="tp-1",
            kinds=["emergency_access", "emergency_incident"],
        )
        session.commit()
        incident = confirmed_incident(client, ems)
        summary(client, ems, incident)
        client.post(f"{BASE}/{incident}/vitals", json={"pulse": 90}, headers=ems["headers"])
        client.post(
            f"{BASE}/{incident}/status-report",
            json={"hospital_id": "gakuen-hospital", "chief_complaint": "胸痛"},
            headers=ems["headers"],
        )
        client.get(f"{BASE}/{incident}/handover", headers=hospital["headers"])
        client.post(f"{BASE}/{incident}/close", headers=ems["headers"])
        actions = [
            a
            for a, d in session.execute(select(AuditEntry.action, AuditEntry.detail)).all()
            if a.startswith("incident-") or a == "summary"
        ]
        for step in (
            "incident-open",
            "incident-candidates",
            "incident-confirm",
            "summary",
            "incident-vitals",
            "incident-status-report",
            "incident-handover",
            "incident-close",
        ):
            assert step in actions, step
        rows = session.scalars(select(Notification).where(Notification.resident_id == resident))
        by_recipient: dict[str, set[str]] = {}
        for n in rows:
            by_recipient.setdefault(n.recipient, set()).add(n.kind)
        assert {"emergency_incident", "emergency_access"} <= by_recipient[f"resident:{resident}"]
        assert {"emergency_incident", "emergency_access"} <= by_recipient["trusted:tp-1"]

    @pytest.mark.parametrize("kind", ["clinic", "hospital"])
    def test_only_an_ems_opens_incidents(
        self, client: TestClient, make_org: Any, kind: str, pias: None
    ) -> None:
        org = make_org(f"not-ems-{kind}", kind)
        assert client.post(BASE, json={}, headers=org["headers"]).status_code == 403
