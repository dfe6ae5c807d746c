"""Ingest benchmark: Synthea transaction Bundles through a running server's ``POST /fhir``.

For each client concurrency (default 1 and 2) the PostgreSQL schema is dropped and
re-migrated, the server is started (uvicorn, ``--workers``), one hospital client is
registered, the original 40 Synthea bundles are sent as a warm-up (not measured; this also
stores the shared Organization/Practitioner records), then ``--copies`` replicated copies
of the set (new patients: fresh UUIDs and patient identifiers) are sent by N concurrent
clients and timed from the first request to the last response.

    python bench/ingest.py --copies 3 --clients 1,2
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

import common  # bench/common.py (the scripts run as ``python bench/<name>.py``)
import httpx


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    common.add_common_arguments(p)
    p.add_argument(
        "--copies",
        type=int,
        default=2,
        help="replicated copies of the Synthea set sent in the measured phase "
        "(each copy = 40 new patients, 9,394 resources)",
    )
    p.add_argument(
        "--clients", default="1,2", help="comma-separated client concurrencies to measure"
    )
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    common.add_profile_arguments(p)
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return p.parse_args(argv)


def post_all(
    server: common.Server, tok: str, bundles: list[bytes], clients: int
) -> tuple[float, list[float], int, list[str]]:
    """Send every bundle with ``clients`` threads: (wall seconds, latencies in ms of the
    accepted bundles, failed bundles, a few failure samples).

    A 5xx answer is retried up to twice (as a real client would) and counted as a failure
    in the samples either way, so that it shows in the report."""
    work: queue.Queue[bytes] = queue.Queue()
    for b in bundles:
        work.put(b)
    latencies: list[float] = []
    errors: list[str] = []
    failed: list[int] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {tok}", "Content-Type": "application/fhir+json"}

    def worker() -> None:
        with httpx.Client(headers=headers, timeout=600) as c:
            while True:
                try:
                    body = work.get_nowait()
                except queue.Empty:
                    return
                for attempt in range(3):
                    t0 = time.perf_counter()
                    r = c.post(server.fhir, content=body)
                    ms = (time.perf_counter() - t0) * 1000
                    if r.status_code == 200:
                        break
                    with lock:
                        errors.append(f"attempt {attempt + 1}: {r.status_code} {r.text[:300]}")
                    if r.status_code < 500:
                        break
                with lock:
                    if r.status_code == 200:
                        latencies.append(ms)
                    else:
                        failed.append(1)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, latencies, len(failed), errors


def run(args: argparse.Namespace) -> dict[str, Any]:
    originals = common.load_bundles(args.synthea)
    per_copy = sum(common.entries_of(b) for b in originals)
    print(f"replicating {args.copies} copies of {len(originals)} bundles ...", file=sys.stderr)
    measured = [common.replicate(b, c) for c in range(1, args.copies + 1) for b in originals]
    sent = per_copy * args.copies
    rows = []
    size: dict[str, Any] = {}
    for clients in [int(c) for c in str(args.clients).split(",") if c.strip()]:
        common.reset_database(args.database_url)
        with common.run_server(args.database_url, workers=args.workers) as server:
            creds = common.register_client(server.env, "bench-hospital")
            tok = common.token(server.base_url, creds)
            # One client for the warm-up: concurrent bundles that create the same shared
            # Organization/Practitioner race (see docs/performance.md).
            print(f"{clients} client(s): warm-up (copy 0, one client) ...", file=sys.stderr)
            _, _, warm_failed, samples = post_all(server, tok, originals, 1)
            if warm_failed:
                raise SystemExit(f"warm-up failed: {samples[:3]}")
            profiler = None
            if args.profile:
                profiler = common.Profiler(
                    server,
                    args.profile,
                    f"ingest-c{clients}-w{args.workers}",
                    gil=args.profile_gil,
                )
                profiler.start()
            print(f"{clients} client(s): {sent:,} resources ...", file=sys.stderr)
            meter = common.CpuMeter(server, args.database_url)
            meter.start()
            seconds, lat, failed, samples = post_all(server, tok, measured, clients)
            cpu = meter.stop()
            if profiler:
                profiler.stop()
            if samples:
                print(f"{len(samples)} error answers, e.g. {samples[:3]}", file=sys.stderr)
        size = common.database_size(args.database_url)
        rows.append(
            {
                "clients": clients,
                "workers": args.workers,
                "bundles": len(measured),
                "resources_sent": sent,
                "seconds": round(seconds, 1),
                "resources_per_s": round(sent / seconds, 1),
                "bundle_p50_ms": round(common.percentile(lat, 50), 1),
                "bundle_p99_ms": round(common.percentile(lat, 99), 1),
                "failed_bundles": failed,
                "http_5xx": sum(1 for e in samples if ": 5" in e[:16]),
                **common.cpu_columns(cpu, sent, "resource"),
            }
        )
    return {
        "benchmark": "ingest",
        "machine": common.machine(args.database_url),
        "data": {
            "synthea_bundles": len(originals),
            "resources_per_copy": per_copy,
            "warmup_copies": 1,
            "measured_copies": args.copies,
            "stored_after_run": size,
        },
        "rows": rows,
    }


def report(result: dict[str, Any]) -> str:
    d = result["data"]
    size = d["stored_after_run"]
    return "\n\n".join(
        [
            "## Ingest: Synthea transaction bundles via POST /fhir (PostgreSQL)",
            f"Data: {d['measured_copies']} replicated copies x {d['synthea_bundles']} bundles "
            f"= {d['measured_copies'] * d['resources_per_copy']:,} resources measured, after "
            f"a warm-up copy of {d['resources_per_copy']:,}. Store after each run: "
            f"{size.get('resources', 0):,} current resources (incl. Provenance), "
            f"{size.get('residents', 0):,} residents, "
            f"{size.get('bytes', 0) / 1024 / 1024:,.0f} MiB database.",
            common.markdown_table(result["rows"]),
            common.machine_table(result["machine"]),
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    result = run(args)
    print(report(result))
    common.write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
