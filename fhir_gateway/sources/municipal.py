"""Municipal files (自治体): vaccinations, specific health checkups, disability certificates.

Each ``parse_*`` turns one CSV row into a :class:`~fhir_gateway.sources.csvfile.Fact`
(or records errors on the row). Source keys are built from the row's natural key — the
person's pseudonymous key, a code and a date — so that the same row re-sent maps to the
same stored resource.

Disability certificates are stored as **Condition**, not Observation: a certificate
(障害者手帳) attests a lasting state of the person — an impairment of a kind and grade,
valid for a period — which is what Condition models (clinicalStatus active/inactive,
severity, category), and what the resident's record, the emergency view and care planning
list among the person's problems. An Observation is a measurement at a point in time and
would leave "is this still valid?" to every reader. One Condition per person and
certificate type: a renewal (new grade or validity) is a new version of it, so the history
is kept and the current certificate is the current version.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date
from decimal import Decimal
from typing import Any

from fhir_gateway.ingest import SourceRecord
from fhir_gateway.sources import codes
from fhir_gateway.sources.csvfile import Fact, Format, Person, Row

__all__ = [
    "CHECKUP",
    "DISABILITY",
    "VACCINATION",
    "coded",
    "parse_checkup",
    "parse_disability",
    "parse_vaccination",
]


def coded(
    system: str, code: str, display: str | None = None, text: str | None = None
) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    out: dict[str, Any] = {"coding": [coding]}
    if text:
        out["text"] = text
    return out


def _num(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def not_before_birth(row: Row, person: Person | None, column: str, when: str | None) -> None:
    if person and when and when < person.birth_date:
        row.error(column, "before birth_date")


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# ---- vaccination (予防接種) ------------------------------------------------------------------

_STATUS = {
    "completed": "completed",
    "not-done": "not-done",
    "済": "completed",
    "接種済": "completed",
    "未接種": "not-done",
    "not done": "not-done",
}


def parse_vaccination(row: Row, person: Person | None) -> Fact | None:
    code = row.text("vaccine_code", required=True, max_len=64)
    vac = codes.vaccine(code) if code else None
    if code and vac is None:
        row.error("vaccine_code", "unknown vaccine code (see docs/import-formats.md)")
    when = row.date("date", required=True)
    not_before_birth(row, person, "date", when)
    dose_text = row.text("dose_number", max_len=32)
    dose: int | str | None = dose_text
    if dose_text and dose_text.isdigit():
        dose = int(dose_text)
        if not 1 <= dose <= 20:
            row.error("dose_number", "expected a dose number from 1 to 20")
    lot = row.text("lot_number", max_len=64)
    performer = row.text("performer", free=True)
    status = row.choice("status", _STATUS, what="status") or "completed"
    if not row.ok or person is None or vac is None or when is None:
        return None
    pk = person.key
    key = f"imm:{pk}:{vac.code}:{when}"

    def build(patient_ref: str) -> list[SourceRecord]:
        assert vac is not None and when is not None
        coding: list[dict[str, Any]] = [
            {"system": codes.JP_VACCINE, "code": vac.code, "display": vac.display}
        ]
        if vac.cvx:
            coding.append({"system": codes.CVX, "code": vac.cvx, "display": vac.cvx_display})
        imm: dict[str, Any] = {
            "resourceType": "Immunization",
            "status": status,
            "vaccineCode": {"coding": coding, "text": vac.display},
            "patient": {"reference": patient_ref},
            "occurrenceDateTime": when,
            # From the municipal register, not from the person who gave the vaccine.
            "primarySource": False,
        }
        if lot:
            imm["lotNumber"] = lot
        if performer:
            imm["performer"] = [{"actor": {"display": performer}}]
        if isinstance(dose, int):
            imm["protocolApplied"] = [{"doseNumberPositiveInt": dose}]
        elif dose:
            imm["protocolApplied"] = [{"doseNumberString": dose}]
        return [SourceRecord(key, imm)]

    return Fact(f"{pk}|{vac.code}|{when}", build)


VACCINATION = Format(
    kind="vaccination",
    required=("vaccine_code", "date"),
    optional=("dose_number", "lot_number", "performer", "status"),
    parse=parse_vaccination,
    description="予防接種 → Immunization",
)


# ---- specific health checkup (特定健診) --------------------------------------------------------

_MINUS = str.maketrans({c: "-" for c in "−ーｰ‐‑–—―－"})
_PLUS_MINUS = {"+-", "±", "+/-"}


def _urine_protein(row: Row) -> tuple[str, str] | None:
    raw = unicodedata.normalize("NFKC", row.cells.get("urine_protein", "")).strip()
    if not raw:
        return None
    value = raw.translate(_MINUS).replace("(", "").replace(")", "").replace(" ", "")
    if value in ("陰性",):
        value = "-"
    if value in _PLUS_MINUS:
        value = "±"
    hit = codes.URINE_PROTEIN_VALUES.get(value)
    if hit is None:
        row.error("urine_protein", "expected −, ±, +, 2+ or 3+")
    return hit


def _quantity(m: codes.Measure, value: int | float) -> dict[str, Any]:
    return {"value": value, "unit": m.unit_display, "system": codes.UCUM, "code": m.unit}


def _interpretation(code: str, display: str, text: str) -> dict[str, Any]:
    return {
        "coding": [{"system": codes.INTERPRETATION, "code": code, "display": display}],
        "text": text,
    }


_NORMAL = _interpretation("N", "Normal", "基準範囲内")
_HIGH = _interpretation("H", "High", "特定保健指導判定値以上")
_LOW = _interpretation("L", "Low", "特定保健指導判定値未満")
_SEX_SNOMED = {"male": ("248153007", "Male", "男性"), "female": ("248152002", "Female", "女性")}


def _judgement(
    m: codes.Measure, value: int | float, sex: str
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Reference range (below the 特定保健指導判定値) and the value's interpretation."""
    step = Decimal(str(m.step))
    normal = coded(codes.REFERENCE_RANGE_MEANING, "normal", "Normal Range")
    if m.high_from is not None:
        high = _num(Decimal(str(m.high_from)) - step)
        rr = {
            "high": _quantity(m, high),
            "type": normal,
            "text": f"特定保健指導判定値: {m.high_from:g} {m.unit_display}以上",
        }
        return [rr], _HIGH if value >= m.high_from else _NORMAL
    if m.low_below is not None:
        rr = {
            "low": _quantity(m, m.low_below),
            "type": normal,
            "text": f"特定保健指導判定値: {m.low_below:g} {m.unit_display}未満",
        }
        return [rr], _LOW if value < m.low_below else _NORMAL
    if m.high_from_by_sex:
        ranges = []
        interp = None
        for s, threshold in m.high_from_by_sex:
            sct, en, ja = _SEX_SNOMED[s]
            ranges.append(
                {
                    "high": _quantity(m, _num(Decimal(str(threshold)) - step)),
                    "type": normal,
                    "appliesTo": [coded(codes.SNOMED, sct, en, ja)],
                    "text": f"特定保健指導判定値（{ja}）: {threshold:g} {m.unit_display}以上",
                }
            )
            if s == sex:
                interp = _HIGH if value >= threshold else _NORMAL
        return ranges, interp
    return [], None


def _measure_code(m: codes.Measure) -> dict[str, Any]:
    coding = [{"system": codes.LOINC, "code": m.loinc, "display": m.loinc_display}]
    if m.item_code:
        coding.append({"system": codes.TOKUTEI_ITEM, "code": m.item_code, "display": m.display})
    return {"coding": coding, "text": m.display}


def _category(category: str) -> list[dict[str, Any]]:
    display = {"vital-signs": "Vital Signs", "laboratory": "Laboratory", "exam": "Exam"}
    return [coded(codes.OBSERVATION_CATEGORY, category, display[category])]


def _observation(
    m: codes.Measure, value: int | float, when: str, ref: str, sex: str
) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": _category(m.category),
        "code": _measure_code(m),
        "subject": {"reference": ref},
        "effectiveDateTime": when,
        "valueQuantity": _quantity(m, value),
    }
    ranges, interp = _judgement(m, value, sex)
    if interp:
        obs["interpretation"] = [interp]
    if ranges:
        obs["referenceRange"] = ranges
    return obs


def _blood_pressure(
    sbp: int | float, dbp: int | float, when: str, ref: str, sex: str
) -> dict[str, Any]:
    components = []
    for column, value in (("sbp", sbp), ("dbp", dbp)):
        m = codes.MEASURE_BY_COLUMN[column]
        comp: dict[str, Any] = {"code": _measure_code(m), "valueQuantity": _quantity(m, value)}
        ranges, interp = _judgement(m, value, sex)
        if interp:
            comp["interpretation"] = [interp]
        if ranges:
            comp["referenceRange"] = ranges
        components.append(comp)
    loinc, loinc_display, ja = codes.BP_PANEL
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": _category("vital-signs"),
        "code": {
            "coding": [{"system": codes.LOINC, "code": loinc, "display": loinc_display}],
            "text": ja,
        },
        "subject": {"reference": ref},
        "effectiveDateTime": when,
        "component": components,
    }


def _urine_observation(value: tuple[str, str], when: str, ref: str) -> dict[str, Any]:
    m = codes.URINE_PROTEIN
    code, display = value
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": _category(m.category),
        "code": _measure_code(m),
        "subject": {"reference": ref},
        "effectiveDateTime": when,
        "valueCodeableConcept": coded(codes.URINE_DIPSTICK, code, display, display),
        "interpretation": [
            _NORMAL
            if code == "negative"
            else _interpretation("A", "Abnormal", "特定保健指導判定値以上")
        ],
        "referenceRange": [{"text": "−（陰性）。特定保健指導判定値: ±以上"}],
    }


def parse_checkup(row: Row, person: Person | None) -> Fact | None:
    """One checkup row: an Observation per measure given, grouped by a DiagnosticReport.

    Shared by the municipal and the insurer checkup files: both must produce identical
    Observations (code, date, value) so that the same checkup from both is stored once.
    """
    when = row.date("checkup_date", required=True)
    not_before_birth(row, person, "checkup_date", when)
    institution = row.text("institution", free=True)
    values: dict[str, int | float] = {}
    for m in codes.MEASURES:
        v = row.numeric(m.column, lo=m.lo, hi=m.hi)
        if v is not None:
            values[m.column] = v
    urine = _urine_protein(row)
    if ("sbp" in values) != ("dbp" in values) and not any(
        e.column in ("sbp", "dbp") for e in row.errors
    ):
        missing = "dbp" if "sbp" in values else "sbp"
        row.error(missing, "blood pressure needs both sbp and dbp")
    if "sbp" in values and "dbp" in values and values["dbp"] >= values["sbp"]:
        row.error("dbp", "diastolic pressure not below systolic")
    if (
        not values
        and urine is None
        and not any(e.column in codes.CHECKUP_COLUMNS for e in row.errors)
    ):
        row.error("checkup", "no measurement given")
    if not row.ok or person is None or when is None:
        return None
    pk, sex = person.key, person.gender

    def build(ref: str) -> list[SourceRecord]:
        assert when is not None
        out: list[SourceRecord] = []
        for m in codes.MEASURES:
            if m.column == "sbp" and "sbp" in values:
                out.append(
                    SourceRecord(
                        f"obs:{pk}:{when}:bp",
                        _blood_pressure(values["sbp"], values["dbp"], when, ref, sex),
                    )
                )
            elif m.column in values and m.column not in ("sbp", "dbp"):
                out.append(
                    SourceRecord(
                        f"obs:{pk}:{when}:{m.column}",
                        _observation(m, values[m.column], when, ref, sex),
                    )
                )
        if urine is not None:
            out.append(
                SourceRecord(f"obs:{pk}:{when}:urine_protein", _urine_observation(urine, when, ref))
            )
        return out

    def group(ref: str, results: list[str]) -> SourceRecord:
        report: dict[str, Any] = {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "code": {
                "coding": [
                    {"system": codes.REPORT_CATEGORY, "code": "10", "display": "特定健診情報"},
                    {
                        "system": codes.CHECKUP_TYPE,
                        "code": "specific-health-checkup",
                        "display": "特定健康診査",
                    },
                ],
                "text": "特定健康診査",
            },
            "subject": {"reference": ref},
            "effectiveDateTime": when,
            "result": [{"reference": r} for r in results],
        }
        if institution:
            report["performer"] = [{"display": institution}]
        return SourceRecord(f"checkup:{pk}:{when}", report)

    return Fact(f"{pk}|{when}", build, group)


CHECKUP = Format(
    kind="checkup",
    required=("checkup_date",),
    optional=("institution", *codes.CHECKUP_COLUMNS),
    parse=parse_checkup,
    description="特定健診 → Observation per measure + DiagnosticReport",
)


# ---- disability certificates (障害者手帳) ----------------------------------------------------

# 療育手帳 Ⓐ (最重度, 茨城県 and others). NFKC folds "Ⓐ" to "A", so it is recognised first.
_MARU_A = {"○A", "〇A", "◯A", "マルA", "まるA", "丸A", "(A)", "MARUA"}
_GRADE_SUFFIX = re.compile(r"(級|度)$")


def _grade(row: Row, ctype: str | None) -> tuple[str, str] | None:
    raw = row.raw("grade").replace(" ", "").replace("\u3000", "")
    if not raw:
        row.error("grade", "required")
        return None
    if ctype is None:
        return None
    grades = codes.GRADES[ctype]
    value = _GRADE_SUFFIX.sub("", unicodedata.normalize("NFKC", raw)).upper()
    if ctype == "intellectual" and (raw == "Ⓐ" or value in _MARU_A):
        value = "maruA"
    if value not in grades:
        row.error(
            "grade", f"not a grade of {codes.CERTIFICATES[ctype]} (expected {', '.join(grades)})"
        )
        return None
    return value, grades[value]


def parse_disability(row: Row, person: Person | None) -> Fact | None:
    ctype_raw = row.text("certificate_type", required=True, max_len=64)
    ctype: str | None = None
    if ctype_raw:
        ctype = (
            ctype_raw.lower()
            if ctype_raw.lower() in codes.CERTIFICATES
            else codes.CERTIFICATE_ALIASES.get(ctype_raw)
        )
        if ctype is None:
            row.error(
                "certificate_type",
                "expected physical, intellectual or mental "
                "(身体障害者手帳, 療育手帳, 精神障害者保健福祉手帳)",
            )
    grade = _grade(row, ctype)
    impairment = row.text("disability", required=True, free=True)
    issued = row.date("issued_date", required=True)
    not_before_birth(row, person, "issued_date", issued)
    valid_until = row.date("valid_until", not_future=False)
    if issued and valid_until and valid_until < issued:
        row.error("valid_until", "before issued_date")
    if not row.ok or person is None or ctype is None or grade is None or issued is None:
        return None
    pk = person.key
    certificate = codes.CERTIFICATES[ctype]
    key = f"disability:{pk}:{ctype}"

    def build(ref: str) -> list[SourceRecord]:
        assert ctype is not None and grade is not None and issued is not None
        expired = valid_until is not None and date.fromisoformat(valid_until) < date.today()
        period = {"start": issued}
        if valid_until:
            period["end"] = valid_until
        cond: dict[str, Any] = {
            "resourceType": "Condition",
            "extension": [{"url": codes.EXT_CERTIFICATE_PERIOD, "valuePeriod": period}],
            "clinicalStatus": coded(
                codes.CONDITION_CLINICAL,
                "inactive" if expired else "active",
                "Inactive" if expired else "Active",
            ),
            "verificationStatus": coded(codes.CONDITION_VERIFICATION, "confirmed", "Confirmed"),
            "category": [
                coded(codes.CONDITION_CATEGORY, "problem-list-item", "Problem List Item"),
                coded(codes.DISABILITY_CERTIFICATE, ctype, certificate, certificate),
            ],
            "severity": coded(
                codes.DISABILITY_GRADE, f"{ctype}-{grade[0]}", grade[1], f"{certificate} {grade[1]}"
            ),
            "code": {
                "coding": [
                    {"system": codes.DISABILITY_CERTIFICATE, "code": ctype, "display": certificate}
                ],
                "text": impairment,
            },
            "subject": {"reference": ref},
            "recordedDate": issued,
        }
        return [SourceRecord(key, cond)]

    return Fact(f"{pk}|{ctype}", build)


DISABILITY = Format(
    kind="disability",
    required=("certificate_type", "grade", "disability", "issued_date"),
    optional=("valid_until",),
    parse=parse_disability,
    description="障害者手帳 → Condition",
)
