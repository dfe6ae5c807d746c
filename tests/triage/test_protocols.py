"""The protocol files' format is checked at load time, and risk factors are found in
FHIR resources from Japanese clinics and from Synthea alike."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from phr.triage import protocols, risk
from phr.triage.protocols import ProtocolError, load_file

TODAY = date(2026, 11, 25)


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    p = tmp_path / f"{data['id']}.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return p


def minimal(**change: Any) -> dict[str, Any]:
    text = {"ja": "テキスト", "en": "text"}
    data = {
        "id": "x",
        "title": text,
        "population": "adult",
        "sources": {"s": "a source"},
        "questions": [{"id": "q", "type": "boolean", "text": text}],
        "rules": [{"level": "red", "when": {"q": True}, "reason": text, "source": "s"}],
        "default": {"level": "green", "reason": text, "source": "s"},
        "risk_factors": [{"factor": "diabetes", "step": 1, "reason": text, "source": "s"}],
        "self_care": text,
    }
    data.update(change)
    return data


class TestFormat:
    def test_every_shipped_protocol_loads_and_cites_its_sources(self) -> None:
        loaded = protocols.all_protocols()
        assert len(loaded) >= 10
        for p in loaded.values():
            assert p.sources and all(len(v) > 20 for v in p.sources.values())
            assert any(r.level == "red" for r in p.rules), p.id

    def test_a_minimal_file_loads(self, tmp_path: Path) -> None:
        p = load_file(write(tmp_path, minimal()))
        assert p.red_flag_questions() == ["q"]

    @pytest.mark.parametrize(
        "change",
        [
            {"sources": {}},
            {"title": {"ja": "だけ"}},
            {
                "rules": [
                    {
                        "level": "purple",
                        "when": {"q": True},
                        "reason": {"ja": "a", "en": "b"},
                        "source": "s",
                    }
                ]
            },
            {
                "rules": [
                    {
                        "level": "red",
                        "when": {"nope": True},
                        "reason": {"ja": "a", "en": "b"},
                        "source": "s",
                    }
                ]
            },
            {
                "rules": [
                    {
                        "level": "red",
                        "when": {"q": "true"},
                        "reason": {"ja": "a", "en": "b"},
                        "source": "s",
                    }
                ]
            },
            {
                "rules": [
                    {
                        "level": "red",
                        "when": {"q": True},
                        "reason": {"ja": "a", "en": "b"},
                        "source": "elsewhere",
                    }
                ]
            },
            {
                "risk_factors": [
                    {"factor": "wealth", "step": 1, "reason": {"ja": "a", "en": "b"}, "source": "s"}
                ]
            },
            {"population": "pets"},
            {
                "rules": [
                    {
                        "level": "red",
                        "when": {"q": True},
                        "needs": ["helipad"],
                        "reason": {"ja": "a", "en": "b"},
                        "source": "s",
                    }
                ]
            },
        ],
    )
    def test_a_broken_file_is_refused(self, tmp_path: Path, change: dict[str, Any]) -> None:
        with pytest.raises(ProtocolError):
            load_file(write(tmp_path, minimal(**change)))

    def test_a_step_never_makes_red_by_itself(self, tmp_path: Path) -> None:
        p = load_file(
            write(
                tmp_path,
                minimal(
                    default={"level": "orange", "reason": {"ja": "a", "en": "b"}, "source": "s"}
                ),
            )
        )
        ev = protocols.evaluate(p, {"q": False}, risk_factors={"diabetes": {"ja": "x", "en": "y"}})
        assert ev.level == "orange" and not ev.findings[-1].raised


def _coded(
    rtype: str, field: str, system: str, code: str, display: str, **extra: Any
) -> dict[str, Any]:
    return {
        "resourceType": rtype,
        "id": code,
        field: {"coding": [{"system": system, "code": code, "display": display}]},
        **extra,
    }


class TestRiskFactors:
    def test_japanese_clinic_records(self) -> None:
        found, age = risk.factors_from_resources(
            [
                {"resourceType": "Patient", "id": "p", "birthDate": "1948-01-02"},
                _coded("Condition", "code", "http://hl7.org/fhir/sid/icd-10", "I50.9", "心不全"),
                _coded(
                    "MedicationRequest",
                    "medicationCodeableConcept",
                    "urn:oid:1.2.392.100495.20.2.74",
                    "3339004F1020",
                    "エリキュース錠5mg",
                    status="active",
                    authoredOn="2026-10-01",
                ),
                _coded(
                    "MedicationRequest",
                    "medicationCodeableConcept",
                    "urn:oid:1.2.392.100495.20.2.74",
                    "3399007H1021",
                    "バイアスピリン錠100mg（アスピリン）",
                    status="active",
                    authoredOn="2026-11-01",
                ),
            ],
            today=TODAY,
        )
        # Eliquis by its YJ class (333 anticoagulants), aspirin by its name.
        assert set(found) == {"heart_failure", "anticoagulant", "antiplatelet"}
        assert age is not None and 78 < age < 79
        assert risk.age_factors(age) == {"older_adult"}

    def test_synthea_style_records(self) -> None:
        found, _ = risk.factors_from_resources(
            [
                _coded(
                    "Condition",
                    "code",
                    "http://snomed.info/sct",
                    "44054006",
                    "Diabetes mellitus type 2 (disorder)",
                ),
                _coded(
                    "MedicationRequest",
                    "medicationCodeableConcept",
                    "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "855332",
                    "Warfarin Sodium 5 MG Oral Tablet",
                    status="active",
                    authoredOn="2026-09-01",
                ),
                _coded(
                    "Procedure",
                    "code",
                    "http://snomed.info/sct",
                    "265764009",
                    "Renal dialysis (procedure)",
                    status="completed",
                    performedDateTime="2026-11-20",
                ),
                _coded(
                    "Procedure",
                    "code",
                    "http://snomed.info/sct",
                    "80146002",
                    "Appendectomy",
                    status="completed",
                    performedDateTime="2026-11-01",
                ),
            ],
            today=TODAY,
        )
        assert set(found) == {"diabetes", "anticoagulant", "dialysis", "recent_surgery"}

    def test_inactive_old_and_stopped_records_do_not_count(self) -> None:
        found, _ = risk.factors_from_resources(
            [
                _coded(
                    "Condition",
                    "code",
                    "http://hl7.org/fhir/sid/icd-10",
                    "E11.9",
                    "2型糖尿病",
                    clinicalStatus={"coding": [{"code": "resolved"}]},
                ),
                _coded(
                    "MedicationRequest",
                    "medicationCodeableConcept",
                    "x",
                    "1",
                    "ワルファリンK錠1mg",
                    status="stopped",
                    authoredOn="2026-11-01",
                ),
                _coded(
                    "MedicationRequest",
                    "medicationCodeableConcept",
                    "x",
                    "2",
                    "ワルファリンK錠1mg",
                    status="active",
                    authoredOn="2025-01-01",
                ),
                _coded(
                    "Procedure",
                    "code",
                    "x",
                    "3",
                    "胆嚢摘出術",
                    status="completed",
                    performedDateTime="2026-01-01",
                ),
                # YJ class 3999 holds bisphosphonates too: not an immunosuppressant.
                _coded(
                    "MedicationRequest",
                    "medicationCodeableConcept",
                    "urn:oid:1.2.392.100495.20.1.73",
                    "3999018F2095",
                    "アレンドロン酸錠35mg「日医工」",
                    status="active",
                    authoredOn="2026-11-01",
                ),
            ],
            today=TODAY,
        )
        assert found == {}

    def test_an_infant_is_a_young_infant(self) -> None:
        assert risk.age_factors(0.1) == {"young_infant"}
        assert risk.age_factors(40) == set() and risk.age_factors(None) == set()
