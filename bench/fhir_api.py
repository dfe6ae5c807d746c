"""FHIR API benchmark: reads and searches over HTTP against uvicorn, 16 concurrent clients.

1. Load (``--load direct``, the default): the PostgreSQL schema is dropped and re-migrated,
   one hospital is registered, and enough replicated Synthea copies to reach
   ``--resources`` are written with ``fhir_gateway.ingest.process_bundle`` in
   ``--loaders`` parallel processes (the load is not what is measured here; see
   bench/ingest.py for ingest over HTTP). ``--load api`` sends them through POST /fhir;
   ``--load none`` reuses what the database holds.
2. Measure: for each ``--workers`` value the server (uvicorn on loopback) is started and
   ``--concurrency`` client threads, in this process, each with its own keep-alive
   connection, issue one kind of request back to back: ``--warmup`` seconds unmeasured,
   then ``--duration`` seconds measured. Latency is per request (client side); throughput
   is completed requests per second.

Scenarios: read (GET /fhir/{type}/{id}, any stored type), search-code (Observation by
patient + LOINC code), search-date (Observation by patient + a one-year date range),
search-name (Patient by family name) and everything (Patient/{id}/$everything).

    python bench/fhir_api.py --resources 200000 --workers 2,1
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import common  # bench/common.py (the scripts run as ``python bench/<name>.py``)

ORG = "bench-hospital"
SCENARIOS = ("read", "search-code", "search-date", "search-name", "everything")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    common.add_common_arguments(p)
    p.add_argument("--resources", type=int, default=200_000, help="resources to load (at least)")
    p.add_argument(
        "--load",
        choices=("direct", "api", "none"),
        default="direct",
        help="how to load: in-process process_bundle workers, POST /fhir, or keep the data",
    )
    p.add_argument(
        "--loaders", type=int, default=os.cpu_count() or 2, help="parallel loader processes"
    )
    p.add_argument("--concurrency", type=int, default=16, help="concurrent client threads")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per scenario")
    p.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds per scenario")
    p.add_argument("--workers", default="2,1", help="uvicorn worker counts to measure, in order")
    p.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of scenarios"
    )
    common.add_profile_arguments(p)
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return p.parse_args(argv)


# ---- loading -----------------------------------------------------------------------------------


def _load_copies(job: tuple[str, list[int]]) -> int:
    """In a fresh loader process: write the given copies with process_bundle."""
    synthea, copies = job
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
    originals = common.load_bundles(Path(synthea))
    n = 0
    for c in copies:
        for raw in originals:
            bundle = json.loads(common.replicate(raw, c))
            for attempt in range(5):
                try:
                    with transaction() as session:
                        process_bundle(session, bundle, actor=actor)
                    break
                except Exception:  # a deadlock between loaders: try the bundle again
                    if attempt == 4:
                        raise
                    bundle = json.loads(common.replicate(raw, c))
                    time.sleep(0.2 * (attempt + 1))
            n += len(bundle["entry"])
    return n


def load_direct(args: argparse.Namespace, copies: int, env: dict[str, str]) -> float:
    os.environ.update({k: env[k] for k in ("PHR_DATABASE_URL", "PHR_DATA_DIR", "PHR_ENV")})
    # Copy 0 first and alone: it stores the shared Organization/Practitioner records that
    # every other copy then finds unchanged (no two loaders insert the same row).
    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        pool.map(_load_copies, [(str(args.synthea), [0])])
    rest = list(range(1, copies))
    jobs = [(str(args.synthea), rest[i :: args.loaders]) for i in range(args.loaders)]
    with ctx.Pool(args.loaders) as pool:
        done = 0
        for n in pool.imap_unordered(_load_copies, [j for j in jobs if j[1]]):
            done += n
            print(f"  loaded {done:,} more resources", file=sys.stderr)
    return time.perf_counter() - t0


def load_api(args: argparse.Namespace, copies: int) -> float:
    import ingest

    originals = common.load_bundles(args.synthea)
    t0 = time.perf_counter()
    with common.run_server(args.database_url, workers=2) as server:
        creds = common.Credentials(ORG, *_creds(server.env))
        tok = common.token(server.base_url, creds)
        ingest.post_all(server, tok, originals, 1)
        for c in range(1, copies):
            bundles = [common.replicate(b, c) for b in originals]
            _, _, errors, samples = ingest.post_all(server, tok, bundles, 2)
            if errors:
                raise SystemExit(f"load failed: {samples}")
    return time.perf_counter() - t0


_CREDS: dict[str, tuple[str, str]] = {}


def _creds(env: dict[str, str]) -> tuple[str, str]:
    if ORG not in _CREDS:
        c = common.register_client(env, ORG)
        _CREDS[ORG] = (c.client_id, c.client_secret)
    return _CREDS[ORG]


# ---- what to ask for ---------------------------------------------------------------------------


def samples(url: str, n: int = 5000) -> dict[str, list[Any]]:
    """Random real targets for every scenario, drawn from the loaded data."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT setseed(0.20261124)"))
            reads = conn.execute(
                text(
                    "SELECT resource_type, id FROM resource "
                    "WHERE resource_type <> 'Provenance' AND NOT deleted "
                    "ORDER BY random() LIMIT :n"
                ),
                {"n": n},
            ).all()
            codes = conn.execute(
                text(
                    "SELECT resident_id, system, code FROM search_token "
                    "WHERE resource_type = 'Observation' AND param = 'code' "
                    "ORDER BY random() LIMIT :n"
                ),
                {"n": n},
            ).all()
            dates = conn.execute(
                text(
                    "SELECT resident_id, low FROM search_date "
                    "WHERE resource_type = 'Observation' AND param = 'date' "
                    "ORDER BY random() LIMIT :n"
                ),
                {"n": n},
            ).all()
            patients = conn.execute(
                text("SELECT id, content FROM resource WHERE resource_type = 'Patient'")
            ).all()
    finally:
        engine.dispose()
    families = sorted(
        {
            json.loads(content)["name"][0]["family"]
            for _, content in patients
            if json.loads(content).get("name")
        }
    )
    return {
        "reads": [(t, i) for t, i in reads],
        "codes": [(r, s, c) for r, s, c in codes],
        "dates": [(r, low) for r, low in dates],
        "patients": [pid for pid, _ in patients],
        "families": families,
    }


def path_makers(s: dict[str, list[Any]]) -> dict[str, Callable[[Any], str]]:
    def read(rnd: Any) -> str:
        t, i = rnd.choice(s["reads"])
        return f"/fhir/{t}/{i}"

    def search_code(rnd: Any) -> str:
        patient, system, code = rnd.choice(s["codes"])
        token = f"{system}|{code}" if system else code
        return "/fhir/Observation?" + urlencode({"patient": patient, "code": token})

    def search_date(rnd: Any) -> str:
        patient, low = rnd.choice(s["dates"])
        year = low.year if isinstance(low, datetime) else int(str(low)[:4])
        q = [("patient", patient), ("date", f"ge{year}-01-01"), ("date", f"lt{year + 1}-01-01")]
        return "/fhir/Observation?" + urlencode(q)

    def search_name(rnd: Any) -> str:
        return "/fhir/Patient?" + urlencode({"name": rnd.choice(s["families"])})

    def everything(rnd: Any) -> str:
        return f"/fhir/Patient/{quote(rnd.choice(s['patients']))}/$everything"

    return {
        "read": read,
        "search-code": search_code,
        "search-date": search_date,
        "search-name": search_name,
        "everything": everything,
    }


# ---- measuring ---------------------------------------------------------------------------------


def measure(
    args: argparse.Namespace, server: common.Server, tok: str, makers: dict[str, Any]
) -> list[dict[str, Any]]:
    rows = []
    headers = {"Authorization": f"Bearer {tok}", "Accept": "application/fhir+json"}
    for name in [s.strip() for s in args.scenarios.split(",") if s.strip()]:
        profiler = None
        if args.profile:
            profiler = common.Profiler(
                server, args.profile, f"api-{name}-w{server.workers}", gil=args.profile_gil
            )
            profiler.start(delay=args.warmup)
        print(f"  {name} (workers={server.workers}) ...", file=sys.stderr)
        result = common.run_load(
            name=name,
            base_url=server.base_url,
            headers=headers,
            make_path=makers[name],
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=args.warmup,
            meter=common.CpuMeter(server, args.database_url),
        )
        if profiler:
            profiler.stop()
        row = {"workers": server.workers, **result.row()}
        row.update(common.cpu_columns(result.cpu, result.requests, "req"))
        rows.append(row)
        if result.error_samples:
            print(f"    errors, e.g.: {result.error_samples[:3]}", file=sys.stderr)
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    originals = common.load_bundles(args.synthea)
    per_copy = sum(common.entries_of(b) for b in originals)
    copies = max(1, math.ceil(args.resources / per_copy))
    load_seconds = analyze_seconds = None
    with tempfile.TemporaryDirectory(prefix="phr-bench-load-") as tmp:
        env = common.server_env(args.database_url, Path(tmp), 0)
        if args.load != "none":
            print(f"loading {copies} copies ({copies * per_copy:,} resources) ...", file=sys.stderr)
            common.reset_database(args.database_url)
            if args.load == "direct":
                _creds(env)
                load_seconds = load_direct(args, copies, env)
            else:
                load_seconds = load_api(args, copies)
            print("VACUUM ANALYZE ...", file=sys.stderr)
            analyze_seconds = common.vacuum_analyze(args.database_url)
        elif ORG not in _CREDS:
            # Keep the data; a new client of the same organisation sees all of it.
            _CREDS[ORG] = _new_client_for_existing_org(env)
    size = common.database_size(args.database_url)
    makers = path_makers(samples(args.database_url))
    rows: list[dict[str, Any]] = []
    for workers in [int(w) for w in str(args.workers).split(",") if w.strip()]:
        with common.run_server(args.database_url, workers=workers) as server:
            creds = common.Credentials(ORG, *_CREDS[ORG])
            tok = common.token(server.base_url, creds)
            rows += measure(args, server, tok, makers)
    return {
        "benchmark": "fhir_api",
        "machine": common.machine(args.database_url),
        "data": {
            "load": args.load,
            "copies": copies,
            "resources_sent": copies * per_copy,
            "load_seconds": round(load_seconds, 1) if load_seconds else None,
            "vacuum_analyze_seconds": round(analyze_seconds, 1) if analyze_seconds else None,
            "stored": size,
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
        },
        "rows": rows,
    }


def _new_client_for_existing_org(env: dict[str, str]) -> tuple[str, str]:
    """A fresh client of the existing benchmark organisation (``--load none``)."""
    import subprocess

    code = (
        "import json; from consent.identity.clients import register_client; "
        "from phr.db import transaction\n"
        "with transaction() as s:\n"
        f"    c, secret = register_client(s, organization_id={ORG!r}, name='bench', "
        f"scopes={list(common.DEFAULT_SCOPES)!r})\n"
        "    print(json.dumps([c.client_id, secret]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=common.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    cid, secret = json.loads(done.stdout)
    return cid, secret


def report(result: dict[str, Any]) -> str:
    d = result["data"]
    st = d["stored"]
    loaded = (
        f"loaded {d['resources_sent']:,} resources ({d['copies']} Synthea copies, "
        f"{d['load']}) in {d['load_seconds']} s, then VACUUM ANALYZE; "
        if d["load_seconds"]
        else ""
    )
    return "\n\n".join(
        [
            "## FHIR API over HTTP (uvicorn on loopback, PostgreSQL)",
            f"Data: {loaded}store holds {st['resources']:,} current resources "
            f"({st['per_type'].get('Observation', 0):,} Observations, "
            f"{st['residents']:,} residents, incl. {st['per_type'].get('Provenance', 0):,} "
            f"Provenance), {st['bytes'] / 1024 / 1024:,.0f} MiB database. "
            f"{d['concurrency']} concurrent clients, {d['warmup_s']:g} s warm-up + "
            f"{d['duration_s']:g} s measured per row.",
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
