"""The demo's home-care patients: care team, consent, deposited stock with one expired
lot, staff accounts written once; idempotent."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from sqlalchemy.orm import Session

from consent.actors import Actor
from consent.identity.clients import register_organization
from phr.homecare import demo, repository
from phr.homecare import summary as care_summary
from phr.polypharmacy.models import DrugProduct
from phr.store.indexer import utcnow
from tests.homecare.conftest import make_world


def test_demo_patients_are_enrolled_with_stock_and_staff(session: Session, tmp_path: Path) -> None:
    w = make_world(session, suffix="-d")
    for org, kind in (
        (demo.STATION, "nurse_station"),
        (demo.CLINIC, "clinic"),
        (demo.PHARMACY, "pharmacy"),
    ):
        register_organization(session, id=org, name=org, kind=kind)
    session.add(
        DrugProduct(
            code="2233002F1018",
            name="Ｌ－カルボシステイン２５０ｍｇ錠",
            ingredient="x",
            strength="",
            form="錠",
            route="内用薬",
            category="2233",
            brand="generic",
            narcotic=False,
            price=None,
            delisting=None,
            source="test",
            imported_at=utcnow(),
        )
    )
    other = w.resident  # enrolled at the test station already: left alone
    from fhir_gateway.ingest import process_bundle
    from phr.store.models import Resource
    from tests.conftest import patient_bundle

    sender = Actor(
        kind="organization",
        organization_id="hc-hospital-d",
        organization_kind="hospital",
        client_id="t",
        scopes=frozenset({"system/*.cruds"}),
    )
    r = process_bundle(session, patient_bundle(mrn="demo-9", given="次郎"), actor=sender)
    pid = r["entry"][0]["response"]["location"].split("/")[1]
    rid = str(session.query(Resource).filter_by(resource_type="Patient", id=pid).one().resident_id)
    session.commit()
    creds = tmp_path / "hc.json"
    made = demo.seed([rid, other], credentials=creds)
    assert {m["username"] for m in made} == {s.username for s in demo.STAFF}
    assert all(m["password"] and m["totp_uri"] for m in made)
    assert json.loads(creds.read_text()) == made
    assert demo.seed([rid], credentials=creds) == []  # idempotent
    e = repository.active_enrolment(session, rid)
    assert e is not None and e.station_id == demo.STATION
    lots = repository.stock(session, e.id)
    assert sorted(s.lot for s in lots) == ["CAL-2611", "CBS-2604", "LOX-2510"]
    assert [s.lot for s in lots if repository.expired(s, date.today())] == ["LOX-2510"]
    doctor = demo._actor(
        session.get(demo.StaffUser, e.doctor_id)  # type: ignore[arg-type]
    )
    assert care_summary.build(session, doctor, rid, today=date.today()).consent
