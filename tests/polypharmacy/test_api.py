"""``POST /fhir/Patient/{id}/$medication-review`` end to end, the pharmacist's worklist,
the resident's plain-language view, and consent: no consent, nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.actors import Actor
from consent.models import AuditEntry
from consent.pia.service import seed_platform_pias
from consent.policy import schemas as consent_schemas
from consent.policy.service import create_consent
from phr.polypharmacy import repository, service
from phr.polypharmacy.master import import_drug_list
from phr.polypharmacy.screen import screen
from phr.store.indexer import utcnow
from tests.conftest import OrgFactory, observation_entry, patient_bundle
from tests.polypharmacy.helpers import DRUG_LIST, product

PATIENT = "urn:uuid:11111111-1111-4111-8111-111111111111"


def medication_request(n: int, ingredient: str, clinic: str) -> dict[str, Any]:
    p = product(ingredient)
    return {
        "fullUrl": f"urn:uuid:22222222-2222-4222-8222-{n:012d}",
        "resource": {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [
                    {"system": "urn:oid:1.2.392.100495.20.1.73", "code": p.code, "display": p.name}
                ],
                "text": p.name,
            },
            "subject": {"reference": PATIENT},
            "authoredOn": (utcnow() - timedelta(days=3)).date().isoformat(),
            "requester": {"display": clinic},
            "dispenseRequest": {
                "expectedSupplyDuration": {
                    "value": 28,
                    "unit": "日",
                    "system": "http://unitsofmeasure.org",
                    "code": "d",
                }
            },
        },
        "request": {"method": "POST", "url": "MedicationRequest"},
    }


@pytest.fixture
def world(session: Session, client: TestClient, make_org: OrgFactory) -> dict[str, Any]:
    import_drug_list(session, DRUG_LIST)
    seed_platform_pias(session)
    clinic = make_org("clinic-a", "clinic")
    pharmacy = make_org("pharmacy-x", "pharmacy")
    bundle = patient_bundle(
        birth="1941-05-01",
        extra=[
            medication_request(1, "ワルファリンカリウム", "つくば循環器クリニック"),
            medication_request(2, "ロキソプロフェンナトリウム水和物", "さくら整形外科"),
        ],
    )
    r = client.post("/fhir", json=bundle, headers=clinic["headers"])
    assert r.status_code == 200, r.text
    patient = r.json()["entry"][0]["response"]["location"].split("/")[1]
    session.commit()
    return {"clinic": clinic, "pharmacy": pharmacy, "patient": patient}


def review(client: TestClient, org: dict[str, Any], patient: str, **headers: str) -> Any:
    return client.post(
        f"/fhir/Patient/{patient}/$medication-review", headers={**org["headers"], **headers}
    )


def consent_for_pharmacy(session: Session, world: dict[str, Any]) -> None:
    create_consent(
        session,
        Actor(kind="resident", resident_id=world["patient"], client_id="resident-app"),
        consent_schemas.ConsentCreate(
            recipients=[{"kind": "organization", "value": "pharmacy-x"}],  # type: ignore[list-item]
            purposes=["MEDREVIEW"],  # type: ignore[list-item]
        ),
    )
    session.commit()


class TestOperation:
    def test_the_clinic_gets_the_list_and_the_interaction_as_valid_fhir(
        self, client: TestClient, world: dict[str, Any]
    ) -> None:
        r = review(client, world["clinic"], world["patient"])
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/fhir+json")
        body = r.json()
        Bundle.model_validate(body)
        types = [e["resource"]["resourceType"] for e in body["entry"]]
        assert types[0] == "List" and types.count("MedicationRequest") == 2
        lst = body["entry"][0]["resource"]
        assert {e["item"]["display"].split("（")[0] for e in lst["entry"]} == {
            "ワルファリンカリウム",
            "ロキソプロフェンナトリウム水和物",
        }
        issues = [
            e["resource"] for e in body["entry"] if e["resource"]["resourceType"] == "DetectedIssue"
        ]
        drg = [i for i in issues if i["code"]["coding"][0]["code"] == "DRG"]
        assert len(drg) == 1 and drg[0]["severity"] == "high"
        assert len(drg[0]["implicated"]) == 2
        assert all(i["reference"].startswith("MedicationRequest/") for i in drg[0]["implicated"])
        assert "Beers" in drg[0]["evidence"][0]["detail"][0]["display"]
        # 85 years old and an NSAID: an age alert too.
        assert any(i["code"]["coding"][0]["code"] == "AGE" for i in issues)

    def test_a_pharmacy_without_consent_gets_404_and_the_miss_is_logged(
        self, client: TestClient, session: Session, world: dict[str, Any]
    ) -> None:
        r = review(client, world["pharmacy"], world["patient"])
        assert r.status_code == 404
        assert r.json()["resourceType"] == "OperationOutcome"
        assert "DetectedIssue" not in r.text
        denied = session.scalars(
            select(AuditEntry).where(
                AuditEntry.resident_id == world["patient"], AuditEntry.outcome == "deny"
            )
        ).all()
        assert denied and denied[-1].service == "polypharmacy"

    def test_with_consent_for_medication_review_the_pharmacy_sees_the_findings(
        self, client: TestClient, session: Session, world: dict[str, Any]
    ) -> None:
        consent_for_pharmacy(session, world)
        r = review(client, world["pharmacy"], world["patient"])
        assert r.status_code == 200, r.text
        assert "DRG" in r.text
        logged = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "medication-review")
        ).all()
        assert any(e.organization_id == "pharmacy-x" and e.purpose == "MEDREVIEW" for e in logged)

    def test_another_purpose_is_refused(self, client: TestClient, world: dict[str, Any]) -> None:
        r = review(client, world["clinic"], world["patient"], **{"X-Purpose-Of-Use": "TREAT"})
        assert r.status_code == 400

    def test_without_an_approved_pia_the_service_reads_nothing(
        self, client: TestClient, session: Session, world: dict[str, Any]
    ) -> None:
        from consent.pia.models import PiaAssessment

        for pia in session.scalars(
            select(PiaAssessment).where(PiaAssessment.service_id == "polypharmacy")
        ):
            pia.status = "withdrawn"
        session.commit()
        assert review(client, world["clinic"], world["patient"]).status_code == 404


class TestKidney:
    def test_metformin_with_a_creatinine_of_2_in_an_83_year_old_woman(
        self,
        client: TestClient,
        session: Session,
        world: dict[str, Any],
        make_org: OrgFactory,
    ) -> None:
        bundle = patient_bundle(
            mrn="777",
            family="土浦",
            birth="1941-01-01",
            gender="female",
            extra=[
                medication_request(3, "メトホルミン塩酸塩", "竹園内科"),
                observation_entry(
                    "33333333-3333-4333-8333-333333333333",
                    code="2160-0",
                    value=2.0,
                    unit="mg/dL",
                    date="2024-05-01T09:00:00+09:00",
                ),
            ],
        )
        r = client.post("/fhir", json=bundle, headers=world["clinic"]["headers"])
        assert r.status_code == 200, r.text
        patient = r.json()["entry"][0]["response"]["location"].split("/")[1]
        result = service.review(session, Actor.system("test"), patient)
        (kidney,) = [f for f in result.findings if f.rule == "kidney"]
        # JSN: 194 × 2.0^-1.094 × 83^-0.287 × 0.739 = 18.9 (age at the test, 2024-05-01)
        assert kidney.facts == {
            "egfr": 18.9,
            "egfr_how": "computed",
            "threshold": 30.0,
            "daily_mg": None,
            "max_daily_mg": None,
        }
        assert (kidney.code, kidney.severity) == ("DOSECOND", "high")
        assert "日本腎臓学会" in kidney.source

        narrow = make_org(
            "clinic-narrow",
            "clinic",
            scopes=["system/Patient.rs", "system/MedicationRequest.rs"],
        )
        consent = consent_schemas.ConsentCreate(
            recipients=[{"kind": "organization", "value": "clinic-narrow"}],  # type: ignore[list-item]
            purposes=["MEDREVIEW"],  # type: ignore[list-item]
        )
        create_consent(
            session, Actor(kind="resident", resident_id=patient, client_id="app"), consent
        )
        session.commit()
        r = review(client, narrow, patient)
        assert r.status_code == 200, r.text
        assert "DOSECOND" not in r.text  # no Observation scope, no kidney values read


def condition_entry(n: int, icd10: str, display: str) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:44444444-4444-4444-8444-{n:012d}",
        "resource": {
            "resourceType": "Condition",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "code": {
                "coding": [
                    {"system": "http://hl7.org/fhir/sid/icd-10", "code": icd10, "display": display}
                ],
                "text": display,
            },
            "subject": {"reference": PATIENT},
            "onsetDateTime": "2023-06-01",
        },
        "request": {"method": "POST", "url": "Condition"},
    }


class TestDrugDisease:
    def test_dementia_and_a_hypnotic_as_a_condition_alert_with_the_condition_as_evidence(
        self, client: TestClient, session: Session, world: dict[str, Any], tmp_path: Path
    ) -> None:
        bundle = patient_bundle(
            mrn="888",
            family="筑波",
            birth="1940-02-01",
            gender="female",
            extra=[
                medication_request(4, "ゾルピデム酒石酸塩", "竹園内科"),
                condition_entry(1, "F03", "認知症"),
            ],
        )
        r = client.post("/fhir", json=bundle, headers=world["clinic"]["headers"])
        assert r.status_code == 200, r.text
        patient = r.json()["entry"][0]["response"]["location"].split("/")[1]
        condition = r.json()["entry"][2]["response"]["location"].split("/_history")[0]
        session.commit()
        body = review(client, world["clinic"], patient).json()
        Bundle.model_validate(body)
        (issue,) = [
            e["resource"]
            for e in body["entry"]
            if e["resource"]["resourceType"] == "DetectedIssue"
            and e["resource"]["code"]["coding"][0]["code"] == "COND"
        ]
        assert issue["severity"] == "high" and "認知症" in issue["detail"]
        assert issue["evidence"][0]["detail"][1]["reference"] == condition
        report = screen(session, tmp_path, record=False)
        assert report.by_rule["drug-disease"] == 1


class TestWorklist:
    def test_the_pharmacist_acknowledges_then_resolves_a_finding(
        self, client: TestClient, session: Session, world: dict[str, Any]
    ) -> None:
        consent_for_pharmacy(session, world)
        assert review(client, world["pharmacy"], world["patient"]).status_code == 200
        h = world["pharmacy"]["headers"]
        items = client.get("/api/polypharmacy/worklist", headers=h).json()["items"]
        drg = next(i for i in items if i["code"] == "DRG")
        assert drg["state"] == "open" and drg["detail"]["prescribers"] == [
            "さくら整形外科",
            "つくば循環器クリニック",
        ]
        r = client.post(
            f"/api/polypharmacy/findings/{drg['finding_id']}",
            json={"state": "acknowledged", "note": "処方医に疑義照会済み"},
            headers=h,
        )
        assert r.status_code == 200, r.text
        assert r.json()["acted_by"] == world["pharmacy"]["client_id"]
        client.post(
            f"/api/polypharmacy/findings/{drg['finding_id']}", json={"state": "resolved"}, headers=h
        )
        open_ = client.get("/api/polypharmacy/worklist", headers=h).json()["items"]
        assert drg["finding_id"] not in {i["finding_id"] for i in open_}
        done = client.get("/api/polypharmacy/worklist?state=resolved", headers=h).json()["items"]
        assert [i["note"] for i in done] == ["処方医に疑義照会済み"]

    def test_a_second_review_keeps_one_row_per_finding(
        self, client: TestClient, world: dict[str, Any]
    ) -> None:
        h = world["clinic"]["headers"]
        review(client, world["clinic"], world["patient"])
        first = client.get("/api/polypharmacy/worklist", headers=h).json()["items"]
        review(client, world["clinic"], world["patient"])
        second = client.get("/api/polypharmacy/worklist", headers=h).json()["items"]
        assert first and sorted(i["finding_id"] for i in first) == sorted(
            i["finding_id"] for i in second
        )
        assert max(i["last_seen"] for i in second) >= max(i["last_seen"] for i in first)

    def test_another_organisation_cannot_touch_the_finding(
        self, client: TestClient, session: Session, world: dict[str, Any]
    ) -> None:
        review(client, world["clinic"], world["patient"])
        items = client.get("/api/polypharmacy/worklist", headers=world["clinic"]["headers"])
        fid = items.json()["items"][0]["finding_id"]
        r = client.post(
            f"/api/polypharmacy/findings/{fid}",
            json={"state": "resolved"},
            headers=world["pharmacy"]["headers"],
        )
        assert r.status_code == 404

    def test_a_withdrawn_consent_removes_the_resident_from_the_worklist(
        self, client: TestClient, session: Session, world: dict[str, Any]
    ) -> None:
        from consent.policy.service import list_consents, revoke_consent

        consent_for_pharmacy(session, world)
        review(client, world["pharmacy"], world["patient"])
        resident = Actor(kind="resident", resident_id=world["patient"], client_id="resident-app")
        for c in list_consents(session, resident):
            revoke_consent(session, resident, c.id)
        session.commit()
        h = world["pharmacy"]["headers"]
        assert client.get("/api/polypharmacy/worklist", headers=h).json()["items"] == []


class TestResidentView:
    def test_plain_language_in_japanese_and_english(
        self, session: Session, world: dict[str, Any]
    ) -> None:
        me = Actor(kind="resident", resident_id=world["patient"], client_id="resident-app")
        ja = service.resident_view(session, me, world["patient"], lang="ja")
        en = service.resident_view(session, me, world["patient"], lang="en")
        assert len(ja["medicines"]) == 2
        assert any("自己判断で" in f["text"] for f in ja["findings"])
        assert any("Do not stop" in f["text"] for f in en["findings"])

    def test_the_resident_cannot_read_someone_else(
        self, session: Session, world: dict[str, Any]
    ) -> None:
        from phr.errors import NotFound

        other = Actor(kind="resident", resident_id="someone-else", client_id="resident-app")
        with pytest.raises(NotFound):
            service.resident_view(session, other, world["patient"])


class TestResidentEndpoint:
    def test_the_signed_in_resident_reads_their_findings_in_plain_words(
        self,
        client: TestClient,
        world: dict[str, Any],
        resident_token: Callable[[str], dict[str, str]],
    ) -> None:
        h = resident_token(world["patient"])
        r = client.get("/api/me/medication-review?lang=en", headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["patient"] == world["patient"]
        assert any("bleeding" in f["text"] for f in body["findings"])
        assert client.get("/api/me/medication-review?lang=fr", headers=h).status_code == 400

    def test_an_organisation_cannot_use_the_resident_endpoint(
        self, client: TestClient, world: dict[str, Any]
    ) -> None:
        r = client.get("/api/me/medication-review", headers=world["clinic"]["headers"])
        assert r.status_code == 403


class TestScreening:
    def test_the_population_screen_writes_a_report_and_fills_the_municipal_worklist(
        self, session: Session, world: dict[str, Any], tmp_path: Any
    ) -> None:
        report = screen(session, tmp_path)
        assert report.residents >= 1 and report.with_findings == 1
        assert report.by_rule["interaction"] == 1
        text = (tmp_path / report.csv_path.rsplit("/", 1)[-1]).read_text(encoding="utf-8")
        assert world["patient"] in text and "anticoag-nsaid" in text
        logged = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "medication-review",
                AuditEntry.resident_id == world["patient"],
            )
        ).all()
        assert any(e.service == "polypharmacy" and e.purpose == "MEDREVIEW" for e in logged)
        municipal = repository.worklist(session, service.MUNICIPAL_OWNER, ["open"], 50, 0)
        assert {(f.resident_id, f.code) for f in municipal} >= {(world["patient"], "DRG")}


class TestBatchReads:
    def test_population_reads_respect_consent_and_log_one_entry_per_resident(
        self, session: Session, world: dict[str, Any]
    ) -> None:
        from consent.actors import Purpose
        from phr.store.reader import RecordReader

        def pharmacy_reader() -> RecordReader:
            actor = Actor(
                kind="organization",
                organization_id="pharmacy-x",
                organization_kind="pharmacy",
                client_id=world["pharmacy"]["client_id"],
                scopes=frozenset({"system/*.rs"}),
                service="polypharmacy",
            )
            return RecordReader(session, actor, Purpose.MEDICATION_REVIEW)

        types = ["MedicationRequest"]
        rows = pharmacy_reader().compartments([world["patient"]], types=types, action="t")
        assert rows == []
        consent_for_pharmacy(session, world)
        rows = pharmacy_reader().compartments(
            [world["patient"], "nobody"], types=types, action="batch-test"
        )
        assert {r.resident_id for r in rows} == {world["patient"]} and len(rows) == 2
        logged = session.scalars(select(AuditEntry).where(AuditEntry.action == "batch-test")).all()
        assert sorted((e.resident_id, e.count) for e in logged) == sorted(
            [(world["patient"], 2), ("nobody", 0)]
        )

    def test_two_worker_processes_give_the_same_report(
        self, session: Session, world: dict[str, Any], tmp_path: Any
    ) -> None:
        one = screen(session, tmp_path / "one", record=False)
        two = screen(session, tmp_path / "two", record=False, workers=2)
        assert one.as_dict() | {"seconds": 0, "workers": 0, "csv": ""} == two.as_dict() | {
            "seconds": 0,
            "workers": 0,
            "csv": "",
        }
        assert two.workers == 2
        read = lambda r: sorted(Path(r.csv_path).read_text(encoding="utf-8").splitlines())  # noqa: E731
        assert read(one) == read(two)
