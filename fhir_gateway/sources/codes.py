"""Code tables of the municipal and insurer file formats, with Japanese display text.

Every table names its source. Codes the platform defines itself live under
``urn:phr:codesystem:*``; standard code systems are used wherever one exists
(CVX, LOINC, UCUM, ICD-10, the 特定健診 item codes, the YJ drug code).
"""

from __future__ import annotations

from dataclasses import dataclass

# ---- code systems ----------------------------------------------------------------------------

CVX = "http://hl7.org/fhir/sid/cvx"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
REFERENCE_RANGE_MEANING = "http://terminology.hl7.org/CodeSystem/referencerange-meaning"

# 特定健診項目コード (JLAC10-based 17-digit item codes of the 特定健診 XML, 厚生労働省
# 「特定健康診査及び特定保健指導の実施に関する基準」に基づく電子的な標準様式, 健診項目コード表).
# JP CLINS / 健診結果報告書 FHIR 記述仕様 name this system urn:oid:1.2.392.200119.6.1005
# ("厚労省特定健診項目コードに完全準拠したコード").
TOKUTEI_ITEM = "urn:oid:1.2.392.200119.6.1005"
# 報告区分 of the 健診結果報告書 (same specification): "10" = 特定健診情報.
REPORT_CATEGORY = "urn:oid:1.2.392.200119.6.1001"
# YJ code (個別医薬品コード); JP Core / 電子処方箋 FHIR 記述仕様 use this OID.
YJ = "urn:oid:1.2.392.100495.20.1.73"

JP_VACCINE = "urn:phr:codesystem:jp-vaccine"
YAKKO_BUNRUI = "urn:phr:codesystem:yakko-bunrui"
DISABILITY_CERTIFICATE = "urn:phr:codesystem:disability-certificate"
DISABILITY_GRADE = "urn:phr:codesystem:disability-grade"
URINE_DIPSTICK = "urn:phr:codesystem:urine-dipstick"
CHECKUP_TYPE = "urn:phr:codesystem:checkup-type"

# Extensions the importers write (display-only facts a FHIR element has no place for).
EXT_CERTIFICATE_PERIOD = "urn:phr:extension:certificate-period"
EXT_PRESCRIBING_INSTITUTION = "urn:phr:extension:prescribing-institution"
EXT_PRESCRIPTION_DATE = "urn:phr:extension:prescription-date"
EXT_DIAGNOSING_INSTITUTION = "urn:phr:extension:diagnosing-institution"
EXT_CLAIM_OUTCOME = "urn:phr:extension:claim-outcome"


# ---- vaccines --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vaccine:
    code: str
    display: str  # Japanese
    cvx: str | None = None
    cvx_display: str | None = None


# Routine vaccinations (定期接種, A類 and B類 疾病) of 予防接種法 (昭和23年法律第68号) 第2条
# and 予防接種法施行令, as listed by 厚生労働省「定期接種の対象疾病・対象者」(2025), plus a
# few common voluntary ones (任意接種: MMR, 単独の麻しん・風しん) that municipal registers
# also hold. CVX codes from CDC "IIS: HL7 Standard Code Set CVX -- Vaccines Administered";
# where the Japanese product's formulation has no specific CVX code the "unspecified
# formulation" code is used (influenza 88 rather than 141/150, Japanese encephalitis 129
# rather than 134 (IM; Japanese JE vaccines are given subcutaneously), COVID-19 213).
VACCINES: dict[str, Vaccine] = {
    v.code: v
    for v in (
        Vaccine("HIB", "ヒブ（インフルエンザ菌b型）", "48", "Hib (PRP-T)"),
        Vaccine("PCV13", "小児用肺炎球菌（13価結合型）", "133", "Pneumococcal conjugate PCV 13"),
        Vaccine("PCV15", "小児用肺炎球菌（15価結合型）", "215", "Pneumococcal conjugate PCV15"),
        Vaccine("PCV20", "小児用肺炎球菌（20価結合型）", "216", "Pneumococcal conjugate PCV20"),
        Vaccine("HEPB", "B型肝炎", "08", "Hep B, adolescent or pediatric"),
        Vaccine("ROTA1", "ロタウイルス（1価）", "119", "rotavirus, monovalent"),
        Vaccine("ROTA5", "ロタウイルス（5価）", "116", "rotavirus, pentavalent"),
        Vaccine("DPT-IPV-HIB", "五種混合（DPT-IPV-Hib）", "120", "DTaP-Hib-IPV"),
        Vaccine("DPT-IPV", "四種混合（DPT-IPV）", "130", "DTaP-IPV"),
        Vaccine("DPT", "三種混合（DPT）", "20", "DTaP"),
        Vaccine("IPV", "不活化ポリオ（IPV）", "10", "IPV"),
        Vaccine("DT", "二種混合（DT）", "28", "DT (pediatric)"),
        Vaccine("BCG", "BCG", "19", "BCG"),
        Vaccine("MR", "麻しん風しん混合（MR）", "04", "M/R"),
        Vaccine("MEASLES", "麻しん（はしか）", "05", "measles"),
        Vaccine("RUBELLA", "風しん", "06", "rubella"),
        Vaccine("MMR", "麻しんおたふくかぜ風しん混合（MMR）", "03", "MMR"),
        Vaccine("VAR", "水痘", "21", "varicella"),
        Vaccine("JE", "日本脳炎", "129", "Japanese Encephalitis, unspecified formulation"),
        Vaccine("HPV2", "ヒトパピローマウイルス（2価）", "118", "HPV, bivalent"),
        Vaccine("HPV4", "ヒトパピローマウイルス（4価）", "62", "HPV, quadrivalent"),
        Vaccine("HPV9", "ヒトパピローマウイルス（9価）", "165", "HPV9"),
        Vaccine("FLU", "インフルエンザ", "88", "influenza, unspecified formulation"),
        Vaccine(
            "PPSV23",
            "高齢者肺炎球菌（23価莢膜ポリサッカライド）",
            "33",
            "pneumococcal polysaccharide PPV23",
        ),
        Vaccine(
            "COVID19",
            "新型コロナウイルス感染症",
            "213",
            "SARS-COV-2 (COVID-19) vaccine, UNSPECIFIED FORMULATION",
        ),
        Vaccine("HZ-RZV", "帯状疱疹（組換え）", "187", "zoster recombinant"),
        Vaccine("HZ-LIVE", "帯状疱疹（生）", "121", "zoster live"),
    )
}

# Municipal registers often hold the Japanese name instead of a code: accept it too.
VACCINE_BY_NAME: dict[str, Vaccine] = {v.display: v for v in VACCINES.values()}


def vaccine(code_or_name: str) -> Vaccine | None:
    return VACCINES.get(code_or_name.upper()) or VACCINE_BY_NAME.get(code_or_name)


# ---- specific health checkup (特定健診) measures ---------------------------------------------


@dataclass(frozen=True)
class Measure:
    """One checkup measure: its CSV column, codes, unit and plausibility range.

    ``high_from`` / ``low_below`` are the 特定保健指導判定値 (health-guidance thresholds) of
    厚生労働省「標準的な健診・保健指導プログラム（令和6年度版）」: a value at or above
    ``high_from`` (or below ``low_below``) is flagged. The reference range written to the
    Observation is the range below the threshold at the measure's reporting resolution
    (``step``), with the threshold in its text.
    """

    column: str
    loinc: str
    loinc_display: str
    item_code: str | None  # 特定健診項目コード (TOKUTEI_ITEM)
    display: str  # Japanese
    unit: str  # UCUM code
    unit_display: str
    category: str  # vital-signs | laboratory | exam
    lo: float  # plausibility: values outside [lo, hi] are rejected as entry errors
    hi: float
    step: float = 1.0
    high_from: float | None = None
    low_below: float | None = None
    # Sex-specific thresholds (waist): {"male": 85, "female": 90}
    high_from_by_sex: tuple[tuple[str, float], ...] = ()


# The CSV does not say which laboratory method was used, so laboratory items carry the
# 特定健診 item code for "その他" (other method) where the code table distinguishes
# methods, e.g. HbA1c (NGSP) 3D046000001999902, not the latex-agglutination code
# 3D046000001906202. LOINC codes are the method-less ones for the same reason.
MEASURES: tuple[Measure, ...] = (
    Measure(
        "height_cm",
        "8302-2",
        "Body height",
        "9N001000000000001",
        "身長",
        "cm",
        "cm",
        "vital-signs",
        50,
        250,
        0.1,
    ),
    Measure(
        "weight_kg",
        "29463-7",
        "Body weight",
        "9N006000000000001",
        "体重",
        "kg",
        "kg",
        "vital-signs",
        10,
        300,
        0.1,
    ),
    Measure(
        "bmi",
        "39156-5",
        "Body mass index (BMI) [Ratio]",
        "9N011000000000001",
        "BMI",
        "kg/m2",
        "kg/m2",
        "vital-signs",
        10,
        80,
        0.1,
        high_from=25,
    ),
    Measure(
        "waist_cm",
        "8280-0",
        "Waist Circumference at umbilicus by Tape measure",
        "9N016160100000001",
        "腹囲（実測）",
        "cm",
        "cm",
        "exam",
        40,
        200,
        0.1,
        high_from_by_sex=(("male", 85), ("female", 90)),
    ),
    Measure(
        "sbp",
        "8480-6",
        "Systolic blood pressure",
        "9A755000000000001",
        "収縮期血圧",
        "mm[Hg]",
        "mmHg",
        "vital-signs",
        50,
        300,
        1,
        high_from=130,
    ),
    Measure(
        "dbp",
        "8462-4",
        "Diastolic blood pressure",
        "9A765000000000001",
        "拡張期血圧",
        "mm[Hg]",
        "mmHg",
        "vital-signs",
        20,
        200,
        1,
        high_from=85,
    ),
    Measure(
        "hba1c_ngsp",
        "4548-4",
        "Hemoglobin A1c/Hemoglobin.total in Blood",
        "3D046000001999902",
        "HbA1c（NGSP）",
        "%",
        "%",
        "laboratory",
        3,
        20,
        0.1,
        high_from=5.6,
    ),
    Measure(
        "fasting_glucose",
        "1558-6",
        "Fasting glucose [Mass/volume] in Serum or Plasma",
        "3D010000001999901",
        "空腹時血糖",
        "mg/dL",
        "mg/dL",
        "laboratory",
        20,
        1000,
        1,
        high_from=100,
    ),
    Measure(
        "ldl",
        "2089-1",
        "Cholesterol in LDL [Mass/volume] in Serum or Plasma",
        "3F077000002399901",
        "LDLコレステロール",
        "mg/dL",
        "mg/dL",
        "laboratory",
        10,
        1000,
        1,
        high_from=120,
    ),
    Measure(
        "hdl",
        "2085-9",
        "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
        "3F070000002399901",
        "HDLコレステロール",
        "mg/dL",
        "mg/dL",
        "laboratory",
        5,
        300,
        1,
        low_below=40,
    ),
    Measure(
        "triglycerides",
        "2571-8",
        "Triglyceride [Mass/volume] in Serum or Plasma",
        "3F015000002399901",
        "中性脂肪（トリグリセリド）",
        "mg/dL",
        "mg/dL",
        "laboratory",
        10,
        5000,
        1,
        high_from=150,
    ),
    Measure(
        "ast",
        "1920-8",
        "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "3B035000002399901",
        "AST（GOT）",
        "U/L",
        "U/L",
        "laboratory",
        1,
        5000,
        1,
        high_from=31,
    ),
    Measure(
        "alt",
        "1742-6",
        "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "3B045000002399901",
        "ALT（GPT）",
        "U/L",
        "U/L",
        "laboratory",
        1,
        5000,
        1,
        high_from=31,
    ),
    Measure(
        "ggt",
        "2324-2",
        "Gamma glutamyl transferase [Enzymatic activity/volume] in Serum or Plasma",
        "3B090000002399901",
        "γ-GT（γ-GTP）",
        "U/L",
        "U/L",
        "laboratory",
        1,
        5000,
        1,
        high_from=51,
    ),
    Measure(
        "creatinine",
        "2160-0",
        "Creatinine [Mass/volume] in Serum or Plasma",
        "3C015000002399901",
        "血清クレアチニン",
        "mg/dL",
        "mg/dL",
        "laboratory",
        0.1,
        30,
        0.01,
    ),
    # eGFR: Japan uses the JSN equation (日本腎臓学会, creatinine-based); LOINC has no code
    # for it, so the method-less 69405-9 is used.
    Measure(
        "egfr",
        "69405-9",
        "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, "
        "Plasma or Blood",
        "8A065000002391901",
        "eGFR",
        "mL/min/{1.73_m2}",
        "mL/min/1.73m2",
        "laboratory",
        1,
        200,
        0.1,
        low_below=60,
    ),
)
MEASURE_BY_COLUMN = {m.column: m for m in MEASURES}

# Blood pressure is one Observation (LOINC panel) with the two pressures as components.
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional", "血圧")

# Urine protein, test strip (尿蛋白 試験紙法). The 特定健診 code table distinguishes visual
# (目視法) and machine reading; the CSV does not say which, the visual-reading code is used.
URINE_PROTEIN = Measure(
    "urine_protein",
    "20454-5",
    "Protein [Presence] in Urine by Test strip",
    "1A010000000190111",
    "尿蛋白（定性）",
    "",
    "",
    "laboratory",
    0,
    0,
)
# CSV value (after normalisation) -> (code, display). 特定健診 records −, ±, +, 2+, 3+.
URINE_PROTEIN_VALUES: dict[str, tuple[str, str]] = {
    "-": ("negative", "−"),
    "±": ("trace", "±"),
    "+-": ("trace", "±"),
    "+": ("1+", "+"),
    "1+": ("1+", "+"),
    "2+": ("2+", "2+"),
    "++": ("2+", "2+"),
    "3+": ("3+", "3+"),
    "+++": ("3+", "3+"),
}

CHECKUP_COLUMNS: tuple[str, ...] = (*(m.column for m in MEASURES), URINE_PROTEIN.column)

# ---- disability certificates (障害者手帳) ------------------------------------------------------

# The three certificates of Japanese disability law: 身体障害者手帳 (身体障害者福祉法 第15条,
# grades 1-7 of 身体障害者障害程度等級表, 施行規則 別表第5号), 療育手帳 (厚生省通知
# 「療育手帳制度について」1973; grades set by each prefecture — 茨城県: Ⓐ 最重度, A 重度,
# B 中度, C 軽度; other prefectures use A/B or A1/A2/B1/B2) and 精神障害者保健福祉手帳
# (精神保健福祉法 第45条, grades 1-3, valid for two years).
CERTIFICATES: dict[str, str] = {
    "physical": "身体障害者手帳",
    "intellectual": "療育手帳",
    "mental": "精神障害者保健福祉手帳",
}
CERTIFICATE_ALIASES: dict[str, str] = {
    "身体障害者手帳": "physical",
    "身体": "physical",
    "療育手帳": "intellectual",
    "療育": "intellectual",
    "精神障害者保健福祉手帳": "mental",
    "精神": "mental",
}
# certificate type -> accepted grade -> display
GRADES: dict[str, dict[str, str]] = {
    "physical": {str(n): f"{n}級" for n in range(1, 8)},
    "intellectual": {
        "maruA": "Ⓐ（最重度）",
        "A": "A（重度）",
        "A1": "A1（最重度）",
        "A2": "A2（重度）",
        "B": "B（中度・軽度）",
        "B1": "B1（中度）",
        "B2": "B2（軽度）",
        "C": "C（軽度）",
    },
    "mental": {str(n): f"{n}級" for n in range(1, 4)},
}

# ---- claims diagnoses (レセプト傷病名) ----------------------------------------------------------

# 転帰区分 of the レセプト電算処理システム 記録条件仕様 (SY record): 1 継続 (or blank), 2 治癒,
# 3 死亡, 4 中止 (転医). -> Condition.clinicalStatus. A death ends the condition's course
# (inactive); 中止 means treatment there ended, not that it resolved (inactive).
OUTCOMES: dict[str, tuple[str, str]] = {
    "継続": ("active", "継続"),
    "1": ("active", "継続"),
    "治癒": ("resolved", "治癒"),
    "2": ("resolved", "治癒"),
    "死亡": ("inactive", "死亡"),
    "3": ("inactive", "死亡"),
    "中止": ("inactive", "中止"),
    "転医": ("inactive", "中止"),
    "4": ("inactive", "中止"),
}

# ---- therapeutic category (薬効分類) -----------------------------------------------------------

# The first 4 digits of a 薬価基準収載医薬品コード are the drug's 薬効分類番号 (日本標準商品
# 分類 87 医薬品及び関連製品, 総務省; see 厚生労働省「薬価基準収載医薬品コードの付番方法」).
# Names of the 3-digit classes (中分類) and of the few 4-digit classes named here; the display
# of a 4-digit code not listed falls back to its 3-digit class.
YAKKO_3: dict[str, str] = {
    "111": "全身麻酔剤",
    "112": "催眠鎮静剤，抗不安剤",
    "113": "抗てんかん剤",
    "114": "解熱鎮痛消炎剤",
    "116": "抗パーキンソン剤",
    "117": "精神神経用剤",
    "119": "その他の中枢神経系用薬",
    "121": "局所麻酔剤",
    "122": "骨格筋弛緩剤",
    "124": "鎮けい剤",
    "131": "眼科用剤",
    "132": "耳鼻科用剤",
    "211": "強心剤",
    "212": "不整脈用剤",
    "213": "利尿剤",
    "214": "血圧降下剤",
    "217": "血管拡張剤",
    "218": "高脂血症用剤",
    "219": "その他の循環器官用薬",
    "222": "鎮咳剤",
    "223": "去たん剤",
    "224": "鎮咳去たん剤",
    "225": "気管支拡張剤",
    "229": "その他の呼吸器官用薬",
    "231": "止しゃ剤，整腸剤",
    "232": "消化性潰瘍用剤",
    "233": "健胃消化剤",
    "234": "制酸剤",
    "235": "下剤，浣腸剤",
    "236": "利胆剤",
    "239": "その他の消化器官用薬",
    "245": "副腎ホルモン剤",
    "249": "その他のホルモン剤（抗ホルモン剤を含む。）",
    "259": "その他の泌尿生殖器官及び肛門用薬",
    "264": "鎮痛，鎮痒，収斂，消炎剤",
    "311": "ビタミンA及びD剤",
    "313": "ビタミンB剤（ビタミンB1剤を除く。）",
    "322": "無機質製剤",
    "325": "たん白アミノ酸製剤",
    "332": "止血剤",
    "333": "血液凝固阻止剤",
    "339": "その他の血液・体液用薬",
    "392": "解毒剤",
    "394": "痛風治療剤",
    "396": "糖尿病用剤",
    "399": "他に分類されない代謝性医薬品",
    "422": "代謝拮抗剤",
    "429": "その他の腫瘍用薬",
    "441": "抗ヒスタミン剤",
    "449": "その他のアレルギー用薬",
    "613": "主としてグラム陽性・陰性菌に作用するもの",
    "614": "主としてグラム陽性菌，マイコプラズマに作用するもの",
    "624": "合成抗菌剤",
    "625": "抗ウイルス剤",
    "631": "ワクチン類",
}
YAKKO_4: dict[str, str] = {
    "1149": "その他の解熱鎮痛消炎剤",
    "2149": "その他の血圧降下剤",
    "2171": "冠血管拡張剤",
    "2189": "その他の高脂血症用剤",
    "2329": "その他の消化性潰瘍用剤",
    "3969": "その他の糖尿病用剤",
}


def yakko_display(code4: str) -> str | None:
    return YAKKO_4.get(code4) or YAKKO_3.get(code4[:3])
