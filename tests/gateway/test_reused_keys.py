"""A clinic that re-uses a bundle's Patient fullUrl (urn:uuid) for a different person:
the master patient index keeps them apart, and the clinic sees both patients it sent."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import OrgFactory, observation_entry, patient_bundle


def test_a_reused_patient_key_for_another_person_is_a_new_patient_the_clinic_sees(
    client: TestClient, make_org: OrgFactory
) -> None:
    clinic = make_org("clinic-r", "clinic")
    first = client.post(
        "/fhir",
        json=patient_bundle(extra=[observation_entry("22222222-2222-4222-8222-222222222222")]),
        headers=clinic["headers"],
    )
    assert first.status_code == 200, first.text
    second = client.post(
        "/fhir",
        json=patient_bundle(
            mrn="777",
            given="次郎",
            gender="male",
            birth="1980-02-02",
            extra=[observation_entry("33333333-3333-4333-8333-333333333333")],
        ),
        headers=clinic["headers"],
    )
    assert second.status_code == 200, second.text
    ids = [r.json()["entry"][0]["response"]["location"].split("/")[1] for r in (first, second)]
    assert ids[0] != ids[1]
    for pid in ids:
        got = client.get(f"/fhir/Patient/{pid}", headers=clinic["headers"])
        assert got.status_code == 200, got.text
    jiro = client.get(f"/fhir/Patient/{ids[1]}", headers=clinic["headers"]).json()
    assert jiro["name"][0]["given"] == ["次郎"]
    obs = client.get(
        "/fhir/Observation", params={"patient": ids[1]}, headers=clinic["headers"]
    ).json()
    assert obs["total"] == 1
    # Sending the second bundle again changes nothing: the same two patients.
    again = client.post(
        "/fhir",
        json=patient_bundle(
            mrn="777",
            given="次郎",
            gender="male",
            birth="1980-02-02",
            extra=[observation_entry("33333333-3333-4333-8333-333333333333")],
        ),
        headers=clinic["headers"],
    )
    assert again.json()["entry"][0]["response"]["location"].split("/")[1] == ids[1]
    patients = client.get("/fhir/Patient", headers=clinic["headers"]).json()
    assert patients["total"] == 2
