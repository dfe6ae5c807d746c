"""Risk rating of a privacy impact assessment: impact × likelihood → one of four levels.

Pure functions, no database. The shape comes from Tsukuba's PIA model (「つくば市プライバシー影響
評価制度検討懇話会最終とりまとめ」, 2025; see shared/seeds/003 "評価基準"): the *impact*
(影響度) of a risk on the person is judged from three viewpoints — financial (財産),
mental (精神) and physical (身体) — the *likelihood* (起こりやすさ) is derived from the
evaluation items, and the two give an *overall rating* (総合評価) on four levels.

The seeds name the axes and the four levels but do not reproduce the city's figure (図2), so
the scales and the matrix below follow ISO/IEC 29134:2017 (JIS X 9251:2021) §6.4.4 "Assess
privacy risk" and its informative Annex A, whose example scales — and the CNIL "PIA
Knowledge Bases" (2018) they come from — rate both the level of impact and the likelihood on
four levels (negligible, limited, significant, maximum) and place each risk on a 4×4 risk
map. The CNIL's three kinds of impact (physical, material, moral) are Tsukuba's three
viewpoints (身体, 財産, 精神).

Scales (each 1..4)::

    impact (影響度)                                 likelihood (起こりやすさ)
    1 軽微 minor     overcome without difficulty    1 ほとんどない negligible
    2 限定的 limited overcome despite difficulties  2 低い limited
    3 重大 serious   overcome with serious trouble  3 高い significant
    4 深刻 severe    irreversible or not overcome    4 極めて高い maximum

The impact of a risk is the *worst* of its three viewpoints: a risk that is harmless in money
but devastating to one's mind is devastating.

Risk matrix (rows: impact, columns: likelihood); symmetric and monotone, equivalently
``impact × likelihood``: ≤ 3 低, 4–6 中, 8–9 高, ≥ 12 極めて高い::

                  L1 ほとんどない  L2 低い   L3 高い   L4 極めて高い
    I1 軽微        低 low          低 low    低 low    中 medium
    I2 限定的      低 low          中 medium 中 medium 高 high
    I3 重大        低 low          中 medium 高 high   極 very high
    I4 深刻        中 medium       高 high   極 v.high 極 very high

The overall rating of an assessment is the highest *residual* risk level among its risks
(each risk is rated after its mitigation). An assessment with no risk entry has no rating.

Worked examples (the tests check every row)::

    financial mental physical likelihood  impact  level
    1         1      1        1           1       1 低 low
    1         2      1        3           2       2 中 medium
    2         4      1        1           4       2 中 medium
    1         1      3        3           3       3 高 high
    3         2      1        4           3       4 極めて高い very high
    4         4      4        2           4       3 高 high
    1         1      1        4           1       2 中 medium
    2         2      2        4           2       3 高 high
    2         3      1        1           3       1 低 low

    overall of risks rated [1 低, 3 高, 2 中]  → 3 高 high
    overall of no risks                         → None

The likelihood is "derived from the evaluation items" (評価項目の観点から導出): a risk may
name the questionnaire items it depends on, and :func:`likelihood_from_answers` turns the
share of their safeguards answered "no" into a floor for its likelihood — an assessor may
rate a risk as more likely than the answers say, never less::

    unmet share of applicable questions   0     ≤ 1/4   ≤ 1/2   > 1/2
    likelihood floor                      1     2       3       4
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "IMPACT_LABELS",
    "LEVELS",
    "LIKELIHOOD_LABELS",
    "MATRIX",
    "Level",
    "impact_level",
    "level",
    "likelihood_from_answers",
    "overall_rating",
    "risk_level",
]


@dataclass(frozen=True)
class Level:
    value: int  # 1..4
    ja: str
    en: str
    code: str  # stable machine name

    @property
    def label(self) -> str:
        return f"{self.ja} ({self.en})"


LEVELS: dict[int, Level] = {
    1: Level(1, "低", "low", "low"),
    2: Level(2, "中", "medium", "medium"),
    3: Level(3, "高", "high", "high"),
    4: Level(4, "極めて高い", "very high", "very_high"),
}

IMPACT_LABELS: dict[int, tuple[str, str]] = {
    1: ("軽微", "minor"),
    2: ("限定的", "limited"),
    3: ("重大", "serious"),
    4: ("深刻", "severe"),
}

LIKELIHOOD_LABELS: dict[int, tuple[str, str]] = {
    1: ("ほとんどない", "negligible"),
    2: ("低い", "limited"),
    3: ("高い", "significant"),
    4: ("極めて高い", "maximum"),
}

# MATRIX[impact - 1][likelihood - 1] -> risk level (see the module docstring).
MATRIX: tuple[tuple[int, int, int, int], ...] = (
    (1, 1, 1, 2),
    (1, 2, 2, 3),
    (1, 2, 3, 4),
    (2, 3, 4, 4),
)


def _check(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4:
        raise ValueError(f"{name} must be an integer from 1 to 4, got {value!r}")
    return value


def impact_level(financial: int, mental: int, physical: int) -> int:
    """The impact of a risk: the worst of its financial, mental and physical impacts."""
    return max(
        _check("financial impact", financial),
        _check("mental impact", mental),
        _check("physical impact", physical),
    )


def risk_level(impact: int, likelihood: int) -> int:
    """The 4×4 matrix: impact (1..4) × likelihood (1..4) → risk level (1..4)."""
    return MATRIX[_check("impact", impact) - 1][_check("likelihood", likelihood) - 1]


def level(value: int) -> Level:
    """The named level (Japanese and English) for 1..4."""
    return LEVELS[_check("level", value)]


def overall_rating(levels: Iterable[int]) -> int | None:
    """The highest residual risk level, or None when there is no risk entry."""
    values = [_check("risk level", v) for v in levels]
    return max(values) if values else None


def likelihood_from_answers(answers: Mapping[str, str], question_ids: Iterable[str]) -> int:
    """A floor for the likelihood of a risk from the answers to the questions it depends on.

    ``answers`` maps question id → "yes" (the safeguard is in place), "no" or "na" (not
    applicable); a question without an answer counts as "no" — an unanswered safeguard is
    not a safeguard. "na" questions are left out. No applicable question → 1.
    """
    applicable = 0
    unmet = 0
    for qid in question_ids:
        answer = answers.get(qid, "no")
        if answer == "na":
            continue
        applicable += 1
        if answer != "yes":
            unmet += 1
    if applicable == 0 or unmet == 0:
        return 1
    share = Fraction(unmet, applicable)
    if share <= Fraction(1, 4):
        return 2
    if share <= Fraction(1, 2):
        return 3
    return 4
