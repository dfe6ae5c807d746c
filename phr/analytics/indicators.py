"""The indicators, as tables of cells (numerator, denominator) before suppression.

Every function takes the resident frame of :mod:`phr.analytics.population`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "CHECKUP_AGES",
    "INDICATORS",
    "POLYPHARMACY_MIN",
    "checkup",
    "metabolic_criteria",
    "metabolic_syndrome",
    "metabolic_syndrome_flags",
    "observation_codes",
    "polypharmacy",
    "uptake",
    "vaccination",
]

# 特定健康診査 (specific health checkups) are for insured people aged 40-74 (高齢者の医療の
# 確保に関する法律 art. 20); participation is counted there.
CHECKUP_AGES = (40, 74)
# Polypharmacy: six or more current medicines (高齢者の医薬品適正使用の指針 総論編, MHLW
# 2018: adverse events rise markedly from six drugs).
POLYPHARMACY_MIN = 6


@cache
def metabolic_criteria() -> dict[str, Any]:
    return dict(json.loads((Path(__file__).parent / "metabolic_syndrome_jp.json").read_text()))


def observation_codes() -> set[str]:
    c = metabolic_criteria()
    codes = {c["waist_loinc"]}
    for comp in c["components"].values():
        codes |= {x["loinc"] for x in comp["any_of"]}
    return codes


def _cells(
    frame: pd.DataFrame, flag: pd.Series, dims: list[str], extra: dict[str, Any] | None = None
) -> pd.DataFrame:
    if frame.empty:
        cols = [*(extra or {}), *dims, "numerator", "denominator"]
        return pd.DataFrame(columns=cols)
    g = pd.DataFrame({**{d: frame[d] for d in dims}, "flag": flag.astype(int)})
    out = g.groupby(dims, sort=True).agg(numerator=("flag", "sum"), denominator=("flag", "size"))
    out = out.reset_index()
    for k, v in (extra or {}).items():
        out.insert(0, k, v)
    return out


def vaccination(frame: pd.DataFrame) -> pd.DataFrame:
    """Coverage by vaccine, age band and district: residents with a completed dose of the
    vaccine in the period over residents in the cell."""
    vaccines = sorted({v for s in frame["vaccines"] for v in s}) if not frame.empty else []
    parts = [
        _cells(
            frame,
            frame["vaccines"].map(lambda s, v=v: v in s),
            ["age_band", "district"],
            {"vaccine": v},
        )
        for v in vaccines
    ]
    if not parts:
        return pd.DataFrame(columns=["vaccine", "age_band", "district", "numerator", "denominator"])
    return pd.concat(parts, ignore_index=True)


def _waist(frame: pd.DataFrame) -> pd.Series:
    return frame[f"value_{metabolic_criteria()['waist_loinc']}"]


def checkup(frame: pd.DataFrame) -> pd.DataFrame:
    """Participation of residents aged 40-74: a waist circumference measured in the
    period (measured at the specific health checkup, seldom elsewhere)."""
    lo, hi = CHECKUP_AGES
    eligible = frame[(frame["age"] >= lo) & (frame["age"] <= hi)]
    return _cells(eligible, _waist(eligible).notna(), ["age_band", "district"])


def _meets(value: Any, op: str, threshold: float) -> bool:
    if value is None or pd.isna(value):
        return False
    return bool(value >= threshold) if op == ">=" else bool(value < threshold)


def metabolic_syndrome_flags(frame: pd.DataFrame) -> pd.Series:
    """Japanese criteria (2005): waist ≥85 cm (men) / ≥90 cm (women) and ≥2 of lipids,
    blood pressure, fasting glucose (thresholds and source in metabolic_syndrome_jp.json)."""
    c = metabolic_criteria()

    def row(r: pd.Series) -> bool:
        limit = c["waist_cm"].get(r["sex"])
        waist = r[f"value_{c['waist_loinc']}"]
        if limit is None or waist is None or pd.isna(waist) or waist < limit:
            return False
        met = sum(
            any(_meets(r[f"value_{x['loinc']}"], x["op"], x["value"]) for x in comp["any_of"])
            for comp in c["components"].values()
        )
        return met >= c["required_components"]

    if frame.empty:
        return pd.Series([], dtype=bool)
    return frame.apply(row, axis=1).astype(bool)


def metabolic_syndrome(frame: pd.DataFrame) -> pd.DataFrame:
    """Among checkup participants (waist measured in the period), those meeting the
    criteria, by age band and sex."""
    measured = frame[_waist(frame).notna()]
    return _cells(measured, metabolic_syndrome_flags(measured), ["age_band", "sex"])


def polypharmacy(frame: pd.DataFrame) -> pd.DataFrame:
    """Residents with six or more current (active) medicines, by age band."""
    return _cells(frame, frame["medicines"] >= POLYPHARMACY_MIN, ["age_band"])


def uptake(column: str) -> Any:
    def indicator(frame: pd.DataFrame) -> pd.DataFrame:
        return _cells(frame, frame[column], ["age_band"])

    indicator.__doc__ = f"Residents with an active {column} consent, by age band."
    return indicator


INDICATORS = {
    "vaccination": (vaccination, ["vaccine"]),
    "checkup": (checkup, None),
    "metabolic-syndrome": (metabolic_syndrome, None),
    "polypharmacy": (polypharmacy, None),
    "acp": (uptake("acp"), None),
    "emergency-consent": (uptake("emergency"), None),
}
