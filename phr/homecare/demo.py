"""Demo: home-care patients in the demo city — the first example residents, each with the
care team (つくば中央クリニック as family doctor, つくば在宅訪問看護ステーション, 学園さくら薬局),
the resident's home-care consent naming those three, and deposited medicines (one lot
already expired); and staff accounts for the screens: a clerk and two nurses at the
station, a doctor at the clinic, a pharmacist at the pharmacy. The passwords and TOTP
secrets of new accounts are written to ``<data dir>/homecare-staff.json`` (mode 0600),
the only place they exist in clear. Idempotent."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from consent.policy import schemas as policy_schemas
from consent.policy import service as policy
from consent.staff import repository as staff_repository
from consent.staff import service as staff_service
from consent.staff.models import StaffUser
from phr.db import transaction
from phr.homecare import repository, schemas, service
from phr.polypharmacy import repository as drugs
from phr.settings import get_settings

__all__ = ["CREDENTIALS_FILE", "STAFF", "seed"]

CREDENTIALS_FILE = "homecare-staff.json"
STATION = "tsukuba-home-nursing"
CLINIC = "tsukuba-chuo-clinic"
PHARMACY = "gakuen-sakura-pharmacy"


@dataclass(frozen=True)
class DemoStaff:
    organization: str
    username: str
    role: str
    name: str


STAFF = (
    DemoStaff(STATION, "clerk", "clerk", "受付 花江"),
    DemoStaff(STATION, "nurse1", "nurse", "訪問看護師 一美"),
    DemoStaff(STATION, "nurse2", "nurse", "訪問看護師 二郎"),
    DemoStaff(CLINIC, "doctor", "doctor", "在宅医 中央"),
    DemoStaff(PHARMACY, "pharmacist", "pharmacist", "薬剤師 さくら"),
)
# (YJ code, quantity, unit, lot, days to expiry): real products of the national list.
STOCK = (
    ("1141007F1063", 20, "錠", "CAL-2611", 365),  # カロナール錠200 (acetaminophen)
    ("2233002F1018", 15, "錠", "CBS-2604", 200),  # L-カルボシステイン250mg錠
    ("1149019F1560", 10, "錠", "LOX-2510", -30),  # ロキソニン錠60mg — expired lot
)


def _account(session: Session, s: DemoStaff, out: list[dict[str, Any]]) -> StaffUser:
    user = staff_repository.get_staff_by_username(
        session, organization_id=s.organization, username=s.username
    )
    if user is not None:
        return user
    user, creds = staff_service.create_staff(
        session,
        organization_id=s.organization,
        username=s.username,
        display_name=s.name,
        role=s.role,
    )
    out.append(
        {
            "organization": s.organization,
            "username": s.username,
            "role": s.role,
            "password": creds.password,
            "totp_uri": creds.totp_uri,
        }
    )
    return user


def _actor(user: StaffUser) -> Actor:
    return staff_service.staff_actor(user, client_id="demo", scopes=("user/*.rs",))


def enrol(
    session: Session,
    resident_id: str,
    *,
    clerk: Actor,
    doctor: Actor,
    clinic: str,
    pharmacy: str,
    today: date,
) -> bool:
    """Consent, enrolment and deposited stock for one resident (False: already enrolled)."""
    if repository.active_enrolment(session, resident_id) is not None:
        return False
    assert clerk.organization_id
    policy.create_consent(
        session,
        Actor(kind="resident", resident_id=resident_id, client_id="demo"),
        policy_schemas.ConsentCreate(
            recipients=[
                policy_schemas.Recipient(kind="organization", value=o)
                for o in (clerk.organization_id, clinic, pharmacy)
            ],
            purposes=[Purpose.HOME_CARE],
        ),
    )
    e = service.enrol(
        session=session,
        actor=clerk,
        body=schemas.EnrolmentCreate(
            resident_id=resident_id,
            clinic_id=clinic,
            doctor_id=doctor.user_id,
            pharmacy_id=pharmacy,
        ),
    )
    known = drugs.products_by_codes(session, [c for c, *_ in STOCK])
    for code, qty, unit, lot, days in STOCK:
        if code in known:
            service.deposit(
                session=session,
                actor=doctor,
                enrolment_id=e.id,
                body=schemas.StockCreate(
                    drug_code=code,
                    quantity=qty,
                    unit=unit,
                    lot=lot,
                    expiry=today + timedelta(days=days),
                ),
            )
    return True


def seed(
    resident_ids: Sequence[str],
    *,
    station: str = STATION,
    clinic: str = CLINIC,
    pharmacy: str = PHARMACY,
    credentials: Path | None = None,
) -> list[dict[str, Any]]:
    """Return the credentials of the accounts made now (also written to the file)."""
    made: list[dict[str, Any]] = []
    orgs = {STATION: station, CLINIC: clinic, PHARMACY: pharmacy}
    with transaction() as session:
        users = {
            s.username: _account(
                session, DemoStaff(orgs[s.organization], s.username, s.role, s.name), made
            )
            for s in STAFF
        }
        clerk, doctor = _actor(users["clerk"]), _actor(users["doctor"])
        today = date.today()
        for rid in resident_ids:
            enrol(
                session,
                rid,
                clerk=clerk,
                doctor=doctor,
                clinic=clinic,
                pharmacy=pharmacy,
                today=today,
            )
    if made:
        path = credentials or get_settings().data_dir / CREDENTIALS_FILE
        old = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps([*old, *made], ensure_ascii=False, indent=1))
        os.chmod(path, 0o600)
    return made
