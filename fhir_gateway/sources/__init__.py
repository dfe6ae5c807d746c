"""File sources: municipal (自治体) and insurer (保険者) CSV imports.

One entry point, :func:`import_file`. A file lands whole or not at all: every row is
parsed and validated — and its FHIR resources built and validated — before anything is
written. With ``skip_invalid`` the valid rows are imported and the others written to a
reject file. The caller owns the transaction (this only flushes). Formats:
``docs/import-formats.md``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session

from consent.models import Organization
from fhir_gateway import ingest
from fhir_gateway.ingest import Outcome, SourceRecord, store_records, upsert_person
from fhir_gateway.models import ImportJob
from fhir_gateway.sources.csvfile import (
    PERSON_COLUMNS,
    PLACEHOLDER_PATIENT,
    REQUIRED_PERSON_COLUMNS,
    Fact,
    Format,
    Person,
    Row,
    RowError,
    Table,
    parse_person,
    read_table,
    write_rejects,
)
from fhir_gateway.sources.insurer import DIAGNOSIS, DISPENSING, INSURER_CHECKUP
from fhir_gateway.sources.municipal import CHECKUP, DISABILITY, VACCINATION
from fhir_gateway.validation import validate_resource
from phr.errors import InvalidInput, issue
from phr.store import repository as repo
from phr.store.indexer import utcnow

__all__ = [
    "FORMATS",
    "KINDS",
    "ImportRejected",
    "ImportReport",
    "RowError",
    "import_file",
]

FORMATS: dict[str, Format] = {
    f.kind: f for f in (VACCINATION, CHECKUP, DISABILITY, DISPENSING, DIAGNOSIS, INSURER_CHECKUP)
}
KINDS = tuple(FORMATS)
MAX_ISSUES = 200


class ImportRejected(InvalidInput):
    """The file was not imported; ``errors`` says where and why. Nothing was written."""

    def __init__(self, errors: list[RowError], message: str | None = None) -> None:
        rows = {e.row for e in errors if e.row > 1}
        msg = message or (
            f"{len(rows)} invalid row(s); nothing was imported"
            if rows
            else "the file cannot be imported; nothing was imported"
        )
        super().__init__(
            msg,
            issues=[issue(str(e), expression=e.column or None) for e in errors[:MAX_ISSUES]],
        )
        self.errors = errors


@dataclass
class ImportReport:
    import_id: str
    kind: str
    file: str
    rows: int = 0  # data rows read (blank lines not counted)
    persons: int = 0  # residents the imported rows are about
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0  # the same fact was already stored from another source
    rejected: int = 0  # rows not imported (only with skip_invalid)
    duplicates: int = 0  # rows identical to an earlier row of the file, imported once
    review_ids: list[int] = field(default_factory=list)  # master patient index reviews queued
    errors: list[RowError] = field(default_factory=list)
    reject_path: Path | None = None

    def summary(self) -> dict[str, Any]:
        """Counts and error locations (no cell values): what the ImportJob row keeps."""
        return {
            "kind": self.kind,
            "file": self.file,
            "rows": self.rows,
            "persons": self.persons,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "merged": self.merged,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "review_ids": self.review_ids,
            "errors": [e.as_dict() for e in self.errors[:MAX_ISSUES]],
            "reject_file": self.reject_path.name if self.reject_path else None,
        }


def _source_hash(resource: Any) -> str:
    return hashlib.sha256(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _check_header(table: Table, fmt: Format) -> list[RowError]:
    errors: list[RowError] = []
    known = {*PERSON_COLUMNS, *fmt.required, *fmt.optional}
    seen: set[str] = set()
    for col in table.columns:
        if col in seen:
            errors.append(RowError(table.name, 1, col, "column appears twice"))
        seen.add(col)
        if col not in known:
            errors.append(RowError(table.name, 1, col, f"unknown column for a {fmt.kind} file"))
    for col in (*REQUIRED_PERSON_COLUMNS, *fmt.required):
        if col not in seen:
            errors.append(RowError(table.name, 1, col, "required column missing"))
    if "mynumber" not in seen and not {"insurer_number", "insured_number"} <= seen:
        errors.append(
            RowError(
                table.name,
                1,
                "mynumber",
                "a mynumber column or insurer_number + insured_number columns are required",
            )
        )
    return errors


@dataclass
class _Parsed:
    row: int
    person: Person
    fact: Fact


def _validate(row: Row, fact: Fact) -> tuple[list[SourceRecord], str]:
    """Build the row's resources against a placeholder patient and validate them."""
    records = fact.build(PLACEHOLDER_PATIENT)
    if fact.group is not None:
        refs = [f"{r.resource['resourceType']}/placeholder-{i}" for i, r in enumerate(records)]
        records = [*records, fact.group(PLACEHOLDER_PATIENT, refs)]
    for rec in records:
        for problem in validate_resource(rec.resource):
            row.error(
                "-", f"the row does not make a valid FHIR resource: {problem.get('diagnostics')}"
            )
    return records, _source_hash([r.resource for r in records])


def import_file(
    session: Session,
    *,
    organization_id: str,
    kind: str,
    path: Path,
    skip_invalid: bool = False,
    reject_path: Path | None = None,
) -> ImportReport:
    """Import one municipal or insurer CSV file for an organisation.

    Raises :class:`ImportRejected` (nothing written) when the file cannot be read, its
    header is wrong, or — unless ``skip_invalid`` — any row is invalid. With
    ``skip_invalid`` the invalid rows go to ``reject_path`` (default
    ``<path>.rejects.csv``) with an ``error`` column, and the rest is imported.
    Re-importing the same file writes nothing but the ImportJob row.
    """
    fmt = FORMATS.get(kind)
    if fmt is None:
        raise InvalidInput(f"unknown import kind {kind!r}; expected one of {', '.join(KINDS)}")
    if session.get(Organization, organization_id) is None:
        raise InvalidInput(f"unknown organization {organization_id!r}")
    path = Path(path)
    try:
        table = read_table(path)
    except InvalidInput as exc:
        raise ImportRejected([RowError(path.name, 0, "", exc.message)]) from exc
    header_errors = _check_header(table, fmt)
    if header_errors:
        raise ImportRejected(header_errors)

    # ---- 1. parse and validate every row ---------------------------------------------------
    report = ImportReport(import_id=repo.new_id(), kind=kind, file=table.name)
    good: list[_Parsed] = []
    bad: list[tuple[int, list[RowError]]] = []
    persons: dict[str, Person] = {}
    validated_people: set[str] = set()
    facts: dict[str, tuple[int, str]] = {}  # natural key -> (row, hash of its resources)
    for i, cells in enumerate(table.rows):
        row = Row(table.name, i + 2, cells)
        if row.is_blank():
            continue
        report.rows += 1
        person = parse_person(row, organization_id)
        fact = fmt.parse(row, person)
        duplicate = False
        if person is not None and row.ok:
            first = persons.setdefault(person.key, person)
            if first.birth_date != person.birth_date:
                row.error("birth_date", f"differs from row {first.row} for the same person")
            if first.gender != person.gender:
                row.error("sex", f"differs from row {first.row} for the same person")
            if person.key not in validated_people:
                for problem in validate_resource(person.patient):
                    row.error(
                        "-",
                        f"the person does not make a valid Patient: {problem.get('diagnostics')}",
                    )
                validated_people.add(person.key)
        if fact is not None and person is not None and row.ok:
            _, digest = _validate(row, fact)
            earlier = facts.get(fact.natural_key)
            if earlier is None:
                if row.ok:
                    facts[fact.natural_key] = (row.number, digest)
            elif earlier[1] == digest:
                duplicate = True
            else:
                row.error(
                    "-",
                    f"the same fact as row {earlier[0]} (same person, code and "
                    "date) with different values",
                )
        if not row.ok or person is None or fact is None:
            if not row.errors:  # defensive: a parser returned None without saying why
                row.error("-", "invalid row")
            bad.append((row.number, row.errors))
            report.errors.extend(row.errors)
        elif duplicate:
            report.duplicates += 1
        else:
            good.append(_Parsed(row.number, persons[person.key], fact))

    if bad and not skip_invalid:
        raise ImportRejected(report.errors)
    report.rejected = len(bad)
    if bad:
        report.reject_path = reject_path or path.with_name(path.name + ".rejects.csv")
        write_rejects(table, bad, report.reject_path)

    # ---- 2. write ----------------------------------------------------------------------------
    import_id = report.import_id
    residents: dict[str, str] = {}
    person_outcomes: list[Outcome] = []
    for p in good:
        if p.person.key in residents:
            continue
        resolution = upsert_person(
            session,
            organization_id=organization_id,
            identity_=p.person.identity,
            patient=p.person.patient,
            source_key=f"person:{p.person.key}",
            import_id=import_id,
            provenance=False,
        )
        person_outcomes.append(resolution.patient_outcome)
        residents[p.person.key] = resolution.resident_id
        if resolution.review_id is not None and resolution.review_id not in report.review_ids:
            report.review_ids.append(resolution.review_id)
    report.persons = len(set(residents.values()))

    primary: list[SourceRecord] = []
    spans: list[tuple[Fact, str, int, int]] = []
    for p in good:
        ref = f"Patient/{residents[p.person.key]}"
        recs = p.fact.build(ref)
        for rec in recs:
            rec.source_hash = _source_hash(rec.resource)
        spans.append((p.fact, ref, len(primary), len(primary) + len(recs)))
        primary.extend(recs)
    outcomes: list[Outcome] = []
    if primary:
        outcomes += store_records(
            session,
            organization_id=organization_id,
            records=primary,
            import_id=import_id,
            provenance=False,
        ).outcomes
    groups: list[SourceRecord] = []
    for fact, ref, start, end in spans:
        if fact.group is not None:
            refs = [f"{o.resource_type}/{o.id}" for o in outcomes[start:end]]
            rec = fact.group(ref, refs)
            rec.source_hash = _source_hash(rec.resource)
            groups.append(rec)
    if groups:
        outcomes += store_records(
            session,
            organization_id=organization_id,
            records=groups,
            import_id=import_id,
            provenance=False,
        ).outcomes
    # One Provenance per resident for the whole file (not one per write call).
    ingest.write_provenance(
        session, organization_id, [*person_outcomes, *outcomes], import_id, utcnow()
    )

    for status in ("created", "updated", "unchanged", "merged"):
        setattr(report, status, sum(1 for o in outcomes if o.status == status))
    session.add(
        ImportJob(
            id=import_id,
            organization_id=organization_id,
            kind=f"{kind}-csv",
            filename=table.name[:255],
            sha256=table.sha256,
            received_at=utcnow(),
            status="completed",
            summary=json.dumps(report.summary(), ensure_ascii=False),
        )
    )
    session.flush()
    return report
