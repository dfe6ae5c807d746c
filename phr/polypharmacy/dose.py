"""The daily dose of one medicine record, in milligrams, when the record says enough.

A record's daily dose is *dose per administration × administrations per day*:

- the dose per administration from ``dosageInstruction[].doseAndRate[].doseQuantity``:
  in mg / g / µg directly, or a count of dosage units (錠, カプセル, 包, tablet, capsule,
  or no unit at all, as Synthea writes it) times the strength of one unit — from the drug
  master's 規格 ("500mg1錠") for a YJ-coded product, or from an RxNorm display
  ("metformin hydrochloride 500 MG Oral Tablet");
- administrations per day from ``timing.repeat`` (``frequency`` per ``period``
  ``periodUnit``), else from ``timing.code`` (QD, BID, TID, QID, Q4H, Q6H, Q8H, Q12H, AM,
  PM, HS), else from Japanese dosage text (「1日3回」);
- a dispensing without dosage instructions: quantity (in units) × strength ÷ days' supply.

Anything else — an as-needed medicine, a combination product (two strengths), a dose in
mL or in an unknown unit, a weekly tablet — gives ``None``: the checks then say that the
dose is not recorded rather than guess.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

__all__ = ["daily_mg", "unit_strength_mg"]

_MASS = {"mg": 1.0, "g": 1000.0, "µg": 0.001, "μg": 0.001, "ug": 0.001, "mcg": 0.001}
# Dosage units counted one by one (the drug master's forms and their English/UCUM names).
_COUNTS = {
    "",
    "錠",
    "カプセル",
    "包",
    "丸",
    "個",
    "tablet",
    "tablets",
    "tab",
    "{tbl}",
    "{tablet}",
    "capsule",
    "capsules",
    "cap",
    "{capsule}",
    "1",
}
_PER_DAY = {"h": 24.0, "min": 1440.0, "d": 1.0, "wk": 1 / 7, "mo": 1 / 30, "a": 1 / 365}
_TIMING_CODES = {
    "QD": 1,
    "AM": 1,
    "PM": 1,
    "HS": 1,
    "BID": 2,
    "TID": 3,
    "QID": 4,
    "Q4H": 6,
    "Q6H": 4,
    "Q8H": 3,
    "Q12H": 2,
}
# 規格 of one dosage unit: "500mg1錠", "2.5mg1錠", "75mg1カプセル", "0.25μg1カプセル".
# "250mg1錠(レボフロキサシンとして)" states the strength as the named moiety, as limits do.
_MASTER_STRENGTH = re.compile(
    r"^(\d+(?:\.\d+)?)(mg|g|µg|μg)1(錠|カプセル|包|丸|個)(\([^)]*として\))?$"
)
# RxNorm: "metformin hydrochloride 500 MG Oral Tablet" (one strength only).
# "250 MG/5ML" is a concentration, not one unit's strength.
_RXNORM_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*(MG|MCG|G)\b(/?)", re.IGNORECASE)
_JA_TIMES = re.compile(r"1日\s*(\d+)\s*回")


def _nfkc(text: Any) -> str:
    return unicodedata.normalize("NFKC", str(text or "")).strip()


def unit_strength_mg(strength: str | None = None, display: str | None = None) -> float | None:
    """Milligrams in one dosage unit: from the drug master's 規格, else an RxNorm display."""
    if strength:
        m = _MASTER_STRENGTH.match(_nfkc(strength).replace(" ", ""))
        if m:
            return float(m.group(1)) * _MASS[m.group(2)]
        return None
    if display:
        found = _RXNORM_STRENGTH.findall(display)
        if len(found) == 1 and not found[0][2]:
            value, unit, _ = found[0]
            return float(value) * _MASS[unit.lower()]
    return None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _dose_mg(quantity: Any, unit_mg: float | None, product_form: str | None) -> float | None:
    if not isinstance(quantity, Mapping):
        return None
    value = _number(quantity.get("value"))
    if value is None:
        return None
    unit = _nfkc(quantity.get("code") or quantity.get("unit"))
    if unit.lower() in _MASS:
        # A powder dosed in grams is dosed by the weight of the powder (製剤量), not of
        # the ingredient: ambiguous without the prescription's own statement.
        if product_form in ("g", "mg"):
            return None
        return value * _MASS[unit.lower()]
    if unit.lower() in _COUNTS and unit_mg is not None:
        return value * unit_mg
    return None


def _times_per_day(dosage: Mapping[str, Any]) -> float | None:
    timing = dosage.get("timing")
    if isinstance(timing, Mapping):
        repeat = timing.get("repeat")
        if isinstance(repeat, Mapping) and (
            repeat.get("frequency") is not None or repeat.get("period") is not None
        ):
            frequency = _number(repeat.get("frequency") or 1)
            period = _number(repeat.get("period") or 1)
            per_day = _PER_DAY.get(str(repeat.get("periodUnit") or "d"))
            if frequency is None or period is None or per_day is None:
                return None
            return frequency / period * per_day
        code = timing.get("code")
        if isinstance(code, Mapping):
            for c in code.get("coding") or []:
                if isinstance(c, Mapping) and str(c.get("code") or "").upper() in _TIMING_CODES:
                    return float(_TIMING_CODES[str(c["code"]).upper()])
            m = _JA_TIMES.search(_nfkc(code.get("text")))
            if m:
                return float(m.group(1))
    m = _JA_TIMES.search(_nfkc(dosage.get("text")))
    return float(m.group(1)) if m else None


def _from_instructions(
    body: Mapping[str, Any], unit_mg: float | None, product_form: str | None
) -> float | None:
    total = 0.0
    found = False
    for dosage in body.get("dosageInstruction") or []:
        if not isinstance(dosage, Mapping):
            continue
        if dosage.get("asNeededBoolean") or dosage.get("asNeededCodeableConcept"):
            return None  # as needed: no fixed daily dose
        rates = dosage.get("doseAndRate") or []
        quantity = rates[0].get("doseQuantity") if rates and isinstance(rates[0], Mapping) else None
        dose = _dose_mg(quantity, unit_mg, product_form)
        times = _times_per_day(dosage)
        if dose is None or times is None:
            return None
        # Several instructions of one record (e.g. 2 tablets morning, 1 evening) add up.
        total += dose * times
        found = True
    return total if found else None


def _from_supply(
    body: Mapping[str, Any], unit_mg: float | None, product_form: str | None
) -> float | None:
    days = body.get("daysSupply")
    if not isinstance(days, Mapping) or str(days.get("code") or days.get("unit") or "d") not in (
        "d",
        "日",
    ):
        return None
    n_days = _number(days.get("value"))
    amount = _dose_mg(body.get("quantity"), unit_mg, product_form)
    if n_days is None or amount is None:
        return None
    return amount / n_days


def daily_mg(
    body: Mapping[str, Any], unit_mg: float | None, *, product_form: str | None = None
) -> float | None:
    """The record's daily dose in mg, or ``None`` when it cannot be known for sure.

    ``unit_mg`` is one dosage unit's strength (:func:`unit_strength_mg`); ``product_form``
    the drug master's dosage unit (錠, カプセル, g, mL, ...) when the record is YJ-coded.
    """
    dose = _from_instructions(body, unit_mg, product_form)
    dispensing = body.get("resourceType") == "MedicationDispense"
    if dose is None and dispensing and not body.get("dosageInstruction"):
        dose = _from_supply(body, unit_mg, product_form)
    return round(dose, 3) if dose is not None else None
