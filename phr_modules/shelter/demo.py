"""Demo seed of the shelter module: a designated shelter of the demo city, its PIA
(approved and published, so the module reads), one shelter staff account, and the
disaster-time consent of the example residents. Idempotent. The staff account's initial
password and TOTP provisioning URI are written once to ``<data dir>/demo-shelter-staff.json``
(mode 0600), as the demo's client secrets are to ``demo-credentials.json``."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from consent.actors import Actor
from consent.identity.clients import register_organization
from consent.pia import repository as pia_repo
from consent.pia import service as pia
from consent.pia.questionnaire import QUESTIONS
from consent.pia.schemas import PiaCreate
from consent.policy import schemas as policy_schemas
from consent.policy import service as policy
from consent.staff import repository as staff_repo
from consent.staff.service import create_staff
from phr.db import transaction
from phr.settings import get_settings
from phr_modules.shelter import NAME, RESOURCE_TYPES

__all__ = ["SHELTER", "STAFF_FILE", "seed"]

SHELTER = ("tsukuba-shelter-1", "つくば市指定避難所 第1（市民体育館）")
STAFF_USERNAME = "shelter1"
STAFF_FILE = "demo-shelter-staff.json"

PIA_SPEC: dict[str, Any] = {
    "service_id": NAME,
    "service_name": "避難所での医療の継続",
    "service_name_en": "Shelter: continuing care",
    "description": (
        "災害時の情報提供に同意した市民が避難所で受付・本人確認されたとき、避難所の職員が継続すべき"
        "薬・アレルギー・病名・支援の要否を見る。退所で参照は終わる。When a resident who gave the "
        "disaster-time consent is identified and checked in at a shelter, its staff see the "
        "medicines to continue, allergies, problems and support needs; leaving ends it."
    ),
    "purposes": ["災害時の医療の継続 Disaster relief: continuing care"],
    "purpose_codes": ["DISASTER"],
    "data_categories": [
        "本人確認情報 Identity",
        "服薬・アレルギー・病名 Medicines, allergies, problems",
        "ACPの有無（内容は見ない） Whether an ACP exists (not its content)",
    ],
    "resource_types": sorted(RESOURCE_TYPES),
    "recipients": ["避難所の職員 Shelter staff (the shelter of the check-in only)"],
    "retention": (
        "受付記録のみ保存（診療情報は複製しない）。Only intake rows are kept; no health data is "
        "copied."
    ),
}
RISK = {
    "description": "避難所での第三者への病名・服薬の露見",
    "description_en": "Diagnoses or medicines seen by others at a crowded shelter",
    "impact_financial": 1,
    "impact_mental": 3,
    "impact_physical": 2,
    "likelihood": 2,
    "mitigation": (
        "同意者のみ、受付中のみ、職員アカウント（二要素）のみ、一覧は支援の種類だけを表示、全参照を記録。"
    ),
    "mitigation_en": "Consenting residents only, while checked in only, staff accounts with "
    "two factors, the list shows only the kind of support, every read logged.",
    "items": ["I05"],
}


def seed_pia(session: Session, *, by: str = "platform-seed") -> bool:
    """The module's PIA, approved and published (unless one is in force or open)."""
    if pia_repo.in_force(session, NAME) or pia_repo.open_version(session, NAME):
        return False
    doc = {
        **PIA_SPEC,
        "organization_id": pia.PLATFORM_ORG[0],
        "answers": dict.fromkeys(QUESTIONS, "yes"),
        "risks": [RISK],
    }
    register_organization(session, id=pia.PLATFORM_ORG[0], name=pia.PLATFORM_ORG[1],
                          kind="platform")  # fmt: skip
    draft = pia.create_draft(session, data=PiaCreate.model_validate(doc), by=by)
    pia.submit(session, pia_id=draft.id, by=by)
    pia.approve(session, pia_id=draft.id, by=f"{by}-approver")
    pia.publish(session, pia_id=draft.id, by=f"{by}-approver")
    return True


def _staff(session: Session) -> dict[str, str] | None:
    if staff_repo.get_staff_by_username(
        session, organization_id=SHELTER[0], username=STAFF_USERNAME
    ):
        return None
    _, creds = create_staff(
        session,
        organization_id=SHELTER[0],
        username=STAFF_USERNAME,
        display_name="避難所 受付係",
        role="shelter_staff",
    )
    return {
        "organization": SHELTER[0],
        "username": STAFF_USERNAME,
        "initial_password": creds.password or "",
        "totp_uri": creds.totp_uri or "",
    }


def seed(resident_ids: Sequence[str]) -> None:
    """The shelter, its PIA, a staff account, and the example residents' disaster consent."""
    with transaction() as session:
        register_organization(session, id=SHELTER[0], name=SHELTER[1], kind="shelter")
        seed_pia(session)
        account = _staff(session)
        for rid in resident_ids:
            resident = Actor(kind="resident", resident_id=rid, client_id="demo")
            if not any(c.disaster and c.status == "active"
                       for c in policy.list_consents(session, resident)):  # fmt: skip
                policy.set_disaster_consent(
                    session, resident, policy_schemas.EmergencyConsentIn(enabled=True)
                )
    if account is not None:
        path = get_settings().data_dir / STAFF_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(account, fh, ensure_ascii=False, indent=1)
