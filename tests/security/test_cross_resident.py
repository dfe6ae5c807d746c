"""Cross-resident access: every kind of caller — staff of each role, organisations'
clients, another resident, a trusted person of another resident — tries to reach a
resident's record it has no consent for, by id, search, ``$everything``, ``$summary``,
history, vread, ``_include``/``_revinclude`` tricks, compartment-style URLs, bulk export,
the web pages, and the ACP and emergency APIs: nothing of the record comes back.

The world (``tests/consent/policy/conftest.py``): the victim's record comes from clinic
A; no consent is given to anyone else. The consent states themselves are the matrices'
business (``tests/consent/policy``); here only the tricks around them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.actors import Actor
from phr.acp import schemas as acp_schemas
from phr.acp import service as acp
from tests.conftest import user_token_headers
from tests.security.conftest import resident_ids

# (organisation key in the world, role) of the staff who try
STAFF = (
    ("hospital", "doctor"),
    ("hospital", "nurse"),
    ("hospital", "pharmacist"),
    ("hospital", "clerk"),
    ("hospital", "administrator"),
    ("ems", "paramedic"),
    ("pharmacy", "pharmacist"),
    ("city", "nurse"),
    ("city", "analyst"),
)


def victim_urls(world: dict[str, Any]) -> list[str]:
    p, obs, dia = world["patient"], world["obs"], world["diabetes"]
    return [
        f"/fhir/Patient/{p}",
        f"/fhir/Observation/{obs}",
        f"/fhir/Condition/{dia}/_history",
        f"/fhir/Condition/{dia}/_history/1",
        f"/fhir/Patient/{p}/_history/1",
        f"/fhir/Patient/{p}/$everything",
        f"/fhir/Patient/{p}/$summary",
        f"/fhir/Patient/{p}/Observation",  # compartment-style URL
        f"/fhir/Patient?_id={p}",
        f"/fhir/Observation?patient={p}",
        f"/fhir/Observation?subject=Patient/{p}",
        f"/fhir/Observation?subject:Patient={p}",
        f"/fhir/Condition?patient={p}&_include=Condition:patient",
        f"/fhir/Patient?_id={p}&_revinclude=Observation:patient",
        "/fhir/Patient?_revinclude=Condition:subject",
        "/fhir/Observation?_include=Observation:subject",
        "/fhir/Observation?_include=*",
        "/fhir/Condition/_history",
        "/fhir/Observation?_lastUpdated=gt2000-01-01&_count=1000",
        "/fhir/Patient?family=筑波",
        "/fhir/Patient?identifier=12345",
        f"/api/acp/trusted/residents/{p}/acp",
        f"/acp/trusted/residents/{p}",
        f"/api/emergency/incidents/{p}",
        f"/api/emergency/incidents/{p}/summary",
        f"/ems/incidents/{p}",
        f"/hospital/incidents/{p}",
        f"/api/emergency/identify/face/candidates/{p}/photo",
    ]


def leaks(r: Any, world: dict[str, Any]) -> list[str]:
    """What of the victim's record an answer shows: their resources (by id, or anything
    referring to them) in a FHIR answer; their name or clinical ids anywhere else. (Error
    messages and self links may echo the id the caller sent: that is not a leak.)"""
    victim = {world[k] for k in ("patient", "obs", "diabetes", "depression", "allergy")}
    found = []
    if "花子" in r.text:
        found.append("name")
    clinical = victim - {world["patient"]}
    if r.status_code < 400 and any(i in r.text for i in clinical):
        found.append("clinical ids")
    if r.headers.get("content-type", "").startswith(("application/json", "application/fhir")):
        body = r.json()
        resources = [body]
        if isinstance(body, dict) and body.get("resourceType") == "Bundle":
            resources = [e.get("resource", {}) for e in body.get("entry", [])]
        if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
            resources = []
        ids = {x.get("id") for x in resources if isinstance(x, dict)}
        if (ids | resident_ids(resources)) & victim:
            found.append("resources")
    return found


# What staff tokens try (the same code paths as the organisations' clients, whose sweep is
# the full list): read, search, $everything, history, vread, the _include tricks.
STAFF_URLS = (0, 2, 3, 5, 9, 12, 13, 15)


def sweep(
    client: TestClient,
    world: dict[str, Any],
    headers: dict[str, str],
    only: tuple[int, ...] | None = None,
) -> list[str]:
    wrong = []
    urls = victim_urls(world)
    for url in [urls[i] for i in only] if only else urls:
        r = client.get(url, headers=headers, follow_redirects=False)
        if r.status_code >= 500:
            wrong.append(f"{url}: {r.status_code}")
        found = leaks(r, world)
        if found:
            wrong.append(f"{url}: {r.status_code} shows {found}")
    return wrong


@pytest.fixture
def planted(client: TestClient, world: dict[str, Any]) -> None:
    """Hospital B writes records pointing at the victim (an Observation whose subject is
    the victim's Patient), hoping to pull the victim's record in through _include."""
    p = world["patient"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": f"Patient/{p}"},
                    "hasMember": [{"reference": f"Observation/{world['obs']}"}],
                    "valueQuantity": {"value": 70, "unit": "/min"},
                },
                "request": {"method": "POST", "url": "Observation"},
            }
        ],
    }
    r = client.post("/fhir", json=bundle, headers=world["orgs"]["hospital"]["headers"])
    assert r.status_code < 500, r.text


def test_organisations_clients_get_nothing_of_another_residents_record(
    client: TestClient, world: dict[str, Any], planted: None
) -> None:
    wrong = []
    for who in ("hospital", "ems", "pharmacy", "city"):
        wrong += [f"{who} {w}" for w in sweep(client, world, world["orgs"][who]["headers"])]
    assert wrong == []


def test_staff_of_every_role_get_nothing_of_another_residents_record(
    client: TestClient, session: Session, world: dict[str, Any], planted: None
) -> None:
    wrong = []
    for org_key, role in STAFF:
        org = world["orgs"][org_key]["id"]
        h = user_token_headers(
            session,
            subject_kind="staff",
            subject_id=f"{org}-{role}",
            organization_id=org,
            role=role,
        )
        wrong += [f"{org} {role} {w}" for w in sweep(client, world, h, STAFF_URLS)]
    assert wrong == []


def test_another_resident_gets_nothing_but_their_own(
    client: TestClient, world: dict[str, Any], attacker: dict[str, Any], planted: None
) -> None:
    assert sweep(client, world, attacker["headers"]) == []
    mine = client.get("/fhir/Observation", headers=attacker["headers"]).json()
    assert resident_ids(mine) <= {attacker["id"]}


def test_a_trusted_person_of_another_resident_gets_nothing(
    client: TestClient, session: Session, world: dict[str, Any], attacker: dict[str, Any]
) -> None:
    owner = Actor(kind="resident", resident_id=attacker["id"], client_id="resident-app")
    invitation = acp.invite(
        session=session, actor=owner, body=acp_schemas.InvitationCreate(label="妻")
    )
    assert invitation.code
    signed_in = acp.accept_invitation(
        session=session,
        body=acp_schemas.AcceptInvitation(
            code=invitation.code,
            login="spouse@example.jp",
            passphrase="a long passphrase",
            name="妻",
        ),
    )
    session.commit()
    h = {"Authorization": f"Bearer {signed_in.token}"}
    assert client.get("/api/acp/trusted/residents", headers=h).status_code == 200
    assert sweep(client, world, h) == []


def test_bulk_export_of_another_residents_group_or_patient_is_refused(
    client: TestClient, world: dict[str, Any], attacker: dict[str, Any]
) -> None:
    kick = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
    for h in (attacker["headers"], world["orgs"]["pharmacy"]["headers"]):
        for url in (
            f"/fhir/Group/{world['patient']}/$export",
            f"/fhir/Patient/$export?patient=Patient/{world['patient']}",
        ):
            r = client.get(url, headers={**h, **kick})
            assert r.status_code in (400, 401, 403, 404), (url, r.status_code, r.text[:200])
