"""Search parameters: which values are indexed for each resource type.

Paths are a small subset of FHIRPath: dotted element names, ``|`` for alternatives
(choice types are listed explicitly, e.g. ``effectiveDateTime|effectivePeriod``),
arrays flattened. Definitions follow the FHIR R4 search parameter registry
(http://hl7.org/fhir/R4/searchparameter-registry.html) for the parameters clinicians use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["token", "string", "date", "reference", "quantity"]


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind
    paths: tuple[str, ...]
    targets: tuple[str, ...] = ()  # for references: allowed target types


def _p(name: str, kind: Kind, path: str, targets: str = "") -> Param:
    return Param(name, kind, tuple(path.split("|")), tuple(t for t in targets.split(",") if t))


PATIENT_REFS = "subject|patient|beneficiary"

# Parameters every resource type has.
COMMON: tuple[Param, ...] = (
    _p("_tag", "token", "meta.tag"),
    _p("_security", "token", "meta.security"),
    _p("_source", "token", "meta.source"),
)

_CLINICAL_PATIENT = (
    _p("patient", "reference", "subject|patient", "Patient"),
    _p("subject", "reference", "subject"),
    _p("encounter", "reference", "encounter|context"),
)

DEFINITIONS: dict[str, tuple[Param, ...]] = {
    "Patient": (
        _p("identifier", "token", "identifier"),
        _p("name", "string", "name"),
        _p("family", "string", "name.family"),
        _p("given", "string", "name.given"),
        _p("birthdate", "date", "birthDate"),
        _p("gender", "token", "gender"),
        _p("address", "string", "address"),
        _p("address-city", "string", "address.city"),
        _p("address-postalcode", "string", "address.postalCode"),
        _p("telecom", "token", "telecom"),
        _p("active", "token", "active"),
        _p("general-practitioner", "reference", "generalPractitioner"),
        _p("organization", "reference", "managingOrganization", "Organization"),
        _p("link", "reference", "link.other", "Patient"),
    ),
    "Observation": (
        *_CLINICAL_PATIENT,
        _p("identifier", "token", "identifier"),
        _p("code", "token", "code"),
        _p("category", "token", "category"),
        _p("status", "token", "status"),
        _p("date", "date", "effectiveDateTime|effectivePeriod|effectiveInstant|issued"),
        _p("value-quantity", "quantity", "valueQuantity"),
        _p("value-concept", "token", "valueCodeableConcept"),
        _p("component-code", "token", "component.code"),
        _p("combo-code", "token", "code|component.code"),
        _p("based-on", "reference", "basedOn"),
        _p("performer", "reference", "performer"),
        _p("has-member", "reference", "hasMember"),
    ),
    "Condition": (
        *_CLINICAL_PATIENT,
        _p("identifier", "token", "identifier"),
        _p("code", "token", "code"),
        _p("category", "token", "category"),
        _p("clinical-status", "token", "clinicalStatus"),
        _p("verification-status", "token", "verificationStatus"),
        _p("onset-date", "date", "onsetDateTime|onsetPeriod"),
        _p("abatement-date", "date", "abatementDateTime|abatementPeriod"),
        _p("recorded-date", "date", "recordedDate"),
        _p("asserter", "reference", "asserter"),
    ),
    "MedicationRequest": (
        *_CLINICAL_PATIENT,
        _p("identifier", "token", "identifier"),
        _p("code", "token", "medicationCodeableConcept"),
        _p("medication", "reference", "medicationReference", "Medication"),
        _p("status", "token", "status"),
        _p("intent", "token", "intent"),
        _p("category", "token", "category"),
        _p("authoredon", "date", "authoredOn"),
        _p("requester", "reference", "requester"),
    ),
    "MedicationDispense": (
        *_CLINICAL_PATIENT,
        _p("identifier", "token", "identifier"),
        _p("code", "token", "medicationCodeableConcept"),
        _p("medication", "reference", "medicationReference", "Medication"),
        _p("status", "token", "status"),
        _p("whenhandedover", "date", "whenHandedOver"),
        _p("whenprepared", "date", "whenPrepared"),
        _p("performer", "reference", "performer.actor"),
        _p("prescription", "reference", "authorizingPrescription", "MedicationRequest"),
    ),
    "MedicationStatement": (
        *_CLINICAL_PATIENT,
        _p("identifier", "token", "identifier"),
        _p("code", "token", "medicationCodeableConcept"),
        _p("medication", "reference", "medicationReference", "Medication"),
        _p("status", "token", "status"),
        _p("category", "token", "category"),
        _p("effective", "date", "effectiveDateTime|effectivePeriod"),
        _p("source", "reference", "informationSource"),
    ),
    "MedicationAdministration": (
        *_CLINICAL_PATIENT,
        _p("identifier", "token", "identifier"),
        _p("code", "token", "medicationCodeableConcept"),
        _p("status", "token", "status"),
        _p("effective-time", "date", "effectiveDateTime|effectivePeriod"),
        _p("request", "reference", "request", "MedicationRequest"),
    ),
    "Immunization": (
        *_CLINICAL_PATIENT,
        _p("identifier", "token", "identifier"),
        _p("vaccine-code", "token", "vaccineCode"),
        _p("status", "token", "status"),
        _p("date", "date", "occurrenceDateTime"),
        _p("lot-number", "string", "lotNumber"),
        _p("performer", "reference", "performer.actor"),
    ),
    "AllergyIntolerance": (
        *_CLINICAL_PATIENT,
        _p("identifier", "token", "identifier"),
        _p("code", "token", "code|reaction.substance"),
        _p("clinical-status", "token", "clinicalStatus"),
        _p("verification-status", "token", "verificationStatus"),
        _p("category", "token", "category"),
        _p("criticality", "token", "criticality"),
        _p("type", "token", "type"),
        _p("date", "date", "recordedDate"),
    ),
    "Encounter": (
        *_CLINICAL_PATIENT[:2],
        _p("identifier", "token", "identifier"),
        _p("status", "token", "status"),
        _p("class", "token", "class"),
        _p("type", "token", "type"),
        _p("date", "date", "period"),
        _p("participant", "reference", "participant.individual"),
        _p("practitioner", "reference", "participant.individual", "Practitioner"),
        _p("service-provider", "reference", "serviceProvider", "Organization"),
        _p("reason-code", "token", "reasonCode"),
        _p("location", "reference", "location.location", "Location"),
    ),
    "Procedure": (
        *_CLINICAL_PATIENT,
        _p("identifier", "token", "identifier"),
        _p("code", "token", "code"),
        _p("status", "token", "status"),
        _p("category", "token", "category"),
        _p("date", "date", "performedDateTime|performedPeriod"),
        _p("performer", "reference", "performer.actor"),
    ),
    "DiagnosticReport": (
        *_CLINICAL_PATIENT,
        _p("identifier", "token", "identifier"),
        _p("code", "token", "code"),
        _p("category", "token", "category"),
        _p("status", "token", "status"),
        _p("date", "date", "effectiveDateTime|effectivePeriod"),
        _p("issued", "date", "issued"),
        _p("result", "reference", "result", "Observation"),
        _p("performer", "reference", "performer"),
    ),
    "DocumentReference": (
        *_CLINICAL_PATIENT[:2],
        _p("identifier", "token", "identifier"),
        _p("type", "token", "type"),
        _p("category", "token", "category"),
        _p("status", "token", "status"),
        _p("date", "date", "date"),
        _p("author", "reference", "author"),
        _p("encounter", "reference", "context.encounter"),
    ),
    "CarePlan": (
        *_CLINICAL_PATIENT,
        _p("identifier", "token", "identifier"),
        _p("category", "token", "category"),
        _p("status", "token", "status"),
        _p("date", "date", "period"),
    ),
    "CareTeam": (
        *_CLINICAL_PATIENT,
        _p("status", "token", "status"),
        _p("participant", "reference", "participant.member"),
    ),
    "Goal": (
        *_CLINICAL_PATIENT[:2],
        _p("lifecycle-status", "token", "lifecycleStatus"),
        _p("category", "token", "category"),
        _p("target-date", "date", "target.dueDate"),
    ),
    "Claim": (
        _p("patient", "reference", "patient", "Patient"),
        _p("identifier", "token", "identifier"),
        _p("status", "token", "status"),
        _p("use", "token", "use"),
        _p("created", "date", "created"),
        _p("provider", "reference", "provider"),
        _p("insurer", "reference", "insurer", "Organization"),
        _p("encounter", "reference", "item.encounter", "Encounter"),
    ),
    "ExplanationOfBenefit": (
        _p("patient", "reference", "patient", "Patient"),
        _p("identifier", "token", "identifier"),
        _p("status", "token", "status"),
        _p("created", "date", "created"),
        _p("provider", "reference", "provider"),
        _p("claim", "reference", "claim", "Claim"),
        _p("coverage", "reference", "insurance.coverage", "Coverage"),
    ),
    "Coverage": (
        _p("patient", "reference", "beneficiary", "Patient"),
        _p("beneficiary", "reference", "beneficiary", "Patient"),
        _p("identifier", "token", "identifier"),
        _p("status", "token", "status"),
        _p("payor", "reference", "payor"),
        _p("type", "token", "type"),
    ),
    "ImagingStudy": (
        *_CLINICAL_PATIENT,
        _p("identifier", "token", "identifier"),
        _p("status", "token", "status"),
        _p("started", "date", "started"),
        _p("modality", "token", "series.modality"),
    ),
    "Consent": (
        _p("patient", "reference", "patient", "Patient"),
        _p("identifier", "token", "identifier"),
        _p("status", "token", "status"),
        _p("category", "token", "category"),
        _p("scope", "token", "scope"),
        _p("date", "date", "dateTime"),
        _p("actor", "reference", "provision.actor.reference"),
        _p("purpose", "token", "provision.purpose"),
        _p("period", "date", "provision.period"),
    ),
    "Provenance": (
        _p("target", "reference", "target"),
        _p("patient", "reference", "target", "Patient"),
        _p("recorded", "date", "recorded"),
        _p("agent", "reference", "agent.who"),
    ),
    "Organization": (
        _p("identifier", "token", "identifier"),
        _p("name", "string", "name|alias"),
        _p("type", "token", "type"),
        _p("active", "token", "active"),
        _p("address", "string", "address"),
        _p("partof", "reference", "partOf", "Organization"),
    ),
    "Practitioner": (
        _p("identifier", "token", "identifier"),
        _p("name", "string", "name"),
        _p("family", "string", "name.family"),
        _p("given", "string", "name.given"),
        _p("active", "token", "active"),
    ),
    "PractitionerRole": (
        _p("identifier", "token", "identifier"),
        _p("practitioner", "reference", "practitioner", "Practitioner"),
        _p("organization", "reference", "organization", "Organization"),
        _p("role", "token", "code"),
    ),
    "Location": (
        _p("identifier", "token", "identifier"),
        _p("name", "string", "name"),
        _p("address", "string", "address"),
        _p("organization", "reference", "managingOrganization", "Organization"),
    ),
    "Medication": (
        _p("identifier", "token", "identifier"),
        _p("code", "token", "code"),
        _p("ingredient-code", "token", "ingredient.itemCodeableConcept"),
        _p("form", "token", "form"),
    ),
    "QuestionnaireResponse": (
        *_CLINICAL_PATIENT,
        _p("status", "token", "status"),
        _p("authored", "date", "authored"),
        _p("questionnaire", "token", "questionnaire"),
    ),
    "RiskAssessment": (
        *_CLINICAL_PATIENT,
        _p("date", "date", "occurrenceDateTime"),
        _p("method", "token", "method"),
    ),
    "Task": (
        *_CLINICAL_PATIENT[:0],
        _p("patient", "reference", "for", "Patient"),
        _p("status", "token", "status"),
        _p("code", "token", "code"),
        _p("authored-on", "date", "authoredOn"),
        _p("owner", "reference", "owner"),
    ),
    "Flag": (
        *_CLINICAL_PATIENT[:2],
        _p("status", "token", "status"),
        _p("category", "token", "category"),
        _p("date", "date", "period"),
    ),
    "Composition": (
        *_CLINICAL_PATIENT[:2],
        _p("type", "token", "type"),
        _p("status", "token", "status"),
        _p("date", "date", "date"),
    ),
    "RelatedPerson": (
        _p("patient", "reference", "patient", "Patient"),
        _p("identifier", "token", "identifier"),
        _p("name", "string", "name"),
        _p("relationship", "token", "relationship"),
    ),
}


def params_for(resource_type: str) -> dict[str, Param]:
    out = {p.name: p for p in COMMON}
    out.update({p.name: p for p in DEFINITIONS.get(resource_type, ())})
    return out


# Types that belong to a patient's compartment and the element naming the patient.
PATIENT_COMPARTMENT_ELEMENTS = ("subject", "patient", "beneficiary", "for")
