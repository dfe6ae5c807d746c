"""Fixtures of the home-care tests: a visiting-nurse station, a clinic, a pharmacy and
the city's EMS, staff in each role, one resident (records sent by the clinic), the drug
master rows used, an enrolment with deposited stock (one lot expired) and the resident's
home-care consent naming the care team's organisations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from consent.policy import schemas as policy_schemas
from consent.policy import service as policy
from consent.staff import service as staff_service
from phr.homecare import schemas, service
from phr.polypharmacy.models import DrugProduct
from phr.store.indexer import utcnow
from tests.conftest import patient_bundle
from tests.emergency.conftest import clinical_entries

STATION = "hc-station"
CLINIC = "hc-clinic"
PHARMACY = "hc-pharmacy"
OTHER_STATION = "hc-other-station"
EMS = "hc-fire"
# Real codes of the national drug price list (2025-07-16).
ACETAMINOPHEN = ("1141007F1063", "カロナール錠２００", "錠")
LOXOPROFEN = ("1149019F1560", "ロキソニン錠６０ｍｇ", "錠")


def add_products(session: Session) -> None:
    for code, name, form in (ACETAMINOPHEN, LOXOPROFEN):
        if session.get(DrugProduct, code) is None:
            session.add(
                DrugProduct(
                    code=code, name=name, ingredient=name, strength="", form=form,
                    route="内用薬", category=code[:4], brand="generic", narcotic=False,
                    price=None, delisting=None, source="test", imported_at=utcnow(),
                )
            )  # fmt: skip
    session.flush()


def staff(session: Session, org: str, username: str, role: str) -> Actor:
    user, _ = staff_service.create_staff(
        session, organization_id=org, username=username, display_name=f"{username} ({role})",
        role=role, password="correct horse battery staple 1",
    )  # fmt: skip
    return staff_service.staff_actor(user, client_id="test", scopes=("user/*.rs",))


def home_care_consent(session: Session, resident_id: str, orgs: list[str]) -> str:
    read = policy.create_consent(
        session,
        Actor(kind="resident", resident_id=resident_id),
        policy_schemas.ConsentCreate(
            recipients=[policy_schemas.Recipient(kind="organization", value=o) for o in orgs],
            purposes=[Purpose.HOME_CARE],
        ),
    )
    return read.id


@dataclass
class World:
    session: Session
    resident: str
    nurse: Actor
    nurse2: Actor
    clerk: Actor
    doctor: Actor
    pharmacist: Actor
    other_nurse: Actor
    enrolment: str = ""
    good: str = ""  # stock id, unexpired
    expired: str = ""  # stock id, expired lot
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def patient(self) -> Actor:
        return Actor(kind="resident", resident_id=self.resident)

    def request(self, **answers: Any) -> str:
        body = schemas.RequestCreate(
            complaint="fever", answers=answers, what="熱が高く、ぐったりしている", since="昨夜から"
        )
        return service.create_request(session=self.session, actor=self.patient, body=body).id

    def to_visit(self, rid: str | None = None) -> str:
        rid = rid or self.request()
        s = self.session
        service.assign(
            session=s,
            actor=self.clerk,
            request_id=rid,
            body=schemas.Assign(nurse_id=self.nurse.user_id or ""),
        )
        service.dispatch(session=s, actor=self.clerk, request_id=rid)
        return service.arrive(session=s, actor=self.nurse, request_id=rid).id

    def vitals(self, visit: str, **kw: Any) -> schemas.VitalsRead:
        v = dict(
            respiratory_rate=20,
            spo2=95,
            systolic=112,
            diastolic=70,
            pulse=96,
            consciousness="A",
            temperature=38.6,
        )
        v.update(kw)
        return service.record_vitals(
            session=self.session, actor=self.nurse, visit_id=visit, body=schemas.Vitals(**v)
        )

    def consult(self, visit: str, decision: str = "home") -> None:
        body = schemas.Consultation(
            findings="咽頭発赤、肺音清", instructions="解熱薬を1錠", decision=decision
        )  # type: ignore[arg-type]
        service.consult(session=self.session, actor=self.doctor, visit_id=visit, body=body)

    def prescribe(self, visit: str, stock: str | None = None, quantity: int = 1) -> list[str]:
        body = schemas.Prescription(
            lines=[
                schemas.PrescriptionLine(
                    stock_id=stock or self.good, quantity=quantity, dosage="1回1錠 頓用"
                )
            ]
        )
        return [
            o.id
            for o in service.prescribe(
                session=self.session, actor=self.doctor, visit_id=visit, body=body
            )
        ]

    def guide(self, visit: str) -> None:
        service.guide(
            session=self.session,
            actor=self.pharmacist,
            visit_id=visit,
            body=schemas.Guidance(text="眠気に注意。4時間以上あけて"),
        )


@pytest.fixture(autouse=True)
def cheap_argon2() -> Any:
    from argon2 import PasswordHasher, profiles

    staff_service.configure_password_hasher(PasswordHasher.from_parameters(profiles.CHEAPEST))
    yield
    staff_service.configure_password_hasher(None)


def make_world(session: Session, suffix: str = "") -> World:
    """Everything a visit needs, registered directly (no HTTP client), so that the
    concurrency test can build it on committing sessions; ``suffix`` keeps ids apart."""
    from consent.identity.clients import register_organization
    from consent.pia.service import seed_platform_pias
    from fhir_gateway.ingest import process_bundle
    from phr.store.models import Resource

    seed_platform_pias(session)
    hospital = f"hc-hospital{suffix}"
    for org, kind in (
        (STATION + suffix, "nurse_station"), (CLINIC + suffix, "clinic"),
        (PHARMACY + suffix, "pharmacy"), (OTHER_STATION + suffix, "nurse_station"),
        (EMS + suffix, "ems"), (hospital, "hospital"),
    ):  # fmt: skip
        register_organization(session, id=org, name=f"{org} ({kind})", kind=kind)
    sender = Actor(
        kind="organization", organization_id=hospital, organization_kind="hospital",
        client_id="test", scopes=frozenset({"system/*.cruds", "system/Bundle.c"}),
    )  # fmt: skip
    response = process_bundle(
        session, patient_bundle(mrn=f"hc{suffix or '1'}", extra=clinical_entries()), actor=sender
    )
    pid = response["entry"][0]["response"]["location"].split("/")[1]
    resident = session.query(Resource).filter_by(resource_type="Patient", id=pid).one().resident_id
    add_products(session)
    w = World(
        session=session,
        resident=str(resident),
        nurse=staff(session, STATION + suffix, "nurse1", "nurse"),
        nurse2=staff(session, STATION + suffix, "nurse2", "nurse"),
        clerk=staff(session, STATION + suffix, "clerk1", "clerk"),
        doctor=staff(session, CLINIC + suffix, "doc1", "doctor"),
        pharmacist=staff(session, PHARMACY + suffix, "pharm1", "pharmacist"),
        other_nurse=staff(session, OTHER_STATION + suffix, "nurse9", "nurse"),
    )
    w.extra["consent"] = home_care_consent(
        session, w.resident, [STATION + suffix, CLINIC + suffix, PHARMACY + suffix, hospital]
    )
    e = service.enrol(
        session=session, actor=w.clerk,
        body=schemas.EnrolmentCreate(
            resident_id=w.resident, clinic_id=CLINIC + suffix, doctor_id=w.doctor.user_id,
            pharmacy_id=PHARMACY + suffix,
        ),
    )  # fmt: skip
    w.enrolment = e.id
    today = date.today()
    w.good = service.deposit(
        session=session, actor=w.doctor, enrolment_id=e.id,
        body=schemas.StockCreate(drug_code=ACETAMINOPHEN[0], quantity=10, unit="錠", lot="A1",
                                 expiry=today + timedelta(days=300)),
    ).id  # fmt: skip
    w.expired = service.deposit(
        session=session, actor=w.pharmacist, enrolment_id=e.id,
        body=schemas.StockCreate(drug_code=LOXOPROFEN[0], quantity=10, unit="錠", lot="OLD",
                                 expiry=today - timedelta(days=1)),
    ).id  # fmt: skip
    session.commit()
    return w


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session)
