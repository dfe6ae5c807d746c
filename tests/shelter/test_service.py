"""The shelter module through its service and reader: nothing without the disaster-time
consent, nothing for an unconfirmed candidate, only the declared types, the medicines to
continue from MedicationRequest and MedicationDispense, the shelter list."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.models import AuditEntry
from consent.pia import repository as pia_repo
from phr.errors import Forbidden, NotFound
from phr.modules.registry import discover
from phr_modules.shelter import service
from phr_modules.shelter.module import MODULE
from phr_modules.shelter.schemas import Confirm, DemographicQuery
from tests.emergency.conftest import set_emergency_consent
from tests.shelter.conftest import (
    check_in,
    desk,
    disaster_consent,
    lookup,
    needs_drug_list,
    reader,
)

pytestmark = needs_drug_list


def view(session: Session, intake_id: str, actor: Any = None) -> Any:
    actor = actor or desk()
    return service.evacuee(session, actor, reader(session, actor), intake_id)


def test_the_module_is_installed_by_its_entry_point() -> None:
    assert discover()["shelter"] is MODULE


def test_without_the_disaster_consent_nothing_is_shown(
    session: Session, world: dict[str, Any]
) -> None:
    # The emergency pre-consent does not cover shelters (ADR 0006).
    set_emergency_consent(session, world["hanako"], True)
    row = check_in(session)
    v = view(session, row.id)
    assert v.intake.status == "checked_in"
    assert (v.consent, v.patient, v.medicines, v.allergies, v.needs) == ("none", None, [], [], [])
    [entry] = service.shelter_list(session, desk(), reader(session))
    assert (entry.consent, entry.name, entry.needs) == ("none", None, [])
    # Given, it shows; revoked, it stops at once.
    disaster_consent(session, world["hanako"])
    assert view(session, row.id).consent == "granted"
    disaster_consent(session, world["hanako"], enabled=False)
    assert view(session, row.id).patient is None


def test_an_unconfirmed_candidate_shows_nothing(session: Session, world: dict[str, Any]) -> None:
    disaster_consent(session, world["hanako"])
    actor = desk()
    row = service.open_intake(session, actor)
    q = DemographicQuery(family="筑波", given="花子", birth_date=date(1950, 4, 1), sex="female")
    found = service.identify_by_demographics(session, actor, lookup(session), row.id, q)
    assert found.identified and found.intake.candidate_waiting
    assert "筑波" not in found.model_dump_json()
    v = view(session, row.id)
    assert (v.consent, v.patient, v.medicines) == ("none", None, [])
    with pytest.raises(Forbidden):
        service.confirm(
            session, actor, lookup(session), row.id,
            Confirm(method="birth_date", birth_date=date(1950, 4, 2)),
        )  # fmt: skip
    assert view(session, row.id).patient is None
    denied = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "shelter-confirm", AuditEntry.outcome == "deny"
        )
    ).all()
    assert [e.resident_id for e in denied] == [world["hanako"]]
    # Nobody else, or two people, is not a candidate either.
    other = service.open_intake(session, actor)
    q2 = DemographicQuery(family="筑波", given="次郎", birth_date=date(1950, 4, 1), sex="female")
    assert not service.identify_by_demographics(
        session, actor, lookup(session), other.id, q2
    ).identified


def test_another_shelter_or_organisation_kind_sees_no_intake(
    session: Session, world: dict[str, Any]
) -> None:
    from consent.identity.clients import register_organization

    disaster_consent(session, world["hanako"])
    row = check_in(session)
    register_organization(session, id="shelter-2", name="第2避難所", kind="shelter")
    with pytest.raises(NotFound):
        view(session, row.id, desk("shelter-2"))
    # Shelter 2's reader sees nothing of Hanako: the episode is shelter 1's.
    other = reader(session, desk("shelter-2"))
    assert list(other.compartment(world["hanako"])) == []
    with pytest.raises(Forbidden):
        service.open_intake(session, desk("takezono-naika", "clinic", "nurse"))


def test_the_module_reader_reads_only_declared_types(
    session: Session, world: dict[str, Any]
) -> None:
    disaster_consent(session, world["hanako"])
    check_in(session)
    r = reader(session)
    got = {row.resource_type for row in r.compartment(world["hanako"])}
    assert got <= MODULE.resource_types and "MedicationDispense" in got
    with pytest.raises(Forbidden):
        r.read("Observation", "x")
    with pytest.raises(Forbidden):
        list(r.compartment(world["hanako"], types=["Immunization"]))
    # The identification reader: Patient only, also for someone not checked in.
    ident = lookup(session)
    assert ident.read("Patient", world["taro"]).resource_type == "Patient"
    with pytest.raises(Forbidden):
        list(ident.compartment(world["taro"], types=["Condition"]))
    logged = session.scalars(select(AuditEntry).where(AuditEntry.service == "shelter")).all()
    assert {e.purpose for e in logged} == {"DISASTER"}


def test_without_the_pia_in_force_the_module_reads_nothing(
    session: Session, world: dict[str, Any]
) -> None:
    disaster_consent(session, world["hanako"])
    row = check_in(session)
    for pia in pia_repo.in_force(session, "shelter"):
        pia.status = "withdrawn"
    session.flush()
    assert view(session, row.id).patient is None


def test_medicines_to_continue_from_prescriptions_and_dispensings(
    session: Session, world: dict[str, Any], today: date
) -> None:
    disaster_consent(session, world["hanako"])
    v = view(session, check_in(session).id)
    assert v.consent == "granted" and v.patient and v.patient.name == "筑波 花子"
    meds = {m.name: m for m in v.medicines}
    assert set(meds) == {"ワルファリンカリウム", world["products"]["insulin"]["ingredient"]}
    w = meds["ワルファリンカリウム"]
    assert w.dose == "1日1回夕食後 2錠"
    assert w.prescribers == ["竹園内科医院"] and w.pharmacies == ["学園さくら薬局"]
    assert w.last_prescribed == today - timedelta(days=20)
    assert w.last_dispensed == today - timedelta(days=10)
    assert (w.days_supply, w.days_remaining) == (28, 18)
    assert w.supply_until == today + timedelta(days=18)
    assert w.needs == ["anticoagulant"] and w.date == today - timedelta(days=10)
    assert w.source == "takezono-naika (clinic)"
    i = meds[world["products"]["insulin"]["ingredient"]]
    assert (i.dose, i.last_dispensed, i.days_remaining, i.needs) == (
        "朝食前 8単位",
        None,
        None,
        ["insulin"],
    )
    assert [a.text for a in v.allergies] == ["ペニシリン"]
    assert [p.text for p in v.problems] == ["腎透析状態"]  # the resolved pneumonia is not
    assert v.problems[0].source == "takezono-naika (clinic)" and v.problems[0].date
    assert [n.code for n in v.needs] == ["insulin", "dialysis", "anticoagulant", "allergy"]
    assert not v.acp_on_file


def test_the_shelter_list_and_who_needs_support(session: Session, world: dict[str, Any]) -> None:
    for who in ("hanako", "taro"):
        disaster_consent(session, world[who])
    h, t = check_in(session, "hanako"), check_in(session, "taro")
    everyone = service.shelter_list(session, desk(), reader(session))
    assert [(e.number, e.name) for e in everyone] == [
        (h.number, "筑波 花子"),
        (t.number, "土浦 太郎"),
    ]
    assert [n.code for n in everyone[0].needs] == [
        "insulin",
        "dialysis",
        "anticoagulant",
        "allergy",
    ]
    assert everyone[1].needs == []
    # The list carries labels only: no medicine, no diagnosis.
    text = everyone[0].model_dump_json()
    assert "ワルファリン" not in text and "透析状態" not in text
    needing = service.shelter_list(session, desk(), reader(session), needs_only=True)
    assert [e.intake_id for e in needing] == [h.id]
    # Leaving ends it: off the list, and the record is not shown any more.
    service.leave(session, desk(), h.id)
    assert [e.intake_id for e in service.shelter_list(session, desk(), reader(session))] == [t.id]
    assert view(session, h.id).patient is None


def test_an_acp_on_file_is_a_flag_not_its_content(session: Session, world: dict[str, Any]) -> None:
    from tests.emergency.test_flow import save_acp

    save_acp(session, world["hanako"])
    disaster_consent(session, world["hanako"])
    v = view(session, check_in(session).id)
    assert v.acp_on_file and v.acp_date
    assert [n.code for n in v.needs][-1] == "acp"
    assert "延命" not in v.model_dump_json() and "筑波 一郎" not in v.model_dump_json()
