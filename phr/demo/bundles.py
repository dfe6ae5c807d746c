"""A clinic's FHIR R4 transaction Bundle for one patient, as its EHR would send it.

``fullUrl``s are ``urn:uuid:`` UUIDs derived from the clinic, the patient number and the
record, so the same record is re-sent under the same key (the gateway's idempotency
rests on it). Records refer to each other only where the gateway never merges the target
(Patient, Encounter); diagnoses are carried as ``reasonCode``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from phr.demo.clinical import (
    CLINIC_FROM,
    Allergy,
    Diagnosis,
    Health,
    Measurement,
    Prescription,
    Visit,
)
from phr.demo.drugs import DRUG_CODE_SYSTEM, Sig
from phr.demo.people import INSURER_NUMBERS, Resident

__all__ = [
    "ICD10",
    "LOINC",
    "clinic_bundle",
    "dosage_instruction",
    "insurance_member_id",
    "mrn",
]

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
EN_REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
# JP Core / 電子カルテ情報共有サービス: 被保険者個人識別子 "保険者番号:記号:番号:枝番".
INSURANCE_MEMBER_ID = "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_NS = uuid.UUID("6f1d2c1e-55a4-4c39-9a55-2f0d9e1a7c11")  # the demo's UUID namespace


def _urn(*parts: object) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, '/'.join(str(p) for p in parts))}"


def mrn(clinic_index: int, r: Resident) -> str:
    """The clinic's own patient number (診察券番号)."""
    return f"{(clinic_index + 1) * 100000 + r.index + 1:07d}"


def insurance_member_id(insurer: str, insured_number: str) -> str:
    """被保険者個人識別子: 8-digit 保険者番号 (6-digit 国保 numbers padded with 00)."""
    number = INSURER_NUMBERS[insurer].rjust(8, "0")
    symbol, num, branch = insured_number.split("-")
    return f"{number}:{symbol}:{num}:{branch}"


def _cc(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        out["text"] = text
    return out


def _names(r: Resident) -> list[dict[str, Any]]:
    return [
        {
            "extension": [{"url": EN_REPRESENTATION, "valueCode": "IDE"}],
            "use": "official",
            "text": r.name,
            "family": r.family,
            "given": [r.given],
        },
        {
            "extension": [{"url": EN_REPRESENTATION, "valueCode": "SYL"}],
            "use": "official",
            "text": r.kana,
            "family": r.family_kana,
            "given": [r.given_kana],
        },
    ]


def _patient(r: Resident, facility: str, number: str, visits: list[Visit]) -> dict[str, Any]:
    identifiers = [{"system": f"urn:oid:1.2.392.100495.20.3.51.1{facility}", "value": number}]
    cov = r.coverage_on(visits[-1].day) if visits else None
    if cov is not None:
        identifiers.append(
            {
                "system": INSURANCE_MEMBER_ID,
                "value": insurance_member_id(cov.insurer, cov.insured_number),
            }
        )
    street = r.address.removeprefix("茨城県つくば市")
    return {
        "resourceType": "Patient",
        "identifier": identifiers,
        "active": True,
        "name": _names(r),
        "gender": r.gender,
        "birthDate": r.birth_date.isoformat(),
        "address": [
            {
                "use": "home",
                "text": r.address,
                "line": [street],
                "city": "つくば市",
                "state": "茨城県",
                "postalCode": r.postal_code,
                "country": "JP",
            }
        ],
    }


def _condition_code(d: Diagnosis) -> dict[str, Any]:
    return _cc(ICD10, d.disease.icd10, d.disease.display, d.disease.display)


def _condition(d: Diagnosis, patient: str, recorded: str) -> dict[str, Any]:
    status = "resolved" if d.resolved else "active"
    cond: dict[str, Any] = {
        "resourceType": "Condition",
        "clinicalStatus": _cc(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", status, status.title()
        ),
        "verificationStatus": _cc(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"
        ),
        "category": [
            _cc(
                "http://terminology.hl7.org/CodeSystem/condition-category",
                "problem-list-item" if d.disease.chronic else "encounter-diagnosis",
                "Problem List Item" if d.disease.chronic else "Encounter Diagnosis",
            )
        ],
        "code": _condition_code(d),
        "subject": {"reference": patient},
        "onsetDateTime": d.onset.isoformat(),
        "recordedDate": recorded,
    }
    if d.resolved:
        cond["abatementDateTime"] = d.resolved.isoformat()
    return cond


def _allergy(a: Allergy, patient: str) -> dict[str, Any]:
    k = a.kind
    return {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": _cc(
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"
        ),
        "verificationStatus": _cc(
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
            "confirmed",
            "Confirmed",
        ),
        "type": "allergy",
        "category": [k.category],
        "criticality": k.criticality,
        "code": _cc(SNOMED, k.snomed, k.snomed_display, k.text),
        "patient": {"reference": patient},
        "recordedDate": a.recorded.isoformat(),
        "reaction": [{"manifestation": [{"text": k.reaction}]}],
    }


def _encounter(v: Visit, patient: str, clinic_name: str) -> dict[str, Any]:
    end = v.at + timedelta(minutes=10)
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "AMB",
            "display": "ambulatory",
        },
        "type": [{"text": "外来（初診）" if v.first else "外来（再診）"}],
        "subject": {"reference": patient},
        "period": {"start": v.at.isoformat(), "end": end.isoformat()},
        "reasonCode": [_condition_code(d) for d in v.diagnoses],
        "serviceProvider": {"display": clinic_name},
    }


# kind -> (LOINC, display, Japanese, UCUM code, unit shown, category)
_MEASURES: dict[str, tuple[str, str, str, str, str, str]] = {
    "weight": ("29463-7", "Body weight", "体重", "kg", "kg", "vital-signs"),
    "height": ("8302-2", "Body height", "身長", "cm", "cm", "vital-signs"),
    "bmi": ("39156-5", "Body mass index (BMI) [Ratio]", "BMI", "kg/m2", "kg/m2", "vital-signs"),
    "hba1c": (
        "4548-4",
        "Hemoglobin A1c/Hemoglobin.total in Blood",
        "HbA1c（NGSP）",
        "%",
        "%",
        "laboratory",
    ),
    "ldl": (
        "2089-1",
        "Cholesterol in LDL [Mass/volume] in Serum or Plasma",
        "LDLコレステロール",
        "mg/dL",
        "mg/dL",
        "laboratory",
    ),
    "creatinine": (
        "2160-0",
        "Creatinine [Mass/volume] in Serum or Plasma",
        "血清クレアチニン",
        "mg/dL",
        "mg/dL",
        "laboratory",
    ),
    # The JSN (日本腎臓学会) equation has no LOINC code of its own: the method-less eGFR code,
    # the same the checkup importer uses, so that clinic and checkup values form one trend.
    "egfr": (
        "69405-9",
        "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, "
        "Plasma or Blood",
        "eGFR",
        "mL/min/{1.73_m2}",
        "mL/min/1.73m2",
        "laboratory",
    ),
}


def _quantity(value: float, code: str, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def _category(code: str) -> list[dict[str, Any]]:
    display = {"vital-signs": "Vital Signs", "laboratory": "Laboratory"}[code]
    return [_cc(OBS_CATEGORY, code, display)]


def _observation(m: Measurement, v: Visit, patient: str, encounter: str) -> dict[str, Any]:
    obs: dict[str, Any] = {"resourceType": "Observation", "status": "final"}
    if m.kind == "bp":
        obs |= {
            "category": _category("vital-signs"),
            "code": _cc(
                LOINC, "85354-9", "Blood pressure panel with all children optional", "血圧"
            ),
            "component": [
                {
                    "code": _cc(LOINC, "8480-6", "Systolic blood pressure", "収縮期血圧"),
                    "valueQuantity": _quantity(m.value, "mm[Hg]", "mmHg"),
                },
                {
                    "code": _cc(LOINC, "8462-4", "Diastolic blood pressure", "拡張期血圧"),
                    "valueQuantity": _quantity(m.value2 or 0, "mm[Hg]", "mmHg"),
                },
            ],
        }
    else:
        loinc, display, ja, code, unit, category = _MEASURES[m.kind]
        obs |= {
            "category": _category(category),
            "code": _cc(LOINC, loinc, display, ja),
            "valueQuantity": _quantity(m.value, code, unit),
        }
    obs |= {
        "subject": {"reference": patient},
        "encounter": {"reference": encounter},
        "effectiveDateTime": v.at.isoformat(),
    }
    return obs


_WHEN_ROUTE = {"内用薬": "内服", "外用薬": "外用"}


def dosage_instruction(sig: Sig) -> dict[str, Any]:
    """The FHIR Dosage of a sig (用法・用量)."""
    repeat: dict[str, Any] = (
        {"frequency": 1, "period": 1, "periodUnit": "wk"}
        if sig.weekly
        else {"frequency": sig.per_day, "period": 1, "periodUnit": "d"}
    )
    if sig.when:
        repeat["when"] = list(sig.when)
    dose = int(sig.dose) if float(sig.dose).is_integer() else sig.dose
    dosage: dict[str, Any] = {
        "text": f"1回{dose}{sig.unit} {sig.timing_text}",
        "timing": {"repeat": repeat, "code": {"text": sig.timing_text}},
        "route": {"text": _WHEN_ROUTE.get(sig.route, sig.route)},
        "doseAndRate": [{"doseQuantity": {"value": dose, "unit": sig.unit}}],
    }
    if sig.as_needed:
        dosage["asNeededBoolean"] = True
        del dosage["timing"]
        dosage["text"] = sig.timing_text
    return dosage


def _medication_request(
    p: Prescription, v: Visit, patient: str, encounter: str, clinic_name: str
) -> dict[str, Any]:
    sig = p.sig
    dosage = dosage_instruction(sig)
    qty = int(p.quantity) if float(p.quantity).is_integer() else p.quantity
    mr: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "active" if p.active else "completed",
        "intent": "order",
        "category": [
            _cc(
                "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                "outpatient",
                "Outpatient",
            )
        ],
        "medicationCodeableConcept": {
            "coding": [
                {"system": DRUG_CODE_SYSTEM, "code": p.product.code, "display": p.product.name}
            ],
            "text": p.product.name,
        },
        "subject": {"reference": patient},
        "encounter": {"reference": encounter},
        "authoredOn": v.at.isoformat(),
        "requester": {"display": clinic_name},
        "reasonCode": [_condition_code(p.diagnosis)],
        "dosageInstruction": [dosage],
        "dispenseRequest": {
            "quantity": {"value": qty, "unit": p.unit},
            "expectedSupplyDuration": {"value": p.days, "unit": "日", "system": UCUM, "code": "d"},
        },
    }
    return mr


def _entry(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def clinic_bundle(
    h: Health, clinic: str, clinic_index: int, clinic_name: str, facility: str
) -> dict[str, Any] | None:
    """The transaction a clinic sends for one patient (None: not a patient there)."""
    visits = h.visits_at(clinic, CLINIC_FROM)
    if not visits:
        return None
    r = h.resident
    number = mrn(clinic_index, r)
    key = (clinic, number)
    patient = _urn(*key, "Patient")
    entries = [_entry(patient, _patient(r, facility, number, visits))]
    for a in h.allergies:
        if a.clinic == clinic:
            entries.append(
                _entry(_urn(*key, "AllergyIntolerance", a.kind.snomed), _allergy(a, patient))
            )
    seen_dx: dict[int, str] = {}
    for v in visits:
        for d in v.diagnoses:
            if id(d) not in seen_dx:
                seen_dx[id(d)] = v.day.isoformat()
                url = _urn(*key, "Condition", d.disease.icd10, d.onset.isoformat())
                entries.append(_entry(url, _condition(d, patient, seen_dx[id(d)])))
    for i, v in enumerate(visits):
        stamp = f"{v.at.isoformat()}#{i}"
        enc = _urn(*key, "Encounter", stamp)
        entries.append(_entry(enc, _encounter(v, patient, clinic_name)))
        for m in v.measurements:
            entries.append(
                _entry(_urn(*key, "Observation", stamp, m.kind), _observation(m, v, patient, enc))
            )
        for p in v.prescriptions:
            url = _urn(*key, "MedicationRequest", stamp, p.product.code)
            entries.append(_entry(url, _medication_request(p, v, patient, enc, clinic_name)))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
