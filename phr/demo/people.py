"""Synthetic residents of Tsukuba: names, sex, birth dates, addresses, My Numbers, insurance.

Everything is drawn from a ``random.Random`` seeded per resident (``f"{seed}:{index}"``),
so resident *i* is the same person whatever the total count. No real person is meant:
names are combinations of common surnames and given names, house numbers are random,
My Numbers are random 11-digit bodies with the check digit of the 総務省令.

Postal codes are those of the district (大字/町名) as far as known; the data is synthetic
and no address is meant to be deliverable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

__all__ = [
    "AS_OF",
    "PERSONAS",
    "Coverage",
    "Persona",
    "Resident",
    "Tsuchiura",
    "age_at",
    "generate_residents",
    "mynumber_check_digit",
]

# The demo city's "today": fixed, so that the same seed gives the same city on any day.
AS_OF = date(2026, 10, 1)

# ---- names -------------------------------------------------------------------------------------

# Common surnames (nationwide frequency, plus names frequent in Ibaraki), kanji and reading.
SURNAMES: tuple[tuple[str, str], ...] = (
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
    ("吉田", "ヨシダ"),
    ("山田", "ヤマダ"),
    ("佐々木", "ササキ"),
    ("山口", "ヤマグチ"),
    ("松本", "マツモト"),
    ("井上", "イノウエ"),
    ("木村", "キムラ"),
    ("林", "ハヤシ"),
    ("斎藤", "サイトウ"),
    ("清水", "シミズ"),
    ("山崎", "ヤマザキ"),
    ("森", "モリ"),
    ("池田", "イケダ"),
    ("橋本", "ハシモト"),
    ("阿部", "アベ"),
    ("石川", "イシカワ"),
    ("中島", "ナカジマ"),
    ("石井", "イシイ"),
    ("小川", "オガワ"),
    ("岡田", "オカダ"),
    ("長谷川", "ハセガワ"),
    ("藤田", "フジタ"),
    ("後藤", "ゴトウ"),
    ("近藤", "コンドウ"),
    ("青木", "アオキ"),
    ("坂本", "サカモト"),
    ("飯塚", "イイヅカ"),
    ("根本", "ネモト"),
    ("菊池", "キクチ"),
    ("海老原", "エビハラ"),
    ("小松崎", "コマツザキ"),
    ("大和田", "オオワダ"),
    ("野口", "ノグチ"),
    ("塚本", "ツカモト"),
    ("飯田", "イイダ"),
    ("中山", "ナカヤマ"),
    ("宮本", "ミヤモト"),
    ("倉持", "クラモチ"),
    ("大塚", "オオツカ"),
    ("川又", "カワマタ"),
)

# Given names by the decade they were common in: (kanji, reading).
_MALE: dict[int, tuple[tuple[str, str], ...]] = {
    1930: (
        ("清", "キヨシ"),
        ("茂", "シゲル"),
        ("勇", "イサム"),
        ("実", "ミノル"),
        ("進", "ススム"),
        ("正", "タダシ"),
        ("博", "ヒロシ"),
        ("弘", "ヒロシ"),
        ("三郎", "サブロウ"),
        ("武", "タケシ"),
    ),
    1950: (
        ("和夫", "カズオ"),
        ("隆", "タカシ"),
        ("誠", "マコト"),
        ("修", "オサム"),
        ("明", "アキラ"),
        ("豊", "ユタカ"),
        ("幸男", "ユキオ"),
        ("健", "ケン"),
        ("勝", "マサル"),
        ("正人", "マサト"),
    ),
    1970: (
        ("健一", "ケンイチ"),
        ("浩", "ヒロシ"),
        ("大輔", "ダイスケ"),
        ("誠", "マコト"),
        ("直樹", "ナオキ"),
        ("剛", "ツヨシ"),
        ("哲也", "テツヤ"),
        ("秀樹", "ヒデキ"),
        ("和也", "カズヤ"),
        ("拓也", "タクヤ"),
    ),
    1990: (
        ("翔太", "ショウタ"),
        ("大輝", "ダイキ"),
        ("拓海", "タクミ"),
        ("健太", "ケンタ"),
        ("翔", "ショウ"),
        ("達也", "タツヤ"),
        ("亮", "リョウ"),
        ("大樹", "ダイキ"),
        ("雄大", "ユウダイ"),
        ("優斗", "ユウト"),
    ),
    2010: (
        ("蓮", "レン"),
        ("陽翔", "ハルト"),
        ("悠真", "ユウマ"),
        ("湊", "ミナト"),
        ("大和", "ヤマト"),
        ("颯太", "ソウタ"),
        ("陽向", "ヒナタ"),
        ("樹", "イツキ"),
        ("朝陽", "アサヒ"),
        ("律", "リツ"),
    ),
}
_FEMALE: dict[int, tuple[tuple[str, str], ...]] = {
    1930: (
        ("和子", "カズコ"),
        ("幸子", "サチコ"),
        ("節子", "セツコ"),
        ("久子", "ヒサコ"),
        ("美代子", "ミヨコ"),
        ("文子", "フミコ"),
        ("静江", "シズエ"),
        ("ハル", "ハル"),
        ("キヨ", "キヨ"),
        ("トミ", "トミ"),
    ),
    1950: (
        ("洋子", "ヨウコ"),
        ("恵子", "ケイコ"),
        ("京子", "キョウコ"),
        ("和子", "カズコ"),
        ("幸子", "サチコ"),
        ("悦子", "エツコ"),
        ("順子", "ジュンコ"),
        ("典子", "ノリコ"),
        ("明美", "アケミ"),
        ("由美子", "ユミコ"),
    ),
    1970: (
        ("裕子", "ユウコ"),
        ("真由美", "マユミ"),
        ("久美子", "クミコ"),
        ("直美", "ナオミ"),
        ("智子", "トモコ"),
        ("陽子", "ヨウコ"),
        ("恵美", "エミ"),
        ("香織", "カオリ"),
        ("愛", "アイ"),
        ("明子", "アキコ"),
    ),
    1990: (
        ("美咲", "ミサキ"),
        ("彩", "アヤ"),
        ("愛", "アイ"),
        ("舞", "マイ"),
        ("沙織", "サオリ"),
        ("麻衣", "マイ"),
        ("千尋", "チヒロ"),
        ("遥", "ハルカ"),
        ("奈々", "ナナ"),
        ("萌", "モエ"),
    ),
    2010: (
        ("陽菜", "ヒナ"),
        ("結衣", "ユイ"),
        ("葵", "アオイ"),
        ("さくら", "サクラ"),
        ("結愛", "ユア"),
        ("凛", "リン"),
        ("芽依", "メイ"),
        ("紬", "ツムギ"),
        ("陽葵", "ヒマリ"),
        ("澪", "ミオ"),
    ),
}


def _given_names(sex: str, birth_year: int) -> tuple[tuple[str, str], ...]:
    table = _MALE if sex == "M" else _FEMALE
    era = max(k for k in table if k <= max(birth_year, 1930)) if birth_year >= 1930 else 1930
    return table[era]


# ---- addresses ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class District:
    name: str  # 町名 or 大字
    postal_code: str
    chome: int  # number of 丁目 (0: an 大字 with 番地 only)
    weight: float  # share of the demo's residents


# つくば市 (全国地方公共団体コード 08220). Weights roughly follow where people live: the
# research-town centre and the Tsukuba Express towns more than the old villages.
DISTRICTS: tuple[District, ...] = (
    District("吾妻", "305-0031", 4, 8),
    District("竹園", "305-0032", 3, 8),
    District("天久保", "305-0005", 4, 7),
    District("並木", "305-0044", 4, 7),
    District("松代", "305-0035", 5, 7),
    District("春日", "305-0821", 4, 6),
    District("研究学園", "305-0817", 7, 10),
    District("みどりの", "305-0881", 2, 8),
    District("谷田部", "305-0861", 0, 8),
    District("桜", "305-0003", 3, 5),
    District("小野川", "305-0053", 0, 4),
    District("大穂", "300-3256", 0, 3),
    District("上郷", "300-2645", 0, 4),  # 豊里地区 (there is no 大字 豊里)
    District("筑波", "300-4352", 0, 4),
    District("茎崎", "300-1211", 0, 5),
)

# 土浦市 (08203), where some residents lived before moving to Tsukuba.
TSUCHIURA_DISTRICTS: tuple[District, ...] = (
    District("桜町", "300-0037", 4, 1),
    District("大和町", "300-0036", 0, 1),
    District("真鍋", "300-0051", 6, 1),
    District("荒川沖東", "300-0873", 3, 1),
    District("神立町", "300-0011", 0, 1),
)


def _street(rng: random.Random, d: District) -> str:
    if d.chome:
        return f"{d.name}{rng.randint(1, d.chome)}丁目{rng.randint(1, 30)}番{rng.randint(1, 20)}号"
    return f"{d.name}{rng.randint(1, 4999)}番地{rng.randint(1, 9)}"


# ---- identifiers -------------------------------------------------------------------------------


def mynumber_check_digit(body: str) -> int:
    """Check digit of a 12-digit 個人番号 from its first 11 digits (総務省令 第五条)."""
    if len(body) != 11 or not body.isdigit():
        raise ValueError("the body of a My Number is 11 digits")
    total = 0
    for n in range(1, 12):
        p = int(body[11 - n])  # the nth digit from the right
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    rem = total % 11
    return 0 if rem <= 1 else 11 - rem


def _mynumber(rng: random.Random) -> str:
    body = f"{rng.randint(1, 9)}{rng.randrange(10**10):010d}"
    return body + str(mynumber_check_digit(body))


# ---- insurance ---------------------------------------------------------------------------------

KYOKAI = "kyokai-ibaraki"
KOKUHO = "tsukuba-kokuho"
INSURER_NUMBERS = {KYOKAI: "01080016", KOKUHO: "083220"}


@dataclass(frozen=True)
class Coverage:
    """One period of health insurance (資格): insurer, insured-person number, dates."""

    insurer: str  # organisation id
    insured_number: str  # 記号-番号-枝番
    start: date  # 資格取得日
    end: date | None = None  # 資格喪失日 (None: current)

    @property
    def insurer_number(self) -> str:
        return INSURER_NUMBERS[self.insurer]

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)


@dataclass(frozen=True)
class Tsuchiura:
    """Where a resident lived in 土浦市 before moving in."""

    postal_code: str
    address: str
    moved_in: date  # 転入日 (to Tsukuba)


@dataclass
class Resident:
    index: int
    key: str  # stable demo key, e.g. "R00042"
    family: str
    given: str
    family_kana: str
    given_kana: str
    sex: str  # M | F
    birth_date: date
    mynumber: str
    postal_code: str
    address: str
    district: str
    height_cm: float
    coverages: list[Coverage] = field(default_factory=list)
    tsuchiura: Tsuchiura | None = None
    # Tsukuba residence start: birth, moving in from Tsuchiura, or an earlier move.
    moved_in: date | None = None

    @property
    def gender(self) -> str:
        return "male" if self.sex == "M" else "female"

    @property
    def name(self) -> str:
        return f"{self.family} {self.given}"

    @property
    def kana(self) -> str:
        return f"{self.family_kana} {self.given_kana}"

    @property
    def age(self) -> int:
        return age_at(self.birth_date, AS_OF)

    def coverage_on(self, day: date) -> Coverage | None:
        for c in self.coverages:
            if c.covers(day):
                return c
        return None

    @property
    def changed_insurer(self) -> bool:
        return len({c.insurer for c in self.coverages}) > 1


def age_at(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


# Age bands (low, high, weight): an ageing population (about 30 % aged 65 and over).
AGE_BANDS: tuple[tuple[int, int, float], ...] = (
    (0, 5, 4.5),
    (6, 14, 7.5),
    (15, 19, 4),
    (20, 29, 9),
    (30, 39, 10.5),
    (40, 49, 12),
    (50, 59, 12.5),
    (60, 64, 7),
    (65, 69, 8),
    (70, 74, 9),
    (75, 79, 7.5),
    (80, 84, 5),
    (85, 89, 3),
    (90, 99, 1.5),
)


def _birth_date(rng: random.Random) -> date:
    lo, hi, _ = rng.choices(AGE_BANDS, weights=[b[2] for b in AGE_BANDS])[0]
    age = rng.randint(lo, hi)
    latest = AS_OF.replace(year=AS_OF.year - age)
    return latest - timedelta(days=rng.randrange(365))


def _height(rng: random.Random, sex: str, age: int) -> float:
    if age < 18:
        base = 50 + age * 6.2 if age < 12 else 125 + (age - 12) * (6 if sex == "M" else 3.5)
        return round(min(base, 171 if sex == "M" else 158) + rng.gauss(0, 3), 1)
    mean = 171.5 if sex == "M" else 158.0
    mean -= max(0, age - 50) * 0.12  # older generations were shorter
    return round(rng.gauss(mean, 5.5), 1)


def _insured_number(insurer: str, index: int, branch: int) -> str:
    if insurer == KYOKAI:
        employer = 5010000 + (index * 37) % 9000
        return f"{employer}-{100 + index}-{branch:02d}"
    return f"つ{22 + index % 7}-{300000 + index}-{branch:02d}"


def _coverages(rng: random.Random, index: int, born: date, moved_in: date | None) -> list[Coverage]:
    """Insurance history. Retirees leave 協会けんぽ for 国保 (資格異動); 75+ stay in 国保
    here (the demo has no 後期高齢者医療広域連合). つくば市国保 starts no earlier than the
    move to Tsukuba (before it, the person was in another city's 国保, not in the demo);
    協会けんぽ茨城支部 covers both cities."""
    cov = _coverage_history(rng, index, born)
    if moved_in is None:
        return cov
    out = []
    for c in cov:
        if c.insurer == KOKUHO and c.start < moved_in:
            c = Coverage(c.insurer, c.insured_number, moved_in, c.end)
        if c.end is None or c.start < c.end:
            out.append(c)
    return out


def _coverage_history(rng: random.Random, index: int, born: date) -> list[Coverage]:
    age = age_at(born, AS_OF)
    from_birth = max(born, date(2010, 4, 1))
    if age < 20:
        insurer = KYOKAI if rng.random() < 0.6 else KOKUHO
        return [Coverage(insurer, _insured_number(insurer, index, rng.randint(1, 3)), from_birth)]
    if age < 60:
        insurer = KYOKAI if rng.random() < 0.65 else KOKUHO
        start = date(2010 + rng.randint(0, 12), rng.randint(1, 12), 1)
        return [Coverage(insurer, _insured_number(insurer, index, 0), max(start, born))]
    # 60 and over: some retired from a company (協会けんぽ) into 国保 during the record.
    retire_age = rng.randint(60, 65)
    retired_on = date(born.year + retire_age, born.month, 1)
    if rng.random() < 0.45 and date(2022, 4, 1) <= retired_on <= date(2026, 4, 1):
        kyokai = Coverage(KYOKAI, _insured_number(KYOKAI, index, 0), date(2010, 4, 1), retired_on)
        kokuho = Coverage(KOKUHO, _insured_number(KOKUHO, index, 0), retired_on)
        return [kyokai, kokuho]
    return [Coverage(KOKUHO, _insured_number(KOKUHO, index, 0), date(2010, 4, 1))]


@dataclass(frozen=True)
class Persona:
    """A resident whose story the demo guarantees, whatever the seed (the first few)."""

    birth_date: date
    sex: str
    note: str
    moved_from_tsuchiura: date | None = None
    retired: date | None = None  # 協会けんぽ -> つくば市国保 on this day
    insurer: str = KOKUHO


PERSONAS: dict[int, Persona] = {
    0: Persona(
        date(1960, 6, 18),
        "M",
        "moved from Tsuchiura, then retired: changed insurer",
        moved_from_tsuchiura=date(2021, 10, 15),
        retired=date(2025, 4, 1),
    ),
    1: Persona(date(1942, 2, 3), "F", "many conditions, two prescribers: polypharmacy"),
    2: Persona(
        date(2023, 5, 20), "F", "young child: the routine vaccination schedule", insurer=KYOKAI
    ),
    3: Persona(date(1981, 9, 9), "M", "depression with a disability certificate", insurer=KYOKAI),
}


def _resident(seed: int, index: int) -> Resident:
    rng = random.Random(f"{seed}:resident:{index}")
    persona = PERSONAS.get(index)
    sex = "M" if rng.random() < 0.495 else "F"
    born = _birth_date(rng)
    if persona is not None:
        sex, born = persona.sex, persona.birth_date
    family, family_kana = rng.choice(SURNAMES)
    given, given_kana = rng.choice(_given_names(sex, born.year))
    d = rng.choices(DISTRICTS, weights=[x.weight for x in DISTRICTS])[0]
    address = f"茨城県つくば市{_street(rng, d)}"
    age = age_at(born, AS_OF)
    r = Resident(
        index=index,
        key=f"R{index + 1:05d}",
        family=family,
        given=given,
        family_kana=family_kana,
        given_kana=given_kana,
        sex=sex,
        birth_date=born,
        mynumber=_mynumber(rng),
        postal_code=d.postal_code,
        address=address,
        district=d.name,
        height_cm=_height(rng, sex, age),
    )
    # About one in eight adults moved in from Tsuchiura between 2019 and 2025.
    if age >= 20 and rng.random() < 0.125:
        t = rng.choice(TSUCHIURA_DISTRICTS)
        moved = date(2019, 1, 1) + timedelta(days=rng.randrange(6 * 365))
        r.tsuchiura = Tsuchiura(t.postal_code, f"茨城県土浦市{_street(rng, t)}", moved)
        r.moved_in = moved
    elif age >= 20 and rng.random() < 0.3:
        r.moved_in = date(1990, 4, 1) + timedelta(days=rng.randrange(25 * 365))
        r.moved_in = max(r.moved_in, born + timedelta(days=18 * 365))
    r.coverages = _coverages(rng, index, born, r.tsuchiura.moved_in if r.tsuchiura else None)
    if persona is not None:
        _apply_persona(rng, r, persona)
    return r


def _apply_persona(rng: random.Random, r: Resident, p: Persona) -> None:
    r.tsuchiura, r.moved_in = None, None
    if p.moved_from_tsuchiura is not None:
        t = TSUCHIURA_DISTRICTS[0]
        r.tsuchiura = Tsuchiura(
            t.postal_code, f"茨城県土浦市{_street(rng, t)}", p.moved_from_tsuchiura
        )
        r.moved_in = p.moved_from_tsuchiura
    start = max(r.birth_date, date(2010, 4, 1))
    if p.retired is not None:
        r.coverages = [
            Coverage(KYOKAI, _insured_number(KYOKAI, r.index, 0), start, p.retired),
            Coverage(KOKUHO, _insured_number(KOKUHO, r.index, 0), p.retired),
        ]
    else:
        branch = 1 if r.age < 20 else 0
        r.coverages = [Coverage(p.insurer, _insured_number(p.insurer, r.index, branch), start)]


def generate_residents(seed: int, count: int) -> list[Resident]:
    """``count`` residents; My Numbers are unique (a rare clash is redrawn)."""
    out: list[Resident] = []
    seen: set[str] = set()
    for i in range(count):
        r = _resident(seed, i)
        redraw = random.Random(f"{seed}:mynumber:{i}")
        while r.mynumber in seen:
            r.mynumber = _mynumber(redraw)
        seen.add(r.mynumber)
        out.append(r)
    return out
