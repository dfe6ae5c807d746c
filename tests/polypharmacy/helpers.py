"""Medicine records built from real products of the national list (no invented codes)."""

from __future__ import annotations

import csv
import itertools
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from phr.polypharmacy.master import YJ, parse_row
from phr.polypharmacy.reconcile import ProductInfo
from tests.conftest import DRUGS_CSV, SYNTHEA_DIR


def shared(path: Path) -> Path:
    """``../shared/data/...`` as conftest names it, or the nearest ``shared`` folder above
    (a git worktree sits one level deeper than the main checkout)."""
    if path.exists():
        return path
    parts = path.parts
    rel = Path(*parts[len(parts) - 1 - parts[::-1].index("shared") + 1 :])
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / rel
        if candidate.exists():
            return candidate
    return path


DRUG_LIST = shared(DRUGS_CSV)
SYNTHEA = shared(SYNTHEA_DIR)

TODAY = date(2026, 11, 25)
_ids = itertools.count(1)


@lru_cache(maxsize=1)
def catalogue() -> dict[str, ProductInfo]:
    out = {}
    with open(DRUG_LIST, encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            p = parse_row(row, DRUG_LIST.name)
            if p:
                out[p["code"]] = ProductInfo(
                    p["code"],
                    p["name"],
                    p["ingredient"],
                    p["route"],
                    p["category"],
                    p["form"],
                    p["brand"],
                    p["strength"],
                )
    return out


def product(ingredient: str, route: str = "内用薬", strength: str | None = None) -> ProductInfo:
    """The first (lowest code) product of this ingredient (and 規格) on the real list."""
    matches = sorted(
        (
            p
            for p in catalogue().values()
            if p.ingredient == ingredient
            and p.route == route
            and (strength is None or p.strength == strength)
        ),
        key=lambda p: p.code,
    )
    assert matches, f"{ingredient} {strength or ''} is not on the list"
    return matches[0]


def sig(units: float, per_day: int, unit: str = "錠") -> list[dict[str, Any]]:
    """A dosage instruction as Japanese prescriptions state it: 1回 N 錠 1日 n 回."""
    return [
        {
            "text": f"1回{units:g}{unit} 1日{per_day}回",
            "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": units, "unit": unit}}],
        }
    ]


def request(
    ingredient: str,
    prescriber: str,
    *,
    days: int = 28,
    ago: int = 5,
    status: str = "active",
    strength: str | None = None,
    dosage: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    p = product(ingredient, strength=strength)
    body: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": f"mr{next(_ids)}",
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": YJ, "code": p.code, "display": p.name}],
            "text": p.name,
        },
        "subject": {"reference": "Patient/p1"},
        "authoredOn": (TODAY - timedelta(days=ago)).isoformat(),
        "requester": {"display": prescriber},
        "dispenseRequest": {
            "expectedSupplyDuration": {
                "value": days,
                "unit": "日",
                "system": "http://unitsofmeasure.org",
                "code": "d",
            }
        },
    }
    if dosage is not None:
        body["dosageInstruction"] = dosage
    return body


def dispense(
    ingredient: str, pharmacy: str, prescriber: str, *, days: int | None = 28, ago: int = 5
) -> dict[str, Any]:
    p = product(ingredient)
    body: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": f"md{next(_ids)}",
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": YJ, "code": p.code, "display": p.name}],
            "text": p.name,
        },
        "subject": {"reference": "Patient/p1"},
        "whenHandedOver": (TODAY - timedelta(days=ago)).isoformat(),
        "performer": [{"actor": {"display": pharmacy}}],
        "extension": [
            {
                "url": "urn:phr:extension:prescribing-institution",
                "valueReference": {"display": prescriber},
            }
        ],
    }
    if days is not None:
        body["daysSupply"] = {"value": days, "unit": "日", "code": "d"}
    return body


def statement(text: str, *, code: str | None = None, system: str | None = None) -> dict[str, Any]:
    cc: dict[str, Any] = {"text": text}
    if code:
        cc["coding"] = [{"system": system, "code": code, "display": text}]
    return {
        "resourceType": "MedicationStatement",
        "id": f"ms{next(_ids)}",
        "status": "active",
        "medicationCodeableConcept": cc,
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": (TODAY - timedelta(days=3)).isoformat(),
    }


def products_of(bodies: list[dict[str, Any]]) -> dict[str, ProductInfo]:
    cat = catalogue()
    return {
        c["code"]: cat[c["code"]]
        for b in bodies
        for c in b.get("medicationCodeableConcept", {}).get("coding", [])
        if c.get("system") == YJ and c["code"] in cat
    }
