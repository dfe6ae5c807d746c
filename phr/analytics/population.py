"""One row per resident, built while streaming their consented records through the choke
point (memory: a few values per resident, never the records)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
import pandas as pd

from phr.store.reader import RecordReader

__all__ = ["TYPES", "Period", "age_band", "resident_frame"]

TYPES = (
    "Patient",
    "Immunization",
    "Observation",
    "MedicationStatement",
    "MedicationRequest",
    "Consent",
)
ADVANCE_DIRECTIVE = "adr"  # http://terminology.hl7.org/CodeSystem/consentscope
LOINC = "http://loinc.org"


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    def holds(self, when: str | None) -> bool:
        return bool(when) and self.start.isoformat() <= str(when)[:10] <= self.end.isoformat()


@dataclass
class _Resident:
    birth: str | None = None
    sex: str = "unknown"
    district: str = "不明 unknown"
    vaccines: set[str] = field(default_factory=set)
    # LOINC code -> (effective, value): the latest in the period
    values: dict[str, tuple[str, float]] = field(default_factory=dict)
    medicines: set[str] = field(default_factory=set)
    acp: bool = False


def age_band(age: int) -> str:
    if age >= 90:
        return "90+"
    lo = age // 10 * 10
    return f"{lo}-{lo + 9}"


def _age(birth: str | None, on: date) -> int | None:
    if not birth or len(birth) < 4:
        return None
    y = int(birth[:4])
    m = int(birth[5:7]) if len(birth) >= 7 else 1
    d = int(birth[8:10]) if len(birth) >= 10 else 1
    return on.year - y - ((on.month, on.day) < (m, d))


def _codes(concept: dict[str, Any] | None) -> list[tuple[str | None, str]]:
    return [
        (c.get("system"), c["code"]) for c in (concept or {}).get("coding") or [] if c.get("code")
    ]


def _observe(p: _Resident, obs: dict[str, Any], period: Period, codes: set[str]) -> None:
    if obs.get("status") not in ("final", "amended", "corrected"):
        return
    when = obs.get("effectiveDateTime") or (obs.get("effectivePeriod") or {}).get("start")
    if not period.holds(when):
        return
    pairs = [(obs.get("code"), obs.get("valueQuantity"))]
    pairs += [(c.get("code"), c.get("valueQuantity")) for c in obs.get("component") or []]
    for concept, qty in pairs:
        if not qty or qty.get("value") is None:
            continue
        for system, code in _codes(concept):
            if system == LOINC and code in codes:
                old = p.values.get(code)
                if old is None or str(when) >= old[0]:
                    p.values[code] = (str(when), float(qty["value"]))


def _medicine(res: dict[str, Any]) -> str | None:
    concept = res.get("medicationCodeableConcept") or {}
    codes = _codes(concept)
    if codes:
        return f"{codes[0][0]}|{codes[0][1]}"
    if concept.get("text"):
        return str(concept["text"])
    ref = (res.get("medicationReference") or {}).get("reference")
    return str(ref) if ref else None


def resident_frame(
    reader: RecordReader, period: Period, on: date, observation_codes: set[str], detail: str
) -> pd.DataFrame:
    """Columns: resident, age, age_band, sex, district, vaccines (set), value_<loinc>,
    medicines (count), acp. Only residents whose Patient is visible."""
    people: dict[str, _Resident] = {}
    for rtype, resident, content in reader.export(types=TYPES, shared=False, detail=detail):
        if resident is None:
            continue
        p = people.setdefault(resident, _Resident())
        res = orjson.loads(content)
        if rtype == "Patient":
            p.birth = res.get("birthDate")
            p.sex = res.get("gender") or "unknown"
            addr = (res.get("address") or [{}])[0]
            p.district = addr.get("district") or addr.get("city") or p.district
        elif rtype == "Immunization":
            if res.get("status") == "completed" and period.holds(res.get("occurrenceDateTime")):
                for system, code in _codes(res.get("vaccineCode"))[:1]:
                    p.vaccines.add(f"{system}|{code}")
        elif rtype == "Observation":
            _observe(p, res, period, observation_codes)
        elif rtype in ("MedicationStatement", "MedicationRequest"):
            if res.get("status") == "active":
                med = _medicine(res)
                if med:
                    p.medicines.add(med)
        elif rtype == "Consent" and res.get("status") == "active":
            # Advance directives are ordinary data; privacy consents (the emergency
            # pre-consent among them) are shared with no one and never reach this reader.
            scopes = {code for _, code in _codes(res.get("scope"))}
            p.acp = p.acp or ADVANCE_DIRECTIVE in scopes
    rows = []
    for rid, p in people.items():
        age = _age(p.birth, on)
        if age is None:  # no visible Patient (or no birth date): not in the population
            continue
        row: dict[str, Any] = {
            "resident": rid,
            "age": age,
            "age_band": age_band(age),
            "sex": p.sex,
            "district": p.district,
            "vaccines": p.vaccines,
            "medicines": len(p.medicines),
            "acp": p.acp,
        }
        for code in observation_codes:
            row[f"value_{code}"] = p.values[code][1] if code in p.values else None
        rows.append(row)
    columns = ["resident", "age", "age_band", "sex", "district", "vaccines", "medicines", "acp",
               *[f"value_{c}" for c in sorted(observation_codes)]]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
