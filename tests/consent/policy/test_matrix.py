"""The authorization matrix: FHIR routes x organisations x consent states.

One resident's record comes from clinic A. Other organisations see what the resident's
consent allows — and nothing else: not in reads, searches, totals, $everything or
$summary. Every look, permitted or refused, is in the access log.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.actors import Purpose
from consent.models import AuditEntry
from consent.policy import schemas, service
from phr.store.indexer import utcnow

from .conftest import ids, permit, resident, visible


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
