"""Bulk export benchmark (issue 9): peak memory and throughput of ``$export``.

1. Load (unless ``--load none``): the PostgreSQL schema is dropped and re-migrated, one
   hospital is registered and ``--residents`` synthetic residents are written through
   ``fhir_gateway.ingest.process_bundle`` in ``--loaders`` processes: each resident a
   Patient, 5 Observations, 2 Conditions, 2 Immunizations and a MedicationStatement
   (11 resources), 50 residents a transaction.
2. Measure: for each scenario, a fresh process runs one export job exactly as the worker
   thread does (:func:`phr.bulk.service.run` in one transaction, files sealed on disk) and
   reports its wall time, resources/s and peak RSS (``ru_maxrss`` of that process only, so
   the load does not count). Scenarios: ``system`` (a platform job: no consent filter) and
   ``own`` (the hospital that contributed the records: the own-chart condition of the
   consent engine on every row). The transaction is rolled back: the access-log entries
   (one per resident) are written and then undone, the database is left as loaded.

    python bench/bulk_export.py --residents 20000
    python bench/bulk_export.py --load none --scenarios own
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common  # bench/common.py

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ORG = "bench-hospital"
PER_BUNDLE = 50


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    common.add_common_arguments(p)
    p.add_argument("--residents", type=int, default=5000)
    p.add_argument("--load", choices=("direct", "none"), default="direct")
    p.add_argument("--loaders", type=int, default=2)
    p.add_argument("--scenarios", default="system,own")
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def _entry(rtype: str, uid: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{uid}",
        "resource": {"resourceType": rtype, **body},
        "request": {"method": "POST", "url": rtype},
    }


def resident_entries(n: int) -> list[dict[str, Any]]:
    """One synthetic resident (11 resources); ``n`` makes every id unique."""
    pid = f"00000000-0000-4000-8000-{n:012d}"
    subj = {"reference": f"urn:uuid:{pid}"}
    out = [
        _entry(
            "Patient",
            pid,
            {
                "identifier": [
                    {"system": "urn:oid:1.2.392.100495.20.3.51.19999999", "value": str(n)}
                ],
                "name": [{"family": f"試験{n}", "given": ["太郎"]}],
                "gender": "male" if n % 2 else "female",
                "birthDate": f"{1930 + n % 80}-0{1 + n % 9}-1{n % 9}",
            },
        )
    ]
    for k in range(5):
        out.append(
            _entry(
                "Observation",
                f"00000001-{k:04d}-4000-8000-{n:012d}",
                {
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                    "subject": subj,
                    "effectiveDateTime": f"20{10 + k}-05-01T09:00:00+09:00",
                    "valueQuantity": {"value": 5.5 + k / 10, "unit": "%"},
                },
            )
        )
    for k, code in enumerate(("E11.9", "I10")):
        out.append(
            _entry(
                "Condition",
                f"00000002-{k:04d}-4000-8000-{n:012d}",
                {
                    "code": {
                        "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]
                    },
                    "subject": subj,
                    "onsetDateTime": "2015-01-01",
                },
            )
        )
    for k in range(2):
        out.append(
            _entry(
                "Immunization",
                f"00000003-{k:04d}-4000-8000-{n:012d}",
                {
                    "status": "completed",
                    "vaccineCode": {
                        "coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]
                    },
                    "patient": subj,
                    "occurrenceDateTime": f"202{k}-10-15",
                },
            )
        )
    out.append(
        _entry(
            "MedicationStatement",
            f"00000004-0000-4000-8000-{n:012d}",
            {
                "status": "active",
                "medicationCodeableConcept": {"text": "メトホルミン塩酸塩錠250mg"},
                "subject": subj,
            },
        )
    )
    return out


def _load(job: tuple[int, int]) -> int:
    start, stop = job
    from consent.actors import Actor
    from fhir_gateway.ingest import process_bundle
    from phr.db import transaction

    actor = Actor(
        kind="organization",
        client_id=f"{ORG}-loader",
        organization_id=ORG,
        organization_kind="hospital",
        scopes=frozenset({"system/*.cruds"}),
    )
    n = 0
    for first in range(start, stop, PER_BUNDLE):
        entries = [
            e for i in range(first, min(first + PER_BUNDLE, stop)) for e in resident_entries(i)
        ]
        with transaction() as session:
            process_bundle(
                session,
                {"resourceType": "Bundle", "type": "transaction", "entry": entries},
                actor=actor,
            )
        n += len(entries)
    return n


def load(args: argparse.Namespace, env: dict[str, str]) -> float:
    common.reset_database(args.database_url)
    from consent.identity.clients import register_organization
    from phr.db import make_engine, set_engine, transaction

    set_engine(make_engine(url=args.database_url))
    with transaction() as session:
        register_organization(session, id=ORG, name="Bench hospital", kind="hospital")
    os.environ.update(env)
    step = -(-args.residents // args.loaders)
    jobs = [(i, min(i + step, args.residents)) for i in range(0, args.residents, step)]
    t0 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.loaders) as pool:
        pool.map(_load, jobs)
    seconds = time.perf_counter() - t0
    common.vacuum_analyze(args.database_url)
    return seconds


def _export(job: tuple[str, str]) -> dict[str, Any]:
    """In a fresh process: one export job, measured."""
    scenario, url = job
    from consent.actors import Actor, Purpose
    from phr.bulk import files, service
    from phr.bulk.models import BulkExportJob
    from phr.db import make_engine, session_factory, set_engine
    from phr.store.indexer import utcnow

    set_engine(make_engine(url=url))
    actor = (
        Actor.system("bench-export")
        if scenario == "system"
        else Actor(
            kind="organization",
            client_id="bench",
            organization_id=ORG,
            organization_kind="hospital",
            scopes=frozenset({"system/*.rs"}),
        )
    )
    session = session_factory()()
    job = BulkExportJob(
        id=f"bench-{scenario}-{os.getpid()}", status="accepted",
        level="system" if scenario == "system" else "patient", types=[], request_url="bench",
        actor={"kind": actor.kind, "client_id": actor.client_id,
               "organization_id": actor.organization_id,
               "organization_kind": actor.organization_kind, "scopes": sorted(actor.scopes)},
        purpose=Purpose.TREATMENT.value, owner="bench", created_at=utcnow(), output=[],
        resources=0, residents=0, error="",
    )  # fmt: skip
    session.add(job)
    session.flush()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    try:
        service.run(session, job)
        seconds = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in files.job_dir(job.id).iterdir())
    finally:
        session.rollback()
        session.close()
        files.remove_job_dir(job.id)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "scenario": scenario,
        "resources": job.resources,
        "residents": job.residents,
        "seconds": round(seconds, 2),
        "resources/s": round(job.resources / seconds),
        "peak RSS MB": round(peak / 1024, 1),
        "RSS before export MB": round(base / 1024, 1),
        "files MB": round(size / 1e6, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    data = Path(tempfile.mkdtemp(prefix="phr-bulk-bench-"))
    env = {"PHR_DATA_DIR": str(data), "PHR_DATABASE_URL": args.database_url, "PHR_ENV": "test"}
    os.environ.update(env)
    from phr.settings import reset_settings_cache

    reset_settings_cache()
    load_seconds = None
    if args.load == "direct":
        load_seconds = round(load(args, env), 1)
    rows = []
    for scenario in args.scenarios.split(","):
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            rows.append(pool.apply(_export, ((scenario, args.database_url),)))
    result = {
        "machine": common.machine(args.database_url),
        "residents": args.residents,
        "load seconds": load_seconds,
        "exports": rows,
    }
    print(f"## Bulk export, {rows[0]['resources']:,} resources of {args.residents:,} residents\n")
    print(common.markdown_table(rows))
    print()
    print(common.machine_table(result["machine"]))
    common.write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
