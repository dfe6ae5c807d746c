"""Shared reading of municipal and insurer CSV files.

- Encoding: UTF-8 with or without BOM; Shift_JIS (cp932) as the fallback, since Japanese
  municipal systems export cp932.
- Cells are read as text (pandas ``dtype=str, keep_default_na=False``) and normalised with
  NFKC (full-width digits and letters, half-width kana), then stripped.
- Errors name the file, the row as a spreadsheet shows it (the header is row 1, the first
  data row is row 2), the column and the reason. Reasons never repeat a person's data.
- The person columns shared by every format are parsed here into a
  :class:`fhir_gateway.identity.SourceIdentity` and a Patient resource.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd

from fhir_gateway.identity import (
    Demographics,
    SourceIdentity,
    hash_mynumber,
    insurance_system,
    valid_mynumber,
)
from fhir_gateway.ingest import SourceRecord
from phr.errors import InvalidInput

__all__ = [
    "PERSON_COLUMNS",
    "Fact",
    "Format",
    "Person",
    "Row",
    "RowError",
    "Table",
    "parse_person",
    "read_table",
    "write_rejects",
]

PERSON_COLUMNS: tuple[str, ...] = (
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
# Present in every file (a cell may be empty where the column is optional).
REQUIRED_PERSON_COLUMNS: tuple[str, ...] = ("family_name", "given_name", "birth_date", "sex")


@dataclass(frozen=True)
class RowError:
    file: str
    row: int  # spreadsheet row: header = 1, first data row = 2; 0 when not tied to a row
    column: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.row}" if self.row else self.file
        return (
            f"{where}: {self.column}: {self.reason}" if self.column else f"{where}: {self.reason}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "column": self.column, "reason": self.reason}


# ---- reading ---------------------------------------------------------------------------------


@dataclass
class Table:
    path: Path
    encoding: str
    sha256: str
    columns: list[str]  # normalised header names, in file order
    raw_columns: list[str]  # as written in the file
    rows: list[dict[str, str]]  # original cell text keyed by normalised column name

    @property
    def name(self) -> str:
        return self.path.name


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932"), "cp932"
    except UnicodeDecodeError as exc:
        raise InvalidInput("the file is neither UTF-8 nor Shift_JIS (cp932) text") from exc


def _norm_header(name: str) -> str:
    return unicodedata.normalize("NFKC", str(name)).strip().lower()


def read_table(path: Path) -> Table:
    """Read a CSV file: every cell as text, header names normalised.

    Raises :class:`InvalidInput` with a message naming the file when it cannot be read.
    """
    data = path.read_bytes()
    text, encoding = _decode(data)
    try:
        df = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
        )
    except pd.errors.EmptyDataError as exc:
        raise InvalidInput(f"{path.name}: the file is empty") from exc
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        where = f"row {m.group(1)}" if m else "a row"
        raise InvalidInput(f"{path.name}: {where} has more cells than the header") from exc
    raw_columns = [str(c) for c in df.columns]
    columns = [_norm_header(c) for c in raw_columns]
    df = df.fillna("")
    rows = [
        {col: str(v) for col, v in zip(columns, values, strict=True)}
        for values in df.itertuples(index=False, name=None)
    ]
    return Table(path, encoding, hashlib.sha256(data).hexdigest(), columns, raw_columns, rows)


def write_rejects(table: Table, rejected: Sequence[tuple[int, list[RowError]]], out: Path) -> None:
    """Write rejected rows (original cells + an ``error`` column) as UTF-8 CSV with BOM.

    The BOM lets spreadsheet programs on Japanese Windows open it without mojibake.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    header = [*table.raw_columns, "error"]
    with out.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row_number, errors in rejected:
            cells = table.rows[row_number - 2]
            reasons = "; ".join(f"{e.column}: {e.reason}" if e.column else e.reason for e in errors)
            w.writerow([*(cells.get(c, "") for c in table.columns), reasons])


# ---- one row ---------------------------------------------------------------------------------

_HALF_KANA = re.compile(r"[\uff61-\uff9f]+")
_DATE_RE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$|^(\d{4})(\d{2})(\d{2})$")


class Row:
    """Typed access to one row's cells that records an error instead of raising."""

    def __init__(self, file: str, number: int, cells: dict[str, str]) -> None:
        self.file = file
        self.number = number
        self.cells = cells
        self.errors: list[RowError] = []

    def error(self, column: str, reason: str) -> None:
        self.errors.append(RowError(self.file, self.number, column, reason))

    @property
    def ok(self) -> bool:
        return not self.errors

    def is_blank(self) -> bool:
        return all(not v.strip() for v in self.cells.values())

    def raw(self, column: str) -> str:
        return self.cells.get(column, "").strip()

    def text(
        self, column: str, *, required: bool = False, max_len: int = 255, free: bool = False
    ) -> str | None:
        """A cell's text. Codes and numbers are NFKC-normalised; free text (names,
        addresses, drug and disease names: ``free=True``) only gets half-width kana made
        full-width, so that e.g. 「ノルバスク錠５ｍｇ」 and （） stay as written."""
        cell = self.cells.get(column, "")
        value = (
            _HALF_KANA.sub(lambda m: unicodedata.normalize("NFKC", m.group()), cell)
            if free
            else unicodedata.normalize("NFKC", cell)
        ).strip()
        if not value:
            if required:
                self.error(column, "required")
            return None
        if len(value) > max_len:
            self.error(column, f"longer than {max_len} characters")
            return None
        return value

    def date(self, column: str, *, required: bool = False, not_future: bool = True) -> str | None:
        value = self.text(column, required=required)
        if value is None:
            return None
        m = _DATE_RE.match(value)
        if not m:
            self.error(column, "not a date (expected YYYY-MM-DD)")
            return None
        y, mo, d = (m.group(1), m.group(2), m.group(3)) if m.group(1) else m.group(4, 5, 6)
        try:
            parsed = date(int(y), int(mo), int(d))
        except ValueError:
            self.error(column, "not a valid calendar date")
            return None
        if parsed.year < 1880:
            self.error(column, "date before 1880")
            return None
        if not_future and parsed > date.today():
            self.error(column, "date is in the future")
            return None
        return parsed.isoformat()

    def numeric(
        self, column: str, *, lo: float, hi: float, required: bool = False
    ) -> int | float | None:
        """A decimal number within [lo, hi], as int when integral (stable JSON)."""
        value = self.text(column, required=required)
        if value is None:
            return None
        try:
            dec = Decimal(value.replace(",", ""))
        except InvalidOperation:
            self.error(column, "not a number")
            return None
        if not dec.is_finite():
            self.error(column, "not a number")
            return None
        if dec < Decimal(str(lo)) or dec > Decimal(str(hi)):
            self.error(column, f"implausible value (expected {lo:g} to {hi:g})")
            return None
        return int(dec) if dec == dec.to_integral_value() else float(dec)

    def choice(
        self, column: str, mapping: dict[str, str], *, required: bool = False, what: str = ""
    ) -> str | None:
        value = self.text(column, required=required)
        if value is None:
            return None
        key = value if value in mapping else value.lower()
        if key not in mapping:
            allowed = ", ".join(sorted(dict.fromkeys(mapping)))
            self.error(column, f"unknown {what or 'value'} (expected one of {allowed})")
            return None
        return mapping[key]

    def pattern(
        self,
        column: str,
        regex: re.Pattern[str],
        reason: str,
        *,
        required: bool = False,
        upper: bool = False,
    ) -> str | None:
        value = self.text(column, required=required)
        if value is None:
            return None
        if upper:
            value = value.upper()
        if not regex.match(value):
            self.error(column, reason)
            return None
        return value


# ---- the person of a row ---------------------------------------------------------------------

_SEX = {
    "m": "male",
    "male": "male",
    "男": "male",
    "男性": "male",
    "1": "male",
    "f": "female",
    "female": "female",
    "女": "female",
    "女性": "female",
    "2": "female",
}
_INSURER_RE = re.compile(r"^(\d{6}|\d{8})$")
_INSURED_RE = re.compile(r"^[^\s,]{1,64}$")
_POSTAL_RE = re.compile(r"^(\d{3})-?(\d{4})$")


@dataclass
class Person:
    """Who a row is about: identifiers for the master patient index and a Patient."""

    key: str  # stable, pseudonymous: digest of the strongest identifier (never the number)
    identity: SourceIdentity
    patient: dict[str, Any]
    birth_date: str
    gender: str
    row: int  # the first row that named this person


def person_digest(key_material: str) -> str:
    return hashlib.sha256(b"phr-import-person\x00" + key_material.encode()).hexdigest()[:32]


def parse_person(row: Row, organization_id: str) -> Person | None:
    """Parse the person columns; errors go to ``row.errors``; None if unusable."""
    before = len(row.errors)
    mynumber_raw = unicodedata.normalize("NFKC", row.cells.get("mynumber", "")).strip()
    mynumber = mynumber_raw.replace("-", "").replace(" ", "")
    if mynumber and not valid_mynumber(mynumber):
        # Never echo the number itself.
        row.error("mynumber", "not a valid My Number (12 digits with a correct check digit)")
        mynumber = ""
    insurer = row.pattern(
        "insurer_number", _INSURER_RE, "保険者番号 must be 8 digits (6 for 国民健康保険)"
    )
    insured = row.text("insured_number", max_len=64)
    if insured is not None:
        insured = insured.replace(" ", "")
        if not _INSURED_RE.match(insured) or insured.count("-") > 2:
            row.error("insured_number", "expected 記号-番号-枝番 joined with '-'")
            insured = None
    has_insurer_cells = bool(row.raw("insurer_number") or row.raw("insured_number"))
    if row.raw("insurer_number") and not row.raw("insured_number"):
        row.error("insured_number", "required when insurer_number is given")
    if row.raw("insured_number") and not row.raw("insurer_number"):
        row.error("insurer_number", "required when insured_number is given")
    if not mynumber_raw and not has_insurer_cells:
        row.error("mynumber", "a My Number or insurer_number + insured_number is required")

    family = row.text("family_name", required=True, max_len=64, free=True)
    given = row.text("given_name", required=True, max_len=64, free=True)
    family_kana = row.text("family_name_kana", max_len=64, free=True)
    given_kana = row.text("given_name_kana", max_len=64, free=True)
    birth = row.date("birth_date", required=True)
    gender = row.choice("sex", _SEX, required=True, what="sex (M/F, 男/女 or 1/2)")
    postal = None
    if row.raw("postal_code"):
        pm = _POSTAL_RE.match(unicodedata.normalize("NFKC", row.raw("postal_code")))
        if pm:
            postal = f"{pm.group(1)}-{pm.group(2)}"
        else:
            row.error("postal_code", "expected 7 digits (NNN-NNNN)")
    address = row.text("address", max_len=255, free=True)
    moved_in = row.date("moved_in_date")
    qualified = row.date("qualification_date")
    if birth and moved_in and moved_in < birth:
        row.error("moved_in_date", "before birth_date")
    if len(row.errors) > before or not birth or not gender:
        return None

    identifiers: list[tuple[str, str, str]] = []
    if mynumber:
        identifiers.append(("mynumber", "urn:phr:mynumber", mynumber))
    if insurer and insured:
        identifiers.append(("insurance", insurance_system(insurer), insured))
    key = (
        f"mn:{hash_mynumber(mynumber)}"
        if mynumber
        else f"ins:{insurance_system(insurer or '')}|{insured}"
    )
    demo = Demographics(
        family=family,
        given=given,
        family_kana=family_kana,
        given_kana=given_kana,
        birth_date=birth,
        gender=gender,
        postal_code=postal,
        address=address,
    )
    ident = SourceIdentity(
        organization_id=organization_id,
        identifiers=identifiers,
        demographics=demo,
        insurance_from=date.fromisoformat(qualified) if qualified else None,
    )
    return Person(person_digest(key), ident, _patient(demo, moved_in), birth, gender, row.number)


def _patient(demo: Demographics, moved_in: str | None) -> dict[str, Any]:
    """The Patient as this source knows the person (no identifiers: the MPI keeps them)."""
    names: list[dict[str, Any]] = [
        {"use": "official", "family": demo.family, "given": [demo.given]}
    ]
    if demo.family_kana or demo.given_kana:
        kana: dict[str, Any] = {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation",
                    "valueCode": "SYL",
                }
            ],
            "use": "official",
        }
        if demo.family_kana:
            kana["family"] = demo.family_kana
        if demo.given_kana:
            kana["given"] = [demo.given_kana]
        names.append(kana)
    p: dict[str, Any] = {
        "resourceType": "Patient",
        "active": True,
        "name": names,
        "gender": demo.gender,
        "birthDate": demo.birth_date,
    }
    if demo.address or demo.postal_code:
        addr: dict[str, Any] = {"use": "home", "country": "JP"}
        if demo.address:
            addr["text"] = demo.address
        if demo.postal_code:
            addr["postalCode"] = demo.postal_code
        if moved_in:
            addr["period"] = {"start": moved_in}  # 転入日
        p["address"] = [addr]
    return p


# ---- what a format module provides -----------------------------------------------------------

PLACEHOLDER_PATIENT = "Patient/placeholder"


@dataclass
class Fact:
    """One valid row: how to build its records once the resident is known.

    ``build(patient_ref)`` returns the row's records. A grouped format (the checkup) also
    gives ``group(patient_ref, result_refs)`` for the report that lists the records' stored
    ids (known only after they are written, and possibly merged into another source's).
    ``natural_key`` identifies the fact within a file (two rows with the same key are the
    same fact: identical rows are imported once, differing ones are an error).
    """

    natural_key: str
    build: Callable[[str], list[SourceRecord]]
    group: Callable[[str, list[str]], SourceRecord] | None = None


@dataclass(frozen=True)
class Format:
    kind: str
    required: tuple[str, ...]  # columns besides the person columns
    optional: tuple[str, ...]
    parse: Callable[[Row, Person | None], Fact | None]
    description: str = ""
