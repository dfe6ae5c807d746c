"""The project's own knowledge base: versioned CSV files under ``kb/``, a source on every row.

Drug classes are matched to Japanese products by ingredient (成分名, each component of a
combination product) and, for a few classes, by the YJ therapeutic category (薬効分類,
the first four digits of the code). References in the rule files are ``class:<id>`` or
``ing:<成分名>`` (and, in ``disease.csv``, ``acb:<n>`` for an anticholinergic burden score of
at least n); several alternatives are joined with ``|``. Conditions in ``disease.csv`` are
``icd10:<code>`` (the code and every code under it: I50 covers I50.0-I50.9) or
``sct:<SNOMED CT code>``.
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
    "DiseaseRule",
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
    # Only after this many days of uninterrupted use (Beers: PPIs beyond 8 weeks).
    min_days: int | None = None


@dataclass(frozen=True)
class RenalRule(Advice):
    ref: tuple[str, ...]
    egfr_below: float
    # The highest daily dose (mg) in this kidney-function band, where the source gives
    # one: a record within it raises nothing, one above it is the finding.
    max_daily_mg: float | None = None


@dataclass(frozen=True)
class DiseaseRule(Advice):
    """AGS Beers 2023 Table 3: a medicine to avoid in an older adult with this condition."""

    conditions: tuple[str, ...]  # icd10:<prefix> | sct:<code>
    history: bool  # a past condition counts too (history of fractures, of ulcers)
    ref: tuple[str, ...]
    except_ref: tuple[str, ...]
    min_age: int
    condition_ja: str
    condition_en: str


ICD10_SYSTEMS = ("icd-10", "icd10")  # substrings of the system URI or OID name
SNOMED = "http://snomed.info/sct"


def condition_tokens(conditions: Iterable[str]) -> set[str]:
    """Every code a condition reference stands for, as stored in the token index (ICD-10
    codes with and without the dot: I50 → I50, I50.0 … I50.9, I500 … I509)."""
    out: set[str] = set()
    for c in conditions:
        kind, _, code = c.partition(":")
        if kind == "sct":
            out.add(code)
        elif kind == "icd10":
            out.add(code)
            if len(code) == 3:
                out |= {f"{code}.{d}" for d in range(10)} | {f"{code}{d}" for d in range(10)}
    return out


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
    disease: list[DiseaseRule]
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
            + [r.ref + r.except_ref for r in self.disease]
        ):
            names |= {x[4:] for x in refs if x.startswith("ing:")}
        return names

    def disease_codes(self) -> tuple[str, ...]:
        """The condition codes any drug–disease rule looks for (for the token index)."""
        return tuple(sorted(condition_tokens(c for r in self.disease for c in r.conditions)))


def _rows(name: str) -> list[dict[str, str]]:
    with open(KB_DIR / name, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i, row in enumerate(rows, start=2):
        if not (row.get("source") or "").strip():
            raise ValueError(f"kb/{name} line {i}: every row needs a source")
    return rows


def _refs(text: str, kinds: tuple[str, ...] = ("class:", "ing:")) -> tuple[str, ...]:
    refs = tuple(x.strip() for x in text.split("|") if x.strip())
    for r in refs:
        if not r.startswith(kinds):
            raise ValueError(f"reference {r!r} must start with one of {', '.join(kinds)}")
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
    "disease.csv",
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
        ElderlyRule(
            **_advice(r),
            ref=_refs(r["ref"]),
            min_age=int(r["min_age"]),
            min_days=int(r["min_days"]) if r["min_days"] else None,
        )
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
    disease = [
        DiseaseRule(
            **_advice(r),
            conditions=_refs(r["conditions"], ("icd10:", "sct:")),
            history=r["history"] == "yes",
            ref=_refs(r["ref"], ("class:", "ing:", "acb:")),
            except_ref=_refs(r["except"]),
            min_age=int(r["min_age"]),
            condition_ja=r["condition_ja"],
            condition_en=r["condition_en"],
        )
        for r in _rows("disease.csv")
    ]
    english_rows = _rows("rxnorm_ingredients.csv")
    for rule in interactions + elderly + renal + disease:  # type: ignore[operator]
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
        disease=disease,
        english={r["ingredient_en"].lower(): r["ingredient_ja"] for r in english_rows},
        english_sources={r["ingredient_en"].lower(): r["source"] for r in english_rows},
    )
