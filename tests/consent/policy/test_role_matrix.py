"""The authorization matrix for people: staff roles (OpenID Connect user tokens of real
staff accounts) × consent states × the FHIR routes (search, read, ``$everything``).

A role bounds what its holder reads whatever a consent says (``consent.engine
.ROLE_PURPOSES``/``ROLE_TYPES``): clinical roles read what the resident shares with
them; a clerk only the administrative record; analysts and administrators no record.
Organisation-level consents reach the organisation's staff through their roles.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.actors import Purpose
from consent.policy import schemas, service
from consent.staff.service import configure_password_hasher, create_staff
from phr.store.indexer import utcnow
from tests.conftest import user_token_headers

from .conftest import ids, resident, visible

# (organisation id, role): the staff whose view is checked in every state
STAFF = (
    ("clinic-a", "doctor"),
    ("clinic-a", "clerk"),
    ("clinic-a", "administrator"),
    ("hospital-b", "doctor"),
    ("hospital-b", "nurse"),
    ("hospital-b", "pharmacist"),
    ("hospital-b", "clerk"),
    ("hospital-b", "administrator"),
    ("ems-c", "paramedic"),
    ("ems-c", "clerk"),
    ("city-e", "nurse"),
    ("city-e", "analyst"),
)
ALL = ("patient", "obs", "diabetes", "depression", "allergy")
ORDINARY = ("patient", "obs", "diabetes", "allergy")  # depression is mental-health data
EMERGENCY_SET = ("patient", "obs", "diabetes", "allergy")

# The contributing clinic's own chart, seen in every state by its staff for every purpose
# their role reads for.
OWN_CHART = {
    ("clinic-a", "doctor", Purpose.TREATMENT): ALL,
    ("clinic-a", "doctor", Purpose.EMERGENCY): ALL,
    ("clinic-a", "clerk", Purpose.TREATMENT): ("patient",),
}


def expected_views(state: str) -> dict[tuple[str, str, Purpose], tuple[str, ...]]:
    """What each (organisation, role, purpose) sees in this consent state; the rest: nothing."""
    out = dict(OWN_CHART)
    hospital_staff = {
        ("hospital-b", "doctor", Purpose.TREATMENT): ORDINARY,
        ("hospital-b", "nurse", Purpose.TREATMENT): ORDINARY,
        ("hospital-b", "pharmacist", Purpose.TREATMENT): ORDINARY,
        ("hospital-b", "clerk", Purpose.TREATMENT): ("patient",),
    }
    if state == "permit to the hospital":
        out |= hospital_staff
    elif state == "permit to doctors":
        out |= {("hospital-b", "doctor", Purpose.TREATMENT): ORDINARY}
    elif state == "permit to the hospital, deny to nurses":
        out |= hospital_staff
        out[("hospital-b", "nurse", Purpose.TREATMENT)] = ()
    elif state == "emergency episode":
        out |= {
            ("ems-c", "paramedic", Purpose.EMERGENCY): EMERGENCY_SET,
            ("hospital-b", "doctor", Purpose.EMERGENCY): EMERGENCY_SET,
            ("hospital-b", "nurse", Purpose.EMERGENCY): EMERGENCY_SET,
            ("hospital-b", "pharmacist", Purpose.EMERGENCY): EMERGENCY_SET,
        }
    elif state == "public health":
        out |= {("city-e", "nurse", Purpose.PUBLIC_HEALTH): ORDINARY}
    return out


STATES = (
    "none",
    "permit to the hospital",
    "permit to doctors",
    "permit to the hospital, deny to nurses",
    "expired",
    "revoked",
    "emergency episode",
    "public health",
)
PURPOSES = (Purpose.TREATMENT, Purpose.EMERGENCY, Purpose.PUBLIC_HEALTH)


@pytest.fixture(autouse=True)
def cheap_argon2() -> Any:
    configure_password_hasher(PasswordHasher.from_parameters(profiles.CHEAPEST))
    yield
    configure_password_hasher(None)


def staff_token(session: Session, org_id: str, role: str) -> dict[str, str]:
    """A staff member's access token as the OpenID Connect provider issues it to an app
    (authorization code flow; the flow itself is tested in tests/consent/identity)."""
    user, _ = create_staff(
        session,
        organization_id=org_id,
        username=f"{role}-{org_id}",
        display_name=f"{role} at {org_id}",
        role=role,
        password="correct horse battery staple",
    )
    return user_token_headers(
        session, subject_kind="staff", subject_id=user.id, organization_id=org_id, role=role
    )


def set_state(client: TestClient, session: Session, world: dict[str, Any], state: str) -> None:
    me = resident(world)

    def consent(**kw: Any) -> schemas.ConsentRead:
        return service.create_consent(session, me, schemas.ConsentCreate(**kw))

    to_hospital: dict[str, Any] = {
        "recipients": [{"kind": "organization", "value": "hospital-b"}],
        "purposes": ["TREAT"],
    }
    if state == "permit to the hospital":
        consent(**to_hospital)
    elif state == "permit to doctors":
        consent(recipients=[{"kind": "role", "value": "doctor"}], purposes=["TREAT"])
    elif state == "permit to the hospital, deny to nurses":
        consent(**to_hospital)
        consent(decision="deny", recipients=[{"kind": "role", "value": "nurse"}])
    elif state == "expired":
        consent(**to_hospital, period_end=utcnow() - timedelta(minutes=1))
    elif state == "revoked":
        c = consent(**to_hospital)
        service.revoke_consent(session, me, c.id)
    elif state == "emergency episode":
        service.set_emergency_consent(session, me, schemas.EmergencyConsentIn(enabled=True))
        ems = world["orgs"]["ems"]["headers"]
        r = client.post("/api/emergency/episodes", json={"patient": world["patient"]}, headers=ems)
        assert r.status_code == 201, r.text
        r = client.post(
            f"/api/emergency/episodes/{r.json()['id']}/handover",
            json={"receiving_organization_id": "hospital-b"},
            headers=ems,
        )
        assert r.status_code == 200, r.text
    elif state == "public health":
        consent(recipients=[{"kind": "org_kind", "value": "municipality"}], purposes=["PUBHLTH"])
    session.commit()


@pytest.mark.parametrize("state", STATES)
def test_each_role_sees_what_its_role_and_the_consent_allow(
    client: TestClient, session: Session, world: dict[str, Any], state: str
) -> None:
    tokens = {(org, role): staff_token(session, org, role) for org, role in STAFF}
    set_state(client, session, world, state)
    views = expected_views(state)
    for (org, role), headers in tokens.items():
        for purpose in PURPOSES:
            want = ids(world, *views.get((org, role, purpose), ()))
            got = visible(client, world, headers=headers, purpose=purpose)
            assert got == want, (state, org, role, purpose.value)


def test_a_consent_cannot_widen_a_role(
    client: TestClient, session: Session, world: dict[str, Any]
) -> None:
    service.create_consent(
        session,
        resident(world),
        schemas.ConsentCreate(
            recipients=[{"kind": "role", "value": "clerk"}, {"kind": "role", "value": "analyst"}],
            sensitive_categories=["mental-health"],
        ),
    )
    session.commit()
    clerk = staff_token(session, "hospital-b", "clerk")
    analyst = staff_token(session, "city-e", "analyst")
    assert visible(client, world, headers=clerk) == ids(world, "patient")
    assert visible(client, world, headers=analyst, purpose=Purpose.PUBLIC_HEALTH) == set()
