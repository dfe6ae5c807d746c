"""Run every benchmark (ingest, then the FHIR API) and print one summary table.

The summary compares each figure with the platform's performance goals; that comparison
is information, never a pass/fail (benchmarks are not tests). Each benchmark's own
detailed table and the machine description are printed first.

    python bench/run_all.py                 # what ``make bench`` runs (~15 min on 2 cores)
    python bench/run_all.py --copies 1 --resources 20000 --duration 5   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import common  # bench/common.py (the scripts run as ``python bench/<name>.py``)
import fhir_api
import ingest

GOALS = {
    "ingest": ("resources/s >= 3,000", lambda r: r["resources_per_s"] >= 3000),
    "read": (
        "p99 <= 20 ms, >= 800 req/s",
        lambda r: r["p99_ms"] <= 20 and r["req_per_s"] >= 800,
    ),
    "search-code": ("p99 <= 50 ms", lambda r: r["p99_ms"] <= 50),
    "search-date": ("p99 <= 50 ms", lambda r: r["p99_ms"] <= 50),
    "search-name": ("p99 <= 50 ms", lambda r: r["p99_ms"] <= 50),
    "everything": ("(no goal)", None),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    common.add_common_arguments(p)
    p.add_argument("--copies", type=int, default=3, help="ingest: measured Synthea copies")
    p.add_argument("--clients", default="1,2", help="ingest: client concurrencies")
    p.add_argument("--resources", type=int, default=200_000, help="API: resources to load")
    p.add_argument("--loaders", type=int, default=os.cpu_count() or 2, help="API: loader processes")
    p.add_argument("--concurrency", type=int, default=16, help="API: concurrent clients")
    p.add_argument("--duration", type=float, default=20.0, help="API: measured s per scenario")
    p.add_argument("--warmup", type=float, default=5.0, help="API: warm-up s per scenario")
    p.add_argument("--workers", default="2,1", help="API: uvicorn worker counts")
    p.add_argument("--ingest-workers", type=int, default=2, help="ingest: uvicorn workers")
    p.add_argument("--skip-ingest", action="store_true")
    p.add_argument("--skip-api", action="store_true")
    common.add_profile_arguments(p)
    p.add_argument("--json", type=Path, help="also write all results to this JSON file")
    return p.parse_args(argv)


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    if "ingest" in results:
        data = results["ingest"]["data"]
        for r in results["ingest"]["rows"]:
            goal, ok = GOALS["ingest"]
            rows.append(
                {
                    "benchmark": "ingest POST /fhir",
                    "workers": r["workers"],
                    "clients": r["clients"],
                    "data": f"{r['resources_sent']:,} res. sent "
                    f"(+{data['resources_per_copy']:,} warm-up)",
                    "throughput": f"{r['resources_per_s']:,.0f} resources/s",
                    "p50_ms": r["bundle_p50_ms"],
                    "p99_ms": r["bundle_p99_ms"],
                    "goal": goal,
                    "met": "yes" if ok(r) else "NO",
                }
            )
    if "fhir_api" in results:
        res = results["fhir_api"]
        stored = res["data"]["stored"]["resources"]
        for r in res["rows"]:
            goal, check = GOALS[r["scenario"]]
            rows.append(
                {
                    "benchmark": f"API {r['scenario']}",
                    "workers": r["workers"],
                    "clients": res["data"]["concurrency"],
                    "data": f"{stored:,} resources stored",
                    "throughput": f"{r['req_per_s']:,.0f} req/s",
                    "p50_ms": r["p50_ms"],
                    "p99_ms": r["p99_ms"],
                    "goal": goal,
                    "met": "-" if check is None else ("yes" if check(r) else "NO"),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    results: dict[str, Any] = {}
    if not args.skip_ingest:
        ns = argparse.Namespace(
            database_url=args.database_url,
            synthea=args.synthea,
            copies=args.copies,
            clients=args.clients,
            workers=args.ingest_workers,
            profile=args.profile,
            profile_gil=args.profile_gil,
        )
        results["ingest"] = ingest.run(ns)
        print(ingest.report(results["ingest"]), end="\n\n", flush=True)
    if not args.skip_api:
        ns = argparse.Namespace(
            database_url=args.database_url,
            synthea=args.synthea,
            resources=args.resources,
            load="direct",
            loaders=args.loaders,
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=args.warmup,
            workers=args.workers,
            scenarios=",".join(fhir_api.SCENARIOS),
            profile=args.profile,
            profile_gil=args.profile_gil,
        )
        results["fhir_api"] = fhir_api.run(ns)
        print(fhir_api.report(results["fhir_api"]), end="\n\n", flush=True)
    print("## Summary against the goals\n")
    print(common.markdown_table(summary(results)))
    print()
    print(common.machine_table(common.machine(args.database_url)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
