"""The protocol engine: chief-complaint protocols as data files, evaluated into an urgency.

One YAML file per chief complaint in ``phr/triage/protocols/`` (format: ``docs/triage.md``).
A protocol has questions, rules (``when`` the answers match, the urgency is at least
``level``, for ``reason``, cited to one of the file's ``sources``), a ``default`` level
when no rule fires, and ``risk_factors`` — PHR or self-reported conditions that raise the
urgency for this complaint. Nothing in this module knows about any symptom.

The scale is the one the Fire and Disaster Management Agency's phone triage uses
(消防庁 緊急度判定プロトコル Ver.3 電話相談): red — call 119 now; orange — see a doctor
within about an hour; yellow — within about six hours; green — next day or an online
consultation; white — self-care.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from phr.triage.schemas import CAPABILITIES

__all__ = [
    "LEVELS",
    "PROTOCOL_DIR",
    "Evaluation",
    "Finding",
    "Protocol",
    "Question",
    "all_protocols",
    "evaluate",
    "get_protocol",
    "more_urgent",
]

PROTOCOL_DIR = Path(__file__).with_name("protocols")
Level = Literal["white", "green", "yellow", "orange", "red"]
LEVELS: tuple[Level, ...] = ("white", "green", "yellow", "orange", "red")
RANK: dict[str, int] = {lv: i for i, lv in enumerate(LEVELS)}
RISK_FACTORS = (
    "older_adult",  # 75 or older (derived from the age)
    "young_infant",  # under 3 months (derived from the age)
    "pregnancy",
    "anticoagulant",
    "antiplatelet",
    "immunosuppression",
    "dialysis",
    "heart_failure",
    "diabetes",
    "recent_surgery",
)
_OPS = {"eq", "ne", "gt", "gte", "lt", "lte", "in"}


def more_urgent(a: str, b: str) -> Level:
    return LEVELS[max(RANK[a], RANK[b])]


class ProtocolError(ValueError):
    """A protocol file that does not follow the format (found at load time, never later)."""


@dataclass(frozen=True)
class Question:
    id: str
    type: Literal["boolean", "number", "choice"]
    text: dict[str, str]
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    options: tuple[dict[str, Any], ...] = ()
    help: dict[str, str] | None = None


@dataclass(frozen=True)
class Rule:
    level: Level
    when: tuple[dict[str, Any], ...]  # any of these; each: all of its conditions
    reason: dict[str, str]
    source: str
    # What a receiving hospital needs to have for this finding (ct, cath_lab, stroke, ...).
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class RiskRule:
    factor: str
    reason: dict[str, str]
    source: str
    raise_to: Level | None = None
    step: int = 0


@dataclass(frozen=True)
class Protocol:
    id: str
    version: str
    title: dict[str, str]
    population: Literal["adult", "child", "any"]
    sources: dict[str, str]
    questions: tuple[Question, ...]
    rules: tuple[Rule, ...]
    default: Rule
    risk_factors: tuple[RiskRule, ...]
    self_care: dict[str, str]

    def red_flag_questions(self) -> list[str]:
        """Yes/no questions that can make the result red: all must be answered before a
        result below the default stands (measurements such as SpO2 may be unavailable)."""
        ids = {q.id for q in self.questions if q.type == "boolean"}
        out: list[str] = []
        for rule in self.rules:
            if rule.level != "red":
                continue
            for cond in rule.when:
                out += [k for k in cond if k in ids and k not in out]
        return out

    def question(self, qid: str) -> Question | None:
        return next((q for q in self.questions if q.id == qid), None)


@dataclass(frozen=True)
class Finding:
    level: Level
    reason: dict[str, str]
    source: str  # the citation text
    kind: Literal["rule", "default", "risk_factor"]
    factor: str | None = None
    raised: bool = False


@dataclass
class Evaluation:
    protocol: Protocol
    level: Level
    base_level: Level
    findings: list[Finding] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)


# ---- loading ------------------------------------------------------------------------------------


def _text(node: Any, where: str) -> dict[str, str]:
    if not isinstance(node, dict) or set(node) != {"ja", "en"} or not all(node.values()):
        raise ProtocolError(f"{where}: needs Japanese and English text (ja, en) only")
    return {"ja": str(node["ja"]), "en": str(node["en"])}


def _level(node: Any, where: str) -> Level:
    if node not in LEVELS:
        raise ProtocolError(f"{where}: level must be one of {LEVELS}")
    return node  # type: ignore[no-any-return]


def _conditions(node: Any, questions: dict[str, Question], where: str) -> dict[str, Any]:
    if not isinstance(node, dict) or not node:
        raise ProtocolError(f"{where}: a condition is a non-empty mapping")
    for key, test in node.items():
        if key not in questions and key not in ("age", "age_months", "sex"):
            raise ProtocolError(f"{where}: unknown question {key!r}")
        if isinstance(test, dict) and not set(test) <= _OPS:
            raise ProtocolError(f"{where}: unknown operator in {test!r}")
        q = questions.get(key)
        values = list(test.values()) if isinstance(test, dict) else [test]
        if q is not None and q.type == "boolean" and not all(isinstance(v, bool) for v in values):
            raise ProtocolError(f"{where}: {key} is a yes/no question; compare with true/false")
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if (q is None or q.type == "number") and key != "sex" and not numeric:
            raise ProtocolError(f"{where}: {key} is a number; compare with numbers")
    return dict(node)


def _needs(node: Any, where: str) -> tuple[str, ...]:
    needs = tuple(node or ())
    unknown = set(needs) - set(CAPABILITIES)
    if unknown:
        raise ProtocolError(f"{where}: unknown needs {sorted(unknown)}; one of {CAPABILITIES}")
    return needs


def _parse(data: dict[str, Any], path: Path) -> Protocol:
    w = path.name
    sources = data.get("sources") or {}
    if not isinstance(sources, dict) or not sources:
        raise ProtocolError(f"{w}: every protocol cites its sources")
    questions: dict[str, Question] = {}
    for q in data.get("questions") or []:
        qtype = q.get("type", "boolean")
        if qtype not in ("boolean", "number", "choice"):
            raise ProtocolError(f"{w}: question {q.get('id')}: unknown type {qtype}")
        questions[q["id"]] = Question(
            id=q["id"],
            type=qtype,
            text=_text(q.get("text"), f"{w}: question {q['id']}"),
            unit=q.get("unit"),
            minimum=q.get("min"),
            maximum=q.get("max"),
            options=tuple(
                {"id": o["id"], "text": _text(o.get("text"), f"{w}: option {o.get('id')}")}
                for o in q.get("options") or []
            ),
            help=_text(q["help"], f"{w}: help") if q.get("help") else None,
        )

    def cite(src: Any, where: str) -> str:
        if src not in sources:
            raise ProtocolError(f"{where}: source {src!r} is not among the file's sources")
        return str(src)

    rules = []
    for i, r in enumerate(data.get("rules") or []):
        where = f"{w}: rule {i + 1}"
        alternatives = r.get("any") or [r.get("when")]
        rules.append(
            Rule(
                level=_level(r.get("level"), where),
                when=tuple(_conditions(c, questions, where) for c in alternatives),
                reason=_text(r.get("reason"), where),
                source=cite(r.get("source"), where),
                needs=_needs(r.get("needs"), where),
            )
        )
    d = data.get("default") or {}
    default = Rule(
        _level(d.get("level"), f"{w}: default"),
        (),
        _text(d.get("reason"), f"{w}: default"),
        cite(d.get("source"), f"{w}: default"),
    )
    risks = []
    for r in data.get("risk_factors") or []:
        where = f"{w}: risk factor {r.get('factor')}"
        if r.get("factor") not in RISK_FACTORS:
            raise ProtocolError(f"{where}: unknown factor; one of {RISK_FACTORS}")
        if bool(r.get("raise_to")) == bool(r.get("step")):
            raise ProtocolError(f"{where}: give raise_to or step")
        risks.append(
            RiskRule(
                factor=r["factor"],
                reason=_text(r.get("reason"), where),
                source=cite(r.get("source"), where),
                raise_to=_level(r["raise_to"], where) if r.get("raise_to") else None,
                step=int(r.get("step") or 0),
            )
        )
    population = data.get("population", "any")
    if population not in ("adult", "child", "any"):
        raise ProtocolError(f"{w}: population must be adult, child or any")
    if data.get("id") != path.stem:
        raise ProtocolError(f"{w}: id must equal the file name")
    return Protocol(
        id=data["id"],
        version=str(data.get("version", "1")),
        title=_text(data.get("title"), f"{w}: title"),
        population=population,
        sources={k: str(v) for k, v in sources.items()},
        questions=tuple(questions.values()),
        rules=tuple(rules),
        default=default,
        risk_factors=tuple(risks),
        self_care=_text(data.get("self_care"), f"{w}: self_care"),
    )


def load_file(path: Path) -> Protocol:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ProtocolError(f"{path.name}: not a mapping")
    return _parse(data, path)


@cache
def all_protocols() -> dict[str, Protocol]:
    return {p.stem: load_file(p) for p in sorted(PROTOCOL_DIR.glob("*.yaml"))}


def get_protocol(protocol_id: str) -> Protocol | None:
    return all_protocols().get(protocol_id)


# ---- evaluating ---------------------------------------------------------------------------------


_OPERATORS = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "in": lambda value, ref: value in ref,
}


def _test(value: Any, test: Any) -> bool:
    if value is None:
        return False
    if not isinstance(test, dict):
        return bool(value == test)
    return all(_OPERATORS[op](value, ref) for op, ref in test.items())


def _matches(conditions: dict[str, Any], facts: dict[str, Any]) -> bool:
    return all(_test(facts.get(k), t) for k, t in conditions.items())


def evaluate(
    protocol: Protocol,
    answers: dict[str, Any],
    *,
    age_years: float | None = None,
    sex: str | None = None,
    risk_factors: dict[str, dict[str, str]] | None = None,
) -> Evaluation:
    """The urgency for these answers. ``risk_factors`` maps a factor to where it came from
    (``{"ja": ..., "en": ...}``), e.g. the PHR record or the resident's own answer."""
    facts: dict[str, Any] = dict(answers)
    if age_years is not None:
        facts["age"] = age_years
        facts["age_months"] = age_years * 12
    if sex:
        facts["sex"] = sex
    findings: list[Finding] = []
    needs: list[str] = []
    # The most urgent rule that fires decides; the default only when none does.
    level: Level = "white"
    for rule in protocol.rules:
        if any(_matches(c, facts) for c in rule.when):
            findings.append(Finding(rule.level, rule.reason, protocol.sources[rule.source], "rule"))
            level = more_urgent(level, rule.level)
            needs += [n for n in rule.needs if n not in needs]
    if not findings:
        level = protocol.default.level
        findings.append(
            Finding(
                protocol.default.level,
                protocol.default.reason,
                protocol.sources[protocol.default.source],
                "default",
            )
        )
    unasked = [q for q in protocol.red_flag_questions() if q not in answers]
    if unasked and RANK[level] < RANK[protocol.default.level]:
        # Below the default only once every red-flag question has been answered.
        level = protocol.default.level
        findings.append(
            Finding(
                level,
                {
                    "ja": "危険な徴候の質問に未回答のものがあるため、標準の緊急度にしています",
                    "en": "Some danger-sign questions are unanswered, so the usual urgency "
                    "for this complaint applies",
                },
                protocol.sources[protocol.default.source],
                "default",
            )
        )
    base = level
    for rr in protocol.risk_factors:
        if not risk_factors or rr.factor not in risk_factors:
            continue
        if rr.raise_to:
            target = more_urgent(level, rr.raise_to)
        else:
            # A step never makes red on its own: red needs a red flag in the answers.
            target = LEVELS[min(RANK[level] + rr.step, RANK["orange"])]
            target = more_urgent(level, target)
        origin = risk_factors[rr.factor]
        reason = {
            "ja": f"{rr.reason['ja']}（{origin['ja']}）",
            "en": f"{rr.reason['en']} ({origin['en']})",
        }
        findings.append(
            Finding(
                target,
                reason,
                protocol.sources[rr.source],
                "risk_factor",
                factor=rr.factor,
                raised=RANK[target] > RANK[level],
            )
        )
        level = target
    findings.sort(key=lambda f: -RANK[f.level])
    unanswered = [q.id for q in protocol.questions if q.id not in answers]
    return Evaluation(protocol, level, base, findings, unanswered, needs)


def check_answers(protocol: Protocol, answers: dict[str, Any]) -> list[str]:
    """Problems with the answers (unknown questions, wrong types, out of range)."""
    problems = []
    for qid, value in answers.items():
        q = protocol.question(qid)
        if q is None:
            problems.append(f"{qid}: not a question of {protocol.id}")
        elif q.type == "boolean" and not isinstance(value, bool):
            problems.append(f"{qid}: answer true or false")
        elif q.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"{qid}: answer a number")
            elif (q.minimum is not None and value < q.minimum) or (
                q.maximum is not None and value > q.maximum
            ):
                problems.append(f"{qid}: {value} is outside {q.minimum}-{q.maximum}")
        elif q.type == "choice" and value not in {o["id"] for o in q.options}:
            problems.append(f"{qid}: one of {[o['id'] for o in q.options]}")
    return problems
