"""Who needs support at a shelter (要配慮者): rules in ``needs.csv``, a source on every row.

A need is found from the resident's current medicines (reconciled by
:mod:`phr.polypharmacy`: a YJ therapeutic category prefix, a drug class of its knowledge
base, or the medicine's name) or active conditions (a code, a category, or the text).
Allergies and an ACP on file are needs of their own, decided by the view. Care level
(要介護度) has no source in the platform yet, so it never appears.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from phr.polypharmacy.master import YJ
from phr.polypharmacy.reconcile import Medicine

__all__ = ["NEEDS_FILE", "NeedRule", "condition_needs", "medicine_needs", "rules"]

NEEDS_FILE = Path(__file__).resolve().parent / "needs.csv"
MATCHES = frozenset(
    {"med_yj_prefix", "med_class", "med_text", "condition_code", "condition_text",
     "condition_category"}
)  # fmt: skip


@dataclass(frozen=True)
class NeedRule:
    need: str
    label_ja: str
    label_en: str
    match: str
    values: tuple[str, ...]
    source: str


@lru_cache(maxsize=1)
def rules() -> tuple[NeedRule, ...]:
    out = []
    with NEEDS_FILE.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["match"] not in MATCHES or not row["source"].strip():
                raise ValueError(f"needs.csv: bad row {row}")
            out.append(
                NeedRule(
                    row["need"],
                    row["label_ja"],
                    row["label_en"],
                    row["match"],
                    tuple(v.strip() for v in row["value"].split("|") if v.strip()),
                    row["source"],
                )
            )
    return tuple(out)


def labels() -> dict[str, tuple[str, str]]:
    return {r.need: (r.label_ja, r.label_en) for r in rules()}


def _has_text(texts: Iterable[str], needles: Iterable[str]) -> bool:
    low = [t.casefold() for t in texts if t]
    return any(n.casefold() in t for n in needles for t in low)


def medicine_needs(medicine: Medicine) -> set[str]:
    """The needs one current medicine shows."""
    texts = [medicine.name, *(s.display for s in medicine.sources)]
    yj = [s.code or "" for s in medicine.sources if s.system == YJ]
    found = set()
    for r in rules():
        if (
            (r.match == "med_yj_prefix" and any(c.startswith(r.values) for c in yj))
            or (r.match == "med_class" and not medicine.classes.isdisjoint(r.values))
            or (r.match == "med_text" and _has_text(texts, r.values))
        ):
            found.add(r.need)
    return found


def condition_needs(condition: Mapping[str, Any]) -> set[str]:
    """The needs one active Condition shows."""
    codings = [c for c in (condition.get("code") or {}).get("coding") or [] if isinstance(c, dict)]
    codes = {f"{c.get('system')}|{c.get('code')}" for c in codings}
    categories = {
        str(c.get("system"))
        for cat in condition.get("category") or []
        for c in (cat.get("coding") or [])
        if isinstance(c, dict)
    }
    texts = [str((condition.get("code") or {}).get("text") or "")]
    texts += [str(c.get("display") or "") for c in codings]
    found = set()
    for r in rules():
        if (
            (r.match == "condition_code" and not codes.isdisjoint(r.values))
            or (r.match == "condition_category" and not categories.isdisjoint(r.values))
            or (r.match == "condition_text" and _has_text(texts, r.values))
        ):
            found.add(r.need)
    return found
