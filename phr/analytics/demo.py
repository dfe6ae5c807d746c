"""Demo seed: approved and published PIAs of the population services (analytics,
research), so that the demo city runs them. Synthetic assessments written for the demo."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from consent.pia import repository, service
from consent.pia.questionnaire import QUESTIONS
from consent.pia.schemas import PiaCreate

__all__ = ["POPULATION_SERVICES", "seed_population_pias"]

_ANSWERS: dict[str, Any] = dict.fromkeys(QUESTIONS, "yes")
_TYPES = ["Patient", "Immunization", "Observation", "MedicationStatement", "MedicationRequest",
          "Consent", "Condition"]  # fmt: skip

POPULATION_SERVICES: tuple[dict[str, Any], ...] = (
    {
        "service_id": "analytics",
        "service_name": "市の健康指標（集計のみ）",
        "service_name_en": "City health indicators (aggregates only)",
        "description": (
            "公衆衛生・統計への利用に同意した市民の記録から、予防接種率・健診受診率等の集計値を作る。"
            "10人未満の区分は秘匿する。Aggregates (vaccination coverage, checkup participation, "
            "...) from the records of residents who consented to public health and statistics; "
            "cells under 10 people are suppressed."
        ),
        "purposes": ["公衆衛生・統計 Public health and statistics"],
        "purpose_codes": ["PUBHLTH"],
        "data_categories": [
            "予防接種・健診 Vaccinations and check-ups",
            "服薬 Medicines",
            "救急時の事前同意の有無（集計のみ、ADR 0007） Emergency pre-consent in force "
            "(counted only)",
        ],
        "resource_types": _TYPES,
        "recipients": ["市の分析担当（集計値のみ） The city's analysts (aggregates only)"],
        "retention": (
            "集計値のみ保存。個人単位のデータは計算後に保持しない。Only aggregates are kept."
        ),
    },
    {
        "service_id": "research",
        "service_name": "研究用仮名加工情報の作成",
        "service_name_en": "Pseudonymised research extracts",
        "description": (
            "研究利用に同意した市民の記録から仮名加工情報を作成する（k匿名性10未満は作成しない）。"
            "Pseudonymised extracts of the records of residents who consented to research "
            "(refused below k-anonymity 10)."
        ),
        "purposes": ["倫理審査を経た研究 Ethics-approved research"],
        "purpose_codes": ["HRESCH"],
        "data_categories": ["診療・検査結果 Diagnoses and test results", "服薬 Medicines"],
        "resource_types": _TYPES,
        "recipients": ["倫理審査を経た研究者 Researchers of approved projects"],
        "retention": "研究計画の定める期間。Per the approved research plan.",
    },
)

_RISK = {
    "description": "集計値・仮名加工情報からの再識別",
    "description_en": "Re-identification from aggregates or pseudonymised records",
    "impact_financial": 1,
    "impact_mental": 3,
    "impact_physical": 1,
    "likelihood": 1,
    "mitigation": (
        "少数区分の秘匿（k≥10）、k匿名性の確認、鍵付き仮名、日付のずらし、自由記述の削除。"
    ),
    "mitigation_en": "Small-cell suppression (k>=10), k-anonymity check, keyed pseudonyms, "
    "shifted dates, free text removed.",
    "items": ["I05"],
}


def seed_population_pias(
    session: Session,
    *,
    organization_id: str = service.PLATFORM_ORG[0],
    drafted_by: str = "platform-seed",
    approved_by: str = "platform-seed-approver",
) -> int:
    """Idempotent: services with an assessment in force or open are left alone."""
    n = 0
    for spec in POPULATION_SERVICES:
        sid = spec["service_id"]
        if repository.in_force(session, sid) or repository.open_version(session, sid):
            continue
        doc = {**spec, "organization_id": organization_id, "answers": _ANSWERS, "risks": [_RISK]}
        pia = service.create_draft(session, data=PiaCreate.model_validate(doc), by=drafted_by)
        service.submit(session, pia_id=pia.id, by=drafted_by)
        service.approve(session, pia_id=pia.id, by=approved_by)
        service.publish(session, pia_id=pia.id, by=approved_by)
        n += 1
    return n
