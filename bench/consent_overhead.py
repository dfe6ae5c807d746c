"""The consent check's cost on searches (issue 3: under 10 % over the same search without
consent filtering, at 200,000 resources).

Runs in-process against a loaded benchmark database (``bench/fhir_api.py`` loads one;
``--database-url``), one thread, so that it measures the database work of one search and
nothing else. For each scenario the same search requests run four ways, interleaved:

- ``none``: the search statement with no access condition (what a system job sees);
- ``consent``: the statement with the consent condition of an organisation that did not
  contribute the records and reads them under residents' consents (the expensive case:
  the rule lookup, not the own-records shortcut);
- ``own``: the condition of the hospital that contributed the records (own chart);
- ``reader``: ``consent`` through the whole choke point (:class:`RecordReader`): count,
  page, rows, and the access-log entry inserted.

Each way runs count + page + rows as the FHIR API does (``_total=accurate`` default).
Every resident except every tenth consents to the reading organisation (treatment,
any data); searches by patient target consenting residents, so ``none`` and ``consent``
must return the same resources — the script checks it. Everything runs in one
transaction that is rolled back: the database is left as it was (the migrations are
applied first, as ``phr db upgrade`` would).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, machine_table, markdown_table, percentile, write_json

DEFAULT_URL = "postgresql+psycopg://phr:phr@127.0.0.1/phr_bench"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--database-url",
        default=os.environ.get("PHR_BENCH_DATABASE_URL", DEFAULT_URL),
        help="a database loaded by bench/fhir_api.py (left unchanged)",
    )
    p.add_argument("--iterations", type=int, default=400, help="searches per scenario and way")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--seed", type=int, default=20261125)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    return p.parse_args(argv)


def _targets(session: Any, rnd: random.Random) -> dict[str, list[Any]]:
    from sqlalchemy import text

    residents = [r for (r,) in session.execute(text("SELECT id FROM resident ORDER BY id")).all()]
    codes = session.execute(
        text(
            "SELECT resident_id, system, code FROM search_token "
            "WHERE resource_type = 'Observation' AND param = 'code' "
            "ORDER BY resident_id, system, code"
        )
    ).all()
    dates = session.execute(
        text(
            "SELECT resident_id, low FROM search_date "
            "WHERE resource_type = 'Observation' AND param = 'date' ORDER BY resident_id, low"
        )
    ).all()
    families = [
        f
        for (f,) in session.execute(
            text(
                "SELECT DISTINCT value FROM search_string "
                "WHERE resource_type = 'Patient' AND param = 'family' ORDER BY value"
            )
        ).all()
    ]
    hospital = session.execute(
        text(
            "SELECT organization_id, count(*) FROM resource_source "
            "GROUP BY organization_id ORDER BY count(*) DESC LIMIT 1"
        )
    ).first()
    return {
        "residents": residents,
        "codes": codes,
        "dates": dates,
        "families": families,
        "hospital": hospital[0] if hospital else None,
    }


def _consent_all_but_every_tenth(session: Any, residents: list[str], org: str) -> set[str]:
    from consent.actors import Actor, Purpose
    from consent.policy import schemas, service

    consenting = {r for i, r in enumerate(residents) if i % 10}
    for rid in sorted(consenting):
        service.create_consent(
            session,
            Actor(kind="resident", resident_id=rid, client_id="bench"),
            schemas.ConsentCreate(
                recipients=[schemas.Recipient(kind="organization", value=org)],
                purposes=[Purpose.TREATMENT],
            ),
        )
    session.flush()
    return consenting


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import func, select, true
    from sqlalchemy.orm import Session

    from consent import engine as consent_engine
    from consent.actors import Actor, Purpose
    from phr.db import make_engine
    from phr.migrate import upgrade
    from phr.store import repository as repo
    from phr.store import search as fsearch
    from phr.store.models import Resource
    from phr.store.reader import RecordReader

    eng = make_engine(url=args.database_url)
    upgrade(eng)
    rnd = random.Random(args.seed)
    reader_org = "bench-consent-reader"
    results: dict[str, Any] = {"scenarios": []}
    with Session(eng) as session:
        t = _targets(session, rnd)
        total_resources = int(session.scalar(select(func.count()).select_from(Resource)) or 0)
        results["resources"] = total_resources
        results["residents"] = len(t["residents"])
        t0 = time.perf_counter()
        consenting = _consent_all_but_every_tenth(session, t["residents"], reader_org)
        results["consents_written_s"] = round(time.perf_counter() - t0, 1)
        results["consenting_residents"] = len(consenting)
        other = Actor(
            kind="organization",
            client_id="bench-consent-reader-client",
            organization_id=reader_org,
            organization_kind="clinic",
            scopes=frozenset({"system/*.rs"}),
        )
        own = Actor(
            kind="organization",
            client_id="bench-own",
            organization_id=t["hospital"],
            organization_kind="hospital",
            scopes=frozenset({"system/*.rs"}),
        )
        clauses = {
            "none": true(),
            "consent": consent_engine.access_clause(other, Purpose.TREATMENT, session),
            "own": consent_engine.access_clause(own, Purpose.TREATMENT, session),
        }

        codes = [c for c in t["codes"] if c[0] in consenting]
        dates = [d for d in t["dates"] if d[0] in consenting]

        def code_query() -> list[tuple[str, str]]:
            rid, system, code = rnd.choice(codes)
            return [("patient", rid), ("code", f"{system}|{code}" if system else code)]

        def date_query() -> list[tuple[str, str]]:
            rid, low = rnd.choice(dates)
            year = low.year if isinstance(low, datetime) else int(str(low)[:4])
            return [("patient", rid), ("date", f"ge{year}-01-01"), ("date", f"lt{year + 1}-01-01")]

        def name_query() -> list[tuple[str, str]]:
            return [("family", rnd.choice(t["families"]))]

        scenarios: list[tuple[str, str, Callable[[], list[tuple[str, str]]]]] = [
            ("search-code", "Observation", code_query),
            ("search-date", "Observation", date_query),
            ("search-name", "Patient", name_query),
        ]

        def plain(req: Any, clause: Any) -> list[str]:
            stmt = fsearch.statement(req, clause)
            session.scalar(select(func.count()).select_from(stmt.subquery()))
            pks = list(
                session.scalars(
                    stmt.order_by(*fsearch.sort_columns(req)).limit(req.count).offset(req.offset)
                )
            )
            return [r.id for r in repo.by_pks(session, pks)]

        def through_reader(req: Any) -> list[str]:
            found = RecordReader(session, other, Purpose.TREATMENT).search(req)
            return [r.id for r in found.matches]

        for name, rtype, make in scenarios:
            times: dict[str, list[float]] = {w: [] for w in ("none", "consent", "own", "reader")}
            mismatches = 0
            for i in range(args.warmup + args.iterations):
                query = make()
                req = fsearch.parse(rtype, query)
                order = ["none", "consent", "own", "reader"]
                rnd.shuffle(order)  # no way always runs with a warmer cache than another
                got: dict[str, list[str]] = {}
                for way in order:
                    start = time.perf_counter()
                    got[way] = through_reader(req) if way == "reader" else plain(req, clauses[way])
                    elapsed = (time.perf_counter() - start) * 1000
                    if i >= args.warmup:
                        times[way].append(elapsed)
                if name != "search-name" and sorted(got["none"]) != sorted(got["consent"]):
                    mismatches += 1
            base_p50 = statistics.median(times["none"])
            row: dict[str, Any] = {"scenario": name, "searches": args.iterations}
            for way in ("none", "consent", "own", "reader"):
                p50 = statistics.median(times[way])
                row[f"{way} p50 ms"] = round(p50, 2)
                row[f"{way} p99 ms"] = round(percentile(times[way], 99), 2)
                if way != "none":
                    row[f"{way} overhead p50"] = f"{(p50 / base_p50 - 1) * 100:+.0f} %"
            row["result mismatches"] = mismatches if name != "search-name" else "n/a"
            results["scenarios"].append(row)
        session.rollback()
    eng.dispose()
    results["machine"] = machine(args.database_url)
    return results


def report(results: dict[str, Any]) -> str:
    out = [
        f"# Consent filtering cost on searches ({results['resources']:,} resources, "
        f"{results['residents']:,} residents, {results['consenting_residents']:,} consenting)",
        "",
        machine_table(results["machine"]),
        "",
        markdown_table(
            results["scenarios"],
            [
                "scenario",
                "searches",
                "none p50 ms",
                "none p99 ms",
                "consent p50 ms",
                "consent p99 ms",
                "consent overhead p50",
                "own p50 ms",
                "own overhead p50",
                "reader p50 ms",
                "reader p99 ms",
                "reader overhead p50",
                "result mismatches",
            ],
        ),
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    results = run(args)
    print(report(results))
    write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
