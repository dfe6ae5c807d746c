"""The health story of a synthetic resident: diseases, visits, prescriptions, measurements,
allergies, checkups, vaccinations and disability certificates.

This module only decides *what happened*; :mod:`phr.demo.bundles` turns a story into the
clinics' FHIR transaction Bundles and :mod:`phr.demo.files` into the municipal and insurer
CSV files. Everything is drawn from one ``random.Random`` per resident, in a fixed order,
so a seed gives the same story every time.

Prevalences are rough Japanese figures by age (国民健康・栄養調査, 患者調査 orders of
magnitude), enough for a demo city, not for epidemiology. Measurements follow a simple
physiology: a personal baseline, a slow drift with age, a rise before a chronic disease is
diagnosed and an improvement once it is treated, plus visit-to-visit noise.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from phr.demo.drugs import Catalogue, Product, Sig
from phr.demo.people import AS_OF, KOKUHO, KYOKAI, Resident, age_at

__all__ = [
    "CLAIMS_FROM",
    "CLINIC_FROM",
    "GAKUEN",
    "JST",
    "Allergy",
    "Checkup",
    "Diagnosis",
    "Disability",
    "Health",
    "Measurement",
    "Prescription",
    "Vaccination",
    "Visit",
    "health_of",
]

JST = timezone(timedelta(hours=9))

# The window of the demo's records (kept short so that the demo loads in a minute or two):
# clinics send their electronic records from CLINIC_FROM (the day they joined the
# platform), insurers the claims from CLAIMS_FROM; checkups and vaccinations go back
# further.
CLINIC_FROM = date(2024, 1, 1)
CLAIMS_FROM = date(2024, 1, 1)
CHECKUPS_FROM = 2021  # fiscal year of the first checkup in the files
LAST_DAY = AS_OF - timedelta(days=3)

CHUO = "tsukuba-chuo-clinic"
TAKEZONO = "takezono-naika"
GAKUEN = "tsukuba-gakuen-hospital"
FAMILY_DOCTORS = (CHUO, TAKEZONO)
# Districts whose residents tend to see 竹園内科医院 (close by) rather than the other clinic.
_NEAR_TAKEZONO = {"竹園", "吾妻", "並木", "松代", "二の宮", "千現", "春日", "天久保"}

# ---- medicines ---------------------------------------------------------------------------------


def _tab(
    ing: str, strength: str, per_day: int, when: tuple[str, ...], text: str, dose: float = 1
) -> Sig:
    return Sig(ing, strength, dose, "錠", per_day, when, text)


M3 = ("PCM", "PCD", "PCV")
AMLODIPINE = _tab("アムロジピンベシル酸塩", "5mg1錠", 1, ("PCM",), "1日1回朝食後")
TELMISARTAN = _tab("テルミサルタン", "40mg1錠", 1, ("PCM",), "1日1回朝食後")
OLMESARTAN = _tab("オルメサルタンメドキソミル", "20mg1錠", 1, ("PCM",), "1日1回朝食後")
CANDESARTAN = _tab("カンデサルタンシレキセチル", "4mg1錠", 1, ("PCM",), "1日1回朝食後")
METFORMIN = _tab("メトホルミン塩酸塩", "500mg1錠", 2, ("PCM", "PCV"), "1日2回朝夕食後")
SITAGLIPTIN = _tab("シタグリプチンリン酸塩水和物", "50mg1錠", 1, ("PCM",), "1日1回朝食後")
EMPAGLIFLOZIN = _tab("エンパグリフロジン", "10mg1錠", 1, ("PCM",), "1日1回朝食後")
ROSUVASTATIN = _tab("ロスバスタチンカルシウム", "2.5mg1錠", 1, ("PCV",), "1日1回夕食後")
ATORVASTATIN = _tab("アトルバスタチンカルシウム水和物", "10mg1錠", 1, ("PCM",), "1日1回朝食後")
BUDESONIDE_FORMOTEROL = Sig(
    "ブデソニド・ホルモテロールフマル酸塩水和物",
    "60吸入1キット",
    2,
    "吸入",
    2,
    ("MORN", "EVE"),
    "1回2吸入 1日2回朝夕",
    route="外用薬",
    doses_per_package=60,
    package_unit="キット",
)
MONTELUKAST = _tab("モンテルカストナトリウム", "10mg1錠", 1, ("HS",), "1日1回就寝前")
ALENDRONATE = Sig(
    "アレンドロン酸ナトリウム水和物", "35mg1錠", 1, "錠", 1, ("WAKE",), "週1回起床時", weekly=True
)
ELDECALCITOL = _tab("エルデカルシトール", "0.75μg1錠", 1, ("PCM",), "1日1回朝食後")
APIXABAN_5 = _tab("アピキサバン", "5mg1錠", 2, ("PCM", "PCV"), "1日2回朝夕食後")
APIXABAN_25 = _tab("アピキサバン", "2.5mg1錠", 2, ("PCM", "PCV"), "1日2回朝夕食後")
WARFARIN = _tab("ワルファリンカリウム", "1mg1錠", 1, ("PCV",), "1日1回夕食後", dose=2)
BISOPROLOL = _tab("ビソプロロールフマル酸塩", "2.5mg1錠", 1, ("PCM",), "1日1回朝食後")
ESCITALOPRAM = _tab("エスシタロプラムシュウ酸塩", "10mg1錠", 1, ("PCV",), "1日1回夕食後")
SERTRALINE = _tab("セルトラリン塩酸塩", "25mg1錠", 1, ("PCV",), "1日1回夕食後")
LANSOPRAZOLE = _tab("ランソプラゾール", "15mg1錠", 1, ("PCM",), "1日1回朝食後")
VONOPRAZAN = _tab("ボノプラザンフマル酸塩", "10mg1錠", 1, ("PCM",), "1日1回朝食後")
ZOLPIDEM = _tab("ゾルピデム酒石酸塩", "5mg1錠", 1, ("HS",), "1日1回就寝前")
BROTIZOLAM = _tab("ブロチゾラム", "0.25mg1錠", 1, ("HS",), "1日1回就寝前")
SUVOREXANT = _tab("スボレキサント", "15mg1錠", 1, ("HS",), "1日1回就寝前")
LOXOPROFEN = _tab("ロキソプロフェンナトリウム水和物", "60mg1錠", 3, M3, "1日3回毎食後")
LOXOPROFEN_PATCH = Sig(
    "ロキソプロフェンナトリウム水和物",
    "10cm×14cm1枚",
    1,
    "枚",
    1,
    (),
    "1日1回 患部に貼付",
    route="外用薬",
)
REBAMIPIDE = _tab("レバミピド", "100mg1錠", 3, M3, "1日3回毎食後")
FEBUXOSTAT = _tab("フェブキソスタット", "20mg1錠", 1, ("PCM",), "1日1回朝食後")
ALLOPURINOL = _tab("アロプリノール", "100mg1錠", 2, ("PCM", "PCV"), "1日2回朝夕食後")
FEXOFENADINE = _tab("フェキソフェナジン塩酸塩", "60mg1錠", 2, ("PCM", "PCV"), "1日2回朝夕食後")
BILASTINE = _tab("ビラスチン", "20mg1錠", 1, ("HS",), "1日1回就寝前（空腹時）")
DONEPEZIL = _tab("ドネペジル塩酸塩", "5mg1錠", 1, ("PCM",), "1日1回朝食後")
FUROSEMIDE = _tab("フロセミド", "20mg1錠", 1, ("PCM",), "1日1回朝食後")
CARVEDILOL = _tab("カルベジロール", "2.5mg1錠", 2, ("PCM", "PCV"), "1日2回朝夕食後")
ACETAMINOPHEN = Sig(
    "アセトアミノフェン",
    "200mg1錠",
    2,
    "錠",
    3,
    (),
    "発熱・疼痛時 1回2錠（1日3回まで、4時間以上あける）",
    as_needed=True,
)
CARBOCISTEINE = _tab("L-カルボシステイン", "500mg1錠", 3, M3, "1日3回毎食後")

NSAIDS = {LOXOPROFEN.ingredient}

# ---- diseases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Disease:
    icd10: str
    display: str  # Japanese (ICD-10 対応標準病名 style)
    regimens: tuple[tuple[Sig, ...], ...]  # one is chosen
    add_ons: tuple[Sig, ...] = ()  # a second drug for some
    add_on_rate: float = 0.0
    specialist: bool = False  # followed at the hospital
    chronic: bool = True
    supply_days: int = 0  # acute: days prescribed


HYPERTENSION = Disease(
    "I10",
    "本態性高血圧症",
    ((AMLODIPINE,), (TELMISARTAN,), (OLMESARTAN,), (CANDESARTAN,)),
    (AMLODIPINE,),
    0.35,
)
DIABETES = Disease(
    "E11.9",
    "2型糖尿病",
    ((METFORMIN,), (METFORMIN, SITAGLIPTIN), (SITAGLIPTIN,)),
    (EMPAGLIFLOZIN,),
    0.3,
)
DYSLIPIDEMIA = Disease("E78.5", "脂質異常症", ((ROSUVASTATIN,), (ATORVASTATIN,)))
ASTHMA = Disease(
    "J45.9", "気管支喘息", ((BUDESONIDE_FORMOTEROL, MONTELUKAST), (BUDESONIDE_FORMOTEROL,))
)
OSTEOPOROSIS = Disease("M81.0", "閉経後骨粗鬆症", ((ALENDRONATE, ELDECALCITOL), (ALENDRONATE,)))
OSTEOPOROSIS_M = Disease("M81.9", "骨粗鬆症", ((ALENDRONATE,), (ELDECALCITOL,)))
CKD = Disease("N18.3", "慢性腎臓病（ステージ3）", ((CANDESARTAN,), (FEBUXOSTAT,)), specialist=True)
AF = Disease(
    "I48",
    "心房細動",
    ((APIXABAN_5, BISOPROLOL), (WARFARIN, BISOPROLOL), (APIXABAN_5,)),
    specialist=True,
)
DEPRESSION = Disease("F32.9", "うつ病", ((ESCITALOPRAM,), (SERTRALINE,)), (ZOLPIDEM,), 0.25)
GERD = Disease("K21.9", "逆流性食道炎", ((LANSOPRAZOLE,), (VONOPRAZAN,)))
INSOMNIA = Disease("G47.0", "不眠症", ((ZOLPIDEM,), (BROTIZOLAM,), (SUVOREXANT,)))
KNEE_OA = Disease("M17.9", "変形性膝関節症", ((LOXOPROFEN, REBAMIPIDE), (LOXOPROFEN_PATCH,)))
HYPERURICEMIA = Disease("E79.0", "高尿酸血症", ((FEBUXOSTAT,), (ALLOPURINOL,)))
RHINITIS = Disease("J30.4", "アレルギー性鼻炎", ((FEXOFENADINE,), (BILASTINE,)))
DEMENTIA = Disease("F03", "認知症", ((DONEPEZIL,),), specialist=True)
HEART_FAILURE = Disease("I50.9", "心不全", ((FUROSEMIDE, CARVEDILOL),), specialist=True)
URI = Disease(
    "J06.9",
    "急性上気道炎",
    ((ACETAMINOPHEN, CARBOCISTEINE), (ACETAMINOPHEN,)),
    chronic=False,
    supply_days=5,
)
LOW_BACK_PAIN = Disease(
    "M54.5", "腰痛症", ((LOXOPROFEN, REBAMIPIDE), (LOXOPROFEN_PATCH,)), chronic=False, supply_days=7
)


def _prevalence(d: Disease, age: int, sex: str) -> float:
    """Share of people of this age and sex who have the disease by the demo's today."""
    a = age
    table: dict[str, float] = {
        "I10": 0.0
        if a < 30
        else 0.04
        if a < 40
        else 0.15
        if a < 50
        else 0.3
        if a < 60
        else 0.45
        if a < 75
        else 0.6,
        "E11.9": 0.0
        if a < 30
        else 0.02
        if a < 40
        else 0.06
        if a < 50
        else 0.1
        if a < 60
        else 0.15
        if a < 75
        else 0.17,
        "E78.5": 0.0
        if a < 30
        else 0.06
        if a < 40
        else 0.15
        if a < 50
        else 0.25
        if a < 75
        else 0.22,
        "J45.9": 0.05 if a >= 3 else 0.0,
        "M81.0": (0.0 if a < 55 else 0.15 if a < 70 else 0.3) if sex == "F" else 0.0,
        "M81.9": (0.0 if a < 70 else 0.06) if sex == "M" else 0.0,
        "N18.3": 0.0 if a < 50 else 0.04 if a < 65 else 0.1 if a < 75 else 0.16,
        "I48": 0.0 if a < 55 else 0.02 if a < 65 else 0.04 if a < 75 else 0.08,
        "F32.9": 0.035 if a >= 18 else 0.0,
        "K21.9": 0.0 if a < 30 else 0.06 if a < 60 else 0.12,
        "G47.0": 0.0 if a < 30 else 0.04 if a < 60 else 0.1,
        "M17.9": 0.0 if a < 55 else 0.08 if a < 65 else 0.18 if a < 80 else 0.25,
        "E79.0": (0.0 if a < 30 else 0.1) if sex == "M" else (0.02 if a >= 60 else 0.0),
        "J30.4": 0.12 if 5 <= a < 60 else 0.05 if a >= 60 else 0.0,
        "F03": 0.0 if a < 75 else 0.06 if a < 85 else 0.18,
        "I50.9": 0.0 if a < 65 else 0.02 if a < 75 else 0.06,
    }
    return table.get(d.icd10, 0.0)


CHRONIC = (
    HYPERTENSION,
    DIABETES,
    DYSLIPIDEMIA,
    ASTHMA,
    OSTEOPOROSIS,
    OSTEOPOROSIS_M,
    CKD,
    AF,
    DEPRESSION,
    GERD,
    INSOMNIA,
    KNEE_OA,
    HYPERURICEMIA,
    RHINITIS,
    DEMENTIA,
    HEART_FAILURE,
)

# ---- allergies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllergyKind:
    snomed: str
    snomed_display: str
    text: str  # Japanese
    category: str  # medication | food | environment
    reaction: str
    criticality: str  # low | high
    rate: float


ALLERGIES = (
    AllergyKind(
        "764146007",
        "Penicillin",
        "ペニシリン系抗菌薬",
        "medication",
        "蕁麻疹・呼吸困難",
        "high",
        0.05,
    ),
    AllergyKind(
        "372665008",
        "Non-steroidal anti-inflammatory agent",
        "NSAIDs（非ステロイド性抗炎症薬）",
        "medication",
        "喘息発作",
        "high",
        0.02,
    ),
    AllergyKind("102263004", "Eggs (edible)", "卵", "food", "蕁麻疹", "low", 0.03),
    AllergyKind(
        "385420005", "Contrast media", "ヨード造影剤", "medication", "発疹・嘔気", "high", 0.015
    ),
)


@dataclass
class Allergy:
    kind: AllergyKind
    recorded: date
    clinic: str


# ---- the story ---------------------------------------------------------------------------------


@dataclass
class Diagnosis:
    disease: Disease
    onset: date
    clinic: str
    sigs: list[Sig]
    resolved: date | None = None
    products: dict[str, Product] = field(default_factory=dict)  # sig ingredient -> product


@dataclass
class Measurement:
    kind: str  # bp weight bmi height hba1c ldl creatinine egfr
    value: float
    value2: float | None = None  # diastolic pressure


@dataclass
class Prescription:
    sig: Sig
    product: Product
    days: int
    quantity: float
    unit: str
    diagnosis: Diagnosis
    active: bool = False  # the current prescription of a medicine still taken


@dataclass
class Visit:
    clinic: str
    at: datetime
    first: bool
    diagnoses: list[Diagnosis]
    prescriptions: list[Prescription] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)

    @property
    def day(self) -> date:
        return self.at.date()


@dataclass
class Checkup:
    day: date
    reporter: str  # tsukuba-city | tsuchiura-city | kyokai-ibaraki
    institution: str
    values: dict[str, float]
    urine_protein: str


@dataclass
class Vaccination:
    code: str  # vaccine code of the municipal format (fhir_gateway.sources.codes.VACCINES)
    day: date
    dose: int
    lot: str
    performer: str
    city: str  # tsukuba-city | tsuchiura-city


@dataclass
class Disability:
    certificate_type: str  # physical | intellectual | mental
    grade: str
    disability: str
    issued: date
    valid_until: date | None


@dataclass
class Health:
    resident: Resident
    diagnoses: list[Diagnosis]
    visits: list[Visit]
    allergies: list[Allergy]
    checkups: list[Checkup]
    vaccinations: list[Vaccination]
    disabilities: list[Disability]

    def visits_at(self, clinic: str, since: date = CLINIC_FROM) -> list[Visit]:
        return [v for v in self.visits if v.clinic == clinic and v.day >= since]

    @property
    def current_medicines(self) -> set[str]:
        return {p.product.code for v in self.visits for p in v.prescriptions if p.active}


# ---- physiology --------------------------------------------------------------------------------


def _years(a: date, b: date) -> float:
    return (b - a).days / 365.25


class Body:
    """Measurements over time for one resident (deterministic given the rng's draws)."""

    def __init__(self, rng: random.Random, r: Resident, diagnoses: list[Diagnosis]) -> None:
        self.r = r
        self.rng = rng
        self.dx = {d.disease.icd10: d.onset for d in diagnoses}
        metabolic = "I10" in self.dx or "E11.9" in self.dx
        self.bmi0 = min(36.0, max(16.5, rng.gauss(21.8 + (1.8 if metabolic else 0), 2.8)))
        self.bmi_drift = rng.gauss(0.05, 0.12)  # per year
        self.sbp_offset = rng.gauss(0, 7)
        self.dbp_offset = rng.gauss(0, 4)
        self.sbp_untreated = 152 + rng.gauss(0, 8)
        self.sbp_treated = 131 + rng.gauss(0, 5)
        self.a1c_base = 5.3 + rng.gauss(0, 0.2)
        self.a1c_untreated = 7.6 + abs(rng.gauss(0, 0.6))
        self.a1c_treated = 6.8 + rng.gauss(0, 0.3)
        self.ldl_base = 112 + rng.gauss(0, 20)
        self.ldl_untreated = 165 + abs(rng.gauss(0, 15))
        self.ldl_treated = 100 + rng.gauss(0, 12)
        self.hdl = (56 if r.sex == "M" else 66) + rng.gauss(0, 9)
        self.tg_factor = math.exp(rng.gauss(0, 0.3))
        self.egfr_base = 102 + rng.gauss(0, 9)
        self.egfr_ckd = 54 + rng.gauss(0, 3)
        self.ast = 21 + rng.gauss(0, 4)
        self.alt = 18 + rng.gauss(0, 6)
        self.ggt_factor = math.exp(rng.gauss(0, 0.35))

    def _age(self, day: date) -> float:
        return _years(self.r.birth_date, day)

    def _course(
        self,
        code: str,
        day: date,
        normal: float,
        untreated: float,
        treated: float,
        tau_days: float = 120,
    ) -> float:
        onset = self.dx.get(code)
        if onset is None:
            return normal
        if day < onset:  # rising over the five years before the diagnosis
            frac = max(0.0, 1 - (onset - day).days / (5 * 365))
            return normal + (untreated - normal) * frac
        return treated + (untreated - treated) * math.exp(-(day - onset).days / tau_days)

    def bmi(self, day: date) -> float:
        return self.bmi0 + self.bmi_drift * _years(AS_OF - timedelta(days=3650), day)

    def weight(self, day: date) -> float:
        h = self.r.height_cm / 100
        return round(self.bmi(day) * h * h + self.rng.gauss(0, 0.4), 1)

    def bp(self, day: date) -> tuple[int, int]:
        age = self._age(day)
        normal = 110 + 0.5 * max(0.0, age - 30) + self.sbp_offset
        sbp = self._course("I10", day, normal, self.sbp_untreated, self.sbp_treated)
        sbp += self.rng.gauss(0, 6)
        dbp = 0.5 * sbp + 12 + self.dbp_offset + self.rng.gauss(0, 4) - max(0.0, age - 65) * 0.3
        sbp_i = round(min(220.0, max(90.0, sbp)))
        dbp_i = round(min(sbp_i - 25, max(50.0, dbp)))
        return sbp_i, dbp_i

    def hba1c(self, day: date) -> float:
        age = self._age(day)
        normal = self.a1c_base + 0.006 * max(0.0, age - 30)
        v = self._course("E11.9", day, normal, self.a1c_untreated, self.a1c_treated, 90)
        onset = self.dx.get("E11.9")
        if onset and day > onset:
            v += 0.05 * _years(onset, day)  # slowly harder to control
        return round(max(4.3, v + self.rng.gauss(0, 0.12)), 1)

    def fasting_glucose(self, a1c: float) -> int:
        return round(max(70.0, 28.7 * a1c - 60 + self.rng.gauss(0, 7)))

    def ldl(self, day: date) -> int:
        age = self._age(day)
        normal = self.ldl_base + (0.6 * max(0.0, age - 50) if self.r.sex == "F" else 0)
        v = self._course("E78.5", day, normal, self.ldl_untreated, self.ldl_treated, 60)
        return round(max(40.0, v + self.rng.gauss(0, 8)))

    def hdl_value(self, day: date) -> int:
        return round(max(25.0, self.hdl - (self.bmi(day) - 22) * 1.0 + self.rng.gauss(0, 4)))

    def triglycerides(self, day: date) -> int:
        v = (90 + max(0.0, self.bmi(day) - 22) * 8) * self.tg_factor
        return round(max(30.0, v * math.exp(self.rng.gauss(0, 0.15))))

    def egfr(self, day: date) -> float:
        age = self._age(day)
        v = self.egfr_base - 0.8 * max(0.0, age - 25)
        for code in ("E11.9", "I10"):
            onset = self.dx.get(code)
            if onset and day > onset:
                v -= 0.4 * _years(onset, day)
        onset = self.dx.get("N18.3")
        if onset:
            at_onset = min(self.egfr_ckd, 58.0)
            if day >= onset:
                v = max(31.0, at_onset - 1.6 * _years(onset, day))
            else:
                v = max(at_onset, min(v, at_onset + 4 * _years(day, onset)))
        elif v < 62:
            v = 62 + (v - 62) * 0.2  # no CKD diagnosed: stays near the boundary
        return round(min(130.0, max(15.0, v + self.rng.gauss(0, 2.5))), 1)

    def creatinine(self, egfr: float, day: date) -> float:
        """Serum creatinine consistent with an eGFR by the JSN equation (日本腎臓学会):
        eGFR = 194 x Cr^-1.094 x age^-0.287 (x 0.739 for women)."""
        age = max(18.0, self._age(day))
        k = 194 * age**-0.287 * (0.739 if self.r.sex == "F" else 1.0)
        return round((egfr / k) ** (-1 / 1.094), 2)

    def waist(self, day: date) -> float:
        return round(
            2.4 * self.bmi(day) + 28 + (3 if self.r.sex == "M" else 0) + self.rng.gauss(0, 2), 1
        )

    def liver(self, day: date) -> tuple[int, int, int]:
        extra = max(0.0, self.bmi(day) - 23)
        ast = round(max(8.0, self.ast + extra * 0.8 + self.rng.gauss(0, 3)))
        alt = round(max(5.0, self.alt + extra * 2.0 + self.rng.gauss(0, 4)))
        ggt = round(
            max(
                8.0,
                (32 if self.r.sex == "M" else 19)
                * self.ggt_factor
                * math.exp(self.rng.gauss(0, 0.12)),
            )
        )
        return ast, alt, ggt


# ---- building the story ------------------------------------------------------------------------


def _day_between(rng: random.Random, start: date, end: date) -> date:
    if end <= start:
        return start
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def _clinic_time(rng: random.Random, day: date) -> datetime:
    minute = rng.choice((0, 15, 30, 45))
    hour = rng.choice((9, 9, 10, 10, 11, 14, 15, 16))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=JST)


def _weekday(day: date) -> date:
    """The next day the clinics are open: not a Sunday, not the New Year holidays."""
    while day.weekday() == 6 or (day.month, day.day) >= (12, 29) or (day.month, day.day) <= (1, 3):
        day += timedelta(days=1)
    return day


def _onset(rng: random.Random, r: Resident, d: Disease) -> date:
    """Diagnosed at some point of the last 12 years, and not before a plausible age."""
    min_age = {"J45.9": 3, "J30.4": 5, "F32.9": 18}.get(d.icd10, 30)
    earliest = max(
        AS_OF - timedelta(days=12 * 365), r.birth_date + timedelta(days=int(min_age * 365.25))
    )
    latest = AS_OF - timedelta(days=60)
    return _day_between(rng, earliest, latest)


def _quantity(sig: Sig, days: int) -> tuple[float, str]:
    if sig.as_needed:
        return 10.0, sig.unit
    if sig.weekly:
        return float(max(1, round(days / 7)) * sig.dose), sig.unit
    doses = days * sig.per_day * sig.dose
    if sig.package_unit:
        return float(math.ceil(doses / sig.doses_per_package)), sig.package_unit
    return float(doses), sig.unit


@dataclass(frozen=True)
class Story:
    """The fixed health story of a persona (:data:`phr.demo.people.PERSONAS`)."""

    diseases: tuple[tuple[Disease, date], ...] = ()
    allergies: tuple[str, ...] = ()  # SNOMED codes of ALLERGIES


PERSONA_STORIES: dict[int, Story] = {
    # Retired in 2025 after moving from Tsuchiura in 2021; diabetes found in 2023.
    0: Story(
        (
            (HYPERTENSION, date(2019, 5, 10)),
            (DYSLIPIDEMIA, date(2020, 9, 1)),
            (DIABETES, date(2023, 6, 12)),
        ),
        ("764146007",),
    ),
    # 84: a family doctor and the hospital's cardiology, many medicines.
    1: Story(
        (
            (HYPERTENSION, date(2012, 4, 10)),
            (OSTEOPOROSIS, date(2015, 3, 2)),
            (KNEE_OA, date(2018, 11, 20)),
            (GERD, date(2020, 2, 14)),
            (AF, date(2021, 7, 5)),
            (CKD, date(2022, 9, 1)),
            (HEART_FAILURE, date(2023, 11, 15)),
            (INSOMNIA, date(2024, 2, 1)),
        ),
        ("385420005",),
    ),
    2: Story(),
    3: Story(((DEPRESSION, date(2019, 8, 1)), (INSOMNIA, date(2020, 1, 10)))),
}


def health_of(r: Resident, seed: int, catalogue: Catalogue) -> Health:
    rng = random.Random(f"{seed}:health:{r.index}")
    age = r.age
    family = (
        TAKEZONO
        if (r.district in _NEAR_TAKEZONO and rng.random() < 0.7)
        else (CHUO if rng.random() < 0.75 else TAKEZONO)
    )

    story = PERSONA_STORIES.get(r.index)
    # Allergies first: they change what may be prescribed.
    allergies: list[Allergy] = []
    for kind in ALLERGIES:
        if story is not None:
            if kind.snomed in story.allergies:
                allergies.append(Allergy(kind, CLINIC_FROM, family))
            continue
        if kind.category == "food" and age > 40:
            continue
        if rng.random() < kind.rate:
            allergies.append(Allergy(kind, CLINIC_FROM, family))
    no_nsaids = any(a.kind.snomed == "372665008" for a in allergies)

    # Chronic diseases.
    chosen: list[tuple[Disease, date]] = []
    if story is not None:
        chosen = list(story.diseases)
    else:
        for d in CHRONIC:
            if rng.random() < _prevalence(d, age, r.sex):
                chosen.append((d, _onset(rng, r, d)))
    diagnoses: list[Diagnosis] = []
    for d, onset in chosen:
        clinic = GAKUEN if d.specialist or (d is DIABETES and rng.random() < 0.3) else family
        sigs = list(rng.choice(d.regimens))
        if d.add_ons and rng.random() < d.add_on_rate:
            extra = rng.choice(d.add_ons)
            if extra not in sigs:
                sigs.append(extra)
        if d is AF and age >= 80:
            sigs = [APIXABAN_25 if s is APIXABAN_5 else s for s in sigs]
        if no_nsaids:
            sigs = [ACETAMINOPHEN if s.ingredient in NSAIDS else s for s in sigs]
        diagnoses.append(Diagnosis(d, onset, clinic, sigs))
    # Acute episodes inside the claims window (not in the first months of life).
    acute_from = max(CLAIMS_FROM, r.birth_date + timedelta(days=180))
    acute_to = LAST_DAY - timedelta(days=14)
    for _ in range(rng.choices((0, 1, 2), weights=(6, 3, 1))[0]):
        d = URI if rng.random() < 0.65 or age < 20 else LOW_BACK_PAIN
        onset = _weekday(_day_between(rng, acute_from, acute_to))
        if onset > acute_to:
            continue
        sigs = list(rng.choice(d.regimens))
        if no_nsaids:
            sigs = [ACETAMINOPHEN if s.ingredient in NSAIDS else s for s in sigs]
        sigs = list(dict.fromkeys(sigs))
        resolved = onset + timedelta(days=d.supply_days + rng.randint(0, 7))
        diagnoses.append(Diagnosis(d, onset, family, sigs, resolved=resolved))

    for dx in diagnoses:
        for sig in dx.sigs:
            product = catalogue.pick(sig, rng, prefer_brand=dx.clinic == GAKUEN)
            if product is not None:  # not on the national list: left out, never invented
                dx.products[sig.ingredient] = product

    body = Body(rng, r, diagnoses)
    visits = _visits(rng, r, diagnoses, body)
    if allergies:
        first = min((v.day for v in visits if v.clinic == family), default=None)
        for a in allergies:
            a.recorded = first or CLINIC_FROM
            a.clinic = family
        if first is None:
            allergies = []  # never seen at a clinic: nobody recorded it
    keen = story is not None
    checkups = _checkups(rng, r, body, keen)
    vaccinations = _vaccinations(rng, r, keen)
    disabilities = _disabilities(rng, r, diagnoses, keen)
    return Health(r, diagnoses, visits, allergies, checkups, vaccinations, disabilities)


def _visits(rng: random.Random, r: Resident, diagnoses: list[Diagnosis], body: Body) -> list[Visit]:
    visits: list[Visit] = []
    chronic = [d for d in diagnoses if d.disease.chronic]
    for clinic in (CHUO, TAKEZONO, GAKUEN):
        mine = [d for d in chronic if d.clinic == clinic]
        if not mine:
            continue
        interval = 84 if clinic == GAKUEN else rng.choices((28, 56, 84), weights=(1, 3, 6))[0]
        start = max(CLAIMS_FROM, min(d.onset for d in mine))
        day = _weekday(start + timedelta(days=rng.randrange(14)))
        seen_first = False
        n = 0
        while day <= LAST_DAY:
            active = [d for d in mine if d.onset <= day]
            if active:
                first = not seen_first and any(d.onset >= day - timedelta(days=30) for d in active)
                seen_first = True
                v = Visit(clinic, _clinic_time(rng, day), first, active)
                days = interval
                given: set[str] = set()
                for d in active:
                    for sig in d.sigs:
                        product = d.products.get(sig.ingredient)
                        if product is None or sig.ingredient in given:
                            continue
                        given.add(sig.ingredient)
                        qty, unit = _quantity(sig, days)
                        v.prescriptions.append(Prescription(sig, product, days, qty, unit, d))
                _measure(v, body, r, n, {d.disease.icd10 for d in active})
                visits.append(v)
                n += 1
            day = _weekday(day + timedelta(days=interval + rng.randint(-3, 3)))
    for d in diagnoses:
        if d.disease.chronic:
            continue
        v = Visit(d.clinic, _clinic_time(rng, d.onset), True, [d])
        for sig in d.sigs:
            product = d.products.get(sig.ingredient)
            if product is None:
                continue
            qty, unit = _quantity(sig, d.disease.supply_days)
            v.prescriptions.append(Prescription(sig, product, d.disease.supply_days, qty, unit, d))
        if r.age >= 15:
            v.measurements.append(Measurement("bp", *body.bp(d.onset)))
        visits.append(v)
    visits.sort(key=lambda v: (v.at, v.clinic))
    # The last prescription of each chronic medicine at each clinic is the current one.
    last: dict[tuple[str, str], Prescription] = {}
    for v in visits:
        for p in v.prescriptions:
            if p.diagnosis.disease.chronic:
                last[(v.clinic, p.product.code)] = p
    for p in last.values():
        p.active = True
    return visits


def _measure(v: Visit, body: Body, r: Resident, n: int, codes: set[str]) -> None:
    day = v.day
    if r.age >= 15:
        v.measurements.append(Measurement("bp", *body.bp(day)))
    if r.age >= 18 and n % 3 == 0:
        w = body.weight(day)
        h = r.height_cm / 100
        v.measurements.append(Measurement("weight", w))
        v.measurements.append(Measurement("bmi", round(w / (h * h), 1)))
        if n == 0:
            v.measurements.append(Measurement("height", r.height_cm))
    if "E11.9" in codes:
        v.measurements.append(Measurement("hba1c", body.hba1c(day)))
    if ("E78.5" in codes or "E11.9" in codes) and n % 2 == 0:
        v.measurements.append(Measurement("ldl", body.ldl(day)))
    kidney = {"N18.3", "E11.9", "I10", "I48", "I50.9"} & codes
    if kidney and (n % 3 == 0 or v.clinic == GAKUEN):
        e = body.egfr(day)
        v.measurements.append(Measurement("creatinine", body.creatinine(e, day)))
        v.measurements.append(Measurement("egfr", e))


# ---- checkups ----------------------------------------------------------------------------------

CITY_CHECKUP = {"tsukuba-city": "つくば市 集団健診会場", "tsuchiura-city": "土浦市 集団健診会場"}
KYOKAI_CHECKUP = "健診センターつくば（協会けんぽ委託）"


def city_on(r: Resident, day: date) -> str:
    """Which city the resident lived in on a day."""
    if r.tsuchiura is not None and day < r.tsuchiura.moved_in:
        return "tsuchiura-city"
    return "tsukuba-city"


def _checkups(rng: random.Random, r: Resident, body: Body, keen: bool) -> list[Checkup]:
    out: list[Checkup] = []
    attend = 1.0 if keen else rng.choice((0.9, 0.8, 0.5, 0.2, 0.0))
    month, dom = rng.randint(6, 11), rng.randint(1, 28)
    for fy in range(CHECKUPS_FROM, AS_OF.year + 1):
        day = _weekday(date(fy, month, dom))
        if day > LAST_DAY:
            break
        age = age_at(r.birth_date, day)
        if age < 40 or rng.random() >= attend:
            continue
        cov = r.coverage_on(day)
        if cov is not None and cov.insurer == KYOKAI and age < 75:
            reporter, institution = KYOKAI, KYOKAI_CHECKUP
        elif (cov is not None and cov.insurer == KOKUHO) or age >= 75 or r.tsuchiura:
            reporter = city_on(r, day)
            institution = rng.choice((CITY_CHECKUP[reporter], _family_name(reporter, rng)))
        else:
            continue  # another insurer (before moving): not in the demo's files
        w = body.weight(day)
        h = r.height_cm / 100
        sbp, dbp = body.bp(day)
        a1c = body.hba1c(day)
        egfr = body.egfr(day)
        ast, alt, ggt = body.liver(day)
        values: dict[str, float] = {
            "height_cm": round(r.height_cm + rng.gauss(0, 0.3), 1),
            "weight_kg": w,
            "bmi": round(w / (h * h), 1),
            "waist_cm": body.waist(day),
            "sbp": sbp,
            "dbp": dbp,
            "hba1c_ngsp": a1c,
            "fasting_glucose": body.fasting_glucose(a1c),
            "ldl": body.ldl(day),
            "hdl": body.hdl_value(day),
            "triglycerides": body.triglycerides(day),
            "ast": ast,
            "alt": alt,
            "ggt": ggt,
            "creatinine": body.creatinine(egfr, day),
            "egfr": egfr,
        }
        urine = "-" if egfr >= 55 or rng.random() < 0.6 else rng.choice(("±", "+", "2+"))
        out.append(Checkup(day, reporter, institution, values, urine))
    return out


def _family_name(city: str, rng: random.Random) -> str:
    if city == "tsuchiura-city":
        return "土浦市 個別健診（市内医療機関）"
    return rng.choice(("つくば中央クリニック", "竹園内科医院"))


# ---- vaccinations ------------------------------------------------------------------------------

_PERFORMERS = {
    "tsukuba-city": ("つくば中央クリニック", "竹園内科医院", "つくば学園病院", "みどりの小児科"),
    "tsuchiura-city": ("土浦市 個別接種医療機関", "土浦市 集団接種会場"),
}


def _lot(rng: random.Random) -> str:
    return f"{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}{rng.randint(100, 999)}{rng.choice('ABCDE')}"


def _months(born: date, months: float) -> date:
    return born + timedelta(days=round(months * 30.44))


def _vaccinations(rng: random.Random, r: Resident, keen: bool) -> list[Vaccination]:
    out: list[Vaccination] = []
    born = r.birth_date

    def give(code: str, day: date, dose: int) -> None:
        if day > LAST_DAY or day < born:
            return
        day = _weekday(day)
        if day > LAST_DAY:
            return
        city = city_on(r, day)
        if r.tsuchiura is None and r.moved_in and day < r.moved_in:
            return  # lived elsewhere: another city's register
        out.append(Vaccination(code, day, dose, _lot(rng), rng.choice(_PERFORMERS[city]), city))

    if born >= date(2010, 4, 1):  # the childhood schedule (定期接種)
        jitter = lambda: rng.randint(-7, 21)  # noqa: E731
        for i, m in enumerate((2, 3, 7.5)):
            if born >= date(2016, 4, 1):  # B型肝炎: routine for those born from April 2016
                give("HEPB", _months(born, m) + timedelta(days=jitter()), i + 1)
        if born >= date(2020, 8, 1):  # rotavirus: routine from October 2020
            for i, m in enumerate((2, 3)):
                give("ROTA1", _months(born, m) + timedelta(days=jitter()), i + 1)
        five_in_one = born >= date(2024, 2, 1)
        for i, m in enumerate((2, 3, 4, 13)):
            when = _months(born, m) + timedelta(days=jitter())
            if five_in_one:
                give("DPT-IPV-HIB", when, i + 1)
            else:
                give("HIB", when, i + 1)
                give("DPT-IPV" if born >= date(2012, 9, 1) else "DPT", when, i + 1)
            pcv = (
                "PCV20"
                if when >= date(2024, 10, 1)
                else ("PCV15" if when >= date(2024, 4, 1) else "PCV13")
            )
            give(pcv, when, i + 1)
        give("BCG", _months(born, 6) + timedelta(days=jitter()), 1)
        give("MR", _months(born, 12) + timedelta(days=jitter()), 1)
        give("MR", _months(born, 66) + timedelta(days=jitter()), 2)
        if born >= date(2013, 10, 1):  # varicella: routine from October 2014
            give("VAR", _months(born, 12) + timedelta(days=jitter()), 1)
            give("VAR", _months(born, 18) + timedelta(days=jitter()), 2)
        for i, m in enumerate((36, 37, 48, 108)):
            give("JE", _months(born, m) + timedelta(days=jitter()), i + 1)
        give("DT", _months(born, 132) + timedelta(days=jitter()), 1)
        if r.sex == "F" and rng.random() < 0.5:
            start = max(_months(born, 150), date(2022, 4, 1))  # proactive HPV offer resumed
            for i, m in enumerate((0, 2, 6)):
                give(
                    "HPV9" if start >= date(2023, 4, 1) else "HPV4",
                    start + timedelta(days=round(m * 30.44)),
                    i + 1,
                )

    # Older adults: seasonal influenza (B類, 65+), pneumococcus at 65, shingles from 2025.
    flu_rate = 1.0 if keen else rng.choice((0.85, 0.6, 0.2))
    for season in range(2018, AS_OF.year):
        day = date(season, rng.randint(10, 12), rng.randint(1, 28))
        if age_at(born, day) >= 65 and rng.random() < flu_rate:
            give("FLU", day, 1)
    at65 = date(born.year + 65, born.month, min(born.day, 28))
    if date(2018, 4, 1) <= at65 <= LAST_DAY and rng.random() < 0.4:
        give("PPSV23", at65 + timedelta(days=rng.randint(30, 300)), 1)
    if age_at(born, date(2025, 4, 1)) >= 65 and rng.random() < 0.2:
        day = date(2025, 4, 1) + timedelta(days=rng.randint(0, 300))
        give("HZ-RZV", day, 1)
        give("HZ-RZV", day + timedelta(days=rng.randint(60, 90)), 2)
    # 風しん第5期: men born 1962-04-02 .. 1979-04-01, 2019-2025.
    if r.sex == "M" and date(1962, 4, 2) <= born <= date(1979, 4, 1) and rng.random() < 0.12:
        give("MR", date(2019, 6, 1) + timedelta(days=rng.randint(0, 5 * 365)), 1)
    # COVID-19: 2021 primary series, 2022 booster, then autumn doses for 65+ (定期接種 2024-).
    if age_at(born, date(2021, 6, 1)) >= 12 and (rng.random() < 0.8 or keen):
        d1 = date(2021, 5, 10) + timedelta(days=rng.randint(0, 120))
        give("COVID19", d1, 1)
        give("COVID19", d1 + timedelta(days=21), 2)
        if rng.random() < 0.75 or keen:
            give("COVID19", date(2022, 1, 15) + timedelta(days=rng.randint(0, 150)), 3)
            dose = 4
            for autumn in (2023, 2024, 2025):
                if age_at(born, date(autumn, 10, 1)) >= 65 and rng.random() < 0.5:
                    give("COVID19", date(autumn, 10, 1) + timedelta(days=rng.randint(0, 70)), dose)
                    dose += 1
    out.sort(key=lambda v: (v.day, v.code))
    # One record per vaccine and day.
    seen: set[tuple[str, date]] = set()
    unique = []
    for v in out:
        if (v.code, v.day) not in seen:
            seen.add((v.code, v.day))
            unique.append(v)
    return unique


# ---- disability certificates -------------------------------------------------------------------


def _disabilities(
    rng: random.Random, r: Resident, diagnoses: list[Diagnosis], keen: bool
) -> list[Disability]:
    out: list[Disability] = []
    codes = {d.disease.icd10: d for d in diagnoses}
    age = r.age
    if "I50.9" in codes and rng.random() < 0.5:
        issued = codes["I50.9"].onset + timedelta(days=rng.randint(60, 300))
        if issued < LAST_DAY:
            out.append(Disability("physical", rng.choice(("3", "4")), "心臓機能障害", issued, None))
    elif age >= 65 and rng.random() < 0.04:
        what, grade = rng.choice(
            (
                ("肢体不自由（下肢）", "4"),
                ("聴覚障害", "6"),
                ("視覚障害", "5"),
                ("肢体不自由（体幹）", "3"),
            )
        )
        issued = _day_between(rng, AS_OF - timedelta(days=3650), LAST_DAY)
        out.append(Disability("physical", grade, what, issued, None))
    if "F32.9" in codes and (rng.random() < 0.2 or keen):
        # 精神障害者保健福祉手帳: valid two years; the register holds the current one.
        issued = _day_between(rng, AS_OF - timedelta(days=700), LAST_DAY)
        out.append(
            Disability(
                "mental",
                rng.choice(("2", "3")),
                "気分障害（うつ病）",
                issued,
                issued + timedelta(days=730) - timedelta(days=1),
            )
        )
    if rng.random() < 0.008:
        issued = min(LAST_DAY, max(r.birth_date + timedelta(days=3 * 365), date(2000, 4, 1)))
        out.append(
            Disability(
                "intellectual", rng.choice(("A", "B", "C", "maruA")), "知的障害", issued, None
            )
        )
    return out
