"""Insurer CSV imports: dispensed medicines, diagnoses and checkups; continuity of one
resident across moving house and changing insurer; the same checkup from the city and the
insurer stored once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_gateway.identity import insurance_system
from fhir_gateway.models import IdentityLink, MatchReview
from fhir_gateway.sources import ImportRejected, import_file
from phr.store.models import Resource, ResourceSource
from tests.gateway.conftest import (
    CITY,
    EXAMPLES,
    HANAKO,
    INSURER,
    INSURER_2,
    TARO,
    by_loinc,
    checkup_row,
    coding,
    count,
    person,
    resident_of,
    stored,
    write_csv,
)

YJ = "urn:oid:1.2.392.100495.20.1.73"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
KYOKAI = "01080016"  # 協会けんぽ 茨城支部


def dispensing_row(mn: str | None = TARO, **over: str) -> dict[str, str]:
    row = person(mn, insurer_number=KYOKAI, insured_number="5010-1234567-00") | {
        "dispensing_date": "2025-05-08",
        "drug_code": "2171022F2025",
        "drug_name": "ノルバスク錠５ｍｇ",
        "quantity": "28",
        "unit": "錠",
        "days_supply": "28",
        "prescribing_institution": "つくば内科クリニック",
        "pharmacy": "研究学園薬局",
    }
    row.update(over)
    return row


def diagnosis_row(mn: str | None = TARO, **over: str) -> dict[str, str]:
    row = person(mn, insurer_number=KYOKAI, insured_number="5010-1234567-00") | {
        "diagnosis_date": "2023-04-10",
        "icd10": "E11.9",
        "diagnosis_name": "２型糖尿病",
        "suspected": "0",
        "outcome": "継続",
        "institution": "つくば内科クリニック",
    }
    row.update(over)
    return row


class TestDispensing:
    def test_dispensed_medicines_carry_the_yj_code_category_quantity_and_days(
        self, session: Session, orgs: dict[str, str]
    ) -> None:
        report = import_file(
            session,
            organization_id=INSURER,
            kind="insurer-dispensing",
            path=EXAMPLES / "insurer-dispensing.csv",
        )
        assert (report.created, report.persons) == (6, 2)
        taro = resident_of(session, TARO)
        meds = stored(session, "MedicationDispense", taro)
        assert len(meds) == 5
        amlodipine = next(
            m for m in meds if coding(m["medicationCodeableConcept"], YJ)["code"] == "2171022F2025"
        )
        assert (
            coding(amlodipine["medicationCodeableConcept"], YJ)["display"] == "ノルバスク錠５ｍｇ"
        )
        category = coding(
            amlodipine["medicationCodeableConcept"], "urn:phr:codesystem:yakko-bunrui"
        )
        assert (category["code"], category["display"]) == ("2171", "冠血管拡張剤")
        assert amlodipine["status"] == "completed"
        assert amlodipine["quantity"] == {"value": 28, "unit": "錠"}
        assert amlodipine["daysSupply"]["code"] == "d" and amlodipine["daysSupply"]["value"] == 28
        assert amlodipine["whenHandedOver"] == "2025-05-08"
        assert amlodipine["performer"] == [{"actor": {"display": "研究学園薬局"}}]
        assert amlodipine["subject"] == {"reference": f"Patient/{taro}"}
        assert "authorizingPrescription" not in amlodipine

    def test_a_member_without_my_number_is_linked_by_the_insured_person_number(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        path = write_csv(tmp_path / "d.csv", [dispensing_row(None)])
        import_file(session, organization_id=INSURER, kind="insurer-dispensing", path=path)
        path2 = write_csv(tmp_path / "d2.csv", [dispensing_row(None, dispensing_date="2025-06-05")])
        import_file(session, organization_id=INSURER, kind="insurer-dispensing", path=path2)
        residents = set(
            session.scalars(
                select(Resource.resident_id).where(Resource.resource_type == "MedicationDispense")
            )
        )
        assert len(residents) == 1
        link = session.scalars(select(IdentityLink).where(IdentityLink.kind == "insurance")).one()
        assert (link.system, link.value) == (insurance_system(KYOKAI), "5010-1234567-00")

    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("drug_code", "ABC"),
            ("drug_code", "21710222025X"),
            ("quantity", "0"),
            ("days_supply", "1.5"),
            ("insurer_number", "1234"),
            ("dispensing_date", "2999-01-01"),
        ],
    )
    def test_invalid_cells_are_row_errors(
        self, session: Session, orgs: dict[str, str], tmp_path: Path, column: str, value: str
    ) -> None:
        path = write_csv(tmp_path / "d.csv", [dispensing_row(**{column: value})])
        with pytest.raises(ImportRejected) as exc:
            import_file(session, organization_id=INSURER, kind="insurer-dispensing", path=path)
        assert [(e.file, e.row, e.column) for e in exc.value.errors] == [("d.csv", 2, column)]
        assert count(session, Resource) == 0


class TestDiagnosis:
    def test_claims_diagnoses_become_conditions_with_icd10_and_japanese_names(
        self, session: Session, orgs: dict[str, str]
    ) -> None:
        import_file(
            session,
            organization_id=INSURER,
            kind="insurer-diagnosis",
            path=EXAMPLES / "insurer-diagnosis.csv",
        )
        conditions = {
            coding(c["code"], ICD10)["code"]: c
            for c in stored(session, "Condition", resident_of(session, TARO))
        }
        assert set(conditions) == {"I10", "E11.9", "E78.5", "M54.5", "K25.9"}
        dm = conditions["E11.9"]
        assert dm["code"]["text"] == "２型糖尿病"
        assert coding(dm["code"], ICD10)["display"] == "２型糖尿病"
        assert dm["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
        assert dm["onsetDateTime"] == "2023-04-10"
        assert dm["clinicalStatus"]["coding"][0]["code"] == "active"
        assert dm["verificationStatus"]["coding"][0]["code"] == "confirmed"
        assert conditions["M54.5"]["clinicalStatus"]["coding"][0]["code"] == "resolved"
        ulcer = conditions["K25.9"]
        assert ulcer["verificationStatus"]["coding"][0]["code"] == "provisional"
        assert ulcer["clinicalStatus"]["coding"][0]["code"] == "inactive"

    def test_an_icd10_code_without_a_dot_is_normalised_and_a_bad_one_rejected(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        path = write_csv(tmp_path / "dx.csv", [diagnosis_row(icd10="E119")])
        import_file(session, organization_id=INSURER, kind="insurer-diagnosis", path=path)
        [cond] = stored(session, "Condition")
        assert coding(cond["code"], ICD10)["code"] == "E11.9"
        bad = write_csv(
            tmp_path / "bad.csv", [diagnosis_row(icd10="糖尿病"), diagnosis_row(outcome="軽快")]
        )
        with pytest.raises(ImportRejected) as exc:
            import_file(session, organization_id=INSURER, kind="insurer-diagnosis", path=bad)
        assert [(e.row, e.column) for e in exc.value.errors] == [(2, "icd10"), (3, "outcome")]


class TestContinuity:
    def test_one_resident_across_moving_in_and_two_changes_of_insurer(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        hanako = {
            "family_name": "筑波",
            "given_name": "花子",
            "family_name_kana": "ツクバ",
            "given_name_kana": "ハナコ",
            "birth_date": "1950-04-01",
            "sex": "F",
        }
        # 1. She moves into Tsukuba; the city (her 国保 insurer) sends a vaccination.
        city_file = write_csv(
            tmp_path / "city.csv",
            [
                person(
                    HANAKO,
                    insurer_number="080001",
                    insured_number="12-345678-00",
                    address="茨城県つくば市天久保二丁目3番地",
                    moved_in_date="2021-04-01",
                    **hanako,
                )
                | {"vaccine_code": "FLU", "dose_number": "1", "date": "2021-10-28"}
            ],
        )
        import_file(session, organization_id=CITY, kind="vaccination", path=city_file)
        resident = resident_of(session, HANAKO)
        # 2. She takes a job: 協会けんぽ becomes her insurer (資格取得 2023-04-01).
        insurer_file = write_csv(
            tmp_path / "kyokai.csv",
            [
                dispensing_row(
                    HANAKO,
                    insurer_number=KYOKAI,
                    insured_number="5010-2222222-00",
                    qualification_date="2023-04-01",
                    **hanako,
                )
            ],
        )
        r2 = import_file(
            session, organization_id=INSURER, kind="insurer-dispensing", path=insurer_file
        )
        # 3. She changes employer: a health insurance society, new insurer number.
        second = write_csv(
            tmp_path / "kenpo.csv",
            [
                dispensing_row(
                    HANAKO,
                    insurer_number="06139999",
                    insured_number="10-123-00",
                    qualification_date="2025-01-01",
                    dispensing_date="2025-02-03",
                    **hanako,
                )
            ],
        )
        r3 = import_file(session, organization_id=INSURER_2, kind="insurer-dispensing", path=second)
        assert r2.persons == r3.persons == 1 and r2.review_ids == r3.review_ids == []
        assert set(
            session.scalars(
                select(Resource.resident_id).where(
                    Resource.resource_type.in_(("Immunization", "MedicationDispense"))
                )
            )
        ) == {resident}
        assert len(stored(session, "Patient")) == 1
        links = {
            (lk.system, lk.value): lk
            for lk in session.scalars(
                select(IdentityLink).where(
                    IdentityLink.resident_id == resident, IdentityLink.kind == "insurance"
                )
            )
        }
        kokuho = links[(insurance_system("080001"), "12-345678-00")]
        kyokai = links[(insurance_system(KYOKAI), "5010-2222222-00")]
        kenpo = links[(insurance_system("06139999"), "10-123-00")]
        assert kokuho.valid_to == date(2023, 4, 1)
        assert (kyokai.valid_from, kyokai.valid_to) == (date(2023, 4, 1), date(2025, 1, 1))
        assert (kenpo.valid_from, kenpo.valid_to) == (date(2025, 1, 1), None)
        # The old insured-person number still finds her (history, e.g. a late claim).
        late = write_csv(
            tmp_path / "late.csv",
            [
                dispensing_row(
                    None,
                    insurer_number=KYOKAI,
                    insured_number="5010-2222222-00",
                    dispensing_date="2024-12-20",
                    **hanako,
                )
            ],
        )
        import_file(session, organization_id=INSURER, kind="insurer-dispensing", path=late)
        assert {m["subject"]["reference"] for m in stored(session, "MedicationDispense")} == {
            f"Patient/{resident}"
        }

    def test_contradicting_demographics_are_filed_apart_and_queued_for_review(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        import_file(
            session,
            organization_id=CITY,
            kind="checkup",
            path=write_csv(tmp_path / "c.csv", [checkup_row()]),
        )
        report = import_file(
            session,
            organization_id=INSURER,
            kind="insurer-diagnosis",
            path=write_csv(tmp_path / "d.csv", [diagnosis_row(birth_date="1962-11-24")]),
        )
        assert len(report.review_ids) == 1
        review = session.get(MatchReview, report.review_ids[0])
        assert review is not None and review.reason == "conflicting-demographics"


class TestSameCheckupFromTwoSources:
    def test_the_city_and_the_insurer_checkup_is_stored_once(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        city = import_file(
            session,
            organization_id=CITY,
            kind="checkup",
            path=write_csv(tmp_path / "city.csv", [checkup_row()]),
        )
        assert city.created == 17
        taro = resident_of(session, TARO)
        row = checkup_row(
            insurer_number=KYOKAI, insured_number="5010-1234567-00", qualification_date="2019-04-01"
        )
        insurer = import_file(
            session,
            organization_id=INSURER,
            kind="insurer-checkup",
            path=write_csv(tmp_path / "kyokai.csv", [row]),
        )
        assert (insurer.created, insurer.updated, insurer.merged) == (0, 0, 17)
        assert len(stored(session, "Observation", taro)) == 16
        assert len(stored(session, "DiagnosticReport", taro)) == 1
        hba1c = by_loinc(stored(session, "Observation", taro), "4548-4")
        pk = session.scalar(select(Resource.pk).where(Resource.id == hba1c["id"]))
        assert set(
            session.scalars(
                select(ResourceSource.organization_id).where(ResourceSource.resource_pk == pk)
            )
        ) == {CITY, INSURER}
        assert hba1c["meta"]["versionId"] == "1"
        # Both re-imports change nothing.
        again = import_file(
            session, organization_id=INSURER, kind="insurer-checkup", path=tmp_path / "kyokai.csv"
        )
        assert (again.unchanged, again.created, again.merged) == (17, 0, 0)
        assert (
            import_file(
                session, organization_id=CITY, kind="checkup", path=tmp_path / "city.csv"
            ).unchanged
            == 17
        )

    def test_a_different_value_from_the_insurer_is_its_own_observation(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        import_file(
            session,
            organization_id=CITY,
            kind="checkup",
            path=write_csv(tmp_path / "city.csv", [checkup_row()]),
        )
        row = checkup_row(insurer_number=KYOKAI, insured_number="5010-1234567-00", hba1c_ngsp="6.7")
        report = import_file(
            session,
            organization_id=INSURER,
            kind="insurer-checkup",
            path=write_csv(tmp_path / "kyokai.csv", [row]),
        )
        # HbA1c differs: a new Observation and, grouping it, a new report.
        assert (report.merged, report.created) == (15, 2)
        taro = resident_of(session, TARO)
        values = sorted(
            o["valueQuantity"]["value"]
            for o in stored(session, "Observation", taro)
            if coding(o["code"], "http://loinc.org")["code"] == "4548-4"
        )
        assert values == [6.7, 6.8]

    def test_the_example_insurer_checkup_matches_the_city_mapping(
        self, session: Session, orgs: dict[str, str]
    ) -> None:
        report = import_file(
            session,
            organization_id=INSURER,
            kind="insurer-checkup",
            path=EXAMPLES / "insurer-checkup.csv",
        )
        assert report.created == 34
        obs = stored(session, "Observation", resident_of(session, TARO))
        assert by_loinc(obs, "20454-5")["valueCodeableConcept"]["coding"][0]["code"] == "1+"
        assert (
            by_loinc(obs, "85354-9")["component"][1]["interpretation"][0]["coding"][0]["code"]
            == "H"
        )
        assert HANAKO not in {o["subject"]["reference"] for o in obs}
