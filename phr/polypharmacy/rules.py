"""The checks: each turns the reconciled list (and age, sex, kidney function) into findings
with a severity, the medicines and prescribers involved, the reason, the source and a
suggested action. Pure functions over in-memory data — no database, so a whole population
can be screened quickly and each rule tested with its worked case.

``DetectedIssue.code`` (HL7 v3 ActCode) per rule:

==================  =========  ===================================================
rule                ActCode    why
==================  =========  ===================================================
same-ingredient     DUPTHPY    duplicate therapy (the same ingredient twice)
same-class          DUPTHPY    duplicate therapy (same class where doubling is wrong)
interaction         DRG        drug interaction alert
polypharmacy        DACT       drug action detected issue (cumulative drug burden)
anticholinergic     DACT       cumulative anticholinergic action
older-adult         AGE        age alert (potentially inappropriate at this age)
drug-disease        COND       condition alert (AGS Beers 2023 Table 3: avoid with
                               this condition in older adults)
kidney              DOSECOND   dosage-condition alert (reduced kidney function; the
                               daily dose against the band's limit where one is known)
==================  =========  ===================================================
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from phr.polypharmacy.kb import KnowledgeBase
from phr.polypharmacy.reconcile import Medicine

__all__ = [
    "ACB_THRESHOLD",
    "ACTCODE_DISPLAY",
    "FALLS_THRESHOLD",
    "POLYPHARMACY_THRESHOLD",
    "ConditionFact",
    "Finding",
    "KidneyFunction",
    "Patient",
    "jsn_egfr",
    "named_by",
    "run_checks",
]

# 厚生労働省「高齢者の医薬品適正使用の指針（総論編）」(2018): six or more drugs are
# associated with more adverse drug events, five or more with more falls (Kojima T, et al.
# Geriatr Gerontol Int 2012;12:761-2 and 425-30).
POLYPHARMACY_THRESHOLD = 6
FALLS_THRESHOLD = 5
# ACB scale: a total of 3 or more is clinically relevant (Boustani 2008; ACB 2012 update).
ACB_THRESHOLD = 3

ACTCODE_DISPLAY = {
    "DUPTHPY": "Duplicate Therapy Alert",
    "DRG": "Drug Interaction Alert",
    "DACT": "drug action detected issue",
    "AGE": "Age Alert",
    "COND": "Condition Alert",
    "DOSECOND": "dosage-condition alert",
}
SEVERITY_ORDER = {"high": 0, "moderate": 1, "low": 2}

SOURCE_POLYPHARMACY = (
    "厚生労働省「高齢者の医薬品適正使用の指針（総論編）」2018年（6剤以上で薬物有害事象、"
    "5剤以上で転倒の発生が増加; Kojima T, et al. Geriatr Gerontol Int 2012）"
)
SOURCE_JSN = (
    "日本腎臓学会 eGFRcreat = 194 × Cr^-1.094 × 年齢^-0.287（女性 ×0.739）; Matsuo S, et al. "
    "Revised equations for estimated GFR from serum creatinine in Japan. "
    "Am J Kidney Dis 2009;53:982-992"
)
SOURCE_SAME_INGREDIENT = (
    "厚生労働省「高齢者の医薬品適正使用の指針（総論編）」2018年（複数の医療機関・薬局からの"
    "重複投薬の確認）; project rule"
)


@dataclass(frozen=True)
class KidneyFunction:
    egfr: float
    how: str  # measured | computed (JSN equation from serum creatinine)
    date: str | None
    reference: str | None  # Observation/<id>


@dataclass(frozen=True)
class ConditionFact:
    """One of the resident's conditions, as the drug–disease rules need it."""

    system: str  # icd10 | sct
    code: str
    active: bool  # clinically active (else resolved, inactive or in remission: history)
    date: str | None
    reference: str  # Condition/<id>
    display: str

    def matches(self, refs: Sequence[str]) -> bool:
        for ref in refs:
            kind, _, code = ref.partition(":")
            if kind != self.system:
                continue
            if kind == "sct" and self.code == code:
                return True
            # ICD-10 by category: I50 covers I50, I50.9 and I509
            if kind == "icd10" and self.code.replace(".", "").startswith(code.replace(".", "")):
                return True
        return False


@dataclass(frozen=True)
class Patient:
    id: str
    age: int | None
    sex: str | None  # male | female | other | unknown
    kidney: KidneyFunction | None
    conditions: tuple[ConditionFact, ...] = ()


@dataclass
class Finding:
    rule: str
    rule_id: str
    code: str
    severity: str
    medicines: list[Medicine]
    title_ja: str
    title_en: str
    reason_ja: str
    reason_en: str
    action_ja: str
    action_en: str
    source: str
    plain_ja: str
    plain_en: str
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        keys = "|".join(sorted(m.key for m in self.medicines))
        return hashlib.sha256(f"{self.rule}:{self.rule_id}:{keys}".encode()).hexdigest()

    @property
    def prescribers(self) -> list[str]:
        return sorted({p for m in self.medicines for p in m.prescribers})

    @property
    def pharmacies(self) -> list[str]:
        return sorted({p for m in self.medicines for p in m.pharmacies})


def jsn_egfr(creatinine_mg_dl: float, age: float, female: bool) -> float:
    """eGFRcreat (mL/min/1.73 m²), Japanese Society of Nephrology equation (Matsuo 2009)."""
    if creatinine_mg_dl <= 0 or age <= 0:
        raise ValueError("creatinine and age must be positive")
    value = 194.0 * creatinine_mg_dl**-1.094 * age**-0.287
    return value * 0.739 if female else value


def _names(meds: Sequence[Medicine]) -> str:
    return "、".join(m.name for m in meds)


def _names_en(meds: Sequence[Medicine]) -> str:
    return ", ".join(m.name for m in meds)


_DONT_STOP_JA = "自己判断で薬をやめたり減らしたりせず、薬剤師や医師に相談してください。"
_DONT_STOP_EN = "Do not stop or change any medicine on your own; talk to your pharmacist or doctor."


def _matches(med: Medicine, refs: Sequence[str]) -> bool:
    return not med.refs.isdisjoint(refs)


def _same_ingredient(meds: Sequence[Medicine]) -> list[Finding]:
    out: list[Finding] = []
    by_component: dict[str, list[Medicine]] = {}
    for m in meds:
        for c in m.ingredients:
            by_component.setdefault(c, []).append(m)
    seen: set[frozenset[str]] = set()
    for component, group in sorted(by_component.items()):
        # Supplies running now (without the grace period): a refill collected a few days
        # early, or at another pharmacy, is not a duplicate.
        prescribers = {p for m in group for p in m.running_prescribers}
        pharmacies = {p for m in group for p in m.running_pharmacies}
        if len(group) < 2 and len(prescribers) < 2 and len(pharmacies) < 2:
            continue
        keyset = frozenset(m.key for m in group)
        if keyset in seen:
            continue
        seen.add(keyset)
        who = "、".join(sorted(prescribers | pharmacies))
        out.append(
            Finding(
                rule="same-ingredient",
                rule_id=component,
                code="DUPTHPY",
                severity="high" if len(prescribers) >= 2 or len(group) >= 2 else "moderate",
                medicines=list(group),
                title_ja=f"同一成分の重複: {component}",
                title_en=f"Same ingredient twice: {component}",
                reason_ja=(f"{component} が複数の処方元・薬局から同時に出ています（{who}）。"),
                reason_en=(
                    f"{component} is current from more than one prescriber or pharmacy "
                    f"({', '.join(sorted(prescribers | pharmacies))})."
                ),
                action_ja="処方元に連絡し、どちらか一方に整理する。",
                action_en="Contact the prescribers and keep one prescription.",
                source=SOURCE_SAME_INGREDIENT,
                plain_ja=(
                    f"同じ成分の薬（{component}）が複数の医療機関・薬局から出ています。"
                    f"飲みすぎにならないよう確認が必要です。{_DONT_STOP_JA}"
                ),
                plain_en=(
                    f"The same medicine ingredient ({component}) comes from more than one "
                    f"clinic or pharmacy; it needs checking so you do not take too much. "
                    f"{_DONT_STOP_EN}"
                ),
                facts={"ingredient": component},
            )
        )
    return out


def _same_class(meds: Sequence[Medicine], kb: KnowledgeBase) -> list[Finding]:
    out = []
    for cls in kb.classes.values():
        if not cls.doubling:
            continue
        group = [m for m in meds if cls.id in m.classes]
        distinct = {frozenset(m.ingredients) or frozenset([m.key]) for m in group}
        if len(distinct) < 2:
            continue
        out.append(
            Finding(
                rule="same-class",
                rule_id=cls.id,
                code="DUPTHPY",
                severity=cls.doubling_severity,
                medicines=group,
                title_ja=f"同効薬の重複: {cls.name_ja}",
                title_en=f"Same-class duplication: {cls.name_en}",
                reason_ja=f"{cls.name_ja}が{len(group)}剤（{_names(group)}）同時に出ています。",
                reason_en=(
                    f"{len(group)} {cls.name_en} are current together ({_names_en(group)})."
                ),
                action_ja="同じ働きの薬の重複を処方元と確認し、必要なものに整理する。",
                action_en="Review the duplication with the prescribers and keep what is needed.",
                source=cls.source,
                plain_ja=(
                    f"同じ働きの薬（{cls.name_ja}）が複数出ています（{_names(group)}）。"
                    f"{_DONT_STOP_JA}"
                ),
                plain_en=(
                    f"More than one medicine of the same kind ({cls.name_en}) is current "
                    f"({_names_en(group)}). {_DONT_STOP_EN}"
                ),
                facts={"class": cls.id},
            )
        )
    return out


def _interactions(meds: Sequence[Medicine], kb: KnowledgeBase) -> list[Finding]:
    out = []
    for rule in kb.interactions:
        a = [m for m in meds if _matches(m, rule.a)]
        b = [m for m in meds if _matches(m, rule.b)]
        pairs = {(x.key, y.key) for x in a for y in b if x.key != y.key}
        if not pairs:
            continue
        involved = {k for pair in pairs for k in pair}
        group = [m for m in meds if m.key in involved]
        dup = rule.kind == "duplicate"
        out.append(
            Finding(
                rule="same-class" if dup else "interaction",
                rule_id=rule.id,
                code="DUPTHPY" if dup else "DRG",
                severity=rule.severity,
                medicines=group,
                title_ja=("重複: " if dup else "相互作用: ") + " + ".join(m.name for m in group),
                title_en=("Duplication: " if dup else "Interaction: ")
                + " + ".join(m.name for m in group),
                reason_ja=rule.reason_ja,
                reason_en=rule.reason_en,
                action_ja=rule.action_ja,
                action_en=rule.action_en,
                source=rule.source,
                plain_ja=(
                    f"一緒に使うと注意が必要な組み合わせがあります（{_names(group)}）。"
                    f"{rule.reason_ja}{_DONT_STOP_JA}"
                ),
                plain_en=(
                    f"Some of your medicines need care when taken together ({_names_en(group)}). "
                    f"{rule.reason_en} {_DONT_STOP_EN}"
                ),
            )
        )
    return out


def _count(meds: Sequence[Medicine]) -> list[Finding]:
    n = len(meds)
    if n < FALLS_THRESHOLD:
        return []
    adverse = n >= POLYPHARMACY_THRESHOLD
    return [
        Finding(
            rule="polypharmacy",
            rule_id="adverse-events" if adverse else "falls",
            code="DACT",
            severity="moderate" if adverse else "low",
            medicines=list(meds),
            title_ja=f"多剤併用: {n}剤",
            title_en=f"Polypharmacy: {n} medicines",
            reason_ja=(
                f"現在{n}剤を使用中です。"
                + ("6剤以上では薬物有害事象が、" if adverse else "")
                + "5剤以上では転倒の発生が増えることが知られています。"
            ),
            reason_en=(
                f"{n} medicines are current. "
                + ("Six or more are associated with more adverse drug events; " if adverse else "")
                + "five or more with more falls."
            ),
            action_ja="すべての薬の必要性を見直し（処方の見直し）、減らせる薬を処方元と検討する。",
            action_en=(
                "Review whether each medicine is still needed and deprescribe with the prescribers."
            ),
            source=SOURCE_POLYPHARMACY,
            plain_ja=(
                f"現在{n}種類の薬を使っています。薬が多いと副作用や転倒が起こりやすくなります。"
                f"かかりつけの薬剤師・医師と一緒に見直しましょう。{_DONT_STOP_JA}"
            ),
            plain_en=(
                f"You are taking {n} medicines. Many medicines make side effects and falls more "
                f"likely; review them with your pharmacist or doctor. {_DONT_STOP_EN}"
            ),
            facts={"count": n},
        )
    ]


def _older_adult(meds: Sequence[Medicine], kb: KnowledgeBase, age: int | None) -> list[Finding]:
    if age is None:
        return []
    out = []
    for m in meds:
        rules = [
            r
            for r in kb.elderly
            if age >= r.min_age
            and _matches(m, r.ref)
            and (r.min_days is None or (m.continuous_days or 0) > r.min_days)
        ]
        if not rules:
            continue
        rules.sort(key=lambda r: (SEVERITY_ORDER.get(r.severity, 9), -r.min_age))
        top = rules[0]
        out.append(
            Finding(
                rule="older-adult",
                rule_id="+".join(r.id for r in rules),
                code="AGE",
                severity=top.severity,
                medicines=[m],
                title_ja=f"高齢者で注意が必要な薬: {m.name}",
                title_en=f"Potentially inappropriate at {age}: {m.name}",
                reason_ja=top.reason_ja,
                reason_en=top.reason_en,
                action_ja=top.action_ja,
                action_en=top.action_en,
                source="; ".join(dict.fromkeys(r.source for r in rules)),
                plain_ja=(
                    f"{m.name} は高齢の方で副作用が出やすい薬です。{top.reason_ja}{_DONT_STOP_JA}"
                ),
                plain_en=(
                    f"{m.name} causes side effects more often in older people. {top.reason_en} "
                    f"{_DONT_STOP_EN}"
                ),
                facts={
                    "age": age,
                    "rules": [r.id for r in rules],
                    "continuous_days": m.continuous_days,
                },
            )
        )
    return out


def named_by(m: Medicine, kb: KnowledgeBase, refs: Sequence[str]) -> bool:
    """Is the medicine one of ``refs`` (class, ingredient, or ``acb:n`` burden score)?"""
    for ref in refs:
        if ref.startswith("acb:"):
            if any(kb.acb.get(i, 0) >= int(ref[4:]) for i in m.ingredients):
                return True
        elif ref in m.refs:
            return True
    return False


def _drug_disease(meds: Sequence[Medicine], kb: KnowledgeBase, patient: Patient) -> list[Finding]:
    """AGS Beers 2023 Table 3: medicines that worsen a condition the resident has."""
    if patient.age is None or not patient.conditions:
        return []
    out = []
    for rule in kb.disease:
        if patient.age < rule.min_age:
            continue
        facts = [
            c
            for c in patient.conditions
            if (c.active or rule.history) and c.matches(rule.conditions)
        ]
        if not facts:
            continue
        condition = max(facts, key=lambda c: c.date or "")
        for m in meds:
            if _matches(m, rule.except_ref) or not named_by(m, kb, rule.ref):
                continue
            out.append(
                Finding(
                    rule="drug-disease",
                    rule_id=rule.id,
                    code="COND",
                    severity=rule.severity,
                    medicines=[m],
                    title_ja=f"{rule.condition_ja}に注意が必要な薬: {m.name}",
                    title_en=f"Avoid with {rule.condition_en}: {m.name}",
                    reason_ja=f"{condition.display or rule.condition_ja}"
                    f"（{condition.date or '日付不明'}）。{rule.reason_ja}",
                    reason_en=f"{condition.display or rule.condition_en} "
                    f"({condition.date or 'date unknown'}). {rule.reason_en}",
                    action_ja=rule.action_ja,
                    action_en=rule.action_en,
                    source=rule.source,
                    plain_ja=f"{rule.condition_ja}のある方では、{m.name} が病気を悪くすることが"
                    f"あります。{_DONT_STOP_JA}",
                    plain_en=f"With {rule.condition_en}, {m.name} can make it worse. "
                    f"{_DONT_STOP_EN}",
                    facts={
                        "age": patient.age,
                        "condition": condition.reference,
                        "condition_code": f"{condition.system}:{condition.code}",
                    },
                )
            )
    return out


def _anticholinergic(meds: Sequence[Medicine], kb: KnowledgeBase) -> list[Finding]:
    scored = []
    for m in meds:
        score = max((kb.acb.get(c, 0) for c in m.ingredients), default=0)
        if score:
            scored.append((m, score))
    total = sum(s for _, s in scored)
    if total < ACB_THRESHOLD:
        return []
    parts = "、".join(f"{m.name}({s})" for m, s in scored)
    return [
        Finding(
            rule="anticholinergic",
            rule_id="acb",
            code="DACT",
            severity="high" if total >= 5 else "moderate",
            medicines=[m for m, _ in scored],
            title_ja=f"抗コリン負荷: 合計{total}点",
            title_en=f"Anticholinergic burden: total {total}",
            reason_ja=(
                f"抗コリン作用の合計点（ACBスケール）が{total}点です: {parts}。"
                "3点以上で認知機能低下・転倒などのリスクが高まります。"
            ),
            reason_en=(
                f"The anticholinergic burden (ACB scale) totals {total}: "
                + ", ".join(f"{m.name} ({s})" for m, s in scored)
                + ". A total of 3 or more is linked to cognitive impairment and falls."
            ),
            action_ja="抗コリン作用の強い薬（3点）から、代替薬への変更・減量を検討する。",
            action_en="Start with the score-3 drugs: switch or reduce where possible.",
            source=kb.acb_source,
            plain_ja=(
                f"もの忘れ・便秘・口の渇き・転倒などを起こしやすい作用（抗コリン作用）をもつ薬が重なっています。{_DONT_STOP_JA}"
            ),
            plain_en=(
                "Several of your medicines have an anticholinergic effect, which together can "
                f"cause forgetfulness, constipation, dry mouth and falls. {_DONT_STOP_EN}"
            ),
            facts={"total": total, "scores": {m.name: s for m, s in scored}},
        )
    ]


def _kidney(
    meds: Sequence[Medicine], kb: KnowledgeBase, kidney: KidneyFunction | None
) -> list[Finding]:
    if kidney is None:
        return []
    out = []
    egfr = kidney.egfr
    measured = kidney.how == "measured"
    how_ja = "実測eGFR" if measured else "血清クレアチニンから日本腎臓学会の式で算出したeGFR"
    how_en = "reported eGFR" if measured else "eGFR computed from serum creatinine (JSN equation)"
    for m in meds:
        rule = next((r for r in kb.renal if egfr < r.egfr_below and _matches(m, r.ref)), None)
        if rule is None:
            continue
        daily = m.daily_mg
        limit = rule.max_daily_mg
        if limit is not None and daily is not None and daily <= limit:
            continue  # the dose already fits this kidney-function band
        source = rule.source if kidney.how == "measured" else f"{rule.source}; {SOURCE_JSN}"
        dose_ja = dose_en = ""
        if limit is not None:
            if daily is not None:
                dose_ja = f"現在の1日量 {daily:g} mg は上限の目安 {limit:g} mg を超えています。"
                dose_en = f"The current daily dose {daily:g} mg is above the {limit:g} mg limit."
            else:
                dose_ja = f"1日量の記録がありません（上限の目安 {limit:g} mg）。"
                dose_en = f"The daily dose is not recorded (the limit is {limit:g} mg)."
        out.append(
            Finding(
                rule="kidney",
                rule_id=rule.id,
                code="DOSECOND",
                severity=rule.severity,
                medicines=[m],
                title_ja=f"腎機能に注意: {m.name}（eGFR {egfr:.0f}）",
                title_en=f"Kidney function: {m.name} (eGFR {egfr:.0f})",
                reason_ja=(
                    f"{how_ja} {egfr:.1f}（{kidney.date or '日付不明'}）。{rule.reason_ja}{dose_ja}"
                ),
                reason_en=(
                    f"{how_en} {egfr:.1f} ({kidney.date or 'date unknown'}). {rule.reason_en}"
                    + (f" {dose_en}" if dose_en else "")
                ),
                action_ja=rule.action_ja,
                action_en=rule.action_en,
                source=source,
                plain_ja=(
                    f"腎臓の働き（eGFR {egfr:.0f}）に対して、{m.name} の量や種類の"
                    f"確認が必要です。{_DONT_STOP_JA}"
                ),
                plain_en=(
                    f"With your kidney function (eGFR {egfr:.0f}), {m.name} needs its dose "
                    f"or choice checked. {_DONT_STOP_EN}"
                ),
                facts={
                    "egfr": round(egfr, 1),
                    "egfr_how": kidney.how,
                    "threshold": rule.egfr_below,
                    "daily_mg": daily,
                    "max_daily_mg": limit,
                },
            )
        )
    return out


def run_checks(meds: Sequence[Medicine], patient: Patient, kb: KnowledgeBase) -> list[Finding]:
    """All findings for the current medicines, most severe first."""
    current = [m for m in meds if m.active]
    findings = (
        _same_ingredient(current)
        + _same_class(current, kb)
        + _interactions(current, kb)
        + _count(current)
        + _older_adult(current, kb, patient.age)
        + _drug_disease(current, kb, patient)
        + _anticholinergic(current, kb)
        + _kidney(current, kb, patient.kidney)
    )
    findings.sort(key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.rule, f.rule_id))
    return findings
