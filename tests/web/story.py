"""A synthetic resident's health story, as the FHIR transaction Bundles each source sends.

Used by the web app's tests (in-process through the gateway's ingest, or over HTTP in the
browser tests) and by ``bench/web_pages.py`` (scaled up to years of records). Two clinics
give the same ingredient (amlodipine) and the same kind of drug (a statin each), the
city sends vaccinations and a disability certificate, and every visit has the checkup
measures the trend charts show. Synthetic data only.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
YJ = "urn:oid:1.2.392.100495.20.1.73"
MYNUMBER = "urn:phr:mynumber"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
DISABILITY_CERTIFICATE = "urn:phr:codesystem:disability-certificate"

CLINIC_A = ("takezono-naika", "竹園内科医院", "clinic")
CLINIC_B = ("tsukuba-chuo-clinic", "つくば中央クリニック", "clinic")
CITY = ("tsukuba-city", "つくば市", "municipality")
HOSPITAL = ("tsukuba-gakuen-hospital", "筑波学園病院", "hospital")

AMLODIPINE = ("2171022F1010", "アムロジピンベシル酸塩２．５ｍｇ錠")
ATORVASTATIN = ("2189015F1015", "アトルバスタチンカルシウム５ｍｇ錠")
ROSUVASTATIN = ("2189017F1014", "ロスバスタチンカルシウム２．５ｍｇ錠")


def mynumber(body: str) -> str:
    """A 12-digit number with the check digit of 総務省令 第五条 (synthetic)."""
    total = sum(int(body[11 - n]) * (n + 1 if n <= 6 else n - 5) for n in range(1, 12))
    rem = total % 11
    return body + str(0 if rem <= 1 else 11 - rem)


@dataclass
class Person:
    family: str
    given: str
    birth: str
    gender: str
    number: str  # My Number (synthetic)

    @property
    def key(self) -> str:
        return self.number[-6:]


HANAKO = Person("筑波", "花子", "1950-04-01", "female", mynumber("31415926535"))
TARO = Person("土浦", "太郎", "1948-07-07", "male", mynumber("27182818284"))


def _cc(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        out["text"] = text
    return out


def _entry(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    return {
        "fullUrl": full_url or f"urn:uuid:{uuid.uuid4()}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def _patient(p: Person, org: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [
            {"system": MYNUMBER, "value": p.number},
            {"system": f"urn:phr:test-mrn:{org}", "value": f"{org}-{p.key}"},
        ],
        "name": [{"family": p.family, "given": [p.given], "text": f"{p.family} {p.given}"}],
        "gender": p.gender,
        "birthDate": p.birth,
    }


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def _obs(
    pat: str, enc: str, when: str, code: str, display: str, ja: str, q: dict[str, Any], cat: str
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [_cc(OBS_CATEGORY, cat, cat)],
        "code": _cc(LOINC, code, display, ja),
        "subject": {"reference": pat},
        "encounter": {"reference": enc},
        "effectiveDateTime": when,
        "valueQuantity": q,
    }


def _bp(pat: str, enc: str, when: str, sbp: int, dbp: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [_cc(OBS_CATEGORY, "vital-signs", "Vital Signs")],
        "code": _cc(LOINC, "85354-9", "Blood pressure panel with all children optional", "血圧"),
        "subject": {"reference": pat},
        "encounter": {"reference": enc},
        "effectiveDateTime": when,
        "component": [
            {
                "code": _cc(LOINC, "8480-6", "Systolic blood pressure", "収縮期血圧"),
                "valueQuantity": _quantity(sbp, "mmHg", "mm[Hg]"),
            },
            {
                "code": _cc(LOINC, "8462-4", "Diastolic blood pressure", "拡張期血圧"),
                "valueQuantity": _quantity(dbp, "mmHg", "mm[Hg]"),
            },
        ],
    }


def _med(
    pat: str, enc: str, when: str, drug: tuple[str, str], clinic: str, days: int
) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": YJ, "code": drug[0], "display": drug[1]}],
            "text": drug[1],
        },
        "subject": {"reference": pat},
        "encounter": {"reference": enc},
        "authoredOn": when,
        "requester": {"display": clinic},
        "dosageInstruction": [{"text": "1回1錠 1日1回 朝食後"}],
        "dispenseRequest": {
            "expectedSupplyDuration": {"value": days, "unit": "日", "system": UCUM, "code": "d"}
        },
    }


def _condition(
    pat: str, code: str, display: str, onset: str, status: str = "active"
) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "clinicalStatus": _cc(CLINICAL, status, status),
        "verificationStatus": _cc(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"
        ),
        "code": _cc(ICD10, code, display, display),
        "subject": {"reference": pat},
        "onsetDateTime": onset,
    }


def _encounter(pat: str, when: str, clinic: str, reason: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"text": "外来"}],
        "subject": {"reference": pat},
        "period": {"start": when, "end": when},
        "reasonCode": [reason],
        "serviceProvider": {"display": clinic},
    }


def _visit_days(today: date, years: int, per_year: int, offset: int) -> list[date]:
    step = max(1, 365 // per_year)
    n = years * per_year
    return [today - timedelta(days=offset + step * i) for i in range(n)][::-1]


def clinic_a_bundle(p: Person, *, years: int, per_year: int, today: date) -> dict[str, Any]:
    """竹園内科医院: the family doctor. Every visit: vitals, labs, two prescriptions."""
    rng = random.Random(p.number)
    name = CLINIC_A[1]
    pat = "urn:uuid:" + str(uuid.uuid4())
    entries = [_entry(_patient(p, CLINIC_A[0]), pat)]
    entries.append(_entry(_condition(pat, "I10", "本態性高血圧症", f"{today.year - years}-04-01")))
    entries.append(_entry(_condition(pat, "E78.5", "脂質異常症", f"{today.year - years}-06-01")))
    entries.append(
        _entry(_condition(pat, "J20.9", "急性気管支炎", f"{today.year - 2}-01-10", "resolved"))
    )
    hba1c, ldl, egfr, weight = 6.4, 150.0, 72.0, 58.0
    days = _visit_days(today, years, per_year, 7)
    for i, day in enumerate(days):
        when = f"{day.isoformat()}T09:30:00+09:00"
        enc = "urn:uuid:" + str(uuid.uuid4())
        entries.append(
            _entry(
                _encounter(pat, when, name, _cc(ICD10, "I10", "本態性高血圧症", "本態性高血圧症")),
                enc,
            )
        )
        hba1c = round(min(8.0, max(5.2, hba1c + rng.uniform(-0.15, 0.12))), 1)
        ldl = round(min(190, max(80, ldl + rng.uniform(-6, 4))))
        egfr = round(min(95, max(35, egfr + rng.uniform(-1.2, 0.9))), 1)
        weight = round(min(75, max(45, weight + rng.uniform(-0.4, 0.4))), 1)
        bmi = round(weight / 1.55**2, 1)
        sbp, dbp = rng.randint(118, 148), rng.randint(70, 92)
        entries += [
            _entry(_bp(pat, enc, when, sbp, dbp)),
            _entry(
                _obs(
                    pat,
                    enc,
                    when,
                    "4548-4",
                    "Hemoglobin A1c/Hemoglobin.total in Blood",
                    "HbA1c（NGSP）",
                    _quantity(hba1c, "%", "%"),
                    "laboratory",
                )
            ),
            _entry(
                _obs(
                    pat,
                    enc,
                    when,
                    "2089-1",
                    "Cholesterol in LDL [Mass/volume] in Serum or Plasma",
                    "LDLコレステロール",
                    _quantity(ldl, "mg/dL", "mg/dL"),
                    "laboratory",
                )
            ),
            _entry(
                _obs(
                    pat,
                    enc,
                    when,
                    "69405-9",
                    "Glomerular filtration rate/1.73 sq M.predicted",
                    "eGFR",
                    _quantity(egfr, "mL/min/1.73m2", "mL/min/{1.73_m2}"),
                    "laboratory",
                )
            ),
            _entry(
                _obs(
                    pat,
                    enc,
                    when,
                    "29463-7",
                    "Body weight",
                    "体重",
                    _quantity(weight, "kg", "kg"),
                    "vital-signs",
                )
            ),
            _entry(
                _obs(
                    pat,
                    enc,
                    when,
                    "39156-5",
                    "Body mass index (BMI) [Ratio]",
                    "BMI",
                    _quantity(bmi, "kg/m2", "kg/m2"),
                    "vital-signs",
                )
            ),
            _entry(_med(pat, enc, when, AMLODIPINE, name, 30)),
        ]
        if (len(days) - 1 - i) % 2 == 0:  # every other visit, the last one included
            entries.append(_entry(_med(pat, enc, when, ATORVASTATIN, name, 90)))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def clinic_b_bundle(p: Person, *, today: date) -> dict[str, Any]:
    """つくば中央クリニック: seen lately for dizziness; gives amlodipine and a statin too."""
    name = CLINIC_B[1]
    pat = "urn:uuid:" + str(uuid.uuid4())
    entries = [_entry(_patient(p, CLINIC_B[0]), pat)]
    entries.append(
        _entry(
            {
                "resourceType": "AllergyIntolerance",
                "clinicalStatus": _cc(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "active",
                    "Active",
                ),
                "code": {"text": "ペニシリン系抗菌薬"},
                "patient": {"reference": pat},
                "recordedDate": (today - timedelta(days=200)).isoformat(),
                "reaction": [{"manifestation": [{"text": "じんましん"}]}],
            }
        )
    )
    for back in (40, 10):
        day = today - timedelta(days=back)
        when = f"{day.isoformat()}T15:00:00+09:00"
        enc = "urn:uuid:" + str(uuid.uuid4())
        entries.append(_entry(_encounter(pat, when, name, {"text": "めまい"}), enc))
        entries.append(_entry(_med(pat, enc, when, AMLODIPINE, name, 30)))
        entries.append(_entry(_med(pat, enc, when, ROSUVASTATIN, name, 30)))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def city_bundle(p: Person, *, years: int, today: date) -> dict[str, Any]:
    """つくば市: yearly influenza vaccinations and a disability certificate."""
    pat = "urn:uuid:" + str(uuid.uuid4())
    entries = [_entry(_patient(p, CITY[0]), pat)]
    for y in range(years):
        day = date(today.year - y - 1, 11, 1)
        entries.append(
            _entry(
                {
                    "resourceType": "Immunization",
                    "status": "completed",
                    "vaccineCode": _cc(
                        "http://hl7.org/fhir/sid/cvx",
                        "141",
                        "Influenza, seasonal",
                        "インフルエンザ",
                    ),
                    "patient": {"reference": pat},
                    "occurrenceDateTime": day.isoformat(),
                    "protocolApplied": [{"doseNumberPositiveInt": 1}],
                }
            )
        )
    entries.append(
        _entry(
            {
                "resourceType": "Condition",
                "clinicalStatus": _cc(CLINICAL, "active", "Active"),
                "category": [
                    _cc(DISABILITY_CERTIFICATE, "physical", "身体障害者手帳", "身体障害者手帳")
                ],
                "severity": _cc(
                    "urn:phr:codesystem:disability-grade", "physical-4", "4級", "身体障害者手帳 4級"
                ),
                "code": {
                    "coding": [
                        {
                            "system": DISABILITY_CERTIFICATE,
                            "code": "physical",
                            "display": "身体障害者手帳",
                        }
                    ],
                    "text": "下肢機能障害",
                },
                "subject": {"reference": pat},
                "recordedDate": f"{today.year - 3}-05-20",
            }
        )
    )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def bundles(
    p: Person, *, years: int = 3, per_year: int = 4, today: date | None = None
) -> list[tuple[tuple[str, str, str], dict[str, Any]]]:
    """(organisation, bundle) in the order they are sent."""
    today = today or date.today()
    return [
        (CITY, city_bundle(p, years=years, today=today)),
        (CLINIC_A, clinic_a_bundle(p, years=years, per_year=per_year, today=today)),
        (CLINIC_B, clinic_b_bundle(p, today=today)),
    ]


def ingest_story(session: Session, person: Person, **options: Any) -> str:
    """Register the story's organisations, send their bundles through the gateway's ingest
    (in this process); commit, and return the resident id."""
    from consent.actors import Actor
    from consent.identity.clients import register_organization
    from fhir_gateway.identity import MYNUMBER_SYSTEM, hash_mynumber
    from fhir_gateway.ingest import process_bundle
    from fhir_gateway.models import IdentityLink

    for (org_id, name, kind), bundle in bundles(person, **options):
        register_organization(session, id=org_id, name=name, kind=kind)
        actor = Actor(
            kind="organization",
            organization_id=org_id,
            organization_kind=kind,
            client_id=f"{org_id}-client",
            scopes=frozenset({"system/*.cruds"}),
        )
        process_bundle(session, bundle, actor=actor)
    rid = session.scalar(
        select(IdentityLink.resident_id).where(
            IdentityLink.kind == "mynumber",
            IdentityLink.system == MYNUMBER_SYSTEM,
            IdentityLink.value == hash_mynumber(person.number),
        )
    )
    assert rid is not None
    session.commit()
    return str(rid)
