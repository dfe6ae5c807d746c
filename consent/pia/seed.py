"""Seed assessments of the platform's own services, loaded by the demo city.

Synthetic content written for the demo: what each built-in module handles, its answers to
the questionnaire and its residual risks. They read as an operator would write them; they
are not the city's real assessments.
"""

from __future__ import annotations

from typing import Any

from consent.pia.questionnaire import QUESTIONS

__all__ = ["PLATFORM_SERVICES"]

_NO_FOREIGN = {
    "I10.2": "国外の事業者・拠点にデータを置かない。No data is stored or processed abroad."
}
_NO_STATS = {"I05.2": "統計・研究には用いない。Not used for statistics or research."}
_NO_MYNUMBER = {
    "I03.3": "個人番号は取得・保存しない。The My Number is neither collected nor stored."
}


def _answers(
    na: dict[str, str] | None = None, notes: dict[str, str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for qid in QUESTIONS:
        if na and qid in na:
            out[qid] = {"answer": "na", "note": na[qid]}
        elif notes and qid in notes:
            out[qid] = {"answer": "yes", "note": notes[qid]}
        else:
            out[qid] = "yes"
    return out


_SECURITY = (
    "TLS、OAuth2（クライアント認証・署名付きアクセストークン）、役割と目的に応じた同意フィルタ、"
    "全アクセスの改ざん検知可能な記録。"
)
_SECURITY_EN = (
    "TLS, OAuth2 (client authentication, signed access tokens), a consent filter by role and "
    "purpose, a tamper-evident record of every access."
)

PLATFORM_SERVICES: tuple[dict[str, Any], ...] = (
    {
        "service_id": "fhir-api",
        "service_name": "FHIR API（医療機関・薬局等とのデータ連携）",
        "service_name_en": "FHIR API (data exchange with clinics, pharmacies and others)",
        "description": (
            "医療機関・薬局・訪問看護ステーション・市・保険者から本人の記録を受け取り、本人が同意した"
            "相手にだけ提供する基盤のAPI。The platform API that receives residents' records from "
            "clinics, pharmacies, nurse stations, the city and insurers, and gives them only to "
            "those the resident agreed to."
        ),
        "purposes": [
            "診療・救急・在宅療養・服薬見直しのための記録の共有 Sharing records for care, "
            "emergencies, home care and medication review",
            "本人への記録の還元 Returning the records to the resident",
        ],
        "purpose_codes": ["TREAT", "ETREAT", "HOMECARE", "MEDREVIEW", "PATRQT", "HOPERAT"],
        "data_categories": [
            "基本情報 Identity and contact",
            "診療・検査結果 Diagnoses and test results",
            "処方・調剤 Prescriptions and dispensing",
            "アレルギー Allergies",
            "予防接種・健診 Vaccinations and check-ups",
        ],
        "resource_types": [
            "Patient", "Observation", "Condition", "MedicationRequest", "MedicationDispense",
            "MedicationStatement", "AllergyIntolerance", "Immunization", "Encounter",
            "Procedure", "DocumentReference", "Consent",
        ],
        "recipients": [
            "本人が同意した医療機関・薬局・訪問看護ステーション Clinics, pharmacies and nurse "
            "stations the resident agreed to",
            "本人 The resident",
        ],
        "retention": (
            "本人の生涯にわたり保存。利用終了の申出から90日以内に消去（法令上の保存義務があるものを除く）。"
            "Kept for the resident's lifetime; erased within 90 days of leaving, except what law "
            "requires to keep."
        ),
        "answers": _answers(na={**_NO_FOREIGN}, notes={**_NO_MYNUMBER}),
        "risks": [
            {
                "description": "不正アクセスによる診療情報の漏えい",
                "description_en": "Health records leaked through unauthorised access",
                "impact_financial": 2, "impact_mental": 3, "impact_physical": 1,
                "likelihood": 1,
                "mitigation": _SECURITY,
                "mitigation_en": _SECURITY_EN,
                "items": ["I21", "I22"],
            },
            {
                "description": "同意の範囲を超えた医療機関への提供",
                "description_en": "Records given to an organisation beyond the consent",
                "impact_financial": 1, "impact_mental": 3, "impact_physical": 1,
                "likelihood": 1,
                "mitigation": "既定は非共有（オプトイン）。同意の判定をデータベースの"
                "検索条件で行い、撤回は次の要求から有効。",
                "mitigation_en": "Nothing is shared by default (opt-in); consent is decided in "
                "the database query and a revocation applies from the next request.",
                "items": ["I06", "I08", "I15"],
            },
            {
                "description": "名寄せの誤りによる他人の記録の混入",
                "description_en": "Another person's records merged in by a matching error",
                "impact_financial": 1, "impact_mental": 2, "impact_physical": 3,
                "likelihood": 1,
                "mitigation": "保険者番号・医療機関の患者番号等の複数の識別子で照合し、"
                "疑わしい一致は自動で統合しない。",
                "mitigation_en": "Matching on several identifiers (insurance and patient "
                "numbers); doubtful matches are never merged automatically.",
                "items": ["I07"],
            },
        ],
    },
    {
        "service_id": "acp",
        "service_name": "「もしもの時」の意思共有（ACP）",
        "service_name_en": "ACP: sharing wishes for \"what if\"",
        "description": (
            "人生の最終段階の医療・ケアについての本人の意向を記録し、信頼できる人・かかりつけ医と、"
            "事前の同意があれば救急隊・搬送先病院と共有する。Records the resident's wishes for "
            "care at the end of life and shares them with trusted persons and the family doctor, "
            "and with paramedics and the receiving hospital under prior consent."
        ),
        "purposes": [
            "本人の意向に沿った医療・ケアの提供 Care that follows the resident's wishes",
            "救急搬送時の意向の共有 Wishes known during emergency transport",
        ],
        "purpose_codes": ["TREAT", "ETREAT", "PATRQT"],
        "data_categories": [
            "望む医療・望まない医療 Treatments wanted and not wanted",
            "療養の場所・価値観 Place of care and values",
            "連絡先・信頼できる人 Contacts and trusted persons",
        ],
        "resource_types": ["Consent", "DocumentReference", "Goal", "CarePlan", "RelatedPerson",
                           "Patient"],
        "recipients": [
            "本人が指定した信頼できる人 Trusted persons the resident names",
            "かかりつけ医 The family doctor",
            "救急隊・搬送先病院（事前同意がある場合）Paramedics and the receiving hospital "
            "(with prior consent)",
        ],
        "retention": (
            "全ての版を本人の生涯にわたり保存し、最新版を明示する。Every version is kept for the "
            "resident's lifetime; the current one is marked."
        ),
        "answers": _answers(na={**_NO_FOREIGN, **_NO_STATS}, notes={**_NO_MYNUMBER}),
        "risks": [
            {
                "description": "古い版の意向が最新として伝わり、望まない処置が行われる",
                "description_en": "Outdated wishes taken as current, leading to unwanted "
                "treatment",
                "impact_financial": 1, "impact_mental": 3, "impact_physical": 4,
                "likelihood": 1,
                "mitigation": "全版を保存し、最新版と作成日を常に表示。定期的な見直しの案内。",
                "mitigation_en": "All versions kept; the current one and its date always "
                "shown; regular reminders to review.",
                "items": ["I07", "I12"],
            },
            {
                "description": "家族等への意図しない開示",
                "description_en": "Unintended disclosure to family members",
                "impact_financial": 1, "impact_mental": 3, "impact_physical": 1,
                "likelihood": 1,
                "mitigation": "共有先は本人が一人ずつ指定し、いつでも取り消せる。"
                "閲覧は本人に通知。",
                "mitigation_en": "The resident names each person and can revoke at any time; "
                "every look is shown to the resident.",
                "items": ["I06", "I15", "I16"],
            },
        ],
    },
    {
        "service_id": "emergency",
        "service_name": "救急時の情報参照（救急隊・搬送先病院）",
        "service_name_en": "Emergency lookup (paramedics and receiving hospital)",
        "description": (
            "事前同意に基づき、救急隊と搬送先病院が救急の間だけ緊急時セット（アレルギー・服薬・既往・"
            "ACP・連絡先・かかりつけ医）を参照する。Under prior consent, paramedics and the "
            "receiving hospital see the emergency set for the duration of the emergency."
        ),
        "purposes": ["救急時の適切な処置と搬送先の選定 Emergency care and choice of hospital"],
        "purpose_codes": ["ETREAT"],
        "data_categories": [
            "アレルギー Allergies",
            "服薬 Current medicines",
            "既往歴 Problems",
            "ACP（意向）Advance care wishes",
            "緊急連絡先・かかりつけ医 Emergency contacts and family doctor",
        ],
        "resource_types": ["AllergyIntolerance", "MedicationStatement", "MedicationRequest",
                           "Condition", "Consent", "RelatedPerson", "Patient", "Practitioner"],
        "recipients": ["救急隊（消防本部）Paramedics (fire department)",
                       "搬送先医療機関 The receiving hospital"],
        "retention": (
            "参照のみで救急隊の端末には保存しない。アクセスの記録は10年保存。View only, not "
            "stored on paramedics' devices; access records kept 10 years."
        ),
        "answers": _answers(na={**_NO_FOREIGN, **_NO_STATS}, notes={**_NO_MYNUMBER}),
        "risks": [
            {
                "description": "救急を装った不正な参照（興味本位の閲覧）",
                "description_en": "Looks made under a pretended emergency (curiosity browsing)",
                "impact_financial": 1, "impact_mental": 3, "impact_physical": 1,
                "likelihood": 2,
                "mitigation": "救急事案に紐づく時間限定の参照、全アクセスの記録、本人と信頼できる人"
                "への通知、事後の点検。",
                "mitigation_en": "Time-limited access tied to an incident, every access "
                "recorded, the resident and their trusted person notified, reviewed afterwards.",
                "items": ["I21", "I22"],
            },
            {
                "description": "本人が拒否したにもかかわらず開示される",
                "description_en": "Disclosure although the resident said no",
                "impact_financial": 1, "impact_mental": 3, "impact_physical": 1,
                "likelihood": 1,
                "mitigation": "拒否の同意は常に優先し、生命保護の例外も適用しない。",
                "mitigation_en": "A refusal always wins, even over the life-protection "
                "exception.",
                "items": ["I06", "I15"],
            },
            {
                "description": "情報が得られず処置が遅れる",
                "description_en": "Care delayed because the information cannot be reached",
                "impact_financial": 1, "impact_mental": 2, "impact_physical": 3,
                "likelihood": 1,
                "mitigation": "冗長構成と稼働監視。参照できない場合は通常の救急手順に従う。",
                "mitigation_en": "Redundant service and monitoring; without it, the usual "
                "emergency procedure applies.",
                "items": ["I20", "I21"],
            },
        ],
    },
    {
        "service_id": "triage",
        "service_name": "受診の判断支援（トリアージ）",
        "service_name_en": "Triage: help deciding whether and where to seek care",
        "description": (
            "本人が入力した症状と、同意があれば既往・服薬から、受診の緊急度の目安を示す。"
            "Suggests how "
            "urgently to seek care from the symptoms entered and, with consent, the resident's "
            "problems and medicines."
        ),
        "purposes": ["受診の緊急度の目安の提示 Suggesting the urgency of care"],
        "purpose_codes": ["TRIAGE"],
        "data_categories": ["症状の申告 Symptoms reported", "既往・服薬（同意がある場合）"
                            "Problems and medicines (with consent)"],
        "resource_types": ["QuestionnaireResponse", "Observation", "Condition",
                           "MedicationStatement"],
        "recipients": ["本人 The resident",
                       "休日夜間デジタル急患センター（本人が相談を選んだ場合）"
                       "The night and holiday "
                       "digital emergency centre (when the resident asks)"],
        "retention": "入力内容は30日で消去。Entries erased after 30 days.",
        "answers": _answers(
            na={**_NO_FOREIGN},
            notes={
                **_NO_MYNUMBER,
                "I04.3": "判定は目安であり、受診の判断は本人と医療者が行う。The result is a "
                "suggestion; the resident and clinicians decide.",
            },
        ),
        "risks": [
            {
                "description": "症状の入力内容が目的外に利用される",
                "description_en": "Symptoms entered used for other purposes",
                "impact_financial": 2, "impact_mental": 2, "impact_physical": 1,
                "likelihood": 1,
                "mitigation": "目的外利用の禁止、30日での消去、提供先は本人が選んだ相談先のみ。",
                "mitigation_en": "No other use, erased after 30 days, passed only to the "
                "service the resident chooses.",
                "items": ["I01", "I11"],
            },
            {
                "description": "入力した症状の漏えい",
                "description_en": "Symptoms entered leaked",
                "impact_financial": 1, "impact_mental": 2, "impact_physical": 1,
                "likelihood": 1,
                "mitigation": _SECURITY,
                "mitigation_en": _SECURITY_EN,
                "items": ["I21"],
            },
        ],
    },
    {
        "service_id": "polypharmacy",
        "service_name": "服薬の見直し支援（ポリファーマシー対策）",
        "service_name_en": "Medication review (polypharmacy)",
        "description": (
            "複数の医療機関・薬局の処方・調剤を一覧にし、効果の重複する薬の見直しをかかりつけ薬剤師・"
            "医師が行う。Lists prescriptions and dispensing from every clinic and pharmacy so "
            "that the family pharmacist and doctor can reduce overlapping medicines."
        ),
        "purposes": ["重複・相互作用のある処方の見直し Reviewing overlapping or interacting "
                     "prescriptions"],
        "purpose_codes": ["MEDREVIEW"],
        "data_categories": ["処方・調剤歴 Prescriptions and dispensing",
                            "腎機能等の検査値 Kidney function and other tests",
                            "既往歴・アレルギー Problems and allergies"],
        "resource_types": ["MedicationRequest", "MedicationDispense", "MedicationStatement",
                           "Observation", "Condition", "AllergyIntolerance"],
        "recipients": ["かかりつけ薬剤師・医師（本人が同意した場合）The family pharmacist and "
                       "doctor (with consent)"],
        "retention": "見直しの記録は5年保存。Review records kept 5 years.",
        "answers": _answers(na={**_NO_FOREIGN, **_NO_STATS}, notes={**_NO_MYNUMBER}),
        "risks": [
            {
                "description": "処方の一覧から受診先（精神科等）が推知される",
                "description_en": "The list of prescriptions reveals sensitive care (e.g. "
                "psychiatry)",
                "impact_financial": 1, "impact_mental": 3, "impact_physical": 1,
                "likelihood": 1,
                "mitigation": "機微なカテゴリーは本人が明示しない限り除外。",
                "mitigation_en": "Sensitive categories excluded unless the resident names them.",
                "items": ["I03", "I05"],
            },
            {
                "description": "薬剤情報の誤りによる不適切な減薬",
                "description_en": "Inappropriate deprescribing from wrong medication data",
                "impact_financial": 1, "impact_mental": 2, "impact_physical": 3,
                "likelihood": 1,
                "mitigation": "出所を表示し、見直しは薬剤師・医師が本人と確認して行う。",
                "mitigation_en": "Sources shown; changes made by the pharmacist or doctor "
                "with the resident.",
                "items": ["I07"],
            },
        ],
    },
    {
        "service_id": "homecare",
        "service_name": "オンライン在宅療養支援",
        "service_name_en": "Online home-care support",
        "description": (
            "自宅で測ったバイタルと訪問看護の記録を、在宅医・訪問看護師・ケアマネジャーが共有する。"
            "Vital signs measured at home and visiting-nurse notes shared by the home doctor, "
            "nurses and the care manager."
        ),
        "purposes": ["在宅療養の継続と悪化の早期発見 Continuing care at home and early signs "
                     "of decline"],
        "purpose_codes": ["HOMECARE", "TREAT"],
        "data_categories": ["バイタル Vital signs", "訪問看護記録 Visiting-nurse notes",
                            "ケア計画 Care plan", "服薬 Medicines"],
        "resource_types": ["Observation", "CarePlan", "Encounter", "MedicationStatement",
                           "Condition", "DocumentReference"],
        "recipients": ["在宅医・訪問看護ステーション The home doctor and nurse station",
                       "ケアマネジャー（本人が同意した場合）The care manager (with consent)"],
        "retention": "ケアの終了から5年保存。Kept 5 years after care ends.",
        "answers": _answers(na={**_NO_FOREIGN, **_NO_STATS}, notes={**_NO_MYNUMBER}),
        "risks": [
            {
                "description": "家族と共用の端末からの情報の漏えい",
                "description_en": "Information leaking from a device shared with the family",
                "impact_financial": 1, "impact_mental": 2, "impact_physical": 1,
                "likelihood": 2,
                "mitigation": "端末のロックと自動ログアウト、端末内に記録を保存しない。",
                "mitigation_en": "Device lock and automatic sign-out; no records kept on the "
                "device.",
                "items": ["I20", "I21"],
            },
            {
                "description": "多職種間で必要以上の情報が共有される",
                "description_en": "More shared across the care team than needed",
                "impact_financial": 1, "impact_mental": 2, "impact_physical": 1,
                "likelihood": 2,
                "mitigation": "役割ごとに参照できる範囲を限定し、本人が共有先を確認できる。",
                "mitigation_en": "Each role sees only its part; the resident sees who shares.",
                "items": ["I02", "I16"],
            },
            {
                "description": "バイタル異常の見落とし",
                "description_en": "Abnormal vital signs missed",
                "impact_financial": 1, "impact_mental": 1, "impact_physical": 3,
                "likelihood": 1,
                "mitigation": "閾値を超えた値を担当者に通知。",
                "mitigation_en": "Values beyond thresholds are flagged to the nurse in charge.",
                "items": ["I07"],
            },
        ],
    },
)  # fmt: skip
