"""The authorization matrix: FHIR routes x organisations x consent states.

One resident's record comes from clinic A. Other organisations see what the resident's
consent allows — and nothing else: not in reads, searches, totals, $everything or
$summary. Every look, permitted or refused, is in the access log.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from consent.models import AuditEntry
from consent.policy import schemas, service
from phr.store.indexer import utcnow
from tests.conftest import OrgFactory, observation_entry, patient_bundle

ICD10 = "http://hl7.org/fhir/sid/icd-10"
SEARCHED = ("Patient", "Observation", "Condition", "AllergyIntolerance")


def condition(uuid: str, code: str, display: str) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{uuid}",
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
            "code": {"coding": [{"system": ICD10, "code": code, "display": display}]},
            "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
            "onsetDateTime": "2020-01-01",
        },
        "request": {"method": "POST", "url": "Condition"},
    }


def allergy(uuid: str) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{uuid}",
        "resource": {
            "resourceType": "AllergyIntolerance",
            "code": {"text": "ペニシリン"},
            "patient": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
        },
        "request": {"method": "POST", "url": "AllergyIntolerance"},
    }


@pytest.fixture
def world(client: TestClient, make_org: OrgFactory) -> dict[str, Any]:
    orgs = {
        "owner": make_org("clinic-a", "clinic"),
        "hospital": make_org("hospital-b", "hospital"),
        "ems": make_org("ems-c", "ems", scopes=["system/*.rs"]),
        "pharmacy": make_org("pharmacy-d", "pharmacy", scopes=["system/*.rs"]),
        "city": make_org("city-e", "municipality", scopes=["system/*.rs"]),
    }
    b = patient_bundle(
        extra=[
            observation_entry("22222222-2222-4222-8222-222222222222"),
            condition("33333333-3333-4333-8333-333333333333", "E11.9", "2型糖尿病"),
            condition("44444444-4444-4444-8444-444444444444", "F32.9", "うつ病"),
            allergy("55555555-5555-4555-8555-555555555555"),
        ]
    )
    r = client.post("/fhir", json=b, headers=orgs["owner"]["headers"])
    assert r.status_code == 200, r.text
    ids = [e["response"]["location"].split("/")[1] for e in r.json()["entry"]]
    return {
        "orgs": orgs,
        "patient": ids[0],
        "obs": ids[1],
        "diabetes": ids[2],
        "depression": ids[3],
        "allergy": ids[4],
    }


def resident(world: dict[str, Any]) -> Actor:
    return Actor(kind="resident", resident_id=world["patient"], client_id="resident-app")


def visible(
    client: TestClient, world: dict[str, Any], who: str, purpose: Purpose = Purpose.TREATMENT
) -> set[str]:
    """Everything this organisation can see of the resident, through several routes."""
    h = {**world["orgs"][who]["headers"], "X-Purpose-Of-Use": purpose.value}
    seen: set[str] = set()
    for rtype in SEARCHED:
        b = client.get(f"/fhir/{rtype}", params={"_count": 100}, headers=h).json()
        got = {e["resource"]["id"] for e in b.get("entry", [])}
        assert b["total"] == len(got), "totals must not count what is hidden"
        seen |= got
    everything = client.get(f"/fhir/Patient/{world['patient']}/$everything", headers=h)
    if everything.status_code == 200:
        ev = {
            e["resource"]["id"]
            for e in everything.json()["entry"]
            if e["resource"]["resourceType"] in SEARCHED
        }
        assert ev == seen, "$everything shows exactly what searches show"
    else:
        assert everything.status_code == 404 and world["patient"] not in seen
    for key in ("obs", "diabetes", "depression", "allergy"):
        status = client.get(f"/fhir/{_type(key)}/{world[key]}", headers=h).status_code
        assert (status == 200) == (world[key] in seen), (who, key, status)
    return seen


def _type(key: str) -> str:
    return {
        "obs": "Observation",
        "diabetes": "Condition",
        "depression": "Condition",
        "allergy": "AllergyIntolerance",
    }[key]


def ids(world: dict[str, Any], *keys: str) -> set[str]:
    return {world[k] for k in keys}


def permit(session: Session, world: dict[str, Any], **kw: Any) -> schemas.ConsentRead:
    return service.create_consent(session, resident(world), schemas.ConsentCreate(**kw))


class TestNoConsent:
    def test_the_contributing_clinic_sees_its_own_chart(
        self, client: TestClient, world: dict
    ) -> None:
        assert visible(client, world, "owner") == ids(
            world, "patient", "obs", "diabetes", "depression", "allergy"
        )

    @pytest.mark.parametrize("who", ["hospital", "ems", "pharmacy", "city"])
    def test_everyone_else_sees_nothing(self, client: TestClient, world: dict, who: str) -> None:
        assert visible(client, world, who) == set()
        assert visible(client, world, who, Purpose.EMERGENCY) == set()

    def test_refused_reads_are_in_the_access_log(
        self, client: TestClient, world: dict, session: Session
    ) -> None:
        h = world["orgs"]["hospital"]["headers"]
        assert client.get(f"/fhir/Observation/{world['obs']}", headers=h).status_code == 404
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.pk.desc())).first()
        assert last is not None
        assert (last.organization_id, last.outcome, last.resident_id) == (
            "hospital-b",
            "deny",
            world["patient"],
        )


class TestPermit:
    def test_a_permit_to_one_hospital_shares_ordinary_data_for_that_purpose(
        self, client: TestClient, world: dict, session: Session
    ) -> None:
        permit(
            session,
            world,
            recipients=[{"kind": "organization", "value": "hospital-b"}],
            purposes=["TREAT"],
        )
        assert visible(client, world, "hospital") == ids(
            world, "patient", "obs", "diabetes", "allergy"
        )
        assert visible(client, world, "hospital", Purpose.RESEARCH) == set()
        assert visible(client, world, "pharmacy") == set()

    def test_sensitive_data_needs_to_be_named(
        self, client: TestClient, world: dict, session: Session
    ) -> None:
        permit(
            session,
            world,
            recipients=[{"kind": "organization", "value": "hospital-b"}],
            sensitive_categories=["mental-health"],
        )
        assert world["depression"] in visible(client, world, "hospital")

    def test_a_permit_by_data_class_shares_only_those_types(
        self, client: TestClient, world: dict, session: Session
    ) -> None:
        permit(
            session,
            world,
            recipients=[{"kind": "org_kind", "value": "pharmacy"}],
            purposes=["MEDREVIEW"],
            data_classes=["Patient", "AllergyIntolerance"],
        )
        assert visible(client, world, "pharmacy", Purpose.MEDICATION_REVIEW) == ids(
            world, "patient", "allergy"
        )

    def test_the_access_log_names_the_consent_that_allowed_it(
        self, client: TestClient, world: dict, session: Session
    ) -> None:
        c = permit(session, world, recipients=[{"kind": "organization", "value": "hospital-b"}])
        client.get(
            f"/fhir/Observation/{world['obs']}", headers=world["orgs"]["hospital"]["headers"]
        )
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.pk.desc())).first()
        assert last is not None and last.consent_ref == f"Consent/{c.id}"


class TestDeny:
    def test_a_deny_overrides_a_general_permit(
        self, client: TestClient, world: dict, session: Session
    ) -> None:
        permit(session, world, recipients=[{"kind": "any"}])
        permit(
            session,
            world,
            decision="deny",
            recipients=[{"kind": "organization", "value": "hospital-b"}],
        )
        assert visible(client, world, "hospital") == set()
        assert visible(client, world, "pharmacy") == ids(
            world, "patient", "obs", "diabetes", "allergy"
        )

    def test_a_nested_exception_withholds_one_data_class(
        self, client: TestClient, world: dict, session: Session
    ) -> None:
        permit(
            session,
            world,
            recipients=[{"kind": "organization", "value": "hospital-b"}],
            exceptions=[{"data_classes": ["Observation"]}],
        )
        assert visible(client, world, "hospital") == ids(world, "patient", "diabetes", "allergy")


class TestPeriodsAndRevocation:
    def test_an_expired_consent_shares_nothing(
        self, client: TestClient, world: dict, session: Session
    ) -> None:
        now = utcnow()
        permit(
            session,
            world,
            recipients=[{"kind": "organization", "value": "hospital-b"}],
            period_start=now - timedelta(days=30),
            period_end=now - timedelta(days=1),
        )
        assert visible(client, world, "hospital") == set()

    def test_a_future_consent_is_not_yet_in_force(
        self, client: TestClient, world: dict, session: Session
    ) -> None:
        permit(
            session,
            world,
            recipients=[{"kind": "organization", "value": "hospital-b"}],
            period_start=utcnow() + timedelta(days=1),
        )
        assert visible(client, world, "hospital") == set()

    def test_revocation_takes_effect_on_the_next_request(
        self, client: TestClient, world: dict, session: Session
    ) -> None:
        c = permit(session, world, recipients=[{"kind": "organization", "value": "hospital-b"}])
        assert visible(client, world, "hospital")
        service.revoke_consent(session, resident(world), c.id)
        assert visible(client, world, "hospital") == set()


class TestEmergency:
    def test_pre_consent_applies_only_during_an_episode(
        self, client: TestClient, world: dict, session: Session
    ) -> None:
        service.set_emergency_consent(
            session, resident(world), schemas.EmergencyConsentIn(enabled=True)
        )
        assert visible(client, world, "ems", Purpose.EMERGENCY) == set()
        r = client.post(
            "/api/emergency/episodes",
            json={"patient": world["patient"]},
            headers=world["orgs"]["ems"]["headers"],
        )
        assert r.status_code == 201, r.text
        emergency_set = ids(world, "patient", "obs", "diabetes", "allergy")
        assert visible(client, world, "ems", Purpose.EMERGENCY) == emergency_set
        assert visible(client, world, "ems", Purpose.TREATMENT) == set()
        # The resident is told at once that paramedics looked.
        from consent.models import Notification

        kinds = {
            n.kind
            for n in session.scalars(
                select(Notification).where(Notification.resident_id == world["patient"])
            )
        }
        assert "emergency_access" in kinds
        # The receiving hospital sees the same set after the handover, and only then.
        assert visible(client, world, "hospital", Purpose.EMERGENCY) == set()
        ep = r.json()["id"]
        client.post(
            f"/api/emergency/episodes/{ep}/handover",
            json={"receiving_organization_id": "hospital-b"},
            headers=world["orgs"]["ems"]["headers"],
        )
        assert visible(client, world, "hospital", Purpose.EMERGENCY) == emergency_set
        client.post(f"/api/emergency/episodes/{ep}/close", headers=world["orgs"]["ems"]["headers"])
        assert visible(client, world, "ems", Purpose.EMERGENCY) == set()

    def test_without_pre_consent_an_episode_shows_nothing(
        self, client: TestClient, world: dict
    ) -> None:
        client.post(
            "/api/emergency/episodes",
            json={"patient": world["patient"]},
            headers=world["orgs"]["ems"]["headers"],
        )
        assert visible(client, world, "ems", Purpose.EMERGENCY) == set()

    def test_only_ems_open_episodes(self, client: TestClient, world: dict) -> None:
        r = client.post(
            "/api/emergency/episodes",
            json={"patient": world["patient"]},
            headers=world["orgs"]["pharmacy"]["headers"],
        )
        assert r.status_code == 403

    def test_the_preview_shows_what_a_paramedic_would_see(
        self, world: dict, session: Session
    ) -> None:
        service.set_emergency_consent(
            session, resident(world), schemas.EmergencyConsentIn(enabled=True)
        )
        # The preview assumes an open episode for the hypothetical paramedic.
        from consent.policy.models import EmergencyEpisode

        now = utcnow()
        session.add(
            EmergencyEpisode(
                id="ep-preview",
                resident_id=world["patient"],
                ems_organization_id="preview-ems",
                opened_by="test",
                opened_at=now,
                expires_at=now + timedelta(hours=1),
            )
        )
        session.flush()
        p = service.preview(
            session, resident(world), as_kind="ems", purpose=Purpose.EMERGENCY, organization_id=None
        )
        assert {i.resource_type: i.count for i in p.items} == {
            "AllergyIntolerance": 1,
            "Condition": 1,
            "Observation": 1,
            "Patient": 1,
        }


class TestLifeProtectionException:
    def test_it_is_off_by_default(self, client: TestClient, world: dict) -> None:
        r = client.post(
            "/api/emergency/break-glass",
            json={"patient": world["patient"], "reason": "unconscious, no ID card"},
            headers=world["orgs"]["ems"]["headers"],
        )
        assert r.status_code == 403

    def test_when_enabled_it_opens_the_emergency_set_but_never_against_a_no(
        self,
        client: TestClient,
        world: dict,
        session: Session,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from phr.settings import get_settings

        monkeypatch.setattr(get_settings(), "life_protection_exception", True)
        h = world["orgs"]["ems"]["headers"]
        r = client.post(
            "/api/emergency/break-glass",
            json={"patient": world["patient"], "reason": "unconscious, no ID card"},
            headers=h,
        )
        assert r.status_code == 201 and r.json()["review_status"] == "pending"
        assert visible(client, world, "ems", Purpose.EMERGENCY) == ids(
            world, "patient", "obs", "diabetes", "allergy"
        )
        permit(session, world, decision="deny", recipients=[{"kind": "any"}], purposes=["ETREAT"])
        assert visible(client, world, "ems", Purpose.EMERGENCY) == set()
        r = client.post(
            "/api/emergency/break-glass",
            json={"patient": world["patient"], "reason": "unconscious, no ID card"},
            headers=h,
        )
        assert r.status_code == 403
