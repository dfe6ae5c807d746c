"""The module contract: discovery, mounting, the consent-checked reader, the registry."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from consent.models import AuditEntry
from consent.pia import service as pia
from consent.pia.schemas import PiaCreate
from phr.errors import Forbidden
from phr.modules import ModuleReader
from phr.modules.registry import discover
from tests.conftest import OrgFactory, observation_entry, patient_bundle
from tests.consent.pia.conftest import complete
from tests.consent.pia.test_api import Cookie
from tests.consent.policy.conftest import allergy
from tests.modules.example_module import MODULE

ALLERGY = "55555555-5555-4555-8555-555555555555"


@pytest.fixture
def world(
    session: Session, client: TestClient, make_org: OrgFactory, orgs: dict[str, str]
) -> dict[str, Any]:
    clinic = make_org("clinic-a", "clinic")
    bundle = patient_bundle(
        extra=[observation_entry("22222222-2222-4222-8222-222222222222"), allergy(ALLERGY)]
    )
    r = client.post("/fhir", json=bundle, headers=clinic["headers"])
    assert r.status_code == 200, r.text
    patient, obs, allergy_id = [e["response"]["location"].split("/")[1] for e in r.json()["entry"]]
    return {"clinic": clinic, "patient": patient, "obs": obs, "allergy": allergy_id}


def approve_pia(session: Session, **kw: Any) -> None:
    declared = {"purpose_codes": ["TREAT"], "resource_types": ["Patient", "AllergyIntolerance"]}
    doc = complete("example", **{**declared, **kw})
    draft = pia.create_draft(session, data=PiaCreate.model_validate(doc), by="alice@care")
    pia.submit(session, pia_id=draft.id, by="alice@care")
    pia.approve(session, pia_id=draft.id, by="bob@platform")
    session.commit()


def test_the_module_is_discovered_from_its_entry_point(example_installed: Any) -> None:
    assert discover()["example"] is MODULE


def test_without_an_approved_pia_the_module_reads_nothing(
    session: Session, client: TestClient, world: dict[str, Any]
) -> None:
    url = f"/modules/example/allergies/{world['patient']}"
    r = client.get(url, headers=world["clinic"]["headers"])
    assert r.status_code == 200, r.text  # the route is mounted ...
    assert r.json()["allergies"] == []  # ... but the engine denies the service everything
    one = client.get(
        f"/modules/example/read/AllergyIntolerance/{world['allergy']}",
        headers=world["clinic"]["headers"],
    )
    assert one.status_code == 404
    # The clinic itself sees its own chart through the FHIR API: it is the module that is
    # refused, not the caller.
    direct = client.get(
        f"/fhir/AllergyIntolerance/{world['allergy']}", headers=world["clinic"]["headers"]
    )
    assert direct.status_code == 200

    approve_pia(session)
    r = client.get(url, headers=world["clinic"]["headers"])
    assert [a["id"] for a in r.json()["allergies"]] == [world["allergy"]]
    logged = session.scalars(
        select(AuditEntry).where(AuditEntry.resident_id == world["patient"])
    ).all()
    assert any(e.service == "example" for e in logged)


def test_undeclared_types_and_purposes_are_refused(
    session: Session, client: TestClient, world: dict[str, Any]
) -> None:
    approve_pia(session)
    h = world["clinic"]["headers"]
    r = client.get(f"/modules/example/read/Observation/{world['obs']}", headers=h)
    assert r.status_code == 403
    assert "did not declare the resource type Observation" in r.json()["message"]
    r = client.get(
        f"/modules/example/allergies/{world['patient']}",
        headers={**h, "X-Purpose-Of-Use": "PUBHLTH"},
    )
    assert r.status_code == 403
    assert "did not declare the purpose PUBHLTH" in r.json()["message"]
    # Inside the SQL too: the whole record through the module holds only declared types.
    actor = Actor(kind="organization", organization_id="clinic-a", organization_kind="clinic")
    reader = ModuleReader(session, actor, Purpose.TREATMENT, MODULE)
    got = {r.resource_type for r in reader.compartment(world["patient"])}
    assert got == {"Patient", "AllergyIntolerance"}
    assert {t for t, _, _ in reader.export(types=None)} == {"Patient", "AllergyIntolerance"}
    with pytest.raises(Forbidden):
        list(reader.export(types=["Observation"]))
    with pytest.raises(Forbidden):
        ModuleReader(session, Actor.system(), Purpose.TREATMENT, MODULE)


def test_the_registry_lists_the_module_and_its_pia(
    session: Session, client: TestClient, world: dict[str, Any], cookie: Cookie
) -> None:
    admin = cookie("platform", "bob", "administrator")
    assert client.get("/api/modules").status_code == 401
    client.cookies.clear()
    nurse = cookie("clinic-a", "carol", "nurse")
    client.cookies.update(nurse)
    assert client.get("/api/modules").status_code == 403
    client.cookies.clear()
    client.cookies.update(admin)
    [m] = [x for x in client.get("/api/modules").json() if x["name"] == "example"]
    assert m["mount"] == "/modules/example/"
    assert m["purposes"] == ["TREAT"]
    assert m["resource_types"] == ["AllergyIntolerance", "Patient"]
    assert (m["pia_status"], m["pia_in_force"]) == ("none", False)
    approve_pia(session, resource_types=["Patient"])
    [m] = [x for x in client.get("/api/modules").json() if x["name"] == "example"]
    assert (m["pia_status"], m["pia_in_force"]) == ("approved", True)
    assert m["undeclared_in_pia"] == ["AllergyIntolerance"]
    page = client.get("/admin/modules")
    assert page.status_code == 200 and "アレルギー確認" in page.text
