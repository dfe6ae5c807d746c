"""A shelter, its staff actor, and two residents sent by a clinic: Hanako (warfarin
prescribed and dispensed, insulin prescribed, a stopped medicine, an allergy, dialysis,
a resolved problem) and Taro (hypertension only). Real products of the national drug
list; the module's PIA approved as in the demo."""

from __future__ import annotations

import csv
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.actors import Actor
from consent.identity.clients import register_organization
from consent.policy import schemas as policy_schemas
from consent.policy import service as policy
from phr.polypharmacy import repository as drug_repo
from phr.polypharmacy import service as polypharmacy
from phr.polypharmacy.master import YJ, parse_row
from phr.polypharmacy.reconcile import as_of
from phr.store.indexer import utcnow
from phr_modules.shelter import service
from phr_modules.shelter.demo import seed_pia
from phr_modules.shelter.models import ShelterIntake
from phr_modules.shelter.module import MODULE
from tests.conftest import OrgFactory, needs, patient_bundle
from tests.polypharmacy.helpers import DRUG_LIST

SHELTER = "shelter-1"
UCUM = "http://unitsofmeasure.org"
PATIENT = "urn:uuid:11111111-1111-4111-8111-111111111111"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ICD10 = "http://hl7.org/fhir/sid/icd-10"

needs_drug_list = needs(DRUG_LIST.exists(), f"the MHLW drug list is not at {DRUG_LIST}")


def desk(org: str = SHELTER, kind: str = "shelter", role: str = "shelter_staff") -> Actor:
    return Actor(
        kind="staff",
        client_id="shelter-desk",
        organization_id=org,
        organization_kind=kind,
        user_id=f"{org}-desk",
        role=role,
        scopes=frozenset({"user/*.rs"}),
    )


def _products() -> dict[str, dict[str, Any]]:
    """The first tablet of warfarin and of amlodipine, and an insulin (YJ 2492...)."""
    found: dict[str, dict[str, Any]] = {}
    with open(DRUG_LIST, encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            p = parse_row(row, DRUG_LIST.name)
            if not p:
                continue
            if p["ingredient"] in ("ワルファリンカリウム", "アムロジピンベシル酸塩"):
                key = p["ingredient"]
            elif p["code"].startswith("2492") and "インスリン" in p["ingredient"]:
                key = "insulin"
            else:
                continue
            if key not in found or p["code"] < found[key]["code"]:
                found[key] = p
    return found


def _entry(resource: dict[str, Any], patient_key: str = "subject") -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": {**resource, patient_key: {"reference": PATIENT}},
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def _med(p: dict[str, Any]) -> dict[str, Any]:
    return {"coding": [{"system": YJ, "code": p["code"], "display": p["name"]}]}


def _days(n: int) -> dict[str, Any]:
    return {"value": n, "unit": "日", "system": UCUM, "code": "d"}


def _condition(code: str, display: str, status: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": status}]},
        "code": {"coding": [{"system": ICD10, "code": code, "display": display}]},
        "recordedDate": "2025-04-01",
    }


@pytest.fixture
def today() -> date:
    return as_of(utcnow())


@pytest.fixture
def world(
    session: Session, client: TestClient, make_org: OrgFactory, today: date
) -> dict[str, Any]:
    products = _products()
    drug_repo.insert_products(session, [{**p, "imported_at": utcnow()} for p in products.values()])
    polypharmacy.forget_products()
    warfarin, amlodipine, insulin = (
        products["ワルファリンカリウム"], products["アムロジピンベシル酸塩"], products["insulin"]
    )  # fmt: skip
    clinic = make_org("takezono-naika", "clinic")
    hanako = patient_bundle(
        extra=[
            _entry({
                "resourceType": "MedicationRequest", "status": "active", "intent": "order",
                "medicationCodeableConcept": _med(warfarin),
                "authoredOn": (today - timedelta(days=20)).isoformat(),
                "requester": {"display": "竹園内科医院"},
                "dosageInstruction": [{"text": "1日1回夕食後 2錠"}],
                "dispenseRequest": {"expectedSupplyDuration": _days(28)},
            }),
            _entry({
                "resourceType": "MedicationDispense", "status": "completed",
                "medicationCodeableConcept": _med(warfarin),
                "whenHandedOver": (today - timedelta(days=10)).isoformat(),
                "daysSupply": _days(28),
                "performer": [{"actor": {"display": "学園さくら薬局"}}],
            }),
            _entry({
                "resourceType": "MedicationRequest", "status": "active", "intent": "order",
                "medicationCodeableConcept": _med(insulin),
                "authoredOn": (today - timedelta(days=5)).isoformat(),
                "requester": {"display": "筑波学園病院"},
                "dosageInstruction": [{"text": "朝食前 8単位"}],
            }),
            _entry({
                "resourceType": "MedicationRequest", "status": "stopped", "intent": "order",
                "medicationCodeableConcept": _med(amlodipine),
                "authoredOn": (today - timedelta(days=400)).isoformat(),
                "requester": {"display": "竹園内科医院"},
            }),
            _entry({
                "resourceType": "AllergyIntolerance",
                "code": {"text": "ペニシリン"}, "criticality": "high",
                "recordedDate": "2020-05-01",
            }, "patient"),
            _entry(_condition("Z99.2", "腎透析状態", "active")),
            _entry(_condition("J18.9", "肺炎", "resolved")),
        ]
    )  # fmt: skip
    taro = patient_bundle(
        mrn="999", family="土浦", given="太郎", birth="1948-07-07", gender="male",
        extra=[_entry(_condition("I10", "本態性高血圧症", "active"))],
    )  # fmt: skip
    ids = []
    for bundle in (hanako, taro):
        r = client.post("/fhir", json=bundle, headers=clinic["headers"])
        assert r.status_code == 200, r.text
        ids.append(r.json()["entry"][0]["response"]["location"].split("/")[1])
    register_organization(session, id=SHELTER, name="第1避難所", kind="shelter")
    seed_pia(session)
    session.commit()
    return {"hanako": ids[0], "taro": ids[1], "clinic": clinic, "products": products}


def disaster_consent(session: Session, resident_id: str, enabled: bool = True) -> None:
    policy.set_disaster_consent(
        session,
        Actor(kind="resident", resident_id=resident_id),
        policy_schemas.EmergencyConsentIn(enabled=enabled),
    )
    session.commit()


def reader(session: Session, actor: Actor | None = None) -> Any:
    from phr.modules import ModuleReader

    return ModuleReader(session, actor or desk(), service.PURPOSE, MODULE)


def lookup(session: Session, actor: Actor | None = None) -> Any:
    from phr.modules import ModuleReader

    return ModuleReader.for_identification(session, actor or desk(), service.PURPOSE, MODULE)


def check_in(session: Session, who: str = "hanako", **kw: Any) -> ShelterIntake:
    """Open an intake, find the person by name and birth date, confirm by birth date."""
    from phr_modules.shelter.schemas import Confirm, DemographicQuery

    person = {
        "hanako": ("筑波", "花子", "1950-04-01", "female"),
        "taro": ("土浦", "太郎", "1948-07-07", "male"),
    }[who]
    actor = kw.get("actor") or desk()
    row = service.open_intake(session, actor)
    q = DemographicQuery(family=person[0], given=person[1], birth_date=person[2], sex=person[3])
    found = service.identify_by_demographics(session, actor, lookup(session, actor), row.id, q)
    assert found.identified
    body = Confirm(method="birth_date", birth_date=date.fromisoformat(person[2]))
    service.confirm(session, actor, lookup(session, actor), row.id, body)
    session.commit()
    return row
