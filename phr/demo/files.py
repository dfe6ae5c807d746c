"""The municipal and insurer CSV files of the demo city (formats: docs/import-formats.md).

Each organisation gets the files it would export: つくば市 and 土浦市 their vaccination and
checkup registers (and つくば市 its disability register), 協会けんぽ and つくば市国保 the
claims-derived diagnoses and dispensed medicines of their members during membership
(and 協会けんぽ its checkups). 土浦市 exports Shift_JIS (cp932), as many municipal systems
do; the others UTF-8 with a BOM.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from phr.demo.clinical import CLAIMS_FROM, Diagnosis, Health
from phr.demo.people import KOKUHO, KYOKAI, Coverage, Resident

__all__ = ["PERSON_COLUMNS", "DemoFile", "build_files", "write_file"]

Add = Callable[[str, str, dict[str, str]], None]

PERSON_COLUMNS = (
    "mynumber",
    "insurer_number",
    "insured_number",
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "sex",
    "postal_code",
    "address",
    "moved_in_date",
    "qualification_date",
)
CHECKUP_COLUMNS = (
    "checkup_date",
    "institution",
    "height_cm",
    "weight_kg",
    "bmi",
    "waist_cm",
    "sbp",
    "dbp",
    "hba1c_ngsp",
    "fasting_glucose",
    "ldl",
    "hdl",
    "triglycerides",
    "ast",
    "alt",
    "ggt",
    "creatinine",
    "egfr",
    "urine_protein",
)
COLUMNS: dict[str, tuple[str, ...]] = {
    "vaccination": ("vaccine_code", "dose_number", "date", "lot_number", "performer", "status"),
    "checkup": CHECKUP_COLUMNS,
    "insurer-checkup": CHECKUP_COLUMNS,
    "disability": ("certificate_type", "grade", "disability", "issued_date", "valid_until"),
    "insurer-dispensing": (
        "dispensing_date",
        "drug_code",
        "drug_name",
        "quantity",
        "unit",
        "days_supply",
        "prescribing_institution",
        "pharmacy",
        "prescription_date",
    ),
    "insurer-diagnosis": (
        "diagnosis_date",
        "icd10",
        "diagnosis_name",
        "suspected",
        "outcome",
        "institution",
    ),
}

CLINIC_NAMES = {
    "tsukuba-chuo-clinic": "つくば中央クリニック",
    "takezono-naika": "竹園内科医院",
    "tsukuba-gakuen-hospital": "つくば学園病院",
}
PHARMACIES = ("学園さくら薬局", "学園さくら薬局", "学園さくら薬局", "みどりの調剤薬局")
_GRADE_TEXT = {"maruA": "Ⓐ"}


@dataclass
class DemoFile:
    organization: str
    kind: str
    relpath: str  # under <data_dir>/demo
    encoding: str
    rows: list[dict[str, str]]


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}" if value.is_integer() else f"{value}"
    return str(value)


def _person(
    r: Resident, *, city: str | None = None, coverage: Coverage | None = None
) -> dict[str, str]:
    row = {
        "mynumber": r.mynumber,
        "insurer_number": coverage.insurer_number if coverage else "",
        "insured_number": coverage.insured_number if coverage else "",
        "family_name": r.family,
        "given_name": r.given,
        "family_name_kana": r.family_kana,
        "given_name_kana": r.given_kana,
        "birth_date": r.birth_date.isoformat(),
        "sex": r.sex,
        "postal_code": r.postal_code,
        "address": r.address,
        "moved_in_date": _fmt(r.moved_in) if city == "tsukuba-city" else "",
        "qualification_date": coverage.start.isoformat() if coverage else "",
    }
    if city == "tsuchiura-city" and r.tsuchiura is not None:
        row["postal_code"] = r.tsuchiura.postal_code
        row["address"] = r.tsuchiura.address
    return row


def build_files(stories: Iterable[Health], pharmacy_seed: int = 0) -> list[DemoFile]:
    files: dict[tuple[str, str], DemoFile] = {}

    def add(org: str, kind: str, row: dict[str, str]) -> None:
        f = files.get((org, kind))
        if f is None:
            folder = "municipal" if org.endswith("-city") else "insurer"
            enc = "cp932" if org == "tsuchiura-city" else "utf-8-sig"
            f = files[(org, kind)] = DemoFile(org, kind, f"{folder}/{org}/{kind}.csv", enc, [])
        f.rows.append(row)

    for h in stories:
        r = h.resident
        for vac in h.vaccinations:
            add(
                vac.city,
                "vaccination",
                _person(r, city=vac.city)
                | {
                    "vaccine_code": vac.code,
                    "dose_number": str(vac.dose),
                    "date": vac.day.isoformat(),
                    "lot_number": vac.lot,
                    "performer": vac.performer,
                    "status": "completed",
                },
            )
        for c in h.checkups:
            if c.reporter == KYOKAI:
                kind, person = "insurer-checkup", _person(r, coverage=r.coverage_on(c.day))
            else:
                kind, person = "checkup", _person(r, city=c.reporter)
            cells = {k: _fmt(v) for k, v in c.values.items()}
            add(
                c.reporter,
                kind,
                person
                | cells
                | {
                    "checkup_date": c.day.isoformat(),
                    "institution": c.institution,
                    "urine_protein": c.urine_protein,
                },
            )
        for dis in h.disabilities:
            add(
                "tsukuba-city",
                "disability",
                _person(r, city="tsukuba-city")
                | {
                    "certificate_type": dis.certificate_type,
                    "grade": _GRADE_TEXT.get(dis.grade, dis.grade),
                    "disability": dis.disability,
                    "issued_date": dis.issued.isoformat(),
                    "valid_until": _fmt(dis.valid_until),
                },
            )
        _claims(h, add, pharmacy_seed)

    return sorted(files.values(), key=lambda f: f.relpath)


def _claims(h: Health, add: Add, pharmacy_seed: int) -> None:
    """What each insurer saw in its members' claims (レセプト) while they were members."""
    r = h.resident
    diagnosed: dict[tuple[str, int], tuple[Coverage, Diagnosis]] = {}
    dispensed: set[tuple[str, date, str]] = set()
    for v in h.visits:
        if v.day < CLAIMS_FROM:
            continue
        cov = r.coverage_on(v.day)
        if cov is None or cov.insurer not in (KYOKAI, KOKUHO):
            continue
        for d in v.diagnoses:
            diagnosed.setdefault((cov.insurer, id(d)), (cov, d))
        pharmacy = PHARMACIES[(r.index + pharmacy_seed) % len(PHARMACIES)]
        for p in v.prescriptions:
            key = (cov.insurer, v.day, p.product.code)
            if key in dispensed:
                continue
            dispensed.add(key)
            add(
                cov.insurer,
                "insurer-dispensing",
                _person(r, coverage=cov)
                | {
                    "dispensing_date": v.day.isoformat(),
                    "drug_code": p.product.code,
                    "drug_name": p.product.name,
                    "quantity": _fmt(p.quantity),
                    "unit": p.unit,
                    "days_supply": "" if p.sig.as_needed else str(p.days),
                    "prescribing_institution": CLINIC_NAMES[v.clinic],
                    "pharmacy": pharmacy,
                    "prescription_date": v.day.isoformat(),
                },
            )
    for (insurer, _), (cov, d) in sorted(
        diagnosed.items(), key=lambda kv: (kv[0][0], kv[1][1].onset, kv[1][1].disease.icd10)
    ):
        add(
            insurer,
            "insurer-diagnosis",
            _person(r, coverage=cov)
            | {
                "diagnosis_date": d.onset.isoformat(),
                "icd10": d.disease.icd10,
                "diagnosis_name": d.disease.display,
                "suspected": "0",
                "outcome": "治癒" if d.resolved else "継続",
                "institution": CLINIC_NAMES[d.clinic],
            },
        )


def write_file(f: DemoFile, root: Path) -> Path:
    """Write a file only when its content changed (so its hash and mtime stay stable)."""
    path = root / f.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[*PERSON_COLUMNS, *COLUMNS[f.kind]], lineterminator="\r\n")
    w.writeheader()
    w.writerows(f.rows)
    data = buf.getvalue().encode(f.encoding)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return path
