"""The PIA questionnaire: 22 evaluation items, 64 questions (評価項目 全22項目64質問).

Sources, and how far each carries:

- Tsukuba's model — 「つくば市プライバシー影響評価制度検討懇話会最終とりまとめ」 (2025), as
  summarised in shared/seeds/003 ("評価項目: データの取扱い・プライバシーへの配慮・個人に関する
  情報に対する安全管理措置等に関する評価項目(全22項目64質問)"): the count, and the three
  areas the items fall in. The city's actual wording is not in the seeds, so every question
  below is ours.
- The evaluation-item examples of the Super City plan (shared/seeds/000, 「PIAにおける評価項目の
  例」): privacy sensitivity of the information (「使われたい」「使われたくない」と感じる度合い),
  of the purpose and of the processed state; the user's predictability; the user's benefit;
  the opt-out means and the disadvantage of refusing; the explanation to the user. And the
  life cycle 取得 ⇒ 利用 ⇒ 保管 ⇒ 廃棄 that a PIA walks through (same seed).
- ISO/IEC 29134:2017 (JIS X 9251:2021) §6.4 (information flows, privacy safeguarding
  requirements) and the privacy principles of ISO/IEC 29100:2011 §5 (consent and choice;
  purpose legitimacy and specification; collection limitation; data minimisation; use,
  retention and disclosure limitation; accuracy and quality; openness, transparency and
  notice; individual participation and access; accountability; information security;
  privacy compliance).
- Japan's Act on the Protection of Personal Information (個人情報保護法) and the PPC's
  general guideline: 利用目的の特定, 要配慮個人情報, 第三者提供の記録, 委託先の監督, 外国にある
  第三者への提供, 漏えい等の報告, and the four kinds of 安全管理措置 (組織的・人的・物理的・
  技術的).

Every question is phrased so that "yes" means the safeguard is in place; the answers are
"yes", "no" or "na" (not applicable) with an optional note. The rating uses the share of
"no" answers among the items a risk depends on as a floor for its likelihood
(:func:`consent.pia.rating.likelihood_from_answers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AREAS",
    "ITEMS",
    "QUESTIONS",
    "Item",
    "Question",
    "item_question_ids",
    "normalise_answers",
    "unanswered",
]

ANSWER_VALUES = ("yes", "no", "na")

# The three areas of the Tsukuba model.
AREAS: dict[str, tuple[str, str]] = {
    "handling": ("データの取扱い", "Handling of the data"),
    "privacy": ("プライバシーへの配慮", "Consideration for privacy"),
    "security": ("安全管理措置", "Security safeguards"),
}


@dataclass(frozen=True)
class Question:
    id: str  # "I07.2"
    ja: str
    en: str


@dataclass(frozen=True)
class Item:
    id: str  # "I07"
    area: str  # key of AREAS
    stage: str  # 取得 利用 保管 提供 廃棄 全体 — where in the life cycle it bites
    ja: str
    en: str
    questions: tuple[Question, ...]


def _item(
    number: int, area: str, stage: str, ja: str, en: str, *questions: tuple[str, str]
) -> Item:
    iid = f"I{number:02d}"
    return Item(
        iid,
        area,
        stage,
        ja,
        en,
        tuple(Question(f"{iid}.{i}", q_ja, q_en) for i, (q_ja, q_en) in enumerate(questions, 1)),
    )


ITEMS: tuple[Item, ...] = (
    # ---- データの取扱い ----------------------------------------------------------------------
    _item(
        1, "handling", "取得", "利用目的の特定", "Purpose specification",
        ("利用目的を具体的に特定し、文書化しているか。",
         "Are the purposes specified precisely and documented?"),
        ("利用目的は提供するサービスに必要な範囲に限られているか。",
         "Are the purposes limited to what the service needs?"),
        ("目的外利用をしないことを規程等で定めているか。",
         "Do rules forbid any use beyond those purposes?"),
    ),
    _item(
        2, "handling", "取得", "取得する情報の最小化", "Data minimisation",
        ("取得するデータ項目は利用目的の達成に必要な最小限か。",
         "Are the data items collected the minimum the purposes need?"),
        ("データ項目ごとに必要性を説明できるか。",
         "Can the need for each data item be explained?"),
        ("不要となった項目の取得をやめる見直しの手順があるか。",
         "Is there a review that stops collecting items no longer needed?"),
    ),
    _item(
        3, "handling", "取得", "利用する情報のプライバシー性", "Sensitivity of the information",
        ("要配慮個人情報（病歴・診療・調剤等）を取り扱う場合、その項目を特定し本人の同意を得ているか。",
         "Where special-care data (medical history, care, dispensing) is handled, are the items "
         "identified and the person's consent obtained?"),
        ("精神保健・感染症・生殖等の特に機微な情報を、本人が明示しない限り除外しているか。",
         "Are especially sensitive categories (mental health, infectious disease, reproductive) "
         "excluded unless the person names them?"),
        ("個人番号（マイナンバー）を取り扱わないか、番号法に従って取り扱っているか。",
         "Is the My Number either not handled or handled as the My Number Act requires?"),
    ),
    _item(
        4, "handling", "利用", "利用目的のプライバシー影響度", "Privacy impact of the purposes",
        ("利用者が「使われたくない」と感じる度合いを利用目的ごとに評価しているか。",
         "Has the degree to which users would not want their data used been assessed for each "
         "purpose?"),
        ("本人に不利益な判断（雇用・保険の引受け等）に用いられないことを担保しているか。",
         "Is it ensured that the data is not used for decisions against the person "
         "(employment, insurance underwriting)?"),
        ("プロファイリングや自動的な判定を行う場合、その影響を評価し人の関与を確保しているか。",
         "Where profiling or automated decisions are made, is their effect assessed and human "
         "involvement ensured?"),
    ),
    _item(
        5, "handling", "利用", "加工状態におけるプライバシー影響度",
        "Identifiability of the processed data",
        ("個人を識別できる状態での利用は、必要な範囲に限られているか。",
         "Is use in identifiable form limited to where it is needed?"),
        ("統計・研究目的では仮名加工又は匿名加工した情報を用いているか。",
         "Are pseudonymised or anonymised data used for statistics and research?"),
        ("再識別を禁止し、その防止措置を講じているか。",
         "Is re-identification forbidden and prevented?"),
    ),
    _item(
        6, "handling", "取得", "適正な取得と同意", "Lawful collection and consent",
        ("偽りその他不正の手段によらず、適正に取得しているか。",
         "Is the data collected fairly, without deception or other improper means?"),
        ("本人の同意（オプトイン）を取得し、その記録を保存しているか。",
         "Is the person's opt-in consent obtained and recorded?"),
        ("同意の範囲（提供先・目的・データの種類・期間）は明確か。",
         "Is the scope of the consent (recipients, purposes, kinds of data, period) clear?"),
    ),
    _item(
        7, "handling", "利用", "正確性と品質", "Accuracy and quality",
        ("データを正確かつ最新の内容に保つ手順があるか。",
         "Is there a procedure that keeps the data accurate and up to date?"),
        ("名寄せ・突合の誤りを検出し是正する手順があるか。",
         "Is there a procedure that detects and corrects record-matching errors?"),
        ("データの出所（提供元）を記録し、追跡できるか。",
         "Is the source of each record kept so that it can be traced?"),
    ),
    _item(
        8, "handling", "提供", "第三者提供", "Disclosure to third parties",
        ("第三者への提供は、本人の同意がある場合又は法令に基づく場合に限られているか。",
         "Is disclosure to third parties limited to the person's consent or a legal basis?"),
        ("提供の記録（提供先・日時・項目）を作成し保存しているか。",
         "Is a record of each disclosure (recipient, time, items) made and kept?"),
        ("提供先での目的外利用や再提供を契約等で禁じているか。",
         "Do contracts forbid recipients to use the data for other purposes or pass it on?"),
    ),
    _item(
        9, "handling", "保管", "委託先の監督", "Supervision of processors",
        ("委託先の選定基準を定めているか。",
         "Are there criteria for choosing processors?"),
        ("委託契約に安全管理措置と再委託の条件を定めているか。",
         "Do processing contracts set safeguards and conditions for sub-processing?"),
        ("委託先の取扱状況を定期的に確認しているか。",
         "Is the processors' handling checked regularly?"),
    ),
    _item(
        10, "handling", "保管", "保管場所と越境移転", "Storage location and cross-border transfer",
        ("データを保存・処理する場所（国・地域、事業者）を把握しているか。",
         "Are the places (country, region, provider) where the data is stored and processed "
         "known?"),
        ("外国にある第三者に提供・保管させる場合、その国の制度を把握し本人に情報提供しているか。",
         "Where a third party abroad receives or stores the data, is that country's regime "
         "known and the person informed?"),
    ),
    _item(
        11, "handling", "廃棄", "保存期間と廃棄", "Retention and disposal",
        ("データの種類ごとに保存期間を定めているか。",
         "Is a retention period set for each kind of data?"),
        ("保存期間の経過後又は目的の達成後に、確実に消去・廃棄する手順があるか。",
         "Is there a procedure that reliably erases the data when the period ends or the "
         "purpose is met?"),
        ("消去・廃棄の記録を残しているか。",
         "Is each erasure recorded?"),
    ),
    # ---- プライバシーへの配慮 ---------------------------------------------------------------
    _item(
        12, "privacy", "取得", "利用者の予測可能性", "Predictability for the user",
        ("取得時の説明から、定められた目的での利用を本人が予測できるか。",
         "Can the person foresee, from what was said at collection, the use made of the data?"),
        ("取得時の文脈と異なる利用をしていないか。",
         "Is the data used only in the context in which it was collected?"),
        ("利用の内容を変更するときは、事前に本人へ通知するか。",
         "Is the person told in advance before the use changes?"),
    ),
    _item(
        13, "privacy", "取得", "利用者への説明", "Explanation to the user",
        ("日本語と英語等の平易な言葉で説明しているか。",
         "Is the explanation in plain language (Japanese, English and others)?"),
        ("説明に、目的・データ項目・提供先・保存期間・問合せ窓口を含むか。",
         "Does it state the purposes, data items, recipients, retention and a contact point?"),
        ("高齢者・障害のある人・外国人住民等に配慮した説明の手段があるか。",
         "Are there means of explanation suited to older people, people with disabilities and "
         "foreign residents?"),
    ),
    _item(
        14, "privacy", "利用", "利用者の受益", "Benefit to the user",
        ("本人が受ける便益を具体的に示しているか。",
         "Are the benefits to the person stated concretely?"),
        ("本人が便益を確認・実感できる機会（データの還元等）があるか。",
         "Can the person see and feel the benefit, for example through their data being "
         "returned to them?"),
    ),
    _item(
        15, "privacy", "利用", "オプトアウト手段の提供", "Opt-out and withdrawal of consent",
        ("同意の撤回・利用停止の手段を提供しているか。",
         "Is there a means to withdraw consent and stop the use?"),
        ("その手段は簡便で、撤回は速やかに反映されるか。",
         "Is it easy, and does a withdrawal take effect promptly?"),
        ("提供を拒否・撤回した場合の不利益は最小限で、その内容を説明しているか。",
         "Is the disadvantage of refusing or withdrawing minimal, and explained?"),
    ),
    _item(
        16, "privacy", "利用", "本人の関与", "Individual participation and access",
        ("本人が自己の情報と、その利用の記録（アクセスログ）を閲覧できるか。",
         "Can the person see their data and the record of its use (access log)?"),
        ("訂正・追加・削除を請求する手続があるか。",
         "Is there a procedure to request correction, addition or deletion?"),
        ("苦情・相談の窓口を設け、対応の手順を定めているか。",
         "Is there a contact point for complaints and questions, with a procedure to answer "
         "them?"),
    ),
    _item(
        17, "privacy", "全体", "評価の公表と見直し", "Publication and review of the assessment",
        ("PIAの結果（概要）を公表しているか。",
         "Is a summary of this PIA published?"),
        ("サービス又はデータの取扱いを変更するときに再評価する手順があるか。",
         "Is there a procedure to assess again when the service or its data handling changes?"),
        ("評価を定期的（少なくとも年1回）に見直しているか。",
         "Is the assessment reviewed regularly (at least once a year)?"),
    ),
    # ---- 安全管理措置 ----------------------------------------------------------------------
    _item(
        18, "security", "全体", "組織的安全管理措置", "Organisational safeguards",
        ("個人情報保護の責任者と体制を定めているか。",
         "Are a person responsible for data protection and an organisation for it in place?"),
        ("取扱規程を定め、その運用状況を点検しているか。",
         "Are handling rules set and their application checked?"),
        ("漏えい等の事案の報告・対応手順（個人情報保護委員会と本人への通知を含む）を定めているか。",
         "Is there a procedure for breaches, including notice to the Personal Information "
         "Protection Commission and to the persons concerned?"),
    ),
    _item(
        19, "security", "全体", "人的安全管理措置", "Human safeguards",
        ("従業者に定期的な教育を行っているか。",
         "Are staff trained regularly?"),
        ("従業者と秘密保持の誓約・契約を結んでいるか。",
         "Are staff bound by confidentiality undertakings or contracts?"),
    ),
    _item(
        20, "security", "保管", "物理的安全管理措置", "Physical safeguards",
        ("データを取り扱う区域の入退室を管理しているか。",
         "Is access to the areas where the data is handled controlled?"),
        ("機器・電子媒体の盗難・紛失を防止し、廃棄時にデータを消去しているか。",
         "Are devices and media protected against theft and loss, and wiped on disposal?"),
        ("サーバ・データセンターの物理的な保護を確認しているか。",
         "Has the physical protection of servers and the data centre been verified?"),
    ),
    _item(
        21, "security", "保管", "技術的安全管理措置", "Technical safeguards",
        ("役割と目的に応じた最小権限のアクセス制御を行っているか。",
         "Is access controlled by role and purpose, on least privilege?"),
        ("利用者・職員を多要素認証等の適切な強度で認証しているか。",
         "Are users and staff authenticated with suitable strength (multi-factor)?"),
        ("通信と保存時のデータを暗号化しているか。",
         "Is the data encrypted in transit and at rest?"),
        ("不正アクセス・マルウェアへの対策と脆弱性の管理を行っているか。",
         "Are intrusion and malware countered and vulnerabilities managed?"),
    ),
    _item(
        22, "security", "全体", "アクセスの記録と監査", "Access logging and audit",
        ("すべてのアクセス（許可・拒否とも）を記録しているか。",
         "Is every access, permitted or denied, recorded?"),
        ("アクセスの記録は改ざんを検知できる形で保存されているか。",
         "Is the access record kept so that tampering is detected?"),
        ("記録を定期的に点検し、不審なアクセスを調査しているか。",
         "Is the record reviewed regularly and suspicious access investigated?"),
    ),
)  # fmt: skip

QUESTIONS: dict[str, Question] = {q.id: q for item in ITEMS for q in item.questions}
_ITEMS_BY_ID: dict[str, Item] = {item.id: item for item in ITEMS}


def item_question_ids(item_ids: list[str]) -> list[str]:
    """The question ids of the given items (unknown item ids raise KeyError)."""
    return [q.id for iid in item_ids for q in _ITEMS_BY_ID[iid].questions]


def normalise_answers(raw: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Validate answers: ``{"I01.1": "yes"}`` or ``{"I01.1": {"answer": "no", "note": ...}}``.

    Returns ``{question id: {"answer": ..., "note": ...}}``; raises ValueError naming the
    first unknown question or bad value.
    """
    out: dict[str, dict[str, str]] = {}
    for qid, value in raw.items():
        if qid not in QUESTIONS:
            raise ValueError(f"unknown question {qid!r}")
        if isinstance(value, str):
            answer, note = value, ""
        elif isinstance(value, Mapping):
            answer = value.get("answer", "")
            note = value.get("note") or ""
            if not isinstance(note, str):
                raise ValueError(f"note of {qid} must be text")
        else:
            raise ValueError(f"answer to {qid} must be text or an object")
        if answer not in ANSWER_VALUES:
            raise ValueError(f"answer to {qid} must be one of yes, no, na; got {answer!r}")
        out[qid] = {"answer": answer, "note": note} if note else {"answer": answer}
    return out


def unanswered(answers: Mapping[str, Any]) -> list[str]:
    """Question ids without an answer, in questionnaire order."""
    return [qid for qid in QUESTIONS if qid not in answers]


def item_ids() -> list[str]:
    return list(_ITEMS_BY_ID)
