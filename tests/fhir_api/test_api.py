"""The clinician FHIR API over HTTP: auth, read, search, history, errors, $everything."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import OrgFactory, observation_entry, patient_bundle

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def clinic(make_org: OrgFactory) -> dict[str, Any]:
    return make_org("clinic-a", "clinic")


@pytest.fixture
def loaded(client: TestClient, clinic: dict[str, Any]) -> dict[str, str]:
    b = patient_bundle(
        extra=[
            observation_entry(
                "22222222-2222-4222-8222-222222222222", value=6.1, date="2023-05-01T09:00:00+09:00"
            ),
            observation_entry(
                "33333333-3333-4333-8333-333333333333", value=6.8, date="2024-05-01T09:00:00+09:00"
            ),
            observation_entry(
                "44444444-4444-4444-8444-444444444444", code="2093-3", value=210, unit="mg/dL"
            ),
        ]
    )
    r = client.post("/fhir", json=b, headers=clinic["headers"])
    assert r.status_code == 200, r.text
    locs = [e["response"]["location"].split("/")[1] for e in r.json()["entry"]]
    return {"patient": locs[0], "hba1c_2023": locs[1], "hba1c_2024": locs[2], "chol": locs[3]}


class TestAuthentication:
    def test_no_token_is_401_with_operation_outcome(self, client: TestClient) -> None:
        r = client.get("/fhir/Patient")
        assert r.status_code == 401
        assert r.json()["resourceType"] == "OperationOutcome"
        assert r.headers["www-authenticate"].startswith("Bearer")

    def test_a_scope_that_does_not_cover_the_type_is_403(
        self, client: TestClient, make_org: OrgFactory
    ) -> None:
        narrow = make_org("lab-x", "clinic", scopes=["system/Observation.rs"])
        assert client.get("/fhir/Observation", headers=narrow["headers"]).status_code == 200
        r = client.get("/fhir/Condition", headers=narrow["headers"])
        assert r.status_code == 403 and r.json()["issue"][0]["code"] == "forbidden"

    def test_a_read_only_client_cannot_post_bundles(
        self, client: TestClient, make_org: OrgFactory
    ) -> None:
        reader = make_org("reader", "hospital", scopes=["system/*.rs"])
        r = client.post("/fhir", json=patient_bundle(), headers=reader["headers"])
        assert r.status_code == 403

    def test_metadata_is_public_and_truthful(self, client: TestClient) -> None:
        r = client.get("/fhir/metadata")
        assert r.status_code == 200 and r.headers["content-type"].startswith(FHIR_JSON)
        cs = r.json()
        assert cs["fhirVersion"] == "4.0.1"
        obs = next(x for x in cs["rest"][0]["resource"] if x["type"] == "Observation")
        assert {"code", "date", "patient", "category"} <= {p["name"] for p in obs["searchParam"]}

    def test_smart_configuration_is_published(self, client: TestClient) -> None:
        r = client.get("/.well-known/smart-configuration")
        assert r.status_code == 200 and r.json()["token_endpoint"].endswith("/oauth/token")


class TestReadAndSearch:
    def test_read_returns_the_resource_with_etag(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        r = client.get(f"/fhir/Observation/{loaded['chol']}", headers=clinic["headers"])
        assert r.status_code == 200 and r.headers["etag"] == 'W/"1"'
        assert r.json()["valueQuantity"]["value"] == 210

    def test_unknown_id_is_404_operation_outcome(self, client: TestClient, clinic: dict) -> None:
        r = client.get("/fhir/Observation/nope", headers=clinic["headers"])
        assert r.status_code == 404 and r.json()["issue"][0]["code"] == "not-found"

    def test_unknown_type_is_404(self, client: TestClient, clinic: dict) -> None:
        r = client.get("/fhir/Spaceship/1", headers=clinic["headers"])
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"

    def test_search_by_patient_code_and_date(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        r = client.get(
            "/fhir/Observation",
            headers=clinic["headers"],
            params={
                "patient": loaded["patient"],
                "code": "http://loinc.org|4548-4",
                "date": "ge2024",
            },
        )
        b = r.json()
        assert b["type"] == "searchset" and b["total"] == 1
        assert b["entry"][0]["resource"]["id"] == loaded["hba1c_2024"]
        assert b["entry"][0]["search"]["mode"] == "match"

    def test_paging_links_walk_every_result(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        seen: list[str] = []
        url: str | None = "/fhir/Observation?_count=1&_sort=date"
        while url:
            b = client.get(url.replace("http://testserver", ""), headers=clinic["headers"]).json()
            seen += [e["resource"]["id"] for e in b.get("entry", [])]
            url = next((x["url"] for x in b["link"] if x["relation"] == "next"), None)
        assert len(seen) == 3 and len(set(seen)) == 3

    def test_include_brings_the_patient(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        b = client.get(
            "/fhir/Observation",
            headers=clinic["headers"],
            params={"code": "2093-3", "_include": "Observation:patient"},
        ).json()
        modes = sorted((e["resource"]["resourceType"], e["search"]["mode"]) for e in b["entry"])
        assert modes == [("Observation", "match"), ("Patient", "include")]

    def test_patient_search_by_name_birthdate_and_identifier(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        for params in (
            {"name": "筑波"},
            {"birthdate": "1950-04-01"},
            {"identifier": "urn:oid:1.2.392.100495.20.3.51.11234567|12345"},
        ):
            b = client.get("/fhir/Patient", headers=clinic["headers"], params=params).json()
            assert [e["resource"]["id"] for e in b["entry"]] == [loaded["patient"]], params

    def test_an_unknown_parameter_is_400_when_the_client_asks_for_strict(
        self, client: TestClient, clinic: dict
    ) -> None:
        r = client.get(
            "/fhir/Observation?flavour=sweet",
            headers={**clinic["headers"], "Prefer": "handling=strict"},
        )
        assert r.status_code == 400 and r.json()["issue"][0]["code"] == "not-supported"

    def test_an_unknown_parameter_is_otherwise_ignored_and_reported(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        b = client.get(
            "/fhir/Observation?code=2093-3&flavour=sweet", headers=clinic["headers"]
        ).json()
        assert b["total"] == 1
        outcome = [e for e in b["entry"] if e["search"]["mode"] == "outcome"]
        assert "flavour" in outcome[0]["resource"]["issue"][0]["diagnostics"]
        assert all("flavour" not in link["url"] for link in b["link"])

    def test_search_by_post(self, client: TestClient, clinic: dict, loaded: dict) -> None:
        r = client.post(
            "/fhir/Observation/_search", data={"code": "2093-3"}, headers=clinic["headers"]
        )
        assert r.json()["total"] == 1


class TestHistoryAndWrites:
    def test_update_makes_version_2_and_history_shows_both(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        h = clinic["headers"]
        current = client.get(f"/fhir/Observation/{loaded['chol']}", headers=h).json()
        current["valueQuantity"]["value"] = 190
        r = client.put(f"/fhir/Observation/{loaded['chol']}", json=current, headers=h)
        assert r.status_code == 200 and r.headers["etag"] == 'W/"2"'
        hist = client.get(f"/fhir/Observation/{loaded['chol']}/_history", headers=h).json()
        assert hist["type"] == "history" and hist["total"] == 2
        v1 = client.get(f"/fhir/Observation/{loaded['chol']}/_history/1", headers=h).json()
        assert v1["valueQuantity"]["value"] == 210

    def test_stale_if_match_is_412(self, client: TestClient, clinic: dict, loaded: dict) -> None:
        h = clinic["headers"]
        current = client.get(f"/fhir/Observation/{loaded['chol']}", headers=h).json()
        r = client.put(
            f"/fhir/Observation/{loaded['chol']}", json=current, headers={**h, "If-Match": 'W/"7"'}
        )
        assert r.status_code == 412

    def test_create_then_delete(self, client: TestClient, clinic: dict, loaded: dict) -> None:
        h = clinic["headers"]
        body = observation_entry("55555555-5555-4555-8555-555555555555")["resource"]
        body["subject"] = {"reference": f"Patient/{loaded['patient']}"}
        r = client.post("/fhir/Observation", json=body, headers=h)
        assert r.status_code == 201 and "Location" in r.headers
        oid = r.json()["id"]
        assert client.delete(f"/fhir/Observation/{oid}", headers=h).status_code == 204
        assert client.get(f"/fhir/Observation/{oid}", headers=h).status_code == 410


class TestBadInput:
    def test_malformed_json_is_400_operation_outcome(
        self, client: TestClient, clinic: dict
    ) -> None:
        r = client.post(
            "/fhir", content=b"{not json", headers={**clinic["headers"], "Content-Type": FHIR_JSON}
        )
        assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"

    def test_a_non_bundle_is_400(self, client: TestClient, clinic: dict) -> None:
        r = client.post("/fhir", json={"resourceType": "Patient"}, headers=clinic["headers"])
        assert r.status_code == 400

    def test_xml_is_415(self, client: TestClient, clinic: dict) -> None:
        r = client.post(
            "/fhir",
            content=b"<Bundle/>",
            headers={**clinic["headers"], "Content-Type": "application/fhir+xml"},
        )
        assert r.status_code == 415

    def test_an_oversized_body_is_413(
        self, client: TestClient, clinic: dict, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from phr.settings import get_settings

        monkeypatch.setattr(get_settings(), "max_request_bytes", 1000)
        b = patient_bundle(
            extra=[observation_entry(f"2222222{i}-2222-4222-8222-222222222222") for i in range(10)]
        )
        r = client.post("/fhir", json=b, headers=clinic["headers"])
        assert r.status_code == 413 and r.json()["resourceType"] == "OperationOutcome"

    def test_an_invalid_transaction_writes_nothing(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        before = client.get("/fhir/Observation?_summary=count", headers=clinic["headers"])
        bad = observation_entry("66666666-6666-4666-8666-666666666666")
        bad["resource"]["valueQuantity"]["value"] = "lots"
        r = client.post(
            "/fhir",
            json=patient_bundle(
                extra=[observation_entry("77777777-7777-4777-8777-777777777777"), bad]
            ),
            headers=clinic["headers"],
        )
        assert r.status_code == 400
        after = client.get("/fhir/Observation?_summary=count", headers=clinic["headers"])
        assert before.json()["total"] == after.json()["total"] == 3


class TestEverything:
    def test_everything_returns_the_patients_record(
        self, client: TestClient, clinic: dict, loaded: dict
    ) -> None:
        b = client.get(
            f"/fhir/Patient/{loaded['patient']}/$everything", headers=clinic["headers"]
        ).json()
        types = sorted(e["resource"]["resourceType"] for e in b["entry"])
        assert types == ["Observation", "Observation", "Observation", "Patient"]

    def test_another_clinic_without_consent_sees_nothing(
        self, client: TestClient, make_org: OrgFactory, loaded: dict
    ) -> None:
        other = make_org("clinic-b", "clinic")
        h = other["headers"]
        assert (
            client.get(f"/fhir/Patient/{loaded['patient']}/$everything", headers=h).status_code
            == 404
        )
        assert client.get(f"/fhir/Observation/{loaded['chol']}", headers=h).status_code == 404
        b = client.get("/fhir/Observation", headers=h).json()
        assert b["total"] == 0 and b.get("entry", []) == []
