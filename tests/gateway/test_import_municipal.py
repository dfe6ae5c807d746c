"""Municipal CSV imports: vaccinations, checkups, disability certificates; the all-or-nothing
rule, reject files, idempotent re-import, encodings, and My Number never stored."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from fhir_gateway.identity import valid_mynumber
from fhir_gateway.models import IdentityLink, ImportJob
from fhir_gateway.sources import ImportRejected, RowError, import_file
from phr.errors import InvalidInput
from phr.store.models import Resource, ResourceSource, ResourceVersion
from tests.gateway.conftest import (
    CITY,
    EXAMPLES,
    HANAKO,
    ICHIRO,
    KEN,
    LOINC,
    SAKURA,
    TARO,
    by_loinc,
    checkup_row,
    coding,
    count,
    mynumber,
    person,
    resident_of,
    stored,
    write_csv,
)

TOKUTEI = "urn:oid:1.2.392.200119.6.1005"


def vaccination_row(mn: str | None = SAKURA, **over: str) -> dict[str, str]:
    row = person(
        mn,
        family_name="学園",
        given_name="さくら",
        family_name_kana="ガクエン",
        given_name_kana="サクラ",
        birth_date="2023-06-15",
        sex="F",
    ) | {
        "vaccine_code": "HIB",
        "dose_number": "1",
        "date": "2023-08-21",
        "lot_number": "HB123A",
        "performer": "つくば小児科クリニック",
    }
    row.update(over)
    return row


EXAMPLE_FILES = [
    ("vaccination", CITY),
    ("checkup", CITY),
    ("disability", CITY),
    ("insurer-dispensing", "kyokai-ibaraki"),
    ("insurer-diagnosis", "kyokai-ibaraki"),
    ("insurer-checkup", "kyokai-ibaraki"),
]


class TestExampleFiles:
    @pytest.mark.parametrize(("kind", "org"), EXAMPLE_FILES)
    def test_each_example_file_imports_and_reimports_unchanged(
        self, session: Session, orgs: dict[str, str], kind: str, org: str
    ) -> None:
        path = EXAMPLES / f"{kind}.csv"
        first = import_file(session, organization_id=org, kind=kind, path=path)
        assert first.rejected == 0 and first.errors == []
        assert first.created > 0 and first.rows > 0
        versions = count(session, ResourceVersion)
        again = import_file(session, organization_id=org, kind=kind, path=path)
        assert (again.created, again.updated, again.merged) == (0, 0, 0)
        assert again.unchanged == first.created
        assert count(session, ResourceVersion) == versions
        jobs = session.scalars(select(ImportJob).where(ImportJob.organization_id == org)).all()
        assert {j.id for j in jobs} == {first.import_id, again.import_id}
        assert all(j.kind == f"{kind}-csv" and j.status == "completed" for j in jobs)

    def test_example_files_use_synthetic_my_numbers_with_valid_check_digits(self) -> None:
        for path in sorted(EXAMPLES.glob("*.csv")):
            if path.name.startswith("mhlw-"):
                continue
            with path.open(encoding="utf-8-sig") as fh:
                for row in csv.DictReader(fh):
                    if row.get("mynumber"):
                        assert valid_mynumber(row["mynumber"]), path.name
        assert {HANAKO, TARO, SAKURA, ICHIRO, KEN} == {
            mynumber(f"1000000000{i}") for i in range(1, 6)
        }


class TestVaccination:
    def test_immunizations_carry_the_japanese_code_cvx_and_japanese_display(
        self, session: Session, orgs: dict[str, str]
    ) -> None:
        import_file(
            session, organization_id=CITY, kind="vaccination", path=EXAMPLES / "vaccination.csv"
        )
        sakura = resident_of(session, SAKURA)
        imms = stored(session, "Immunization", sakura)
        assert len(imms) == 7
        hib = next(
            i
            for i in imms
            if coding(i["vaccineCode"], "urn:phr:codesystem:jp-vaccine")["code"] == "HIB"
        )
        assert (
            coding(hib["vaccineCode"], "urn:phr:codesystem:jp-vaccine")["display"]
            == "ヒブ（インフルエンザ菌b型）"
        )
        assert coding(hib["vaccineCode"], "http://hl7.org/fhir/sid/cvx")["code"] == "48"
        assert hib["patient"] == {"reference": f"Patient/{sakura}"}
        assert hib["occurrenceDateTime"] == "2023-08-21"
        assert hib["lotNumber"] == "HB123A"
        assert hib["protocolApplied"] == [{"doseNumberPositiveInt": 1}]
        assert hib["performer"][0]["actor"]["display"] == "つくば小児科クリニック"
        assert hib["meta"]["source"] == f"urn:phr:organization:{CITY}"
        hanako = resident_of(session, HANAKO)
        statuses = {
            coding(i["vaccineCode"], "urn:phr:codesystem:jp-vaccine")["code"]: i["status"]
            for i in stored(session, "Immunization", hanako)
        }
        assert statuses == {"FLU": "completed", "HZ-RZV": "not-done"}

    def test_the_patient_keeps_kana_and_the_moved_in_date(
        self, session: Session, orgs: dict[str, str]
    ) -> None:
        import_file(
            session, organization_id=CITY, kind="vaccination", path=EXAMPLES / "vaccination.csv"
        )
        hanako = resident_of(session, HANAKO)
        [patient] = stored(session, "Patient", hanako)
        assert patient["id"] == hanako
        assert patient["name"][0]["family"] == "筑波"
        assert patient["name"][1]["family"] == "ツクバ"
        assert patient["gender"] == "female" and patient["birthDate"] == "1950-04-01"
        assert patient["address"][0]["postalCode"] == "305-0005"
        assert patient["address"][0]["period"] == {"start": "2021-04-01"}

    def test_a_vaccine_name_in_japanese_is_accepted_and_an_unknown_code_is_not(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        path = write_csv(
            tmp_path / "v.csv",
            [
                vaccination_row(vaccine_code="日本脳炎", date="2024-07-01"),
                vaccination_row(vaccine_code="XYZ", date="2024-07-02"),
            ],
        )
        with pytest.raises(ImportRejected) as exc:
            import_file(session, organization_id=CITY, kind="vaccination", path=path)
        assert [(e.row, e.column) for e in exc.value.errors] == [(3, "vaccine_code")]


class TestCheckup:
    def test_each_measure_is_an_observation_with_loinc_jlac10_ucum_and_japanese_text(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        path = write_csv(tmp_path / "c.csv", [checkup_row()])
        report = import_file(session, organization_id=CITY, kind="checkup", path=path)
        assert report.created == 17  # 16 observations (BP is one) + the report
        taro = resident_of(session, TARO)
        obs = stored(session, "Observation", taro)
        assert len(obs) == 16
        hba1c = by_loinc(obs, "4548-4")
        assert coding(hba1c["code"], TOKUTEI) == {
            "system": TOKUTEI,
            "code": "3D046000001999902",
            "display": "HbA1c（NGSP）",
        }
        assert hba1c["code"]["text"] == "HbA1c（NGSP）"
        assert hba1c["valueQuantity"] == {
            "value": 6.8,
            "unit": "%",
            "system": "http://unitsofmeasure.org",
            "code": "%",
        }
        assert hba1c["effectiveDateTime"] == "2025-06-10"
        assert hba1c["category"][0]["coding"][0]["code"] == "laboratory"
        assert hba1c["referenceRange"][0]["high"]["value"] == 5.5
        assert "5.6" in hba1c["referenceRange"][0]["text"]
        assert hba1c["interpretation"][0]["coding"][0]["code"] == "H"
        hdl = by_loinc(obs, "2085-9")
        assert hdl["referenceRange"][0]["low"]["value"] == 40
        assert hdl["interpretation"][0]["coding"][0]["code"] == "L"
        assert by_loinc(obs, "8302-2")["category"][0]["coding"][0]["code"] == "vital-signs"
        waist = by_loinc(obs, "8280-0")
        assert waist["category"][0]["coding"][0]["code"] == "exam"
        assert len(waist["referenceRange"]) == 2  # men 85, women 90
        assert by_loinc(obs, "69405-9")["valueQuantity"]["code"] == "mL/min/{1.73_m2}"
        bp = by_loinc(obs, "85354-9")
        assert "valueQuantity" not in bp
        assert [
            (coding(c["code"], LOINC)["code"], c["valueQuantity"]["value"]) for c in bp["component"]
        ] == [("8480-6", 142), ("8462-4", 91)]
        assert coding(bp["component"][0]["code"], TOKUTEI)["code"] == "9A755000000000001"
        urine = by_loinc(obs, "20454-5")
        assert urine["valueCodeableConcept"]["coding"][0]["code"] == "1+"
        [report_] = stored(session, "DiagnosticReport", taro)
        assert report_["code"]["text"] == "特定健康診査"
        assert report_["performer"] == [{"display": "つくば市健診センター"}]
        assert sorted(r["reference"] for r in report_["result"]) == sorted(
            f"Observation/{o['id']}" for o in obs
        )

    def test_an_empty_cell_is_not_measured(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        path = write_csv(
            tmp_path / "c.csv",
            [
                checkup_row(
                    ldl="",
                    hdl="",
                    triglycerides="",
                    ast="",
                    alt="",
                    ggt="",
                    creatinine="",
                    egfr="",
                    urine_protein="",
                    fasting_glucose="",
                    sbp="",
                    dbp="",
                )
            ],
        )
        report = import_file(session, organization_id=CITY, kind="checkup", path=path)
        assert report.created == 6  # height, weight, BMI, waist, HbA1c + the report

    @pytest.mark.parametrize(
        ("column", "value", "reason"),
        [
            ("height_cm", "300", "implausible value (expected 50 to 250)"),
            ("sbp", "abc", "not a number"),
            ("hba1c_ngsp", "25", "implausible value (expected 3 to 20)"),
            ("urine_protein", "4+", "expected −, ±, +, 2+ or 3+"),
            ("checkup_date", "2025-02-30", "not a valid calendar date"),
            ("dbp", "150", "diastolic pressure not below systolic"),
        ],
    )
    def test_implausible_values_are_row_errors(
        self,
        session: Session,
        orgs: dict[str, str],
        tmp_path: Path,
        column: str,
        value: str,
        reason: str,
    ) -> None:
        path = write_csv(
            tmp_path / "c.csv",
            [
                checkup_row(),
                checkup_row(
                    HANAKO,
                    family_name="筑波",
                    given_name="花子",
                    birth_date="1950-04-01",
                    sex="F",
                    **{column: value},
                ),
            ],
        )
        with pytest.raises(ImportRejected) as exc:
            import_file(session, organization_id=CITY, kind="checkup", path=path)
        assert exc.value.errors == [RowError("c.csv", 3, column, reason)]

    def test_blood_pressure_needs_both_pressures(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        path = write_csv(tmp_path / "c.csv", [checkup_row(dbp="")])
        with pytest.raises(ImportRejected) as exc:
            import_file(session, organization_id=CITY, kind="checkup", path=path)
        assert [(e.row, e.column) for e in exc.value.errors] == [(2, "dbp")]


class TestDisability:
    def test_certificates_become_conditions_with_type_grade_and_validity(
        self, session: Session, orgs: dict[str, str]
    ) -> None:
        import_file(
            session, organization_id=CITY, kind="disability", path=EXAMPLES / "disability.csv"
        )
        [ichiro] = stored(session, "Condition", resident_of(session, ICHIRO))
        cert = coding(ichiro["category"][1], "urn:phr:codesystem:disability-certificate")
        assert cert == {
            "system": "urn:phr:codesystem:disability-certificate",
            "code": "physical",
            "display": "身体障害者手帳",
        }
        assert ichiro["severity"]["text"] == "身体障害者手帳 3級"
        assert ichiro["code"]["text"] == "心臓機能障害（ペースメーカー植込み）"
        assert ichiro["clinicalStatus"]["coding"][0]["code"] == "active"
        assert ichiro["recordedDate"] == "2019-04-01"
        [ken] = stored(session, "Condition", resident_of(session, KEN))
        assert ken["severity"]["coding"][0]["code"] == "intellectual-maruA"
        assert ken["severity"]["coding"][0]["display"] == "Ⓐ（最重度）"
        assert ken["extension"][0]["valuePeriod"] == {"start": "2016-05-01", "end": "2030-03-31"}
        [hanako] = stored(session, "Condition", resident_of(session, HANAKO))
        assert hanako["clinicalStatus"]["coding"][0]["code"] == "inactive"  # expired 2024

    def test_a_grade_the_certificate_does_not_have_is_an_error(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        path = write_csv(
            tmp_path / "d.csv",
            [
                person()
                | {
                    "certificate_type": "mental",
                    "grade": "5",
                    "disability": "精神障害",
                    "issued_date": "2024-01-01",
                }
            ],
        )
        with pytest.raises(ImportRejected) as exc:
            import_file(session, organization_id=CITY, kind="disability", path=path)
        assert [(e.row, e.column) for e in exc.value.errors] == [(2, "grade")]


class TestIdempotency:
    def test_a_changed_value_becomes_version_2_of_the_same_resource(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        path = write_csv(tmp_path / "c.csv", [checkup_row()])
        import_file(session, organization_id=CITY, kind="checkup", path=path)
        taro = resident_of(session, TARO)
        before = by_loinc(stored(session, "Observation", taro), "4548-4")
        write_csv(path, [checkup_row(hba1c_ngsp="6.9")])
        report = import_file(session, organization_id=CITY, kind="checkup", path=path)
        assert (report.updated, report.created, report.unchanged) == (1, 0, 16)
        after = by_loinc(stored(session, "Observation", taro), "4548-4")
        assert after["id"] == before["id"]
        assert after["meta"]["versionId"] == "2"
        assert after["valueQuantity"]["value"] == 6.9
        assert count(session, ResourceVersion, id=before["id"]) == 2
        assert len(stored(session, "Observation", taro)) == 16

    def test_a_corrected_lot_number_updates_the_immunization(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        path = write_csv(tmp_path / "v.csv", [vaccination_row()])
        import_file(session, organization_id=CITY, kind="vaccination", path=path)
        write_csv(path, [vaccination_row(lot_number="HB999Z")])
        report = import_file(session, organization_id=CITY, kind="vaccination", path=path)
        assert report.updated == 1
        [imm] = stored(session, "Immunization")
        assert (imm["lotNumber"], imm["meta"]["versionId"]) == ("HB999Z", "2")

    def test_an_identical_duplicate_row_is_imported_once_and_a_conflicting_one_rejected(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        path = write_csv(tmp_path / "v.csv", [vaccination_row(), vaccination_row()])
        report = import_file(session, organization_id=CITY, kind="vaccination", path=path)
        assert (report.created, report.duplicates) == (1, 1)
        path = write_csv(
            tmp_path / "v2.csv", [vaccination_row(), vaccination_row(lot_number="OTHER")]
        )
        with pytest.raises(ImportRejected) as exc:
            import_file(session, organization_id=CITY, kind="vaccination", path=path)
        assert exc.value.errors[0].row == 3 and "row 2" in exc.value.errors[0].reason


class TestRejection:
    def test_one_bad_row_rejects_the_file_and_writes_nothing(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        rows = [
            vaccination_row(),
            vaccination_row(date="2024-13-01"),
            vaccination_row(vaccine_code="BCG", date="2023-12-05"),
        ]
        path = write_csv(tmp_path / "vaccination.csv", rows)
        before = {
            m.__name__: count(session, m)
            for m in (Resource, ResourceVersion, ResourceSource, IdentityLink, ImportJob)
        }
        with pytest.raises(ImportRejected) as exc:
            import_file(session, organization_id=CITY, kind="vaccination", path=path)
        assert exc.value.errors == [
            RowError("vaccination.csv", 3, "date", "not a valid calendar date")
        ]
        assert isinstance(exc.value, InvalidInput)
        assert exc.value.operation_outcome()["issue"][0]["expression"] == ["date"]
        after = {
            m.__name__: count(session, m)
            for m in (Resource, ResourceVersion, ResourceSource, IdentityLink, ImportJob)
        }
        assert after == before
        assert not (tmp_path / "vaccination.csv.rejects.csv").exists()

    def test_skip_invalid_imports_the_rest_and_writes_a_reject_file(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        rows = [
            vaccination_row(),
            vaccination_row(dose_number="0", date="2023-09-01"),
            vaccination_row(vaccine_code="BCG", date="2023-12-05"),
        ]
        path = write_csv(tmp_path / "vaccination.csv", rows)
        report = import_file(
            session, organization_id=CITY, kind="vaccination", path=path, skip_invalid=True
        )
        assert (report.rows, report.created, report.rejected) == (3, 2, 1)
        assert report.reject_path == tmp_path / "vaccination.csv.rejects.csv"
        with report.reject_path.open(encoding="utf-8-sig") as fh:
            rejected = list(csv.DictReader(fh))
        assert len(rejected) == 1
        assert rejected[0]["date"] == "2023-09-01"
        assert rejected[0]["vaccine_code"] == "HIB"
        assert rejected[0]["error"] == "dose_number: expected a dose number from 1 to 20"
        assert count(session, Resource, resource_type="Immunization") == 2
        job = session.get(ImportJob, report.import_id)
        assert job is not None and '"rejected": 1' in job.summary

    def test_an_explicit_reject_path_is_used(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        path = write_csv(tmp_path / "v.csv", [vaccination_row(birth_date="2024-01-01")])
        out = tmp_path / "out" / "bad.csv"
        report = import_file(
            session,
            organization_id=CITY,
            kind="vaccination",
            path=path,
            skip_invalid=True,
            reject_path=out,
        )
        assert report.rejected == 1 and report.created == 0
        assert "date: before birth_date" in out.read_text(encoding="utf-8-sig")

    def test_an_invalid_my_number_check_digit_is_a_row_error_that_hides_the_number(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        wrong = SAKURA[:11] + str((int(SAKURA[11]) + 1) % 10)
        path = write_csv(tmp_path / "v.csv", [vaccination_row(wrong)])
        with pytest.raises(ImportRejected) as exc:
            import_file(session, organization_id=CITY, kind="vaccination", path=path)
        [err] = exc.value.errors
        assert (err.row, err.column) == (2, "mynumber")
        assert "check digit" in err.reason and wrong not in str(exc.value.operation_outcome())

    def test_a_row_without_any_identifier_is_an_error(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        path = write_csv(tmp_path / "v.csv", [vaccination_row(mn=None)])
        with pytest.raises(ImportRejected) as exc:
            import_file(session, organization_id=CITY, kind="vaccination", path=path)
        assert [(e.row, e.column) for e in exc.value.errors] == [(2, "mynumber")]

    def test_a_missing_column_rejects_the_file_even_with_skip_invalid(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        row = vaccination_row()
        del row["date"]
        path = write_csv(tmp_path / "v.csv", [row])
        with pytest.raises(ImportRejected) as exc:
            import_file(
                session, organization_id=CITY, kind="vaccination", path=path, skip_invalid=True
            )
        assert exc.value.errors == [RowError("v.csv", 1, "date", "required column missing")]

    def test_an_unknown_column_is_rejected_rather_than_silently_ignored(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        path = write_csv(tmp_path / "c.csv", [checkup_row() | {"hba1c": "6.0"}])
        with pytest.raises(ImportRejected) as exc:
            import_file(session, organization_id=CITY, kind="checkup", path=path)
        assert [(e.row, e.column) for e in exc.value.errors] == [(1, "hba1c")]

    def test_unknown_kind_and_organization_are_invalid_input(
        self, session: Session, orgs: dict[str, str]
    ) -> None:
        with pytest.raises(InvalidInput, match="unknown import kind"):
            import_file(session, organization_id=CITY, kind="lab", path=EXAMPLES / "checkup.csv")
        with pytest.raises(InvalidInput, match="unknown organization"):
            import_file(
                session, organization_id="nowhere", kind="checkup", path=EXAMPLES / "checkup.csv"
            )


class TestEncodings:
    def test_a_cp932_file_from_a_municipal_system_imports(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        rows = [
            vaccination_row(family_name="髙橋", given_name="ｻｸﾗ"),  # half-width kana
            vaccination_row(vaccine_code="日本脳炎", date="2024-07-01"),
        ]
        path = write_csv(tmp_path / "v.csv", rows, encoding="cp932")
        with pytest.raises(UnicodeDecodeError):
            path.read_bytes().decode("utf-8")
        report = import_file(session, organization_id=CITY, kind="vaccination", path=path)
        assert report.created == 2
        [patient] = stored(session, "Patient", resident_of(session, SAKURA))
        assert patient["name"][0] == {"use": "official", "family": "髙橋", "given": ["サクラ"]}
        je = [i for i in stored(session, "Immunization") if i["vaccineCode"]["text"] == "日本脳炎"]
        assert len(je) == 1

    def test_a_utf8_file_with_bom_and_blank_lines_keeps_spreadsheet_row_numbers(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        path = write_csv(tmp_path / "v.csv", [vaccination_row()], encoding="utf-8-sig")
        bad = write_csv(tmp_path / "bad.csv", [vaccination_row(date="x")])
        lines = bad.read_text(encoding="utf-8").splitlines()
        bad.write_text("\ufeff" + lines[0] + "\n" + ",,,,\n" + lines[1] + "\n", encoding="utf-8")
        assert (
            import_file(session, organization_id=CITY, kind="vaccination", path=path).created == 1
        )
        with pytest.raises(ImportRejected) as exc:
            import_file(session, organization_id=CITY, kind="vaccination", path=bad)
        assert [(e.row, e.column) for e in exc.value.errors] == [(3, "date")]


class TestMyNumberNeverStored:
    def test_no_table_holds_a_my_number_in_the_clear(
        self, session: Session, orgs: dict[str, str], tmp_path: Path
    ) -> None:
        for kind, org in EXAMPLE_FILES:
            import_file(session, organization_id=org, kind=kind, path=EXAMPLES / f"{kind}.csv")
        numbers = {HANAKO, TARO, SAKURA, ICHIRO, KEN}
        conn = session.connection()
        tables = inspect(conn).get_table_names()
        assert "identity_link" in tables and "resource" in tables
        scanned = 0
        for table in tables:
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                cells = " ".join(str(v) for v in row)
                scanned += 1
                for n in numbers:
                    assert n not in cells, f"My Number found in table {table}"
        assert scanned > 100
        # Linking used the keyed hash.
        assert count(session, IdentityLink, kind="mynumber") == len(numbers)
