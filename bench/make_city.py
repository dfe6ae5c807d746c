"""Generate a synthetic Tsukuba (つくば市, ~260,000 residents) into PostgreSQL, fast.

Every resident gets a Patient and, depending on age and sex, chronic conditions, their
medicines (MedicationRequest + MedicationDispense every prescription cycle, coded with
real 薬価基準収載医薬品コード from the MHLW drug list), yearly checkup Observations
(blood pressure, HbA1c, LDL cholesterol, eGFR, BMI, weight), vaccinations, and for some
an emergency pre-consent and an advance care plan (ACP).

Writing: the records of one batch of residents are written in one transaction through
the gateway's own write path, :func:`fhir_gateway.ingest.store_records` (which calls
:func:`phr.store.repository.put_many`: the same resident key, index rows, versions and
source rows as any import; on PostgreSQL put_many writes versions and index rows with
COPY). ``--workers`` processes write batches in parallel. Consents and ACPs go through
their own services (:mod:`consent.policy.service`, :mod:`phr.acp.service`). All records
are contributed by one organisation, ``bench-hospital`` (what ``bench/fhir_api.py
--load none`` and ``bench/bulk_export.py --load none`` expect).

The database's ``public`` schema is DROPPED and re-migrated first.

    python bench/make_city.py --scale 0.1 --database-url postgresql+psycopg://...
    python bench/make_city.py --residents 2000 --workers 2 --seed 7

Deterministic: resident *i* of seed *s* is the same person (same ids, same records)
whatever the total count or the number of workers.

Sources and assumptions
-----------------------
* Age structure: shaped on つくば市 (08220) in the 2020 census (総務省「令和2年国勢調査
  人口等基本集計」: 241,656 inhabitants; a young research and university city, about
  15 % under 15 and about 20 % aged 65 and over, with a student bulge at 20-24). The
  five-year shares in ``AGE_BANDS`` are our approximation of that profile, not figures
  transcribed from the table; for exact shares use e-Stat 「令和2年国勢調査 小地域集計
  第3表 男女,年齢(5歳階級)別人口」 for つくば市. The 2020 profile is applied to the
  generator's "today" (``phr.demo.people.AS_OF``, 2026-10-01).
* Sex: men slightly more numerous below 60 (students, researchers), women the majority
  from 75 (longer life expectancy): ``male_share`` (assumption of the same order as the
  census ratio).
* Chronic conditions, prevalence by age and sex and their regimens: the demo city's
  model (:func:`phr.demo.clinical._prevalence`, ``CHRONIC``: rough Japanese figures of
  国民健康・栄養調査 and 患者調査, orders of magnitude, not epidemiology).
* Checkup attendance: 特定健診 (40-74) 56 % a year (厚生労働省「2021年度 特定健康診査・
  特定保健指導の実施状況」: 56.5 %); 75+ 25 % (後期高齢者健診, assumption of the same
  order); 20-39 50 % (workplace checkups, assumption).
* Checkup values: a personal baseline drifting with age, raised by the matching untreated
  disease and lowered once treated (assumption; the flags follow the 特定保健指導判定値
  in :mod:`fhir_gateway.sources.codes`). eGFR falls about 1 mL/min/1.73 m2 a year of age
  after 20 (the usual textbook figure).
* Vaccinations: the routine childhood schedule of 予防接種法 (as in
  :data:`fhir_gateway.sources.codes.VACCINES`), influenza each autumn (65+ 50 %, others
  25 %; assumption), COVID-19 2021-2024 and pneumococcal PPSV23 at 65 (assumption).
* Emergency pre-consent: 20 % of residents 65+ and 5 % of other adults; ACP: 12 % of
  residents 75+ and 4 % of those 65-74 (assumptions; 厚生労働省「人生の最終段階における
  医療・ケアに関する意識調査」(2022) finds a few percent with a written plan).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fhir_gateway.identity import mrn_system  # noqa: E402
from fhir_gateway.ingest import SourceRecord  # noqa: E402
from fhir_gateway.sources import codes  # noqa: E402
from phr.demo import clinical  # noqa: E402
from phr.demo.bundles import dosage_instruction  # noqa: E402
from phr.demo.drugs import DRUG_CODE_SYSTEM, Catalogue, Sig  # noqa: E402
from phr.demo.people import AS_OF, DISTRICTS, SURNAMES, _given_names  # noqa: E402

ORG = "bench-hospital"
TSUKUBA = 260_000
FIRST_DAY = date(2021, 4, 1)  # fiscal 2021: the first year of records
JST = timezone(timedelta(hours=9))
NS = uuid.UUID("0d7c7a52-3f5e-4a8e-9d0e-8a1b2c3d4e5f")  # make_city's UUID namespace

# (low, high, share %) — see "Sources and assumptions" above.
AGE_BANDS: tuple[tuple[int, int, float], ...] = (
    (0, 4, 4.9),
    (5, 9, 5.3),
    (10, 14, 5.0),
    (15, 19, 5.0),
    (20, 24, 8.0),
    (25, 29, 6.8),
    (30, 34, 6.6),
    (35, 39, 7.0),
    (40, 44, 7.4),
    (45, 49, 7.6),
    (50, 54, 6.4),
    (55, 59, 5.3),
    (60, 64, 4.9),
    (65, 69, 5.3),
    (70, 74, 5.8),
    (75, 79, 4.0),
    (80, 84, 2.8),
    (85, 89, 1.7),
    (90, 99, 0.9),
)

MEASURE = {m.column: m for m in codes.MEASURES}
LDL_LOINC = ("18262-6", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay")
EGFR_LOINC = ("33914-3", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area]")
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")

# Childhood schedule: (vaccine code, age in months of each dose), 予防接種法 定期接種.
CHILD_SCHEDULE: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("HIB", (2, 3, 4, 12)),
    ("PCV13", (2, 3, 4, 12)),
    ("HEPB", (2, 3, 8)),
    ("ROTA1", (2, 3)),
    ("DPT-IPV", (3, 4, 5, 18)),
    ("BCG", (5,)),
    ("MR", (12, 66)),
    ("VAR", (12, 18)),
    ("JE", (36, 37, 48)),
)


def male_share(age: int) -> float:
    return 0.515 if age < 60 else 0.48 if age < 75 else 0.42


# ---- one resident ----------------------------------------------------------------------------


@dataclass
class Person:
    index: int
    id: str
    sex: str  # M | F
    birth_date: date
    records: list[tuple[SourceRecord, str]] = field(default_factory=list)  # (record, id)
    emergency_consent: bool = False
    acp: bool = False

    @property
    def age(self) -> int:
        b = self.birth_date
        return AS_OF.year - b.year - ((AS_OF.month, AS_OF.day) < (b.month, b.day))


class _Ids:
    def __init__(self, seed: int, index: int) -> None:
        self.prefix = f"{seed}:{index}"
        self.n = 0

    def __call__(self, kind: str) -> str:
        self.n += 1
        return str(uuid.uuid5(NS, f"{self.prefix}:{kind}:{self.n}"))


def resident_id(seed: int, index: int) -> str:
    return str(uuid.uuid5(NS, f"{seed}:{index}"))


def _day(rng: random.Random, a: date, b: date) -> date:
    return a + timedelta(days=rng.randrange(max(1, (b - a).days)))


def _at(rng: random.Random, d: date) -> str:
    return datetime(
        d.year, d.month, d.day, rng.randint(9, 16), rng.choice((0, 15, 30, 45)), 0, tzinfo=JST
    ).isoformat()


def _add(p: Person, ids: _Ids, resource: dict[str, Any]) -> str:
    rid = ids(resource["resourceType"])
    p.records.append((SourceRecord(f"{resource['resourceType']}:{rid}", resource), rid))
    return rid


def generate_person(seed: int, index: int, catalogue: Catalogue) -> Person:
    """Resident ``index`` of the city of ``seed``: the same person on every run."""
    rng = random.Random(f"city:{seed}:{index}")
    lo, hi, _ = rng.choices(AGE_BANDS, weights=[b[2] for b in AGE_BANDS])[0]
    age = rng.randint(lo, hi)
    sex = "M" if rng.random() < male_share(age) else "F"
    born = AS_OF.replace(year=AS_OF.year - age) - timedelta(days=rng.randrange(365))
    p = Person(index, resident_id(seed, index), sex, born)
    ids = _Ids(seed, index)
    ref = {"reference": f"Patient/{p.id}"}
    p.records.append((SourceRecord(f"Patient:{p.id}", _patient(rng, p, seed)), p.id))
    diagnoses = _conditions(rng, p, ids, ref)
    _medicines(rng, p, ids, ref, diagnoses, catalogue)
    _checkups(rng, p, ids, ref, diagnoses)
    _vaccinations(rng, p, ids, ref)
    adult, old = p.age >= 20, p.age >= 65
    p.emergency_consent = adult and rng.random() < (0.20 if old else 0.05)
    p.acp = rng.random() < (0.12 if p.age >= 75 else 0.04 if old else 0.0)
    return p


def _patient(rng: random.Random, p: Person, seed: int) -> dict[str, Any]:
    family, family_kana = rng.choice(SURNAMES)
    given, given_kana = rng.choice(_given_names(p.sex, p.birth_date.year))
    d = rng.choices(DISTRICTS, weights=[x.weight for x in DISTRICTS])[0]
    street = (
        f"{d.name}{rng.randint(1, d.chome)}丁目{rng.randint(1, 30)}番{rng.randint(1, 20)}号"
        if d.chome
        else f"{d.name}{rng.randint(1, 4999)}番地"
    )
    return {
        "resourceType": "Patient",
        "identifier": [{"system": mrn_system(ORG), "value": f"C{seed}-{p.index:07d}"}],
        "name": [
            {"use": "official", "text": f"{family} {given}", "family": family, "given": [given]},
            {
                "use": "usual",
                "text": f"{family_kana} {given_kana}",
                "family": family_kana,
                "given": [given_kana],
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation",
                        "valueCode": "SYL",
                    }
                ],
            },
        ],
        "gender": "male" if p.sex == "M" else "female",
        "birthDate": p.birth_date.isoformat(),
        "address": [
            {
                "use": "home",
                "text": f"茨城県つくば市{street}",
                "line": [street],
                "city": "つくば市",
                "state": "茨城県",
                "postalCode": d.postal_code,
                "country": "JP",
            }
        ],
    }


@dataclass
class Dx:
    disease: clinical.Disease
    onset: date
    condition_id: str


def _conditions(rng: random.Random, p: Person, ids: _Ids, ref: dict[str, str]) -> list[Dx]:
    out = []
    for d in clinical.CHRONIC:
        if rng.random() >= clinical._prevalence(d, p.age, p.sex):
            continue
        min_age = {"J45.9": 3, "J30.4": 5, "F32.9": 18}.get(d.icd10, 30)
        earliest = max(
            AS_OF - timedelta(days=12 * 365), p.birth_date + timedelta(days=int(min_age * 365.25))
        )
        onset = _day(rng, earliest, AS_OF - timedelta(days=60))
        cond = {
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{"system": codes.CONDITION_CLINICAL, "code": "active"}]},
            "verificationStatus": {
                "coding": [{"system": codes.CONDITION_VERIFICATION, "code": "confirmed"}]
            },
            "category": [
                {"coding": [{"system": codes.CONDITION_CATEGORY, "code": "problem-list-item"}]}
            ],
            "code": {
                "coding": [{"system": codes.ICD10, "code": d.icd10, "display": d.display}],
                "text": d.display,
            },
            "subject": ref,
            "onsetDateTime": onset.isoformat(),
            "recordedDate": max(onset, FIRST_DAY).isoformat(),
        }
        out.append(Dx(d, onset, _add(p, ids, cond)))
    return out


def _medicines(
    rng: random.Random,
    p: Person,
    ids: _Ids,
    ref: dict[str, str],
    dxs: list[Dx],
    catalogue: Catalogue,
) -> None:
    for dx in dxs:
        for sig in rng.choice(dx.disease.regimens):
            product = catalogue.pick(sig, rng, prefer_brand=rng.random() < 0.3)
            if product is None:
                continue  # not on the national list: left out, never invented
            days = rng.choice((28, 28, 56, 84, 90))
            day = max(dx.onset, FIRST_DAY) + timedelta(days=rng.randrange(days))
            while day < AS_OF - timedelta(days=3):
                nxt = day + timedelta(days=days + rng.randint(0, 10))
                qty, unit = clinical._quantity(sig, days)
                coded = {
                    "coding": [
                        {"system": DRUG_CODE_SYSTEM, "code": product.code, "display": product.name}
                    ],
                    "text": product.name,
                }
                mr_id = _add(
                    p,
                    ids,
                    _medication_request(
                        sig, coded, ref, dx, _at(rng, day), qty, unit, days, nxt >= AS_OF
                    ),
                )
                _add(
                    p,
                    ids,
                    {
                        "resourceType": "MedicationDispense",
                        "status": "completed",
                        "medicationCodeableConcept": coded,
                        "subject": ref,
                        "authorizingPrescription": [{"reference": f"MedicationRequest/{mr_id}"}],
                        "quantity": {"value": qty, "unit": unit},
                        "daysSupply": {
                            "value": days,
                            "unit": "日",
                            "system": codes.UCUM,
                            "code": "d",
                        },
                        "whenHandedOver": _at(rng, day),
                        "dosageInstruction": [{"text": sig.timing_text}],
                    },
                )
                day = nxt


def _medication_request(
    sig: Sig,
    coded: dict[str, Any],
    ref: dict[str, str],
    dx: Dx,
    authored: str,
    qty: float,
    unit: str,
    days: int,
    current: bool,
) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": "active" if current else "completed",
        "intent": "order",
        "medicationCodeableConcept": coded,
        "subject": ref,
        "authoredOn": authored,
        "reasonReference": [{"reference": f"Condition/{dx.condition_id}"}],
        "dosageInstruction": [dosage_instruction(sig)],
        "dispenseRequest": {
            "quantity": {"value": qty, "unit": unit},
            "expectedSupplyDuration": {
                "value": days,
                "unit": "日",
                "system": codes.UCUM,
                "code": "d",
            },
        },
    }


def _attendance(age: int) -> float:
    return 0.0 if age < 20 else 0.5 if age < 40 else 0.56 if age < 75 else 0.25


def _checkups(rng: random.Random, p: Person, ids: _Ids, ref: dict[str, str], dxs: list[Dx]) -> None:
    onset = {dx.disease.icd10: dx.onset for dx in dxs}
    male = p.sex == "M"
    height = (1.71 if male else 1.58) + rng.gauss(0, 0.06)
    bmi0 = (23.6 if male else 22.0) + rng.gauss(0, 2.8) + (2.0 if "E11.9" in onset else 0.0)
    sbp0, a1c0, ldl0, gfr0 = rng.gauss(0, 9), rng.gauss(0, 0.25), rng.gauss(0, 22), rng.gauss(0, 10)
    for year in range(FIRST_DAY.year, AS_OF.year + 1):
        day = _day(rng, date(year, 5, 15), date(year, 11, 30))
        age = day.year - p.birth_date.year
        if day >= AS_OF or rng.random() >= _attendance(age):
            continue

        def has(icd: str, day: date = day) -> int:  # 0 none, 1 untreated (first year), 2 treated
            o = onset.get(icd)
            return 0 if o is None or o > day else (1 if (day - o).days < 365 else 2)

        over = max(0, age - 20)
        bmi = round(max(15.0, bmi0 + rng.gauss(0, 0.4)), 1)
        weight = round(bmi * height * height, 1)
        sbp = 108 + 0.45 * over + sbp0 + (0, 22, 10)[has("I10")] + rng.gauss(0, 6)
        dbp = 0.55 * sbp + 8 + rng.gauss(0, 4)
        a1c = 5.2 + 0.006 * over + a1c0 + (0, 2.0, 1.4)[has("E11.9")] + rng.gauss(0, 0.15)
        ldl = 100 + 0.6 * min(over, 40) + ldl0 + (0, 55, 5)[has("E78.5")] + rng.gauss(0, 10)
        gfr = 115 - 1.0 * over + gfr0 - (0, 40, 40)[has("N18.3")] + rng.gauss(0, 5)
        when = _at(rng, day)
        _add(p, ids, _bp(ref, when, round(sbp), round(dbp)))
        for column, value in (("weight_kg", weight), ("bmi", bmi), ("hba1c_ngsp", round(a1c, 1))):
            m = MEASURE[column]
            _add(
                p,
                ids,
                _obs(ref, when, m.category, m.loinc, m.loinc_display, m.display, value, m.unit),
            )
        _add(
            p,
            ids,
            _obs(ref, when, "laboratory", *LDL_LOINC, "LDLコレステロール", round(ldl), "mg/dL"),
        )
        egfr = round(max(8.0, min(gfr, 140.0)), 1)
        _add(p, ids, _obs(ref, when, "laboratory", *EGFR_LOINC, "eGFR", egfr, "mL/min/{1.73_m2}"))


def _obs(
    ref: dict[str, str],
    when: str,
    category: str,
    loinc: str,
    display: str,
    text: str,
    value: float,
    unit: str,
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": codes.OBSERVATION_CATEGORY, "code": category}]}],
        "code": {
            "coding": [{"system": codes.LOINC, "code": loinc, "display": display}],
            "text": text,
        },
        "subject": ref,
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": codes.UCUM, "code": unit},
    }


def _bp(ref: dict[str, str], when: str, sbp: int, dbp: int) -> dict[str, Any]:
    def component(column: str, value: int) -> dict[str, Any]:
        m = MEASURE[column]
        return {
            "code": {
                "coding": [{"system": codes.LOINC, "code": m.loinc, "display": m.loinc_display}]
            },
            "valueQuantity": {
                "value": value,
                "unit": "mmHg",
                "system": codes.UCUM,
                "code": "mm[Hg]",
            },
        }

    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": codes.OBSERVATION_CATEGORY, "code": "vital-signs"}]}],
        "code": {
            "coding": [{"system": codes.LOINC, "code": BP_PANEL[0], "display": BP_PANEL[1]}],
            "text": "血圧",
        },
        "subject": ref,
        "effectiveDateTime": when,
        "component": [component("sbp", sbp), component("dbp", dbp)],
    }


def _vaccinations(rng: random.Random, p: Person, ids: _Ids, ref: dict[str, str]) -> None:
    def give(code: str, day: date, dose: int | None = None) -> None:
        if not (p.birth_date <= day < AS_OF):
            return
        vac = codes.VACCINES[code]
        coding = [{"system": codes.JP_VACCINE, "code": vac.code, "display": vac.display}]
        if vac.cvx:
            coding.append({"system": codes.CVX, "code": vac.cvx, "display": vac.cvx_display or ""})
        imm: dict[str, Any] = {
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": {"coding": coding, "text": vac.display},
            "patient": ref,
            "occurrenceDateTime": day.isoformat(),
            "primarySource": False,
        }
        if dose:
            imm["protocolApplied"] = [{"doseNumberPositiveInt": dose}]
        _add(p, ids, imm)

    if p.birth_date.year >= AS_OF.year - 12 and rng.random() < 0.95:
        for code, months in CHILD_SCHEDULE:
            for n, m in enumerate(months, 1):
                give(code, p.birth_date + timedelta(days=int(m * 30.44) + rng.randrange(21)), n)
    for year in range(FIRST_DAY.year, AS_OF.year):
        age = year - p.birth_date.year
        if age >= 1 and rng.random() < (0.5 if age >= 65 else 0.25):
            give("FLU", _day(rng, date(year, 10, 15), date(year, 12, 20)))
    age_2021 = 2021 - p.birth_date.year
    if age_2021 >= 12 and rng.random() < 0.8:
        first = _day(rng, date(2021, 5, 1), date(2021, 10, 31))
        give("COVID19", first, 1)
        give("COVID19", first + timedelta(days=21 + rng.randrange(14)), 2)
        if rng.random() < 0.75:
            give("COVID19", _day(rng, date(2022, 1, 15), date(2022, 6, 30)), 3)
        for year, share in ((2023, 0.5), (2024, 0.3)):
            if year - p.birth_date.year >= 65 and rng.random() < share:
                give("COVID19", _day(rng, date(year, 10, 1), date(year, 12, 31)))
    turned_65 = (
        p.birth_date.replace(year=p.birth_date.year + 65)
        if p.birth_date.month != 2 or p.birth_date.day != 29
        else p.birth_date + timedelta(days=65 * 365)
    )
    if FIRST_DAY <= turned_65 < AS_OF and rng.random() < 0.4:
        give("PPSV23", turned_65 + timedelta(days=rng.randrange(300)))


# ---- writing ---------------------------------------------------------------------------------


def setup(session: Any, drug_list: Path) -> None:
    """The contributing organisation, the platform's PIAs and the drug master (idempotent)."""
    from consent.identity.clients import register_organization
    from consent.models import Organization
    from consent.pia.service import seed_platform_pias
    from phr.polypharmacy.master import import_drug_list

    if session.get(Organization, ORG) is None:
        register_organization(session, id=ORG, name="Bench hospital", kind="hospital")
    seed_platform_pias(session)
    import_drug_list(session, drug_list)


ACP_WORDS = ("延命より穏やかに", "できるだけ自宅で過ごしたい", "家族と相談して決めたい")


def store_people(session: Any, people: list[Person]) -> Counter[str]:
    """Write the people's records through the gateway's write path; counts by type."""
    from sqlalchemy import insert, select

    from consent.actors import Actor
    from consent.policy import schemas as policy_schemas
    from consent.policy import service as policy
    from fhir_gateway.ingest import plan_ids, store_records
    from fhir_gateway.models import IdentityLink
    from phr.acp import schemas as acp_schemas
    from phr.acp import service as acp
    from phr.store.indexer import utcnow
    from phr.store.models import Resident

    now = utcnow()
    known = set(session.scalars(select(Resident.id).where(Resident.id.in_([p.id for p in people]))))
    fresh = [p for p in people if p.id not in known]
    if fresh:
        session.execute(
            insert(Resident), [{"id": p.id, "created_at": now, "status": "active"} for p in fresh]
        )
        session.execute(
            insert(IdentityLink),
            [
                {
                    "resident_id": p.id,
                    "kind": "mrn",
                    "system": mrn_system(ORG),
                    "value": p.records[0][0].resource["identifier"][0]["value"],
                    "organization_id": ORG,
                    "created_at": now,
                }
                for p in fresh
            ],
        )
    records = [rec for p in people for rec, _ in p.records]
    _, existing = plan_ids(session, ORG, records)
    ids = {i: rid for i, (_, rid) in enumerate(r for p in people for r in p.records)}
    result = store_records(
        session,
        organization_id=ORG,
        records=records,
        ids=ids,
        existing=existing,
        provenance=False,
        bulk=True,
    )
    counts = Counter(o.resource_type for o in result.outcomes if o.status == "created")
    for p in fresh:
        resident = Actor(kind="resident", resident_id=p.id)
        if p.emergency_consent:
            policy.set_emergency_consent(
                session, resident, policy_schemas.EmergencyConsentIn(enabled=True)
            )
            counts["emergency_consent"] += 1
        if p.acp:
            rng = random.Random(f"acp:{p.id}")
            content = acp_schemas.AcpContent(
                own_words=rng.choice(ACP_WORDS),
                treatments=acp_schemas.Treatments(
                    resuscitation=rng.choice(("want", "do_not_want", "undecided")),
                    intubation=rng.choice(("do_not_want", "undecided")),
                ),
                contacts=[
                    acp_schemas.Person(name="家族", relationship="子", phone="090-0000-0000")
                ],
            )
            acp.save(session=session, actor=resident, body=acp_schemas.AcpSave(content=content))
            counts["acp"] += 1
    session.flush()
    return counts


# ---- workers ---------------------------------------------------------------------------------

_CATALOGUE: Catalogue | None = None


def _init_worker(url: str, drug_list: str) -> None:
    global _CATALOGUE
    from phr.db import make_engine, set_engine

    set_engine(make_engine(url=url))
    _CATALOGUE = Catalogue.load(Path(drug_list))


def _job(job: tuple[int, int, int]) -> tuple[int, dict[str, int]]:
    seed, start, stop = job
    from phr.db import transaction

    assert _CATALOGUE is not None
    people = [generate_person(seed, i, _CATALOGUE) for i in range(start, stop)]
    with transaction() as session:
        counts = store_people(session, people)
    return stop - start, dict(counts)


def default_drug_list() -> Path:
    from phr.demo.drugs import default_drug_list as dl

    return dl()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    import common  # bench/common.py

    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    common.add_common_arguments(p)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--residents", type=int, help="residents to generate")
    size.add_argument(
        "--scale", type=float, default=0.1, help=f"share of Tsukuba's {TSUKUBA:,} residents"
    )
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="writer processes")
    p.add_argument("--batch", type=int, default=200, help="residents per transaction")
    p.add_argument("--drug-list", type=Path, default=None, help="MHLW drug price list CSV")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=ROOT / "var" / "bench-city",
        help="keys that seal the ACPs (a server reading them needs the same)",
    )
    p.add_argument("--no-analyze", action="store_true", help="skip VACUUM ANALYZE at the end")
    p.add_argument("--json", type=Path, help="also write the summary to this JSON file")
    return p.parse_args(argv)


def residents_of(args: argparse.Namespace) -> int:
    return args.residents if args.residents is not None else max(1, round(TSUKUBA * args.scale))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import common  # bench/common.py

    n = residents_of(args)
    drug_list = args.drug_list or default_drug_list()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    env = common.server_env(args.database_url, args.data_dir, 0)
    os.environ.update({k: env[k] for k in ("PHR_DATABASE_URL", "PHR_DATA_DIR", "PHR_ENV")})
    from phr.db import make_engine, set_engine, transaction
    from phr.settings import reset_settings_cache

    reset_settings_cache()
    print(f"make_city: {n:,} residents, seed {args.seed}, {args.workers} workers", flush=True)
    t_start = time.perf_counter()
    common.reset_database(args.database_url)
    engine = make_engine(url=args.database_url)
    set_engine(engine)
    with transaction() as session:
        setup(session, drug_list)
    set_engine(None)
    engine.dispose()
    t_setup = time.perf_counter() - t_start

    jobs = [(args.seed, i, min(i + args.batch, n)) for i in range(0, n, args.batch)]
    counts: Counter[str] = Counter()
    done = 0
    t0 = last = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(args.workers, _init_worker, (args.database_url, str(drug_list))) as pool:
        for people, c in pool.imap_unordered(_job, jobs):
            done += people
            counts.update(c)
            now = time.perf_counter()
            if now - last >= 10 or done == n:
                last = now
                res = sum(v for k, v in counts.items() if k[0].isupper())
                print(
                    f"  {done:,}/{n:,} residents  {res:,} resources  "
                    f"{res / (now - t0):,.0f} resources/s  ({now - t0:,.0f} s)",
                    flush=True,
                )
    write_s = time.perf_counter() - t0
    analyze_s = None if args.no_analyze else common.vacuum_analyze(args.database_url)
    resources = {k: v for k, v in sorted(counts.items()) if k[0].isupper()}
    total = sum(resources.values())
    summary = {
        "residents": n,
        "seed": args.seed,
        "workers": args.workers,
        "resources": total,
        "by_type": resources,
        "emergency_consents": counts["emergency_consent"],
        "acps": counts["acp"],
        "setup_s": round(t_setup, 1),
        "write_s": round(write_s, 1),
        "resources_per_s": round(total / write_s),
        "vacuum_analyze_s": round(analyze_s, 1) if analyze_s is not None else None,
        "database": common.database_size(args.database_url),
        "machine": common.machine(args.database_url),
    }
    return summary


def report(s: dict[str, Any]) -> str:
    import common  # bench/common.py

    rows = [{"resource type": k, "created": v} for k, v in s["by_type"].items()]
    rows.append({"resource type": "total", "created": s["resources"]})
    return "\n".join(
        [
            f"## make_city: {s['residents']:,} residents (seed {s['seed']})",
            "",
            f"{s['resources']:,} resources in {s['write_s']:,} s with {s['workers']} writer "
            f"processes: **{s['resources_per_s']:,} resources/s**; set-up (schema, drug "
            f"master) {s['setup_s']} s; VACUUM ANALYZE {s['vacuum_analyze_s']} s; "
            f"{s['emergency_consents']:,} emergency pre-consents, {s['acps']:,} ACPs; "
            f"database {s['database']['bytes'] / 2**20:,.0f} MiB.",
            "",
            common.markdown_table(rows),
            "",
            common.machine_table(s["machine"]),
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import common  # bench/common.py

    args = parse_args(argv)
    summary = run(args)
    print(report(summary))
    common.write_json(args.json, summary)
    return summary


if __name__ == "__main__":
    main()
