"""Residents read who looked at their record, in plain Japanese or English, and as FHIR
AuditEvents; nobody else can read it there."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy.orm import Session

from consent import audit
from consent.actors import Actor, Purpose
from consent.audit_endpoints import entry_view
from consent.audit_labels import negotiate_language
from consent.identity.clients import register_organization
from consent.models import Organization
from tests.conftest import OrgFactory

AT = datetime(2026, 11, 24, 0, 12)  # 09:12 in Japan
HANAKO = Actor(kind="resident", resident_id="hanako", client_id="phr-app")
JIRO = Actor(kind="resident", resident_id="jiro", client_id="phr-app")
DOCTOR = Actor(
    kind="staff",
    user_id="dr-1",
    organization_id="tsukuba-central",
    organization_kind="clinic",
    role="doctor",
    client_id="clinic-app",
)
PARAMEDIC = Actor(
    kind="staff",
    user_id="emt-7",
    organization_id="tsukuba-fire",
    organization_kind="ems",
    role="paramedic",
)

Use = Callable[[Actor | None], None]


@pytest.fixture
def log(session: Session) -> None:
    """Hanako's record was looked at three times; Jiro's once."""
    register_organization(session, id="tsukuba-central", name="つくば中央クリニック", kind="clinic")
    register_organization(session, id="tsukuba-fire", name="つくば市消防本部", kind="ems")
    obs = " ".join(f"Observation/o{i}" for i in range(3))
    audit.record(
        session,
        DOCTOR,
        Purpose.TREATMENT,
        [
            audit.Access(
                "search",
                "permit",
                resident_id="hanako",
                count=3,
                detail=f"Observation?patient=hanako {obs}",
                consent_ref="Consent/c-1",
            ),
            audit.Access(
                "read", "permit", "Observation", "j1", "jiro", count=1, consent_ref="own-records"
            ),
        ],
        at=AT,
    )
    audit.record(
        session,
        PARAMEDIC,
        Purpose.EMERGENCY,
        [audit.Access("read", "deny", "MedicationRequest", "m1", "hanako")],
        at=AT.replace(minute=30),
    )
    audit.record(
        session,
        HANAKO,
        Purpose.PATIENT_ACCESS,
        [audit.Access("read", "permit", "Observation", "o1", "hanako", count=1)],
        at=AT.replace(minute=40),
    )
    session.commit()


class TestPlainLanguage:
    def test_a_doctors_search_reads_as_a_japanese_sentence(
        self, session: Session, log: None
    ) -> None:
        entries, orgs = audit.access_log(session, audit.LogFilter(resident_id="hanako"))
        view = entry_view(entries[-1], orgs.get("tsukuba-central"), "ja")
        assert view["text"] == (
            "2026-11-24 09:12 つくば中央クリニック (医師) が"
            "診療のためにあなたの検査結果を3件見ました"
        )
        assert view["texts"]["en"] == (
            "2026-11-24 09:12 つくば中央クリニック (doctor) viewed 3 of your test results "
            "for treatment"
        )
        assert view["what"] == [{"resource_type": "Observation", "label": "検査結果", "count": 3}]
        assert view["actor"]["organization"] == {
            "id": "tsukuba-central",
            "name": "つくば中央クリニック",
            "kind": "clinic",
        }
        assert (view["purpose_label"], view["basis"], view["basis_label"]) == (
            "診療",
            "Consent/c-1",
            "あなたの同意 (Consent/c-1)",
        )

    def test_a_refused_attempt_is_shown_as_refused(self, session: Session, log: None) -> None:
        entries, orgs = audit.access_log(session, audit.LogFilter(resident_id="hanako"))
        denied = entries[0]
        ja = entry_view(denied, orgs.get("tsukuba-fire"), "ja")["text"]
        en = entry_view(denied, orgs.get("tsukuba-fire"), "en")["text"]
        assert ja == (
            "2026-11-24 09:30 つくば市消防本部 (救急隊員) が救急医療のためにあなたの処方を"
            "見ようとしましたが、拒否されました"
        )
        assert en == (
            "2026-11-24 09:30 つくば市消防本部 (paramedic) tried to view your prescriptions "
            "for emergency treatment and was refused"
        )

    def test_whole_record_and_multi_type_reads_are_described(self) -> None:
        from consent.audit_labels import Who, describe_entry

        who = Who("organization", "つくば病院")
        whole = describe_entry(
            at=AT, who=who, purpose="TREAT", action="everything", outcome="permit",
            what=[("*", 42)], lang="en",
        )  # fmt: skip
        assert (
            whole == "2026-11-24 09:12 つくば病院 viewed your whole record (42 items) for treatment"
        )
        mixed = describe_entry(
            at=AT, who=who, purpose="MEDREVIEW", action="search", outcome="permit",
            what=[("MedicationRequest", 2), ("Condition", 1)], lang="ja",
        )  # fmt: skip
        assert mixed.endswith("服薬の確認のためにあなたの処方2件と病名1件を見ました")

    def test_accept_language_and_the_lang_parameter_choose_the_language(self) -> None:
        assert negotiate_language(None, None) == "ja"
        assert negotiate_language(None, "en-US,en;q=0.9,ja;q=0.5") == "en"
        assert negotiate_language(None, "fr, ja;q=0.2, en;q=0.1") == "ja"
        assert negotiate_language("en", "ja") == "en"


class TestAccessLogRoute:
    def test_a_resident_reads_their_own_log_newest_first_in_japanese(
        self, client: TestClient, log: None, as_actor: Use
    ) -> None:
        as_actor(HANAKO)
        r = client.get("/api/me/access-log")
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        body = r.json()
        assert body["lang"] == "ja"
        texts = [e["text"] for e in body["entries"]]
        assert len(texts) == 2  # their own read is left out
        assert "拒否されました" in texts[0] and texts[1].endswith("検査結果を3件見ました")

    def test_english_by_accept_language_or_lang(
        self, client: TestClient, log: None, as_actor: Use
    ) -> None:
        as_actor(HANAKO)
        by_header = client.get("/api/me/access-log", headers={"Accept-Language": "en"}).json()
        by_param = client.get("/api/me/access-log?lang=en").json()
        assert by_header == by_param
        assert by_param["entries"][1]["text"].endswith(
            "viewed 3 of your test results for treatment"
        )

    def test_a_resident_sees_only_their_own_entries(
        self, client: TestClient, log: None, as_actor: Use
    ) -> None:
        as_actor(JIRO)
        entries = client.get("/api/me/access-log").json()["entries"]
        assert len(entries) == 1
        assert entries[0]["what"][0]["resource_type"] == "Observation"
        assert entries[0]["basis_label"] == "その機関が自ら作成した記録"

    def test_own_reads_on_request_and_paging_by_entry_id(
        self, client: TestClient, log: None, as_actor: Use
    ) -> None:
        as_actor(HANAKO)
        page1 = client.get("/api/me/access-log?include_own=true&limit=2").json()
        assert page1["entries"][0]["text"].startswith("2026-11-24 09:40 あなた自身が")
        page2 = client.get(f"/api/me/access-log?include_own=true&before={page1['next_before']}")
        ids1 = [e["id"] for e in page1["entries"]]
        ids2 = [e["id"] for e in page2.json()["entries"]]
        assert page1["next_before"] == ids1[-1] and ids1 == sorted(ids1, reverse=True)
        assert len(ids2) == 1 and ids2[0] < ids1[-1]

    def test_without_a_token_it_is_401(self, client: TestClient) -> None:
        r = client.get("/api/me/access-log")
        assert r.status_code == 401 and r.json()["error"] == "not_authenticated"

    def test_an_organisation_token_is_403(self, client: TestClient, make_org: OrgFactory) -> None:
        org = make_org("clinic-z", "clinic")
        for path in ("/api/me/access-log", "/api/me/access-log.fhir", "/api/me/notifications"):
            r = client.get(path, headers=org["headers"])
            assert r.status_code == 403, path

    def test_a_staff_member_is_403(self, client: TestClient, as_actor: Use) -> None:
        as_actor(DOCTOR)
        assert client.get("/api/me/access-log").status_code == 403

    def test_reads_through_the_fhir_api_show_up_in_the_residents_log(
        self,
        client: TestClient,
        session: Session,
        clinic: dict,
        loaded: dict,
        as_actor: Use,
    ) -> None:
        client.get(f"/fhir/Observation?patient={loaded['patient']}", headers=clinic["headers"])
        row = session.get(Organization, "clinic-a")
        assert row is not None
        as_actor(Actor(kind="resident", resident_id=loaded["patient"]))
        entries = client.get("/api/me/access-log?lang=en").json()["entries"]
        assert entries[0]["text"].endswith(
            f"{row.name} viewed 3 of your test results for treatment"
        )


class TestWithARealResidentToken:
    def test_a_signed_in_resident_reads_who_looked_at_their_record(
        self,
        client: TestClient,
        clinic: dict,
        loaded: dict,
        make_org: OrgFactory,
        resident_token: Callable[[str], dict[str, str]],
    ) -> None:
        rid = loaded["patient"]
        client.get(f"/fhir/Observation/{loaded['obs1']}", headers=clinic["headers"])
        client.get(f"/fhir/Observation/{loaded['obs1']}", headers=make_org("clinic-b")["headers"])
        me = resident_token(rid)
        assert client.get(f"/fhir/Patient/{rid}", headers=me).status_code == 200
        body = client.get("/api/me/access-log?lang=en", headers=me).json()
        texts = [e["text"] for e in body["entries"]]
        assert texts[0].endswith("clinic-b (clinic) tried to view your test results for treatment "
                                 "and was refused")  # fmt: skip
        assert texts[1].endswith("clinic-a (clinic) viewed one of your test results for treatment")
        own = client.get("/api/me/access-log?include_own=true&limit=1", headers=me).json()
        assert own["entries"][0]["actor"]["kind"] == "resident"
        fhir = client.get("/api/me/access-log.fhir", headers=me)
        assert fhir.status_code == 200 and Bundle.model_validate(fhir.json()).total == 3


class TestAuditEventExport:
    def test_the_log_exports_as_a_valid_searchset_of_audit_events(
        self, client: TestClient, log: None, as_actor: Use
    ) -> None:
        as_actor(HANAKO)
        r = client.get("/api/me/access-log.fhir")
        assert r.status_code == 200 and r.headers["content-type"].startswith(
            "application/fhir+json"
        )
        bundle = Bundle.model_validate(r.json())
        assert bundle.type == "searchset" and bundle.total == 3
        events = [e["resource"] for e in r.json()["entry"]]
        own, denied, search = events
        assert (denied["outcome"], denied["action"]) == ("4", "R")
        assert search["outcome"] == "0" and search["subtype"][0]["code"] == "search-type"
        assert search["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
        org_agent = next(a for a in search["agent"] if "reference" in a["who"])
        assert org_agent["who"] == {
            "reference": "Organization/tsukuba-central",
            "display": "つくば中央クリニック",
        }
        person = search["agent"][0]
        assert person["requestor"] is True and person["role"][0]["text"] == "doctor"
        assert person["policy"] == ["Consent/c-1"]
        whats = [e["what"]["reference"] for e in search["entity"] if "what" in e]
        assert whats == ["Patient/hanako", "Observation/o0", "Observation/o1", "Observation/o2"]
        assert own["agent"][0]["who"] == {"reference": "Patient/hanako"}

    def test_date_filters_and_paging(self, client: TestClient, log: None, as_actor: Use) -> None:
        as_actor(HANAKO)
        late = client.get("/api/me/access-log.fhir?date=ge2026-11-24T09:30:00%2B09:00").json()
        assert late["total"] == 2
        early = client.get("/api/me/access-log.fhir?date=lt2026-11-24T09:30:00%2B09:00").json()
        assert early["total"] == 1
        day = client.get("/api/me/access-log.fhir?date=2026-11-24").json()
        assert day["total"] == 3
        other_day = client.get("/api/me/access-log.fhir?date=2026-11-25").json()
        assert other_day["total"] == 0 and other_day["entry"] == []
        first = client.get("/api/me/access-log.fhir?_count=2").json()
        nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
        rest = client.get(nxt.replace("http://testserver", "")).json()
        assert len(first["entry"]) == 2 and len(rest["entry"]) == 1
        assert client.get("/api/me/access-log.fhir?date=sa2026").status_code == 400

    def test_every_kind_of_entry_converts_to_a_valid_audit_event(self, session: Session) -> None:
        system = Actor.system("nightly")
        audit.record(
            session,
            system,
            Purpose.OPERATIONS,
            [
                audit.Access("everything", "permit", "Patient", "p", "p", count=10),
                audit.Access("history", "permit", "Observation", "o", "p", count=2,
                             detail="Observation/o Observation/o"),
                audit.Access("vread", "error", "Observation", "o", "p"),
                audit.Access("search", "not-found", detail="Condition?code=x"),
            ],
        )  # fmt: skip
        session.commit()
        for entry in audit.access_log(session, audit.LogFilter(resident_id="p", include_own=True))[
            0
        ]:
            AuditEvent.model_validate(audit.to_audit_event(entry))
        from sqlalchemy import select

        from consent.models import AuditEntry

        query = session.scalars(select(AuditEntry).where(AuditEntry.outcome == "not-found")).one()
        event = AuditEvent.model_validate(audit.to_audit_event(query))
        assert event.entity is not None and event.entity[0].query is not None
