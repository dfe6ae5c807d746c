"""Batch screening of the whole population for municipal pharmacists.

Runs as the platform's polypharmacy service (``Actor.system`` with service
``polypharmacy``: nothing is read unless its privacy impact assessment is approved) under
purpose MEDREVIEW. Residents are paged through the reader (a Patient search), each one's
medicines are read with one compartment query (one access-log entry per resident), and
the findings go to the municipal worklist. The report is a CSV (one row per finding: the
resident id, rule, code, severity, medicines, prescribers — no names) and a JSON summary.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from phr.polypharmacy import service
from phr.polypharmacy.kb import KnowledgeBase, knowledge_base
from phr.polypharmacy.reconcile import MEDICATION_TYPES, ProductInfo, as_of
from phr.store import search as fsearch
from phr.store.indexer import iso_instant, utcnow
from phr.store.models import Resource
from phr.store.reader import RecordReader, RecordRow

__all__ = ["ScreenReport", "screen", "screening_actor"]

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
            "csv": self.csv_path,
        }


def _review_page(
    session: Session,
    reader: RecordReader,
    patients: Sequence[Resource],
    now: datetime,
    kb: KnowledgeBase,
    products: Mapping[str, ProductInfo],
) -> list[service.Review]:
    """Review a page of residents with two batched reads: their medicine records, then the
    Observations of those whose current medicines have a kidney limit."""
    ids = [p.id for p in patients]
    by_resident: dict[str, list[RecordRow]] = defaultdict(list)
    for row in reader.compartments(ids, types=MEDICATION_TYPES, action="medication-review"):
        by_resident[row.resident_id or ""].append(row)
    today = as_of(now)
    drafts = [
        service.draft(
            session, p.id, [p, *by_resident.get(p.id, [])], today=today, kb=kb, products=products
        )
        for p in patients
    ]
    need = [d.patient_id for d in drafts if service.needs_kidney(d.medicines, kb)]
    observations: dict[str, list[RecordRow]] = defaultdict(list)
    for row in reader.compartments(need, types=["Observation"], action="medication-review"):
        observations[row.resident_id or ""].append(row)
    return [
        service.complete(d, now=now, kb=kb, observation_rows=observations.get(d.patient_id, []))
        for d in drafts
    ]


def screen(
    session: Session, out_dir: Path, *, now: datetime | None = None, record: bool = True
) -> ScreenReport:
    started = time.perf_counter()
    now = now or utcnow()
    kb = knowledge_base()
    products = service.all_products(session)
    reader = RecordReader(session, screening_actor(), Purpose.MEDICATION_REVIEW)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = iso_instant(now).replace(":", "").replace("-", "")[:15]
    csv_path = out_dir / f"polypharmacy-screening-{stamp}.csv"
    report = ScreenReport(csv_path=str(csv_path))
    offset = 0
    with open(csv_path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_FIELDS)
        while True:
            page = reader.search(
                fsearch.SearchRequest("Patient", [], count=PAGE, offset=offset, total="none")
            )
            offset += PAGE
            residents = [p for p in page.matches if p.resident_id == p.id]
            reviews = [r for r in _review_page(session, reader, residents, now, kb, products)]
            for rv in reviews:
                report.residents += 1
                current = [m for m in rv.medicines if m.active]
                if current:
                    report.with_medicines += 1
                report.unrecognised_medicines += sum(1 for m in current if not m.recognised)
                if rv.findings:
                    report.with_findings += 1
                for f in rv.findings:
                    report.findings += 1
                    report.by_rule[f.rule] += 1
                    report.by_severity[f.severity] += 1
                    writer.writerow(
                        (
                            rv.patient.id,
                            f.rule,
                            f.rule_id,
                            f.code,
                            f.severity,
                            " / ".join(m.name for m in f.medicines),
                            " / ".join(f.prescribers),
                            " / ".join(f.pharmacies),
                            f.title_en,
                            f.source,
                        )
                    )
            reviews = [r for r in reviews if r.findings]
            if record and reviews:
                service.record_findings(session, service.MUNICIPAL_OWNER, reviews)
            if len(page.matches) < PAGE:
                break
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
