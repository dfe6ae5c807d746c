"""The project's own knowledge base: versioned CSV files under ``kb/``, a source on every row.

Drug classes are matched to Japanese products by ingredient (成分名, each component of a
combination product) and, for a few classes, by the YJ therapeutic category (薬効分類,
the first four digits of the code). References in the rule files are ``class:<id>`` or
``ing:<成分名>``; several alternatives are joined with ``|``.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

__all__ = [
    "KB_DIR",
    "Advice",
    "ClassDef",
    "ElderlyRule",
    "InteractionRule",
    "KnowledgeBase",
    "RenalRule",
    "knowledge_base",
]

KB_DIR = Path(__file__).resolve().parent / "kb"
# Classes apply to systemic routes; a topical NSAID patch is not a second oral NSAID.
SYSTEMIC_ROUTES = frozenset({"内用薬", "注射薬"})


@dataclass(frozen=True)
class ClassDef:
    id: str
    name_ja: str
    name_en: str
    doubling: bool
    doubling_severity: str
    categories: frozenset[str]
    source: str


@dataclass(frozen=True)
class Advice:
    """What every rule row says: how bad, why, what to do, and who says so."""

    id: str
    severity: str
    reason_ja: str
    reason_en: str
    action_ja: str
    action_en: str
    source: str


@dataclass(frozen=True)
class InteractionRule(Advice):
    a: tuple[str, ...]
    b: tuple[str, ...]
    kind: str  # interaction | duplicate


@dataclass(frozen=True)
class ElderlyRule(Advice):
    ref: tuple[str, ...]
    min_age: int


@dataclass(frozen=True)
class RenalRule(Advice):
    ref: tuple[str, ...]
    egfr_below: float
    # The highest daily dose (mg) in this kidney-function band, where the source gives
    # one: a record within it raises nothing, one above it is the finding.
    max_daily_mg: float | None = None


@dataclass
class KnowledgeBase:
    version: str
    classes: dict[str, ClassDef]
    members: dict[str, frozenset[str]]  # ingredient component -> class ids
    category_classes: dict[str, frozenset[str]]  # 4-digit category -> class ids
    acb: dict[str, int]  # ingredient component -> ACB score
    acb_source: str
    interactions: list[InteractionRule]
    elderly: list[ElderlyRule]
    renal: list[RenalRule]
    english: dict[str, str]  # English ingredient name (lower case) -> 成分名
    english_sources: dict[str, str] = field(default_factory=dict)

    def classes_of(
        self, components: Iterable[str], category: str | None, route: str | None
    ) -> frozenset[str]:
        if route is not None and route not in SYSTEMIC_ROUTES:
            return frozenset()
        out: set[str] = set()
        for c in components:
            out |= self.members.get(c, frozenset())
        if category:
            out |= self.category_classes.get(category, frozenset())
        return frozenset(out)

    def ingredient_names(self) -> set[str]:
        """Every 成分名 the rule files name (for checking them against the drug master)."""
        names = set(self.members) | set(self.acb) | set(self.english.values())
        for refs in (
            [r.a for r in self.interactions]
            + [r.b for r in self.interactions]
            + [r.ref for r in self.elderly]
            + [r.ref for r in self.renal]
        ):
            names |= {x[4:] for x in refs if x.startswith("ing:")}
        return names


def _rows(name: str) -> list[dict[str, str]]:
    with open(KB_DIR / name, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i, row in enumerate(rows, start=2):
        if not (row.get("source") or "").strip():
            raise ValueError(f"kb/{name} line {i}: every row needs a source")
    return rows


def _refs(text: str) -> tuple[str, ...]:
    refs = tuple(x.strip() for x in text.split("|") if x.strip())
    for r in refs:
        if not (r.startswith("class:") or r.startswith("ing:")):
            raise ValueError(f"reference {r!r} must start with class: or ing:")
    return refs


def _advice(row: dict[str, str]) -> dict[str, str]:
    keys = ("id", "severity", "reason_ja", "reason_en", "action_ja", "action_en", "source")
    return {k: row[k] for k in keys}


FILES = (
    "classes.csv",
    "class_members.csv",
    "anticholinergic.csv",
    "interactions.csv",
    "elderly.csv",
    "renal.csv",
    "rxnorm_ingredients.csv",
)


@lru_cache(maxsize=1)
def knowledge_base() -> KnowledgeBase:
    digest = hashlib.sha256()
    for name in FILES:
        digest.update((KB_DIR / name).read_bytes())
    classes = {
        r["class_id"]: ClassDef(
            r["class_id"],
            r["name_ja"],
            r["name_en"],
            r["doubling"] == "yes",
            r["doubling_severity"] or "moderate",
            frozenset(x for x in r["yj_categories"].split("|") if x),
            r["source"],
        )
        for r in _rows("classes.csv")
    }
    members: dict[str, set[str]] = {}
    for r in _rows("class_members.csv"):
        if r["class_id"] not in classes:
            raise ValueError(f"class_members.csv: unknown class {r['class_id']}")
        members.setdefault(r["ingredient_ja"], set()).add(r["class_id"])
    categories: dict[str, set[str]] = {}
    for c in classes.values():
        for cat in c.categories:
            categories.setdefault(cat, set()).add(c.id)
    acb_rows = _rows("anticholinergic.csv")
    acb = {r["ingredient_ja"]: int(r["score"]) for r in acb_rows}
    interactions = [
        InteractionRule(**_advice(r), a=_refs(r["a"]), b=_refs(r["b"]), kind=r["kind"])
        for r in _rows("interactions.csv")
    ]
    elderly = [
        ElderlyRule(**_advice(r), ref=_refs(r["ref"]), min_age=int(r["min_age"]))
        for r in _rows("elderly.csv")
    ]
    renal = sorted(
        (
            RenalRule(
                **_advice(r),
                ref=_refs(r["ref"]),
                egfr_below=float(r["egfr_below"]),
                max_daily_mg=float(r["max_daily_mg"]) if r["max_daily_mg"] else None,
            )
            for r in _rows("renal.csv")
        ),
        key=lambda r: r.egfr_below,
    )
    english_rows = _rows("rxnorm_ingredients.csv")
    for rule in interactions + elderly + renal:  # type: ignore[operator]
        refs = rule.a + rule.b if isinstance(rule, InteractionRule) else rule.ref
        for ref in refs:
            if ref.startswith("class:") and ref[6:] not in classes:
                raise ValueError(f"{rule.id}: unknown class {ref}")
    return KnowledgeBase(
        version=digest.hexdigest()[:12],
        classes=classes,
        members={k: frozenset(v) for k, v in members.items()},
        category_classes={k: frozenset(v) for k, v in categories.items()},
        acb=acb,
        acb_source=acb_rows[0]["source"] if acb_rows else "",
        interactions=interactions,
        elderly=elderly,
        renal=renal,
        english={r["ingredient_en"].lower(): r["ingredient_ja"] for r in english_rows},
        english_sources={r["ingredient_en"].lower(): r["source"] for r in english_rows},
    )
