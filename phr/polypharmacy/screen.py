"""Batch screening of the whole population for municipal pharmacists.

Runs as the platform's polypharmacy service (``Actor.system`` with service
``polypharmacy``: nothing is read unless its privacy impact assessment is approved) under
purpose MEDREVIEW. It walks the roster of resident keys 500 at a time (keys only); each
page's Patients and medicine records, its eGFR and creatinine results and the conditions
the drug–disease rules look for (both from the token index), are read with three batched,
consent-checked reader queries (access-log entries per resident). Reading and writing stay
in this process and its one transaction; the checks (pure computation on plain rows) can
run in worker processes (``workers``), while the next page is read. Findings go to the
municipal worklist. The report is a CSV (one row per finding: the resident id, rule, code,
severity, medicines, prescribers — no names) and a JSON summary.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import multiprocessing
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from phr.polypharmacy import repository, service
from phr.polypharmacy.kb import knowledge_base
from phr.polypharmacy.reconcile import MEDICATION_TYPES, ProductInfo, as_of
from phr.store.indexer import iso_instant, utcnow
from phr.store.reader import RecordReader, RecordRow

__all__ = ["FindingRow", "ResidentResult", "ScreenReport", "screen", "screening_actor"]

PAGE = 500
CSV_FIELDS = (
    "patient",
    "rule",
    "rule_id",
    "code",
    "severity",
    "medicines",
    "prescribers",
    "pharmacies",
    "title_en",
    "source",
)


def screening_actor() -> Actor:
    return dataclasses.replace(Actor.system("polypharmacy-screen"), service=service.SERVICE)


@dataclass(frozen=True)
class FindingRow:
    rule: str
    rule_id: str
    code: str
    severity: str
    medicines: str
    prescribers: str
    pharmacies: str
    title_en: str
    source: str
    fingerprint: str


@dataclass(frozen=True)
class ResidentResult:
    patient: str
    current: int
    unrecognised: int
    findings: tuple[FindingRow, ...]


@dataclass
class ScreenReport:
    residents: int = 0
    with_medicines: int = 0
    with_findings: int = 0
    findings: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    by_severity: Counter[str] = field(default_factory=Counter)
    unrecognised_medicines: int = 0
    seconds: float = 0.0
    workers: int = 1
    csv_path: str = ""
    summary_path: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "residents": self.residents,
            "residents_with_current_medicines": self.with_medicines,
            "residents_with_findings": self.with_findings,
            "findings": self.findings,
            "by_rule": dict(sorted(self.by_rule.items())),
            "by_severity": dict(sorted(self.by_severity.items())),
            "unrecognised_current_medicines": self.unrecognised_medicines,
            "seconds": round(self.seconds, 2),
            "workers": self.workers,
            "csv": self.csv_path,
        }


# ---- the computation (runs in this process or in workers; no database) -----------------------

_PRODUCTS: Mapping[str, ProductInfo] = {}

Job = tuple[str, list[RecordRow]]  # (resident, its Patient, medicines and kidney results)


def _set_products(products: Mapping[str, ProductInfo]) -> None:
    global _PRODUCTS
    _PRODUCTS = products


def _worker_init(products: Mapping[str, ProductInfo]) -> None:
    """A worker never touches the database; it must not close the parent's connections
    it inherited with the fork either (SQLAlchemy: dispose without closing)."""
    from phr.db import get_engine

    get_engine().dispose(close=False)
    _set_products(products)


def _check(jobs: Sequence[Job], now: datetime) -> list[ResidentResult]:
    kb = knowledge_base()
    today = as_of(now)
    out = []
    for patient_id, rows in jobs:
        d = service.draft(None, patient_id, rows, today=today, kb=kb, products=_PRODUCTS)
        current = [m for m in d.medicines if m.active]
        unrecognised = sum(1 for m in current if not m.recognised)
        rv = service.complete(d, now=now, kb=kb)
        findings = tuple(
            FindingRow(
                f.rule,
                f.rule_id,
                f.code,
                f.severity,
                " / ".join(m.name for m in f.medicines),
                " / ".join(f.prescribers),
                " / ".join(f.pharmacies),
                f.title_en,
                f.source,
                f.fingerprint,
            )
            for f in rv.findings
        )
        out.append(ResidentResult(patient_id, len(current), unrecognised, findings))
    return out


# ---- the job -----------------------------------------------------------------------------------


def _pages(session: Session, reader: RecordReader) -> Iterator[list[Job]]:
    """Residents and their records, a page at a time, read under consent."""
    last = ""
    disease_codes = knowledge_base().disease_codes()
    while True:
        ids = repository.resident_keys(session, after=last, limit=PAGE)
        if not ids:
            return
        last = ids[-1]
        rows: dict[str, list[RecordRow]] = defaultdict(list)
        for row in reader.compartments(
            ids, types=("Patient", *MEDICATION_TYPES), action="medication-review"
        ):
            rows[row.resident_id or ""].append(row)
        # eGFR and creatinine only, from the token index: cheap enough to read for everyone
        for row in reader.compartments(
            ids, types=["Observation"], action="medication-review", codes=service.KIDNEY_CODES
        ):
            rows[row.resident_id or ""].append(row)
        # the conditions the drug–disease rules look for, likewise
        for row in reader.compartments(
            ids, types=["Condition"], action="medication-review", codes=disease_codes
        ):
            rows[row.resident_id or ""].append(row)
        yield [
            (rid, rows[rid])
            for rid in ids
            if any(r.resource_type == "Patient" and r.id == rid for r in rows[rid])
        ]


class _Inline(Executor):
    """Runs the checks in this process (workers=1), with the Executor interface."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        f: Future[Any] = Future()
        f.set_result(fn(*args, **kwargs))
        return f


def _executor(workers: int, products: Mapping[str, ProductInfo]) -> Executor:
    _set_products(products)
    if workers <= 1:
        return _Inline()
    # fork: the workers inherit the drug master and knowledge base already in memory.
    ctx = multiprocessing.get_context("fork")
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(products,)
    )


def _split(jobs: list[Job], parts: int) -> list[list[Job]]:
    size = max(1, -(-len(jobs) // parts))
    return [jobs[i : i + size] for i in range(0, len(jobs), size)]


def screen(
    session: Session,
    out_dir: Path,
    *,
    now: datetime | None = None,
    record: bool = True,
    workers: int = 1,
) -> ScreenReport:
    started = time.perf_counter()
    now = now or utcnow()
    kb = knowledge_base()
    reader = RecordReader(session, screening_actor(), Purpose.MEDICATION_REVIEW)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = iso_instant(now).replace(":", "").replace("-", "")[:15]
    csv_path = out_dir / f"polypharmacy-screening-{stamp}.csv"
    report = ScreenReport(csv_path=str(csv_path), workers=max(1, workers))
    products = service.all_products(session)
    with (
        open(csv_path, "w", encoding="utf-8", newline="") as fh,
        _executor(workers, products) as pool,
    ):
        writer = csv.writer(fh)
        writer.writerow(CSV_FIELDS)

        def run(jobs: list[Job]) -> list[Future[list[ResidentResult]]]:
            return [pool.submit(_check, part, now) for part in _split(jobs, report.workers)]

        def finish(futures: list[Future[list[ResidentResult]]]) -> None:
            results = [r for f in futures for r in f.result()]
            _tally(report, writer, results)
            if record:
                _record(session, results)

        previous: list[Future[list[ResidentResult]]] | None = None
        for jobs in _pages(session, reader):
            futures = run(jobs)  # computed while the next page is read
            if previous is not None:
                finish(previous)
            previous = futures
        if previous is not None:
            finish(previous)
    report.seconds = time.perf_counter() - started
    summary = out_dir / f"polypharmacy-screening-{stamp}.json"
    report.summary_path = str(summary)
    summary.write_text(
        json.dumps(
            {**report.as_dict(), "knowledge_base": kb.version, "at": iso_instant(now)},
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    return report


def _tally(report: ScreenReport, writer: Any, results: Sequence[ResidentResult]) -> None:
    for r in results:
        report.residents += 1
        report.with_medicines += 1 if r.current else 0
        report.unrecognised_medicines += r.unrecognised
        report.with_findings += 1 if r.findings else 0
        for f in r.findings:
            report.findings += 1
            report.by_rule[f.rule] += 1
            report.by_severity[f.severity] += 1
            writer.writerow(
                (
                    r.patient,
                    f.rule,
                    f.rule_id,
                    f.code,
                    f.severity,
                    f.medicines,
                    f.prescribers,
                    f.pharmacies,
                    f.title_en,
                    f.source,
                )
            )


def _record(session: Session, results: Sequence[ResidentResult]) -> None:
    found = ((r.patient, f) for r in results for f in r.findings)
    service.store_findings(session, service.MUNICIPAL_OWNER, found)
