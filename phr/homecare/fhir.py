"""The FHIR R4 shapes of the home-care visit (built here, validated with fhir.resources
R4B, written through ``fhir_gateway.ingest.store_records`` by the service).

- the care team: CareTeam (LOINC LA28866-4, HCBS-focused), by the station;
- the home visit: Encounter class ``HH`` (home health), the outcome as
  ``hospitalization.dischargeDisposition``, by the station;
- vital signs: vital-signs Observations (LOINC of the FHIR vital-signs profiles) and the
  NEWS2 total (SNOMED CT 1104051000000101, ``derivedFrom`` the signs), by the station;
- the online consultation: Encounter class ``VR`` (virtual), ``partOf`` the home visit,
  with a ClinicalImpression (findings in ``summary``, instructions and the decision in
  ``note``), by the doctor's clinic;
- the prescription: MedicationRequest (the YJ code of the deposited lot), by the clinic;
- 服薬指導: Procedure (counselling is in Procedure's scope), ``reasonReference`` the
  MedicationRequest, by the pharmacy;
- the medicine given: MedicationAdministration, ``request`` the MedicationRequest, by
  the station.
"""

from __future__ import annotations

from typing import Any

from fhir_gateway.validation import validate_resource
from phr.errors import InvalidInput
from phr.polypharmacy.master import YJ

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ORG_SYSTEM = "urn:phr:id:organization"
STAFF_SYSTEM = "urn:phr:id:staff"
HOMECARE_SYSTEM = "urn:phr:codesystem:homecare"
OUTCOME_SYSTEM = "urn:phr:codesystem:homecare-outcome"
ACVPU_SYSTEM = "urn:phr:codesystem:acvpu"
# SNOMED CT (UK edition): "Royal College of Physicians National Early Warning Score 2
# (NEWS2) total score"; the score itself is computed by phr.triage.scores.news2 (RCP 2017).
NEWS2_CODE = (
    "1104051000000101",
    "Royal College of Physicians NEWS2 (National Early Warning Score 2) total score",
)

OUTCOME_TEXT = {
    "treated_at_home": "在宅で治療 / treated at home",
    "transported": "救急搬送 / transported",
    "follow_up": "経過観察・後日受診 / follow-up",
}


def org_ref(org_id: str, name: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"identifier": {"system": ORG_SYSTEM, "value": org_id}}
    if name:
        ref["display"] = name
    return ref


def staff_ref(staff_id: str | None, name: str | None) -> dict[str, Any]:
    ref: dict[str, Any] = {"display": name or "?"}
    if staff_id:
        ref["identifier"] = {"system": STAFF_SYSTEM, "value": staff_id}
    return ref


def checked(resource: dict[str, Any]) -> dict[str, Any]:
    """Validate at the edge: a shape of ours that fhir.resources refuses is a bug, not
    input, but it must never reach the store."""
    problems = validate_resource(resource)
    if problems:
        raise InvalidInput(f"invalid {resource['resourceType']}", issues=problems)
    return resource


def _patient(rid: str) -> dict[str, str]:
    return {"reference": f"Patient/{rid}"}


def care_team(rid: str, members: list[tuple[str, str, str]], at: str) -> dict[str, Any]:
    """``members``: (organisation id, name, role text)."""
    return checked(
        {
            "resourceType": "CareTeam",
            "status": "active",
            "category": [
                {
                    "coding": [
                        {
                            "system": LOINC,
                            "code": "LA28866-4",
                            "display": "Home & Community Based Services (HCBS)-focused care team",
                        }
                    ]
                }
            ],
            "name": "在宅療養チーム / home-care team",
            "subject": _patient(rid),
            "period": {"start": at},
            "participant": [
                {"role": [{"text": role}], "member": org_ref(org, name)}
                for org, name, role in members
            ],
        }
    )


def home_visit(
    rid: str,
    station: tuple[str, str],
    complaint: str,
    start: str,
    *,
    end: str | None = None,
    outcome: str | None = None,
) -> dict[str, Any]:
    enc: dict[str, Any] = {
        "resourceType": "Encounter",
        "status": "finished" if end else "in-progress",
        "class": {"system": ACT_CODE, "code": "HH", "display": "home health"},
        "type": [
            {
                "coding": [{"system": HOMECARE_SYSTEM, "code": "urgent-home-visit"}],
                "text": "夜間・休日の緊急訪問 / urgent home visit",
            }
        ],
        "subject": _patient(rid),
        "serviceProvider": org_ref(*station),
        "period": {"start": start, **({"end": end} if end else {})},
        "reasonCode": [{"text": complaint}],
    }
    if outcome:
        enc["hospitalization"] = {
            "dischargeDisposition": {
                "coding": [{"system": OUTCOME_SYSTEM, "code": outcome}],
                "text": OUTCOME_TEXT[outcome],
            }
        }
    return checked(enc)


def _obs(
    rid: str, encounter: str, code: tuple[str, str, str], category: str, at: str, **value: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": code[0], "code": code[1], "display": code[2]}]},
        "subject": _patient(rid),
        "encounter": {"reference": encounter},
        "effectiveDateTime": at,
        **value,
    }


def _qty(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": code}}


def vital_signs(rid: str, encounter: str, at: str, v: Any) -> list[dict[str, Any]]:
    """The set NEWS2 needs, as vital-signs Observations (LOINC as the FHIR vital-signs
    profiles name them); consciousness (ACVPU) as an exam Observation."""
    vs = "vital-signs"
    bp: list[dict[str, Any]] = [
        {
            "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
            **_qty(v.systolic, "mmHg", "mm[Hg]"),
        }
    ]
    if v.diastolic is not None:
        bp.append(
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                **_qty(v.diastolic, "mmHg", "mm[Hg]"),
            }
        )
    out = [
        _obs(rid, encounter, (LOINC, "85354-9", "Blood pressure panel"), vs, at, component=bp),
        _obs(
            rid,
            encounter,
            (LOINC, "9279-1", "Respiratory rate"),
            vs,
            at,
            **_qty(v.respiratory_rate, "/min", "/min"),
        ),
        _obs(
            rid,
            encounter,
            (LOINC, "59408-5", "Oxygen saturation by pulse oximetry"),
            vs,
            at,
            **_qty(v.spo2, "%", "%"),
        ),
        _obs(
            rid, encounter, (LOINC, "8867-4", "Heart rate"), vs, at, **_qty(v.pulse, "/min", "/min")
        ),
        _obs(
            rid,
            encounter,
            (LOINC, "8310-5", "Body temperature"),
            vs,
            at,
            **_qty(v.temperature, "Cel", "Cel"),
        ),
        _obs(
            rid,
            encounter,
            (ACVPU_SYSTEM, "acvpu", "Level of consciousness (ACVPU)"),
            "exam",
            at,
            valueCodeableConcept={
                "coding": [{"system": ACVPU_SYSTEM, "code": v.consciousness}],
                "text": v.consciousness,
            },
        ),
    ]
    if v.on_oxygen:
        out.append(
            _obs(
                rid,
                encounter,
                (HOMECARE_SYSTEM, "on-oxygen", "Supplemental oxygen"),
                "exam",
                at,
                valueBoolean=True,
            )
        )
    if v.note:
        out.append(
            _obs(
                rid,
                encounter,
                (HOMECARE_SYSTEM, "nurse-observation", "訪問看護師の観察 / nurse's observation"),
                "exam",
                at,
                valueString=v.note,
            )
        )
    return [checked(o) for o in out]


def news2_observation(
    rid: str, encounter: str, at: str, result: Any, derived: list[str]
) -> dict[str, Any]:
    return checked(
        {
            **_obs(rid, encounter, (SNOMED, *NEWS2_CODE), "survey", at, valueInteger=result.score),
            "interpretation": [{"text": f"NEWS2 {result.risk}: {result.response}"}],
            "method": {"text": "RCP 2017 NEWS2 (phr.triage.scores.news2)"},
            "derivedFrom": [{"reference": r} for r in derived],
        }
    )


def consultation(
    rid: str, clinic: tuple[str, str], doctor: dict[str, Any], visit_ref: str, at: str
) -> dict[str, Any]:
    return checked(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": ACT_CODE, "code": "VR", "display": "virtual"},
            "type": [
                {
                    "coding": [{"system": HOMECARE_SYSTEM, "code": "online-consultation"}],
                    "text": "オンライン診療 / online consultation",
                }
            ],
            "subject": _patient(rid),
            "participant": [{"individual": doctor}],
            "serviceProvider": org_ref(*clinic),
            "partOf": {"reference": visit_ref},
            "period": {"start": at, "end": at},
        }
    )


def impression(
    rid: str, encounter: str, doctor: dict[str, Any], at: str, body: Any
) -> dict[str, Any]:
    decision = (
        "在宅で治療を続ける / continue at home"
        if body.decision == "home"
        else "救急搬送 / transport to hospital"
    )
    return checked(
        {
            "resourceType": "ClinicalImpression",
            "status": "completed",
            "subject": _patient(rid),
            "encounter": {"reference": encounter},
            "effectiveDateTime": at,
            "date": at,
            "assessor": doctor,
            "summary": body.findings,
            "note": [
                {"text": f"指示 / instructions: {body.instructions}"},
                {"text": f"方針 / decision: {decision}"},
            ],
        }
    )


def _medication(code: str, name: str) -> dict[str, Any]:
    return {"coding": [{"system": YJ, "code": code, "display": name}], "text": name}


def medication_request(
    rid: str,
    encounter: str,
    doctor: dict[str, Any],
    at: str,
    stock: Any,
    quantity: int,
    dosage: str,
) -> dict[str, Any]:
    return checked(
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": _medication(stock.drug_code, stock.drug_name),
            "subject": _patient(rid),
            "encounter": {"reference": encounter},
            "authoredOn": at,
            "requester": doctor,
            "dosageInstruction": [{"text": dosage}],
            "dispenseRequest": {"quantity": {"value": quantity, "unit": stock.unit}},
            "note": [
                {
                    "text": f"預かり薬から / from deposited stock: lot {stock.lot}, "
                    f"expiry {stock.expiry.isoformat()}"
                }
            ],
        }
    )


def guidance(
    rid: str,
    encounter: str,
    pharmacist: dict[str, Any],
    pharmacy: tuple[str, str],
    at: str,
    requests: list[str],
    text: str,
) -> dict[str, Any]:
    return checked(
        {
            "resourceType": "Procedure",
            "status": "completed",
            "category": {"text": "服薬指導 / medication counselling"},
            "code": {
                "coding": [
                    {
                        "system": HOMECARE_SYSTEM,
                        "code": "online-medication-guidance",
                        "display": "オンライン服薬指導",
                    }
                ],
                "text": "オンライン服薬指導 / online medication guidance",
            },
            "subject": _patient(rid),
            "encounter": {"reference": encounter},
            "performedDateTime": at,
            "performer": [{"actor": pharmacist, "onBehalfOf": {"display": pharmacy[1]}}],
            "reasonReference": [{"reference": r} for r in requests],
            "note": [{"text": text}],
        }
    )


def administration(
    rid: str,
    encounter: str,
    nurse: dict[str, Any],
    at: str,
    stock: Any,
    quantity: int,
    dosage: str,
    request_ref: str,
) -> dict[str, Any]:
    return checked(
        {
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "medicationCodeableConcept": _medication(stock.drug_code, stock.drug_name),
            "subject": _patient(rid),
            "context": {"reference": encounter},
            "effectiveDateTime": at,
            "performer": [{"actor": nurse}],
            "request": {"reference": request_ref},
            "dosage": {"text": dosage, "dose": {"value": quantity, "unit": stock.unit}},
            "note": [{"text": f"預かり薬 / deposited stock: lot {stock.lot}"}],
        }
    )
