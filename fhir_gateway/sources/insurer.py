"""Insurer files (保険者): claims-derived dispensed medicines and diagnoses, checkup results.

レセプト (claims) carry what was dispensed and diagnosed, not what was prescribed: a
dispensing row becomes a MedicationDispense, a diagnosis row a Condition of category
``encounter-diagnosis``. Checkup results use the municipal checkup mapping unchanged
(:func:`fhir_gateway.sources.municipal.parse_checkup`), so that the same checkup reported
by the city and by the insurer is one set of Observations.
"""

from __future__ import annotations

import re
from typing import Any

from fhir_gateway.ingest import SourceRecord
from fhir_gateway.sources import codes
from fhir_gateway.sources.csvfile import Fact, Format, Person, Row
from fhir_gateway.sources.municipal import CHECKUP, coded, not_before_birth, short_hash

__all__ = ["DIAGNOSIS", "DISPENSING", "INSURER_CHECKUP", "parse_diagnosis", "parse_dispensing"]

# 薬価基準収載医薬品コード: 4-digit 薬効分類, 3 characters for the ingredient, 1 for the
# dosage form, 3 for the product and a check digit, e.g. 2171022F2025. Every code in the
# MHLW price list (2025-07-16) matches this pattern.
DRUG_CODE_RE = re.compile(r"^\d{4}[0-9A-Z]\d{2}[0-9A-Z]\d{4}$")
ICD10_RE = re.compile(r"^[A-Z]\d{2}(\.\d{1,2})?$")
_ICD10_NODOT = re.compile(r"^([A-Z]\d{2})(\d{1,2})$")


# ---- dispensed medicines ---------------------------------------------------------------------


def parse_dispensing(row: Row, person: Person | None) -> Fact | None:
    when = row.date("dispensing_date", required=True)
    not_before_birth(row, person, "dispensing_date", when)
    drug = row.pattern(
        "drug_code",
        DRUG_CODE_RE,
        "not a 薬価基準収載医薬品コード (12 characters, e.g. 2171022F2025)",
        required=True,
        upper=True,
    )
    name = row.text("drug_name", required=True, free=True)
    quantity = row.numeric("quantity", lo=0.001, hi=100_000, required=True)
    unit = row.text("unit", required=True, max_len=32, free=True)
    days = row.numeric("days_supply", lo=1, hi=365)
    if isinstance(days, float):
        row.error("days_supply", "expected whole days")
    prescriber = row.text("prescribing_institution", free=True)
    pharmacy = row.text("pharmacy", free=True)
    prescribed = row.date("prescription_date")
    if prescribed and when and prescribed > when:
        row.error("prescription_date", "after dispensing_date")
    if not row.ok or person is None or when is None or drug is None or name is None:
        return None
    pk = person.key
    key = f"dispense:{pk}:{when}:{drug}"

    def build(ref: str) -> list[SourceRecord]:
        assert drug is not None and name is not None
        category: dict[str, Any] = {"system": codes.YAKKO_BUNRUI, "code": drug[:4]}
        category_display = codes.yakko_display(drug[:4])
        if category_display:
            category["display"] = category_display
        md: dict[str, Any] = {
            "resourceType": "MedicationDispense",
            "status": "completed",
            "medicationCodeableConcept": {
                "coding": [{"system": codes.YJ, "code": drug, "display": name}, category],
                "text": name,
            },
            "subject": {"reference": ref},
            "quantity": {"value": quantity, "unit": unit},
            "whenHandedOver": when,
        }
        if days is not None:
            md["daysSupply"] = {"value": days, "unit": "日", "system": codes.UCUM, "code": "d"}
        if pharmacy:
            md["performer"] = [{"actor": {"display": pharmacy}}]
        ext = []
        if prescriber:
            ext.append(
                {
                    "url": codes.EXT_PRESCRIBING_INSTITUTION,
                    "valueReference": {"display": prescriber},
                }
            )
        if prescribed:
            ext.append({"url": codes.EXT_PRESCRIPTION_DATE, "valueDate": prescribed})
        if ext:
            md["extension"] = ext
        return [SourceRecord(key, md)]

    return Fact(f"{pk}|{when}|{drug}", build)


DISPENSING = Format(
    kind="insurer-dispensing",
    required=("dispensing_date", "drug_code", "drug_name", "quantity", "unit"),
    optional=("days_supply", "prescribing_institution", "pharmacy", "prescription_date"),
    parse=parse_dispensing,
    description="調剤レセプト → MedicationDispense",
)


# ---- diagnoses -------------------------------------------------------------------------------

_SUSPECTED = {
    "0": "confirmed",
    "1": "provisional",
    "疑い": "provisional",
    "true": "provisional",
    "false": "confirmed",
}
_VERIFICATION_DISPLAY = {"confirmed": "Confirmed", "provisional": "Provisional"}


def parse_diagnosis(row: Row, person: Person | None) -> Fact | None:
    when = row.date("diagnosis_date", required=True)
    not_before_birth(row, person, "diagnosis_date", when)
    icd = row.text("icd10", required=True, max_len=16)
    if icd:
        icd = icd.upper().replace(" ", "")
        m = _ICD10_NODOT.match(icd)
        if m:
            icd = f"{m.group(1)}.{m.group(2)}"
        if not ICD10_RE.match(icd):
            row.error("icd10", "not an ICD-10 code (e.g. E11.9)")
            icd = None
    name = row.text("diagnosis_name", required=True, free=True)
    verification = row.choice("suspected", _SUSPECTED, what="suspected flag") or "confirmed"
    outcome = codes.OUTCOMES["継続"]
    if row.raw("outcome"):
        value = row.text("outcome") or ""
        if value not in codes.OUTCOMES:
            row.error("outcome", "expected 継続, 治癒, 死亡 or 中止")
        else:
            outcome = codes.OUTCOMES[value]
    institution = row.text("institution", free=True)
    if not row.ok or person is None or when is None or icd is None or name is None:
        return None
    pk = person.key
    # Claims may list two names under one ICD-10 code on the same day: the name is part of
    # the key (hashed: no clinical text in keys).
    key = f"dx:{pk}:{icd}:{when}:{short_hash(name)}"
    clinical, outcome_display = outcome

    def build(ref: str) -> list[SourceRecord]:
        assert icd is not None and name is not None
        cond: dict[str, Any] = {
            "resourceType": "Condition",
            "clinicalStatus": coded(codes.CONDITION_CLINICAL, clinical, clinical.capitalize()),
            "verificationStatus": coded(
                codes.CONDITION_VERIFICATION, verification, _VERIFICATION_DISPLAY[verification]
            ),
            "category": [
                coded(codes.CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis")
            ],
            "code": {
                "coding": [{"system": codes.ICD10, "code": icd, "display": name}],
                "text": name,
            },
            "subject": {"reference": ref},
            "onsetDateTime": when,
        }
        ext: list[dict[str, Any]] = [
            {"url": codes.EXT_CLAIM_OUTCOME, "valueString": outcome_display}
        ]
        if institution:
            ext.append(
                {
                    "url": codes.EXT_DIAGNOSING_INSTITUTION,
                    "valueReference": {"display": institution},
                }
            )
        cond["extension"] = ext
        return [SourceRecord(key, cond)]

    return Fact(f"{pk}|{icd}|{when}|{short_hash(name)}", build)


DIAGNOSIS = Format(
    kind="insurer-diagnosis",
    required=("diagnosis_date", "icd10", "diagnosis_name"),
    optional=("suspected", "outcome", "institution"),
    parse=parse_diagnosis,
    description="医科レセプト傷病名 → Condition",
)

INSURER_CHECKUP = Format(
    kind="insurer-checkup",
    required=CHECKUP.required,
    optional=CHECKUP.optional,
    parse=CHECKUP.parse,
    description="特定健診 (保険者) → Observation per measure + DiagnosticReport",
)
