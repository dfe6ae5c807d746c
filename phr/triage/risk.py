"""Risk factors found in a resident's FHIR resources (the ones the triage service may read).

Recognised by code where the code system is reliable and by name otherwise, because the
record mixes Japanese clinics (ICD-10, YJ drug codes, Japanese names), insurers' claims
and Synthea (SNOMED CT, RxNorm, English names):

- conditions: ICD-10 chapters (E10-E14 diabetes, I50 heart failure, N18.5/N18.6 with
  Z99.2 dialysis, D80-D84 immunodeficiency, Z94 transplant, O/Z33 pregnancy) and a few
  SNOMED CT concepts;
- medicines: the YJ code's therapeutic class (333 anticoagulants) and ingredient names
  (warfarin, DOACs, antiplatelets, immunosuppressants, long-term corticosteroids);
- procedures: dialysis, and a surgical procedure in the last 42 days (NICE NG51 counts
  surgery in the last 6 weeks as a sepsis risk factor);
- observations: pregnancy status (LOINC 82810-3).

Only active conditions and current medicines count (status not inactive/resolved/stopped).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

__all__ = ["age_from_patient", "factors_from_resources"]

RECENT_SURGERY = timedelta(days=42)
RECENT_MEDICATION = timedelta(days=120)

_ICD10 = {
    "diabetes": ("E10", "E11", "E12", "E13", "E14"),
    "heart_failure": ("I50", "I11.0", "I13.0", "I13.2"),
    "dialysis": ("Z99.2", "N18.5", "N18.6", "Z49"),
    "immunosuppression": (
        "D80",
        "D81",
        "D82",
        "D83",
        "D84",
        "Z94",
        "B20",
        "B21",
        "B22",
        "B23",
        "B24",
    ),
    "pregnancy": ("Z33", "Z34", "Z35", "O"),
}
_SNOMED = {
    "diabetes": {"44054006", "73211009", "46635009"},
    "heart_failure": {"84114007", "88805009", "42343007"},
    "dialysis": {"46177005", "433144002", "105502003"},
    "pregnancy": {"77386006"},
    "immunosuppression": {"234532001", "86406008"},
}
_DRUG_NAMES = {
    "anticoagulant": (
        "ワルファリン",
        "アピキサバン",
        "リバーロキサバン",
        "エドキサバン",
        "ダビガトラン",
        "warfarin",
        "apixaban",
        "rivaroxaban",
        "edoxaban",
        "dabigatran",
        "heparin",
        "enoxaparin",
    ),
    "antiplatelet": (
        "アスピリン",
        "クロピドグレル",
        "プラスグレル",
        "チカグレロル",
        "シロスタゾール",
        "aspirin",
        "clopidogrel",
        "prasugrel",
        "ticagrelor",
        "cilostazol",
    ),
    "immunosuppression": (
        "タクロリムス",
        "シクロスポリン",
        "ミコフェノール",
        "アザチオプリン",
        "メトトレキサート",
        "プレドニゾロン",
        "tacrolimus",
        "ciclosporin",
        "cyclosporine",
        "mycophenolate",
        "azathioprine",
        "methotrexate",
        "prednisolone",
        "prednisone",
    ),
}
# 333 血液凝固阻止剤 (anticoagulants). Immunosuppressants share catch-all classes with
# unrelated drugs (3999 also holds bisphosphonates), so they are recognised by name only.
_YJ_PREFIX = {"anticoagulant": ("333",)}
_DIALYSIS_WORDS = ("透析", "dialysis")
_SURGERY_WORDS = ("術", "ectomy", "otomy", "plasty", "surgery", "surgical", "resection")
_INACTIVE = {
    "inactive",
    "resolved",
    "remission",
    "entered-in-error",
    "stopped",
    "completed",
    "cancelled",
    "refuted",
    "not-taken",
}

FACTOR_NAMES = {
    "older_adult": ("75歳以上", "aged 75 or older"),
    "young_infant": ("生後3か月未満", "under 3 months old"),
    "pregnancy": ("妊娠中", "pregnant"),
    "anticoagulant": ("抗凝固薬", "anticoagulant"),
    "antiplatelet": ("抗血小板薬", "antiplatelet"),
    "immunosuppression": ("免疫抑制", "immunosuppression"),
    "dialysis": ("透析", "dialysis"),
    "heart_failure": ("心不全", "heart failure"),
    "diabetes": ("糖尿病", "diabetes"),
    "recent_surgery": ("最近の手術", "recent surgery"),
}


def _codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def _names(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    parts = [str(concept.get("text") or "")]
    parts += [str(c.get("display") or "") for c in _codings(concept)]
    return " ".join(parts).lower()


def _parse_when(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def age_from_patient(patient: dict[str, Any], today: date) -> float | None:
    born = _parse_when(patient.get("birthDate"))
    if born is None:
        return None
    return (today - born).days / 365.25


def _condition_factors(res: dict[str, Any]) -> set[str]:
    status = {c.get("code") for c in _codings(res.get("clinicalStatus"))}
    if status & _INACTIVE:
        return set()
    out: set[str] = set()
    for c in _codings(res.get("code")):
        code = str(c.get("code") or "")
        system = str(c.get("system") or "")
        if "snomed" in system:
            out |= {f for f, codes in _SNOMED.items() if code in codes}
        else:
            out |= {f for f, prefixes in _ICD10.items() if code.startswith(prefixes)}
    names = _names(res.get("code"))
    if "心不全" in names or "heart failure" in names:
        out.add("heart_failure")
    if "糖尿病" in names or "diabetes" in names:
        out.add("diabetes")
    if any(w in names for w in _DIALYSIS_WORDS):
        out.add("dialysis")
    return out


def _medication_factors(res: dict[str, Any], today: date) -> set[str]:
    if res.get("status") in _INACTIVE:
        return set()
    when = _parse_when(
        res.get("authoredOn")
        or res.get("whenHandedOver")
        or res.get("effectiveDateTime")
        or (res.get("effectivePeriod") or {}).get("start")
        or res.get("dateAsserted")
    )
    if res.get("resourceType") != "MedicationStatement" and (
        when is None or today - when > RECENT_MEDICATION
    ):
        return set()
    concept = res.get("medicationCodeableConcept")
    names = _names(concept)
    out = {f for f, words in _DRUG_NAMES.items() if any(w.lower() in names for w in words)}
    for c in _codings(concept):
        code = str(c.get("code") or "")
        out |= {f for f, prefixes in _YJ_PREFIX.items() if code.startswith(prefixes)}
    return out


def _procedure_factors(res: dict[str, Any], today: date) -> set[str]:
    if res.get("status") in ("not-done", "entered-in-error"):
        return set()
    names = _names(res.get("code"))
    out: set[str] = set()
    when = _parse_when(
        res.get("performedDateTime") or (res.get("performedPeriod") or {}).get("start")
    )
    if any(w in names for w in _DIALYSIS_WORDS) and when and today - when <= RECENT_MEDICATION:
        out.add("dialysis")
        return out
    surgical = any(c.get("code") == "387713003" for c in _codings(res.get("category")))
    recent = when is not None and timedelta(0) <= today - when <= RECENT_SURGERY
    if recent and (surgical or any(w in names for w in _SURGERY_WORDS)):
        out.add("recent_surgery")
    return out


def _observation_factors(res: dict[str, Any]) -> set[str]:
    if not any(c.get("code") == "82810-3" for c in _codings(res.get("code"))):
        return set()
    value = res.get("valueCodeableConcept")
    if any(c.get("code") == "77386006" for c in _codings(value)) or "pregnant" in _names(value):
        return {"pregnancy"}
    return set()


def factors_from_resources(
    resources: Iterable[dict[str, Any]], *, today: date | None = None
) -> tuple[dict[str, list[str]], float | None]:
    """``{factor: [resource references it came from]}`` and the age in years, if known."""
    today = today or datetime.now().date()
    found: dict[str, list[str]] = {}
    age: float | None = None
    for res in resources:
        rtype = res.get("resourceType")
        if rtype == "Patient":
            age = age_from_patient(res, today)
            continue
        if rtype == "Condition":
            factors = _condition_factors(res)
        elif rtype in ("MedicationRequest", "MedicationStatement", "MedicationDispense"):
            factors = _medication_factors(res, today)
        elif rtype == "Procedure":
            factors = _procedure_factors(res, today)
        elif rtype == "Observation":
            factors = _observation_factors(res)
        else:
            factors = set()
        for f in factors:
            found.setdefault(f, []).append(f"{rtype}/{res.get('id')}")
    return found, age


def age_factors(age: float | None) -> set[str]:
    if age is None:
        return set()
    out = set()
    if age >= 75:
        out.add("older_adult")
    if age < 0.25:
        out.add("young_infant")
    return out
