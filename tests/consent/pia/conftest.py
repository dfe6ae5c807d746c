"""Fixtures of the PIA register tests: operator organisations, complete drafts, staff cookies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from consent.identity.clients import register_organization
from consent.pia import service
from consent.pia.models import PiaAssessment
from consent.pia.questionnaire import QUESTIONS
from consent.pia.schemas import PiaCreate

OPERATOR = "tsukuba-care-co"
PLATFORM = "platform"


def all_yes() -> dict[str, Any]:
    return dict.fromkeys(QUESTIONS, "yes")


def risk(**overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": "診療情報の漏えい",
        "description_en": "Health records leaked",
        "impact_financial": 1,
        "impact_mental": 3,
        "impact_physical": 1,
        "likelihood": 1,
        "mitigation": "暗号化とアクセス制御",
        "mitigation_en": "Encryption and access control",
        "items": ["I21"],
    }
    out.update(overrides)
    return out


def complete(service_id: str = "shelter", **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "service_id": service_id,
        "service_name": "避難所での要支援者の受入れ",
        "service_name_en": "Shelter intake of people needing support",
        "organization_id": OPERATOR,
        "description": "避難所で要支援者の服薬とアレルギーを確認する。",
        "purposes": ["避難所での適切な支援 Appropriate support at the shelter"],
        "purpose_codes": ["ETREAT"],
        "data_categories": ["服薬 Medicines", "アレルギー Allergies"],
        "resource_types": ["MedicationStatement", "AllergyIntolerance"],
        "recipients": ["避難所の保健師 Public-health nurses at the shelter"],
        "retention": "災害の終了後90日で消去",
        "answers": all_yes(),
        "risks": [risk()],
    }
    doc.update(overrides)
    return doc


@pytest.fixture
def orgs(session: Session) -> dict[str, str]:
    register_organization(session, id=OPERATOR, name="つくばケア株式会社", kind="service_provider")
    register_organization(session, id="other-co", name="Other Co", kind="service_provider")
    register_organization(session, id=PLATFORM, name="Tsukuba PHR platform", kind="platform")
    session.flush()
    return {"operator": OPERATOR, "other": "other-co", "platform": PLATFORM}


DraftFactory = Callable[..., PiaAssessment]


@pytest.fixture
def draft(session: Session, orgs: dict[str, str]) -> DraftFactory:
    def make(
        service_id: str = "shelter", by: str = "alice@tsukuba-care-co", **kw: Any
    ) -> PiaAssessment:
        return service.create_draft(
            session, data=PiaCreate.model_validate(complete(service_id, **kw)), by=by
        )

    return make


@pytest.fixture
def approved(session: Session, draft: DraftFactory) -> DraftFactory:
    """A PIA taken through submit and approve (not yet published)."""

    def make(service_id: str = "shelter", **kw: Any) -> PiaAssessment:
        pia = draft(service_id, **kw)
        service.submit(session, pia_id=pia.id, by="alice@tsukuba-care-co")
        return service.approve(session, pia_id=pia.id, by="bob@platform")

    return make
