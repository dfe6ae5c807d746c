"""Severity scores from vital signs: NEWS2, qSOFA, shock index and a JTAS-style level.

Sources
-------
NEWS2
    Royal College of Physicians. *National Early Warning Score (NEWS) 2: Standardising the
    assessment of acute-illness severity in the NHS.* Updated report of a working party.
    London: RCP, December 2017. Chart 1 ("The NEWS scoring system") gives the bands coded
    in :data:`NEWS2_BANDS` below; Chart 2 ("The NEWS thresholds and triggers") the risk
    bands: aggregate 0-4 low, a score of 3 in any single parameter low-medium, 5-6 medium,
    7 or more high. SpO2 scale 2 is for patients with a prescribed target range of 88-92%
    (hypercapnic respiratory failure), decided by a clinician; on scale 2 a saturation of
    93% or more scores 0 on air but 1/2/3 (93-94 / 95-96 / >=97) on oxygen.
qSOFA
    Singer M, Deutschman CS, Seymour CW, et al. The Third International Consensus
    Definitions for Sepsis and Septic Shock (Sepsis-3). JAMA 2016;315(8):801-810; and
    Seymour CW, et al. Assessment of Clinical Criteria for Sepsis. JAMA 2016;315(8):762-774:
    one point each for respiratory rate >= 22/min, altered mentation (GCS < 15) and systolic
    blood pressure <= 100 mmHg; 2 or more is positive.
Shock index
    Allgöwer M, Burri C. "Schockindex". Dtsch Med Wochenschr 1967;92:1947-1950: heart rate
    divided by systolic pressure, about 0.5-0.7 in healthy adults; 1.0 or more is the
    threshold commonly used for shock (e.g. the Japanese trauma guideline JATEC).
JTAS-style level
    Japan Triage and Acuity Scale (JTAS), adapted from the Canadian Triage and Acuity Scale:
    日本救急医学会・日本救急看護学会・日本小児救急医学会・日本臨床救急医学会 監修
    『緊急度判定支援システム JTAS2017 ガイドブック』(へるす出版, 2017); and Bullard MJ, et al.
    Revisions to the Canadian Emergency Department Triage and Acuity Scale (CTAS) adult
    guidelines. CJEM 2017;19(S2):S18-S27 — the first-order modifiers for respiratory
    distress (SpO2 < 90% level 1, < 92% level 2, 92-94% level 3), haemodynamics (shock
    level 1, compromise level 2), level of consciousness (GCS 3-9 level 1, 10-13 level 2)
    and fever with SIRS criteria. This is a JTAS-*style* approximation for the scene, not
    the licensed JTAS software.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ACVPU",
    "JtasResult",
    "News2Result",
    "QsofaResult",
    "ShockIndexResult",
    "jtas_level",
    "news2",
    "qsofa",
    "shock_index",
]

ACVPU = ("A", "C", "V", "P", "U")
Risk = Literal["low", "low-medium", "medium", "high"]


def _band(value: float, bands: tuple[tuple[float, int], ...], top: int) -> int:
    """Points for ``value``: the first band whose upper bound (inclusive) holds it."""
    for upper, points in bands:
        if value <= upper:
            return points
    return top


# RCP 2017 Chart 1. Each tuple: (inclusive upper bound, points); the last value is the
# points above every bound. Integers for counts and pressures, one decimal for temperature.
NEWS2_BANDS: dict[str, tuple[tuple[tuple[float, int], ...], int]] = {
    "respiratory_rate": (((8, 3), (11, 1), (20, 0), (24, 2)), 3),
    "spo2_scale1": (((91, 3), (93, 2), (95, 1)), 0),
    # Scale 2 below 93 %, whatever the oxygen: <=83 3, 84-85 2, 86-87 1, 88-92 0.
    "spo2_scale2_low": (((83, 3), (85, 2), (87, 1), (92, 0)), 0),
    # Scale 2 at 93 % or more on oxygen: 93-94 1, 95-96 2, >=97 3 (on air: 0).
    "spo2_scale2_oxygen": (((94, 1), (96, 2)), 3),
    "systolic_bp": (((90, 3), (100, 2), (110, 1), (219, 0)), 3),
    "pulse": (((40, 3), (50, 1), (90, 0), (110, 1), (130, 2)), 3),
    "temperature": (((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1)), 2),
}


@dataclass(frozen=True)
class News2Result:
    score: int
    points: dict[str, int]
    risk: Risk
    response: str  # the RCP's clinical response for the band (Chart 3), short


_RESPONSE = {
    "low": "Ward-based response: assessment by a registered nurse (RCP 2017 Chart 3).",
    "low-medium": "Urgent ward-based response: a clinician to decide on escalation.",
    "medium": "Key threshold for urgent response: urgent review by a clinician competent "
    "in acute illness.",
    "high": "Urgent or emergency response: emergency assessment by a critical-care "
    "competent team, usually transfer to a higher level of care.",
}


def news2(
    *,
    respiratory_rate: int,
    spo2: int,
    spo2_scale: int,
    on_oxygen: bool,
    systolic_bp: int,
    pulse: int,
    consciousness: str,
    temperature: float,
) -> News2Result:
    """The NEWS2 aggregate score, per-parameter points and risk band (RCP 2017)."""
    if spo2_scale not in (1, 2):
        raise ValueError("spo2_scale must be 1 or 2")
    if consciousness not in ACVPU:
        raise ValueError("consciousness must be one of A, C, V, P, U")
    if spo2_scale == 1:
        spo2_points = _band(spo2, *NEWS2_BANDS["spo2_scale1"])
    elif spo2 <= 92:
        spo2_points = _band(spo2, *NEWS2_BANDS["spo2_scale2_low"])
    elif on_oxygen:
        spo2_points = _band(spo2, *NEWS2_BANDS["spo2_scale2_oxygen"])
    else:
        spo2_points = 0
    points = {
        "respiratory_rate": _band(respiratory_rate, *NEWS2_BANDS["respiratory_rate"]),
        "spo2": spo2_points,
        "on_oxygen": 2 if on_oxygen else 0,
        "systolic_bp": _band(systolic_bp, *NEWS2_BANDS["systolic_bp"]),
        "pulse": _band(pulse, *NEWS2_BANDS["pulse"]),
        "consciousness": 0 if consciousness == "A" else 3,
        # The chart's bands are to one decimal place: 38.04 reads as 38.0.
        "temperature": _band(round(temperature, 1), *NEWS2_BANDS["temperature"]),
    }
    score = sum(points.values())
    risk: Risk
    if score >= 7:
        risk = "high"
    elif score >= 5:
        risk = "medium"
    elif any(p == 3 for p in points.values()):
        risk = "low-medium"
    else:
        risk = "low"
    return News2Result(score, points, risk, _RESPONSE[risk])


@dataclass(frozen=True)
class QsofaResult:
    score: int
    criteria: dict[str, bool]
    positive: bool


def qsofa(
    *,
    respiratory_rate: int,
    systolic_bp: int,
    gcs: int | None = None,
    altered_mentation: bool | None = None,
) -> QsofaResult:
    """qSOFA (Sepsis-3): RR >= 22, altered mentation (GCS < 15), SBP <= 100; >= 2 positive."""
    if gcs is None and altered_mentation is None:
        raise ValueError("give gcs or altered_mentation")
    altered = bool(altered_mentation) if gcs is None else gcs < 15
    criteria = {
        "respiratory_rate_ge_22": respiratory_rate >= 22,
        "altered_mentation": altered,
        "systolic_bp_le_100": systolic_bp <= 100,
    }
    score = sum(criteria.values())
    return QsofaResult(score, criteria, score >= 2)


@dataclass(frozen=True)
class ShockIndexResult:
    value: float
    band: Literal["normal", "elevated", "shock"]


def shock_index(*, pulse: int, systolic_bp: int) -> ShockIndexResult:
    """Heart rate / systolic BP: <= 0.7 normal, 0.7-<1.0 elevated, >= 1.0 shock."""
    if systolic_bp <= 0:
        raise ValueError("systolic_bp must be positive")
    value = round(pulse / systolic_bp, 2)
    band: Literal["normal", "elevated", "shock"]
    if value >= 1.0:
        band = "shock"
    elif value > 0.7:
        band = "elevated"
    else:
        band = "normal"
    return ShockIndexResult(value, band)


@dataclass(frozen=True)
class JtasResult:
    level: int  # 1 resuscitation .. 5 non-urgent
    reasons: list[str] = field(default_factory=list)


JTAS_NAMES = {
    1: ("蘇生", "resuscitation"),
    2: ("緊急", "emergent"),
    3: ("準緊急", "urgent"),
    4: ("低緊急", "less urgent"),
    5: ("非緊急", "non-urgent"),
}


def jtas_level(
    *,
    complaint_level: int = 5,
    respiratory_rate: int | None = None,
    spo2: int | None = None,
    systolic_bp: int | None = None,
    pulse: int | None = None,
    gcs: int | None = None,
    temperature: float | None = None,
    immunocompromised: bool = False,
) -> JtasResult:
    """A JTAS-style level: the most urgent of the complaint's level and the first-order
    modifiers of the vital signs (adults)."""
    if not 1 <= complaint_level <= 5:
        raise ValueError("complaint_level must be 1-5")
    levels: list[tuple[int, str]] = [(complaint_level, f"complaint: level {complaint_level}")]
    if spo2 is not None:
        if spo2 < 90:
            levels.append((1, f"severe respiratory distress: SpO2 {spo2}% < 90%"))
        elif spo2 < 92:
            levels.append((2, f"moderate respiratory distress: SpO2 {spo2}% < 92%"))
        elif spo2 <= 94:
            levels.append((3, f"mild respiratory distress: SpO2 {spo2}% 92-94%"))
    if respiratory_rate is not None:
        if respiratory_rate <= 8 or respiratory_rate >= 36:
            levels.append((1, f"respiratory rate {respiratory_rate}/min (<=8 or >=36)"))
        elif respiratory_rate >= 30:
            levels.append((2, f"respiratory rate {respiratory_rate}/min (>=30)"))
    si = (
        shock_index(pulse=pulse, systolic_bp=systolic_bp)
        if pulse is not None and systolic_bp is not None and systolic_bp > 0
        else None
    )
    if systolic_bp is not None and (systolic_bp < 80 or (si is not None and si.value >= 1.4)):
        levels.append(
            (1, f"shock: systolic {systolic_bp} mmHg" + (f", shock index {si.value}" if si else ""))
        )
    elif systolic_bp is not None and (systolic_bp < 90 or (si is not None and si.value >= 1.0)):
        levels.append(
            (
                2,
                f"haemodynamic compromise: systolic {systolic_bp} mmHg"
                + (f", shock index {si.value}" if si else ""),
            )
        )
    if pulse is not None:
        if pulse >= 150 or pulse < 40:
            levels.append((2, f"pulse {pulse}/min (<40 or >=150)"))
        elif pulse >= 120 or pulse < 50:
            levels.append((3, f"pulse {pulse}/min (<50 or >=120)"))
    if gcs is not None:
        if not 3 <= gcs <= 15:
            raise ValueError("gcs must be 3-15")
        if gcs <= 9:
            levels.append((1, f"unconscious: GCS {gcs} (3-9)"))
        elif gcs <= 13:
            levels.append((2, f"altered consciousness: GCS {gcs} (10-13)"))
    if temperature is not None and temperature >= 38.5:
        sirs = sum(
            [
                pulse is not None and pulse > 90,
                respiratory_rate is not None and respiratory_rate > 20,
                temperature > 38.0,
            ]
        )
        if immunocompromised:
            levels.append((2, f"fever {temperature}°C in an immunocompromised patient"))
        elif sirs >= 3:
            levels.append((2, f"fever {temperature}°C with 3 SIRS criteria (looks septic)"))
        else:
            levels.append((3, f"fever {temperature}°C"))
    level = min(lv for lv, _ in levels)
    return JtasResult(level, [why for lv, why in levels if lv == level])
