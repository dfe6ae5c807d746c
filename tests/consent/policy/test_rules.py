"""Consent resources flattened into rules, and the sensitivity classifier."""

from __future__ import annotations

from consent.actors import Purpose
from consent.policy import schemas
from consent.policy.service import build_consent, describe, flatten
from fhir_gateway.validation import validate_resource
from phr.store.sensitivity import MENTAL_HEALTH, PRIVACY_DIRECTIVE, SUBSTANCE, classify


def consent(**kw: object) -> dict:
    c = build_consent("r1", schemas.ConsentCreate(**kw))  # type: ignore[arg-type]
    c["id"] = "c1"
    return c


class TestBuild:
    def test_the_consent_is_valid_fhir(self) -> None:
        c = consent(
            recipients=[{"kind": "org_kind", "value": "ems"}],
            purposes=["ETREAT"],
            data_classes=["AllergyIntolerance"],
            exceptions=[{"purposes": ["HRESCH"]}],
        )
        assert validate_resource(c) == []
        assert c["provision"]["provision"][0]["type"] == "deny"

    def test_it_reads_in_plain_words(self) -> None:
        ja, en = describe(
            consent(recipients=[{"kind": "org_kind", "value": "ems"}], purposes=["ETREAT"])
        )
        assert "救急隊" in ja and "救急医療" in ja
        assert en.startswith("paramedics (EMS) may see all records for emergency treatment")


class TestFlatten:
    def test_one_rule_per_actor_purpose_and_class(self) -> None:
        rows = flatten(
            consent(
                recipients=[
                    {"kind": "organization", "value": "h"},
                    {"kind": "role", "value": "doctor"},
                ],
                purposes=["TREAT", "MEDREVIEW"],
                data_classes=["Condition"],
            ),
            "r1",
        )
        assert len(rows) == 4
        assert {(r["actor_kind"], r["purpose"]) for r in rows} == {
            ("organization", "TREAT"),
            ("organization", "MEDREVIEW"),
            ("role", "TREAT"),
            ("role", "MEDREVIEW"),
        }

    def test_nested_exceptions_inherit_what_they_omit(self) -> None:
        rows = flatten(
            consent(
                recipients=[{"kind": "organization", "value": "h"}],
                purposes=["TREAT"],
                exceptions=[{"data_classes": ["Observation"]}],
            ),
            "r1",
        )
        deny = [r for r in rows if r["decision"] == "deny"]
        assert [(d["actor_value"], d["purpose"], d["resource_type"], d["depth"]) for d in deny] == [
            ("h", "TREAT", "Observation", 1)
        ]

    def test_a_permit_names_sensitive_categories_explicitly(self) -> None:
        rows = flatten(consent(sensitive_categories=["mental-health"]), "r1")
        assert {r["category"] for r in rows} == {"*", "mental-health"}

    def test_an_inactive_consent_has_no_rules(self) -> None:
        c = consent()
        c["status"] = "inactive"
        assert flatten(c, "r1") == []

    def test_purpose_any_is_stored_as_a_wildcard(self) -> None:
        rows = flatten(consent(), "r1")
        assert rows[0]["purpose"] == "*" and Purpose.RESEARCH.value != "*"


class TestSensitivity:
    def test_icd10_mental_and_substance_use(self) -> None:
        def cond(code: str) -> dict:
            return {
                "resourceType": "Condition",
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]},
            }

        assert classify(cond("F32.9")) == MENTAL_HEALTH
        assert classify(cond("F10.2")) == SUBSTANCE
        assert classify(cond("E11.9")) is None

    def test_security_labels_win(self) -> None:
        obs = {
            "resourceType": "Observation",
            "meta": {
                "security": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}
                ]
            },
        }
        assert classify(obs) == "infectious-disease"

    def test_psychotropics_by_national_drug_code(self) -> None:
        med = {
            "resourceType": "MedicationRequest",
            "medicationCodeableConcept": {
                "coding": [{"system": "urn:oid:1.2.392.100495.20.1.73", "code": "1179041F1020"}]
            },
        }
        assert classify(med) == MENTAL_HEALTH

    def test_privacy_consents_are_never_ordinary_data(self) -> None:
        assert classify(consent()) == PRIVACY_DIRECTIVE
