"""The national drug master: 薬価基準収載品目リスト (MHLW drug price list) → ``drug_product``.

The file is the ministry's CSV (UTF-8 with BOM, full-width digits and letters, one row per
product). Every row with a 12-character 薬価基準収載医薬品コード becomes a product; the
import is an upsert by code, one transaction, so a product that left the list keeps its
row (old records still name it). Columns kept: code, ingredient (成分名), strength (規格),
form (the dosage unit at the end of 規格: 錠, カプセル, g, mL, 枚, ...), route (区分),
therapeutic category (薬効分類 = the first four digits), brand/generic (先発医薬品 /
後発医薬品 flags), narcotic, price and the transitional delisting date.

Medicines coded otherwise (RxNorm in the Synthea bundles) are matched to Japanese
ingredients by the English ingredient names in ``kb/rxnorm_ingredients.csv``; what does not
match is reported as unrecognised, never dropped.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from phr.errors import InvalidInput
from phr.polypharmacy import repository
from phr.polypharmacy.kb import knowledge_base
from phr.store.indexer import utcnow

__all__ = [
    "RXNORM",
    "YJ",
    "ImportReport",
    "components",
    "form_of",
    "import_drug_list",
    "match_english",
    "parse_row",
]

YJ = "urn:oid:1.2.392.100495.20.1.73"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CODE_RE = re.compile(r"^\d{4}[0-9A-Z]\d{2}[0-9A-Z]\d{4}$")
REQUIRED = ("区分", "薬価基準収載医薬品コード", "成分名", "規格", "品名")
_FORM_RE = re.compile(r"([^\d.%]+)$")


def _nfkc(text: str | None) -> str:
    return unicodedata.normalize("NFKC", text or "").strip()


def components(ingredient: str) -> tuple[str, ...]:
    """The ingredients of a combination product (成分名 joined by ・)."""
    return tuple(c.strip() for c in ingredient.split("・") if c.strip()) or (ingredient,)


def form_of(strength: str) -> str:
    """The dosage unit at the end of the 規格: "5mg1錠" → "錠", "1%1g" → "g"."""
    m = _FORM_RE.search(strength)
    return m.group(1).strip() if m else ""


def _brand(row: dict[str, str]) -> str:
    flag = _nfkc(row.get("先発医薬品"))
    if flag == "先発品":
        return "brand"
    if flag == "準先発品":
        return "quasi-brand"
    # 後発品, or ★ (also a generic, marked in the same column)
    if _nfkc(row.get("診療報酬において加算等の算定対象となる後発医薬品")) in ("後発品", "★"):
        return "generic"
    return "other"


def parse_row(row: dict[str, str], source: str) -> dict[str, Any] | None:
    code = _nfkc(row.get("薬価基準収載医薬品コード")).upper()
    if not CODE_RE.match(code):
        return None
    strength = _nfkc(row.get("規格"))
    price_text = _nfkc(row.get("薬価")).replace(",", "")
    try:
        price: float | None = float(price_text) if price_text else None
    except ValueError:
        price = None
    return {
        "code": code,
        "name": _nfkc(row.get("品名"))[:255],
        "ingredient": _nfkc(row.get("成分名"))[:255],
        "strength": strength[:255],
        "form": form_of(strength)[:32],
        "route": _nfkc(row.get("区分"))[:16],
        "category": code[:4],
        "brand": _brand(row),
        "narcotic": _nfkc(row.get("麻薬")) == "麻",
        "price": price,
        "delisting": _nfkc(row.get("経過措置による使用期限"))[:32] or None,
        "source": source[:255],
    }


@dataclass
class ImportReport:
    rows: int
    products: int
    created: int
    updated: int
    skipped: int

    def as_dict(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "products": self.products,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
        }


def import_drug_list(session: Session, path: Path) -> ImportReport:
    """Upsert every product of the list; the caller's transaction commits (all or nothing)."""
    if not path.is_file():
        raise InvalidInput(f"cannot read {path}")
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidInput(f"{path.name}: not the MHLW drug price list (missing {missing})")
        now = utcnow()
        parsed: dict[str, dict[str, Any]] = {}
        rows = skipped = 0
        for row in reader:
            rows += 1
            p = parse_row(row, path.name)
            if p is None:
                skipped += 1
                continue
            p["imported_at"] = now
            parsed[p["code"]] = p
    known = repository.existing_codes(session)
    new = [p for c, p in parsed.items() if c not in known]
    old = [p for c, p in parsed.items() if c in known]
    repository.insert_products(session, new)
    repository.update_products(session, old)
    session.flush()
    from phr.polypharmacy.service import forget_products

    forget_products()
    return ImportReport(rows, len(parsed), len(new), len(old), skipped)


_WORD = re.compile(r"[a-z0-9]+(?:[ -][a-z0-9]+)*")


def match_english(text: str) -> tuple[str, ...]:
    """Japanese ingredients named in an English (RxNorm) medicine name, in the KB's map.

    Whole-word matches only ("Simvistatin" — Synthea's misspelling — does not match).
    """
    low = " " + re.sub(r"[^a-z0-9]+", " ", text.lower()) + " "
    out = []
    for en, ja in knowledge_base().english.items():
        if f" {en} " in low and ja not in out:
            out.append(ja)
    return tuple(out)
