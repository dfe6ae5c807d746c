"""Real medicine codes for the demo, read from Japan's national drug price list.

The list (薬価基準収載品目リスト, 厚生労働省) is outside data, read at load time from
``../shared/data/jp-drugs/``; nothing of it is copied into the repository. A medicine is
chosen by ingredient (成分名), route (区分) and strength (規格); when the list has no such
product the drug is left out — codes are never invented.
"""

from __future__ import annotations

import csv
import random
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = [
    "DRUG_CODE_SYSTEM",
    "Catalogue",
    "Product",
    "Sig",
    "default_drug_list",
]

# 薬価基準収載医薬品コード / YJ code namespace used by JP Core for MedicationRequest.
DRUG_CODE_SYSTEM = "urn:oid:1.2.392.100495.20.1.73"
DRUG_LIST_NAME = "mhlw-drug-price-list-2025-07-16.csv"


def default_drug_list() -> Path:
    """``<repo>/../shared/data/jp-drugs/...`` (the repository's sibling ``shared`` folder)."""
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "data" / "jp-drugs" / DRUG_LIST_NAME


def _nfkc(s: str) -> str:
    return unicodedata.normalize("NFKC", s).strip()


@dataclass(frozen=True)
class Product:
    code: str  # 薬価基準収載医薬品コード (12 characters)
    name: str  # 品名
    ingredient: str  # 成分名
    strength: str  # 規格, NFKC
    route: str  # 区分: 内用薬 | 外用薬 | 注射薬
    brand: bool  # 先発品


@dataclass(frozen=True)
class Sig:
    """How a medicine is taken (用法・用量) and dispensed."""

    ingredient: str  # 成分名 exactly as in the list
    strength: str  # 規格 after NFKC, e.g. "5mg1錠"
    dose: float  # per administration
    unit: str  # 錠, 吸入, 枚, ...
    per_day: int  # administrations per day (per week when weekly)
    when: tuple[str, ...]  # FHIR event timing: PCM PCD PCV HS WAKE ...
    timing_text: str  # Japanese 用法, e.g. "1日1回朝食後"
    route: str = "内用薬"
    weekly: bool = False
    as_needed: bool = False
    # what one dispensed unit is, when it is not one dose unit (an inhaler of 60 puffs)
    doses_per_package: int = 1
    package_unit: str | None = None


class Catalogue:
    """Products of the national list, looked up by ingredient and strength."""

    def __init__(self, products: list[Product]) -> None:
        self._by_key: dict[tuple[str, str, str], list[Product]] = {}
        for p in products:
            self._by_key.setdefault((p.ingredient, p.strength, p.route), []).append(p)
        for v in self._by_key.values():
            v.sort(key=lambda p: p.code)
        self.codes = {p.code for p in products}

    @classmethod
    def load(cls, path: Path | None = None) -> Catalogue:
        return _load(str(path or default_drug_list()))

    def products(self, sig: Sig) -> list[Product]:
        return self._by_key.get((sig.ingredient, sig.strength, sig.route), [])

    def pick(self, sig: Sig, rng: random.Random, *, prefer_brand: bool) -> Product | None:
        """A product for this sig: a brand (先発品) at hospitals, often a generic elsewhere."""
        candidates = self.products(sig)
        if not candidates:
            return None
        preferred = [p for p in candidates if p.brand == prefer_brand] or candidates
        return rng.choice(preferred)


@lru_cache(maxsize=4)
def _load(path: str) -> Catalogue:
    products: list[Product] = []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            if _nfkc(row.get("経過措置による使用期限", "")):
                continue  # being delisted
            code = _nfkc(row["薬価基準収載医薬品コード"])
            if len(code) != 12:
                continue
            products.append(
                Product(
                    code=code,
                    name=_nfkc(row["品名"]),
                    ingredient=_nfkc(row["成分名"]),
                    strength=_nfkc(row["規格"]),
                    route=_nfkc(row["区分"]),
                    brand=_nfkc(row.get("先発医薬品", "")) == "先発品",
                )
            )
    return Catalogue(products)
