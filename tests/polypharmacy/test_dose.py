"""Daily doses read from medicine records (phr.polypharmacy.dose)."""

from __future__ import annotations

from typing import Any

import pytest

from phr.polypharmacy.dose import daily_mg, unit_strength_mg


@pytest.mark.parametrize(
    ("strength", "mg"),
    [
        ("500mg1錠", 500.0),
        ("2.5mg1錠", 2.5),
        ("75mg1カプセル", 75.0),
        ("0.25μg1カプセル", 0.00025),
        ("10mg1包", 10.0),
        ("250mg1錠(レボフロキサシンとして)", 250.0),
        ("１０ｍｇ１錠", 10.0),  # full-width, as the ministry's file writes it
        ("1%1g", None),  # a powder by concentration
        ("5%1mL", None),
        ("1錠", None),  # combination product: no single strength
    ],
)
def test_strength_of_one_unit_from_the_drug_master(strength: str, mg: float | None) -> None:
    assert unit_strength_mg(strength) == (pytest.approx(mg) if mg is not None else None)


@pytest.mark.parametrize(
    ("display", "mg"),
    [
        ("metformin hydrochloride 500 MG Oral Tablet", 500.0),
        ("24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet", 500.0),
        ("Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet", None),
        ("Amoxicillin 250 MG/5ML Oral Suspension", None),
    ],
)
def test_strength_from_an_rxnorm_display(display: str, mg: float | None) -> None:
    assert unit_strength_mg(display=display) == mg


def _request(*dosage: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "dosageInstruction": list(dosage)}


def _dose(value: float, unit: str | None = None) -> list[dict[str, Any]]:
    q: dict[str, Any] = {"value": value}
    if unit is not None:
        q["unit"] = unit
    return [{"doseQuantity": q}]


def test_tablets_times_frequency() -> None:
    body = _request(
        {
            "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
            "doseAndRate": _dose(2, "錠"),
        }
    )
    assert daily_mg(body, 250.0, product_form="錠") == 1500


def test_synthea_style_dose_without_unit_and_every_12_hours() -> None:
    body = _request(
        {
            "timing": {"repeat": {"frequency": 1, "period": 12, "periodUnit": "h"}},
            "doseAndRate": _dose(1),
        }
    )
    assert daily_mg(body, 500.0) == 1000


def test_timing_code_and_mass_dose() -> None:
    body = _request(
        {
            "timing": {"code": {"coding": [{"code": "BID"}]}},
            "doseAndRate": _dose(0.5, "g"),
        }
    )
    assert daily_mg(body, None, product_form="錠") == 1000


def test_japanese_text_gives_the_frequency() -> None:
    body = _request({"text": "1回1錠 1日３回 毎食後", "doseAndRate": _dose(1, "錠")})
    assert daily_mg(body, 10.0) == 30


def test_split_doses_add_up() -> None:
    morning = {"timing": {"repeat": {"frequency": 1, "period": 1}}, "doseAndRate": _dose(2)}
    evening = {"timing": {"repeat": {"frequency": 1, "period": 1}}, "doseAndRate": _dose(1)}
    assert daily_mg(_request(morning, evening), 250.0) == 750


@pytest.mark.parametrize(
    "dosage",
    [
        {"asNeededBoolean": True, "doseAndRate": _dose(1)},  # as needed
        {"doseAndRate": _dose(1)},  # no frequency at all
        {"timing": {"repeat": {"frequency": 1}}, "doseAndRate": _dose(5, "mL")},
        {"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}},
    ],
)
def test_unknowable_doses_are_none(dosage: dict[str, Any]) -> None:
    assert daily_mg(_request(dosage), 10.0) is None


def test_a_powder_dosed_in_grams_is_ambiguous() -> None:
    body = _request({"timing": {"repeat": {"frequency": 2}}, "doseAndRate": _dose(1, "g")})
    assert daily_mg(body, None, product_form="g") is None


def test_a_dispensing_without_instructions_uses_quantity_over_days() -> None:
    body = {
        "resourceType": "MedicationDispense",
        "quantity": {"value": 84, "unit": "錠"},
        "daysSupply": {"value": 28, "unit": "日", "code": "d"},
    }
    assert daily_mg(body, 500.0, product_form="錠") == 1500
