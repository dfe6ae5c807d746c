"""Plain-language wording of the access log and of notifications, in Japanese and English.

The catalogues are plain dicts per language; :func:`describe_entry` turns one access-log
entry into a sentence a resident understands, e.g.
"2026-11-24 09:12 つくば中央クリニック (医師) が診療のためにあなたの検査結果を3件見ました".
Times are shown in Japan time (the log stores UTC).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

__all__ = [
    "LANGUAGES",
    "Lang",
    "basis_label",
    "describe_entry",
    "local_time",
    "negotiate_language",
    "notification_text",
    "purpose_label",
    "role_label",
    "types_phrase",
]

Lang = Literal["ja", "en"]
LANGUAGES: tuple[Lang, ...] = ("ja", "en")
JST = timezone(timedelta(hours=9), "JST")

PURPOSES: dict[str, dict[str, str]] = {
    "ja": {
        "TREAT": "診療",
        "ETREAT": "救急医療",
        "HOMECARE": "在宅ケア",
        "TRIAGE": "医療相談 (トリアージ)",
        "MEDREVIEW": "服薬の確認",
        "HRESCH": "研究・統計",
        "PUBHLTH": "公衆衛生",
        "PATRQT": "ご本人の閲覧",
        "HOPERAT": "システムの運用",
        "DISASTER": "災害時の医療の継続",
    },
    "en": {
        "TREAT": "treatment",
        "ETREAT": "emergency treatment",
        "HOMECARE": "home care",
        "TRIAGE": "triage",
        "MEDREVIEW": "a medication review",
        "HRESCH": "research and statistics",
        "PUBHLTH": "public health",
        "PATRQT": "your own request",
        "HOPERAT": "platform operations",
        "DISASTER": "disaster relief (continuing care)",
    },
}

ROLES: dict[str, dict[str, str]] = {
    "ja": {
        "doctor": "医師",
        "nurse": "看護師",
        "pharmacist": "薬剤師",
        "paramedic": "救急隊員",
        "shelter_staff": "避難所職員",
        "clerk": "事務職員",
        "analyst": "分析担当者",
        "administrator": "管理者",
    },
    "en": {
        "doctor": "doctor",
        "nurse": "nurse",
        "pharmacist": "pharmacist",
        "paramedic": "paramedic",
        "shelter_staff": "shelter staff",
        "clerk": "clerk",
        "analyst": "analyst",
        "administrator": "administrator",
    },
}

# ja: label; en: (singular, plural)
RESOURCE_TYPES_JA: dict[str, str] = {
    "Patient": "基本情報",
    "Observation": "検査結果",
    "Condition": "病名",
    "AllergyIntolerance": "アレルギー情報",
    "MedicationRequest": "処方",
    "MedicationDispense": "調剤記録",
    "MedicationStatement": "服薬情報",
    "MedicationAdministration": "投薬記録",
    "Immunization": "予防接種記録",
    "Encounter": "受診記録",
    "Procedure": "処置・手術の記録",
    "DiagnosticReport": "検査報告書",
    "DocumentReference": "文書",
    "CarePlan": "ケア計画",
    "CareTeam": "ケアチーム",
    "Consent": "同意",
    "Coverage": "保険情報",
    "Claim": "レセプト",
    "ExplanationOfBenefit": "レセプト",
    "FamilyMemberHistory": "家族歴",
    "Goal": "目標",
    "ImagingStudy": "画像検査",
    "QuestionnaireResponse": "問診票",
    "RelatedPerson": "連絡先",
    "ServiceRequest": "検査・処置の依頼",
    "Composition": "文書",
    "Device": "医療機器",
    "*": "記録",
}
RESOURCE_TYPES_EN: dict[str, tuple[str, str]] = {
    "Patient": ("basic details", "basic details"),
    "Observation": ("test result", "test results"),
    "Condition": ("diagnosis", "diagnoses"),
    "AllergyIntolerance": ("allergy", "allergies"),
    "MedicationRequest": ("prescription", "prescriptions"),
    "MedicationDispense": ("dispensing record", "dispensing records"),
    "MedicationStatement": ("medicine", "medicines"),
    "MedicationAdministration": ("medication record", "medication records"),
    "Immunization": ("vaccination", "vaccinations"),
    "Encounter": ("visit", "visits"),
    "Procedure": ("procedure", "procedures"),
    "DiagnosticReport": ("test report", "test reports"),
    "DocumentReference": ("document", "documents"),
    "CarePlan": ("care plan", "care plans"),
    "CareTeam": ("care team", "care teams"),
    "Consent": ("consent", "consents"),
    "Coverage": ("insurance record", "insurance records"),
    "Claim": ("claim", "claims"),
    "ExplanationOfBenefit": ("claim", "claims"),
    "FamilyMemberHistory": ("family history entry", "family history entries"),
    "Goal": ("goal", "goals"),
    "ImagingStudy": ("imaging study", "imaging studies"),
    "QuestionnaireResponse": ("questionnaire", "questionnaires"),
    "RelatedPerson": ("contact", "contacts"),
    "ServiceRequest": ("order", "orders"),
    "Composition": ("document", "documents"),
    "Device": ("device", "devices"),
    "*": ("record", "records"),
}

OUTCOMES: dict[str, dict[str, str]] = {
    "ja": {"permit": "閲覧", "deny": "拒否", "not-found": "該当なし", "error": "エラー"},
    "en": {"permit": "viewed", "deny": "refused", "not-found": "not found", "error": "failed"},
}

BASES: dict[str, dict[str, str]] = {
    "ja": {
        "self": "ご本人",
        "platform": "プラットフォームの運用",
        "own-records": "その機関が自ら作成した記録",
        "own-records-or-consent": "その機関が自ら作成した記録、またはあなたの同意",
        "consent": "あなたの同意",
        "emergency": "緊急時の事前同意",
        "break-glass": "生命保護のための例外",
    },
    "en": {
        "self": "yourself",
        "platform": "platform operations",
        "own-records": "records the organisation created itself",
        "own-records-or-consent": "records the organisation created itself, or your consent",
        "consent": "your consent",
        "emergency": "your emergency pre-consent",
        "break-glass": "the life-protection exception",
    },
}

PLATFORM = {"ja": "つくばPHR (システム)", "en": "the Tsukuba PHR platform"}
TRUSTED_PERSON = {"ja": "あなたの信頼できる人", "en": "your trusted person"}
UNKNOWN_ORG = {"ja": "不明な機関", "en": "an unknown organisation"}


def negotiate_language(lang: str | None, accept_language: str | None) -> Lang:
    """``?lang=`` first, then the best of Accept-Language; Japanese by default."""
    if lang:
        code = lang.strip().lower()[:2]
        if code in LANGUAGES:
            return "ja" if code == "ja" else "en"
    best: tuple[float, Lang] | None = None
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        code = tag.strip().lower()[:2]
        if code not in LANGUAGES:
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        choice: Lang = "ja" if code == "ja" else "en"
        if q > 0 and (best is None or q > best[0]):
            best = (q, choice)
    return best[1] if best else "ja"


def local_time(at: datetime) -> str:
    """Japan time, to the minute (``at`` is naive UTC)."""
    return at.replace(tzinfo=UTC).astimezone(JST).strftime("%Y-%m-%d %H:%M")


def purpose_label(purpose: str, lang: Lang) -> str:
    return PURPOSES[lang].get(purpose, purpose)


def role_label(role: str | None, lang: Lang) -> str | None:
    return ROLES[lang].get(role, role) if role else None


def basis_label(basis: str | None, lang: Lang) -> str | None:
    if not basis:
        return None
    labels = BASES[lang]
    if basis in labels:
        return labels[basis]
    if basis.startswith("Consent/"):
        return f"{labels['consent']} ({basis})"
    for prefix in ("emergency", "break-glass"):
        if basis.startswith(prefix):
            return labels[prefix]
    return basis


def _type_ja(rtype: str) -> str:
    return RESOURCE_TYPES_JA.get(rtype, f"記録 ({rtype})")


def _type_en(rtype: str, n: int) -> str:
    one, many = RESOURCE_TYPES_EN.get(rtype, (f"{rtype} record", f"{rtype} records"))
    return one if n == 1 else many


@dataclass(frozen=True)
class Who:
    """The actor of an entry, as the resident should read it."""

    actor_kind: str
    organization_name: str | None = None
    role: str | None = None
    client_id: str | None = None

    def text(self, lang: Lang) -> str:
        if self.actor_kind == "resident":
            return "あなた自身" if lang == "ja" else "You"
        if self.actor_kind == "system":
            return PLATFORM[lang]
        if self.actor_kind == "trusted_person":
            return TRUSTED_PERSON[lang]
        name = self.organization_name or self.client_id or UNKNOWN_ORG[lang]
        role = role_label(self.role, lang)
        return f"{name} ({role})" if role else name


def _what_ja(action: str, what: Sequence[tuple[str, int]], outcome: str) -> str:
    """The object phrase ending in を (or を + count)."""
    if action in ("everything", "export"):
        n = what[0][1] if what else 0
        return f"記録全体 ({n}件) を"
    if action == "summary":
        n = what[0][1] if what else 0
        return f"健康情報の要約 ({n}件) を"
    if not what:
        return "記録を"
    if outcome != "permit" or len(what) == 1:
        rtype, n = what[0]
        if outcome != "permit" or n <= 0:
            return f"{_type_ja(rtype)}を"
        return f"{_type_ja(rtype)}を{n}件"
    return "と".join(f"{_type_ja(t)}{n}件" for t, n in what) + "を"


def _what_en(action: str, what: Sequence[tuple[str, int]], outcome: str) -> str:
    if action in ("everything", "export"):
        n = what[0][1] if what else 0
        return f"your whole record ({n} items)"
    if action == "summary":
        n = what[0][1] if what else 0
        return f"a summary of your health record ({n} items)"
    if not what:
        return "your record"
    if outcome != "permit" or len(what) == 1:
        rtype, n = what[0]
        if outcome != "permit" or n <= 0:
            return f"your {_type_en(rtype, 2)}"
        if rtype == "Patient":
            return "your basic details"
        return f"{'one' if n == 1 else n} of your {_type_en(rtype, 2)}"
    parts = [f"{n} {_type_en(t, n)}" for t, n in what]
    listed = ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{listed} from your record"


def describe_entry(
    *,
    at: datetime,
    who: Who,
    purpose: str,
    action: str,
    outcome: str,
    what: Sequence[tuple[str, int]],
    lang: Lang,
) -> str:
    """One plain-language line about one access."""
    when = local_time(at)
    own = who.actor_kind == "resident"
    if lang == "ja":
        subject = who.text("ja")
        obj = _what_ja(action, what, outcome)
        why = "" if own else f"{purpose_label(purpose, 'ja')}のために"
        if outcome == "permit":
            verb = "見ました"
        elif outcome == "deny":
            verb = "見ようとしましたが、拒否されました"
        else:
            verb = "見ようとしましたが、見つかりませんでした"
        spacer = " " if subject.endswith(")") else ""
        return f"{when} {subject}{spacer}が{why}あなたの{obj}{verb}"
    subject = who.text("en")
    obj = _what_en(action, what, outcome)
    why = "" if own else f" for {purpose_label(purpose, 'en')}"
    if outcome == "permit":
        return f"{when} {subject} viewed {obj}{why}"
    if outcome == "deny":
        return f"{when} {subject} tried to view {obj}{why} and was refused"
    return f"{when} {subject} tried to view {obj}{why}, but it was not found"


# --------------------------------------------------------------------------- notifications


def types_phrase(resource_types: Sequence[str], lang: Lang) -> str:
    """ "アレルギー情報・服薬情報" / "allergies and medicines" for a list of FHIR types."""
    if lang == "ja":
        return "・".join(dict.fromkeys(_type_ja(t) for t in resource_types))
    names = list(dict.fromkeys(_type_en(t, 2) for t in resource_types))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


NOTIFICATIONS: dict[str, dict[str, dict[str, str]]] = {
    "emergency_access": {
        "ja": {
            "title": "緊急時にあなたの情報が見られました",
            "body": "{time} {who}が救急医療のためにあなたの{what}を見ました。",
        },
        "en": {
            "title": "Your record was viewed in an emergency",
            "body": "{time} {who} viewed your {what} for emergency treatment.",
        },
    },
    "emergency_access_trusted": {
        "ja": {
            "title": "見守っている方の情報が緊急時に見られました",
            "body": "{time} {who}が救急医療のために、あなたが見守っている方の{what}を見ました。",
        },
        "en": {
            "title": "Someone you look after had their record viewed in an emergency",
            "body": "{time} {who} viewed the {what} of someone you look after, for emergency "
            "treatment.",
        },
    },
}
REPEATS = {"ja": " (ほか{n}回)", "en": " ({n} more times)"}


def notification_text(template: str, params: Mapping[str, Any], lang: Lang) -> tuple[str, str]:
    """(title, body) of a templated notification in ``lang``."""
    texts = NOTIFICATIONS[template][lang]
    who = Who(
        actor_kind=str(params.get("actor_kind") or "organization"),
        organization_name=params.get("organization_name"),
        role=params.get("role"),
        client_id=params.get("client_id"),
    )
    at = params.get("at")
    when = local_time(datetime.fromisoformat(at)) if isinstance(at, str) else ""
    subject = who.text(lang)
    if lang == "ja" and subject.endswith(")"):
        subject += " "
    types = params.get("types")
    what = types_phrase(types, lang) if types else str(params.get("what") or "")
    body = texts["body"].format(time=when, who=subject, what=what)
    repeats = int(params.get("repeats") or 0)
    if repeats:
        body = (
            body.rstrip("。.") + REPEATS[lang].format(n=repeats) + ("。" if lang == "ja" else ".")
        )
    return texts["title"], body.strip()
