"""``Patient/{id}/$summary``: the International Patient Summary document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.models import AuditEntry
from tests.conftest import OrgFactory, observation_entry, patient_bundle

PATIENT = "urn:uuid:11111111-1111-4111-8111-111111111111"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
YJ = "urn:oid:1.2.392.100495.20.1.73"

MEDICATIONS, ALLERGIES, PROBLEMS = "10160-0", "48765-2", "11450-4"
IMMUNIZATIONS, RESULTS, VITALS = "11369-6", "30954-2", "8716-3"
PROCEDURES, PAST_ILLNESS = "47519-4", "11348-0"


def entry(uuid: str, resource: dict[str, Any]) -> dict[str, Any]:
    rtype = resource["resourceType"]
    return {
        "fullUrl": f"urn:uuid:{uuid}",
        "resource": resource,
        "request": {"method": "POST", "url": rtype},
    }


def condition(uuid: str, code: str, display: str, status: str) -> dict[str, Any]:
    return entry(
        uuid,
        {
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{"system": CLINICAL, "code": status}]},
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                            "code": "problem-list-item",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": ICD10, "code": code, "display": display}]},
            "subject": {"reference": PATIENT},
            "onsetDateTime": "2015-06-01",
        },
    )


def summary_bundle() -> dict[str, Any]:
    recent = (datetime.now(UTC) - timedelta(days=20)).date().isoformat()
    return patient_bundle(
        extra=[
            entry(
                "a1a1a1a1-0000-4000-8000-000000000001",
                {
                    "resourceType": "AllergyIntolerance",
                    "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
                    "code": {"text": "ペニシリン <script>alert(1)</script> & co"},
                    "patient": {"reference": PATIENT},
                    "criticality": "high",
                    "reaction": [{"manifestation": [{"text": "蕁麻疹"}]}],
                },
            ),
            condition("c1c1c1c1-0000-4000-8000-000000000001", "E11", "2型糖尿病", "active"),
            condition("c2c2c2c2-0000-4000-8000-000000000002", "J10", "インフルエンザ", "resolved"),
            entry(
                "b1b1b1b1-0000-4000-8000-000000000001",
                {
                    "resourceType": "Medication",
                    "code": {
                        "coding": [
                            {
                                "system": YJ,
                                "code": "3962002F1024",
                                "display": "メトホルミン塩酸塩錠250mg",
                            }
                        ]
                    },
                },
            ),
            entry(
                "d1d1d1d1-0000-4000-8000-000000000001",
                {
                    "resourceType": "MedicationRequest",
                    "status": "active",
                    "intent": "order",
                    "medicationReference": {
                        "reference": "urn:uuid:b1b1b1b1-0000-4000-8000-000000000001"
                    },
                    "subject": {"reference": PATIENT},
                    "authoredOn": recent,
                    "dosageInstruction": [{"text": "1回1錠 1日2回 朝夕食後"}],
                },
            ),
            entry(
                "d2d2d2d2-0000-4000-8000-000000000002",
                {
                    "resourceType": "MedicationRequest",
                    "status": "completed",
                    "intent": "order",
                    "medicationCodeableConcept": {"text": "アモキシシリン"},
                    "subject": {"reference": PATIENT},
                    "authoredOn": "2019-01-10",
                },
            ),
            entry(
                "e1e1e1e1-0000-4000-8000-000000000001",
                {
                    "resourceType": "Immunization",
                    "status": "completed",
                    "vaccineCode": {
                        "coding": [
                            {
                                "system": "http://hl7.org/fhir/sid/cvx",
                                "code": "141",
                                "display": "Influenza",
                            }
                        ],
                        "text": "インフルエンザHAワクチン",
                    },
                    "patient": {"reference": PATIENT},
                    "occurrenceDateTime": "2024-11-01",
                },
            ),
            observation_entry(
                "22222222-2222-4222-8222-222222222222", value=6.1, date="2023-05-01T09:00:00+09:00"
            ),
            observation_entry(
                "33333333-3333-4333-8333-333333333333", value=6.8, date="2024-05-01T09:00:00+09:00"
            ),
        ]
    )


@pytest.fixture
def clinic(make_org: OrgFactory) -> dict[str, Any]:
    return make_org("clinic-a", "clinic")


@pytest.fixture
def loaded(client: TestClient, clinic: dict[str, Any]) -> dict[str, str]:
    r = client.post("/fhir", json=summary_bundle(), headers=clinic["headers"])
    assert r.status_code == 200, r.text
    ids = [e["response"]["location"].split("/")[1] for e in r.json()["entry"]]
    names = [
        "patient",
        "allergy",
        "diabetes",
        "flu",
        "metformin",
        "metformin_rx",
        "old_rx",
        "vaccine",
        "hba1c_2023",
        "hba1c_2024",
    ]
    return dict(zip(names, ids, strict=True))


def get_summary(client: TestClient, clinic: dict[str, Any], patient: str) -> dict[str, Any]:
    r = client.get(f"/fhir/Patient/{patient}/$summary", headers=clinic["headers"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = r.json()
    return body


def sections(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    comp = doc["entry"][0]["resource"]
    return {s["code"]["coding"][0]["code"]: s for s in comp["section"]}


def entry_ids(section: dict[str, Any]) -> list[str]:
    return [e["reference"].rsplit("/", 1)[1] for e in section.get("entry", [])]


class TestDocumentShape:
    def test_summary_is_an_ips_document_bundle(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        doc = get_summary(client, clinic, loaded["patient"])
        assert doc["resourceType"] == "Bundle" and doc["type"] == "document"
        assert doc["identifier"]["system"] == "urn:ietf:rfc:3986"
        assert doc["identifier"]["value"].startswith("urn:uuid:")
        assert doc["timestamp"]
        comp = doc["entry"][0]["resource"]
        assert comp["resourceType"] == "Composition" and comp["status"] == "final"
        assert comp["type"]["coding"][0] == {
            "system": "http://loinc.org",
            "code": "60591-5",
            "display": "Patient summary Document",
        }
        assert comp["title"] == "International Patient Summary / 患者サマリー"
        assert comp["confidentiality"] and comp["date"]
        assert doc["entry"][1]["resource"]["resourceType"] == "Patient"
        assert doc["entry"][1]["resource"]["id"] == loaded["patient"]
        assert comp["subject"]["reference"] == doc["entry"][1]["fullUrl"]

    def test_the_author_is_the_platform_device_in_the_bundle(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        doc = get_summary(client, clinic, loaded["patient"])
        comp = doc["entry"][0]["resource"]
        by_url = {e["fullUrl"]: e["resource"] for e in doc["entry"]}
        author = by_url[comp["author"][0]["reference"]]
        assert author["resourceType"] == "Device"

    def test_every_reference_resolves_to_an_entry_with_a_full_url(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        doc = get_summary(client, clinic, loaded["patient"])
        urls = [e["fullUrl"] for e in doc["entry"]]
        assert len(urls) == len(set(urls))
        base = "http://testserver/fhir/"

        def refs(node: Any) -> list[str]:
            if isinstance(node, dict):
                return [
                    x
                    for k, v in node.items()
                    for x in ([v] if k == "reference" and isinstance(v, str) else refs(v))
                ]
            if isinstance(node, list):
                return [x for v in node for x in refs(v)]
            return []

        for e in doc["entry"]:
            for ref in refs(e["resource"]):
                absolute = ref if ref.startswith(("http", "urn:")) else base + ref
                assert absolute in urls, ref
        # The Medication the prescription points to came along.
        assert base + f"Medication/{loaded['metformin']}" in urls

    def test_the_bundle_validates_with_fhir_resources(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        from fhir.resources.R4B.bundle import Bundle

        doc = get_summary(client, clinic, loaded["patient"])
        Bundle.model_validate(doc)

    def test_every_narrative_is_well_formed_escaped_xhtml(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        doc = get_summary(client, clinic, loaded["patient"])
        comp = doc["entry"][0]["resource"]
        divs = [comp["text"]["div"]] + [s["text"]["div"] for s in comp["section"]]
        for div in divs:
            root = ElementTree.fromstring(div)
            assert root.tag == "{http://www.w3.org/1999/xhtml}div"
            assert not root.findall(".//{http://www.w3.org/1999/xhtml}script")
        allergies = sections(doc)[ALLERGIES]["text"]["div"]
        assert "&lt;script&gt;" in allergies and "&amp; co" in allergies


class TestSections:
    def test_required_and_recommended_sections_are_present(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        secs = sections(get_summary(client, clinic, loaded["patient"]))
        assert {MEDICATIONS, ALLERGIES, PROBLEMS, IMMUNIZATIONS, RESULTS, VITALS} <= set(secs)
        assert PROCEDURES not in secs  # only when there are any
        assert all(s["text"]["div"] for s in secs.values())

    def test_only_active_things_are_current(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        secs = sections(get_summary(client, clinic, loaded["patient"]))
        assert entry_ids(secs[PROBLEMS]) == [loaded["diabetes"]]
        assert entry_ids(secs[PAST_ILLNESS]) == [loaded["flu"]]
        assert entry_ids(secs[MEDICATIONS]) == [loaded["metformin_rx"]]
        assert "メトホルミン塩酸塩錠250mg" in secs[MEDICATIONS]["text"]["div"]
        assert entry_ids(secs[ALLERGIES]) == [loaded["allergy"]]
        assert entry_ids(secs[IMMUNIZATIONS]) == [loaded["vaccine"]]

    def test_results_hold_only_the_latest_value_per_code(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        doc = get_summary(client, clinic, loaded["patient"])
        secs = sections(doc)
        assert entry_ids(secs[RESULTS]) == [loaded["hba1c_2024"]]
        assert "6.8 %" in secs[RESULTS]["text"]["div"]
        assert loaded["hba1c_2023"] not in {e["resource"]["id"] for e in doc["entry"]}

    def test_an_empty_section_says_why(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        vitals = sections(get_summary(client, clinic, loaded["patient"]))[VITALS]
        assert "entry" not in vitals
        assert vitals["emptyReason"]["coding"][0]["system"] == EMPTY_REASON
        assert vitals["emptyReason"]["coding"][0]["code"] == "unavailable"

    def test_a_patient_with_nothing_recorded_gets_empty_required_sections(
        self, client: TestClient, clinic: dict
    ) -> None:
        r = client.post("/fhir", json=patient_bundle(mrn="999"), headers=clinic["headers"])
        pid = r.json()["entry"][0]["response"]["location"].split("/")[1]
        doc = get_summary(client, clinic, pid)
        secs = sections(doc)
        for code in (MEDICATIONS, ALLERGIES, PROBLEMS):
            assert secs[code]["emptyReason"]["coding"][0]["code"] == "unavailable"
        from fhir.resources.R4B.bundle import Bundle

        Bundle.model_validate(doc)

    def test_types_outside_the_callers_scopes_are_withheld(
        self, client: TestClient, make_org: OrgFactory
    ) -> None:
        narrow = make_org(
            "clinic-n", "clinic", scopes=["system/Patient.rs", "system/Bundle.c", "system/*.cud"]
        )
        r = client.post("/fhir", json=summary_bundle(), headers=narrow["headers"])
        pid = r.json()["entry"][0]["response"]["location"].split("/")[1]
        secs = sections(get_summary(client, narrow, pid))
        assert secs[ALLERGIES]["emptyReason"]["coding"][0]["code"] == "withheld"
        assert "entry" not in secs[RESULTS]


class TestAccess:
    def test_another_organisation_without_consent_gets_404(
        self, client: TestClient, make_org: OrgFactory, loaded: dict
    ) -> None:
        other = make_org("clinic-b", "clinic")
        r = client.get(f"/fhir/Patient/{loaded['patient']}/$summary", headers=other["headers"])
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"

    def test_unknown_patient_is_404(self, client: TestClient, clinic: dict) -> None:
        r = client.get("/fhir/Patient/nobody/$summary", headers=clinic["headers"])
        assert r.status_code == 404

    def test_the_summary_is_in_the_access_log(
        self, client: TestClient, session: Session, clinic: dict, loaded: dict
    ) -> None:
        get_summary(client, clinic, loaded["patient"])
        rows = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "summary", AuditEntry.resident_id == loaded["patient"]
            )
        ).all()
        assert len(rows) == 1
        assert rows[0].outcome == "permit" and rows[0].organization_id == "clinic-a"

    def test_a_denied_summary_is_logged_too(
        self, client: TestClient, session: Session, make_org: OrgFactory, loaded: dict
    ) -> None:
        other = make_org("clinic-b", "clinic")
        client.get(f"/fhir/Patient/{loaded['patient']}/$summary", headers=other["headers"])
        denied = session.scalars(
            select(AuditEntry).where(
                AuditEntry.organization_id == "clinic-b", AuditEntry.outcome == "deny"
            )
        ).all()
        assert [d.resident_id for d in denied] == [loaded["patient"]]

    def test_a_client_without_patient_read_scope_is_403(
        self, client: TestClient, make_org: OrgFactory, loaded: dict
    ) -> None:
        narrow = make_org("lab-x", "clinic", scopes=["system/Observation.rs"])
        r = client.get(f"/fhir/Patient/{loaded['patient']}/$summary", headers=narrow["headers"])
        assert r.status_code == 403

    def test_an_unsupported_profile_is_400(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        r = client.get(
            f"/fhir/Patient/{loaded['patient']}/$summary",
            params={"profile": "http://example.org/other"},
            headers=clinic["headers"],
        )
        assert r.status_code == 400
