"""``make bench``: the city-sized benchmark, one table at two sizes of Tsukuba.

For each ``--scales`` value (smallest first) the city is generated with
``bench/make_city.py`` (the database's public schema is DROPPED), then measured with the
existing benchmark scripts on that data, unchanged:

* generation: make_city's write rate (the gateway's write path, in bulk);
* ingest: Synthea transaction Bundles through ``POST /fhir`` (``bench/ingest.py``; once,
  before the first size, on an empty database: it does not depend on the city's size);
* FHIR read and searches, ``$everything``: ``bench/fhir_api.py --load none`` as the
  hospital that contributed the records (16 keep-alive clients, uvicorn ``--workers``);
* the paramedic call: ``bench/paramedic_call.py``'s calls (open, identify by demographics
  or card, confirm, emergency summary) by concurrent crews, for residents who gave the
  emergency pre-consent and wrote an ACP in the generated city;
* polypharmacy: one medication review (``phr.polypharmacy.service.review`` + its FHIR
  Bundle) for random residents with medicines, and the screening of every resident
  (``phr drugs screen``'s function; the worklist is not written), as in
  ``bench/polypharmacy.py``;
* bulk export: ``bench/bulk_export.py --load none`` (system and own-chart jobs: rate,
  peak RSS of the exporting process);
* the correctness peer, the load test and the security suite have their own scripts
  (``bench/peer*.py``, ``bench/load.py``, ``bench/security*.py``); their rows say
  "not run" here until they are wired in.

    python bench/city.py                               # make bench: 1 % and 10 %
    python bench/city.py --scales 0.002,0.01 --duration 5 --warmup 2   # a quick look
    python bench/city.py --scales 0.1 --reuse          # measure the city already loaded

The figures are information, never pass/fail. On a machine shared with other work they
are pessimistic: the load average at the start and end of each size is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bulk_export
import common  # bench/common.py (the scripts run as ``python bench/<name>.py``)
import fhir_api
import ingest
import make_city
import paramedic_call

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    common.add_common_arguments(p)
    p.add_argument("--scales", default="0.01,0.1", help="shares of Tsukuba's 260,000 residents")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--gen-workers", type=int, default=os.cpu_count() or 2)
    p.add_argument(
        "--reuse",
        action="store_true",
        help="do not generate a size whose residents are already loaded (same count)",
    )
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    p.add_argument("--concurrency", type=int, default=16, help="API clients")
    p.add_argument("--crews", type=int, default=16, help="concurrent paramedic crews")
    p.add_argument("--cards", type=int, default=50, help="residents given a demo card")
    p.add_argument("--duration", type=float, default=15.0, help="measured s per scenario")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up s per scenario")
    p.add_argument("--reviews", type=int, default=200, help="polypharmacy reviews to time")
    p.add_argument("--skip-screen", action="store_true", help="no polypharmacy screening")
    p.add_argument("--ingest-copies", type=int, default=1, help="Synthea copies for ingest")
    p.add_argument("--skip-ingest", action="store_true")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=ROOT / "var" / "bench-city",
        help="keys (they seal the ACPs) and cards, shared by the generator and the server",
    )
    p.add_argument("--json", type=Path, help="also write every result to this JSON file")
    p.add_argument(
        "--table-from",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="measure nothing: print the table of earlier runs' --json files, sizes merged",
    )
    return p.parse_args(argv)


def _ns(**kw: Any) -> argparse.Namespace:
    return argparse.Namespace(**kw)


def _env(args: argparse.Namespace) -> dict[str, str]:
    env = common.server_env(args.database_url, args.data_dir, 0)
    os.environ.update({k: env[k] for k in ("PHR_DATABASE_URL", "PHR_DATA_DIR", "PHR_ENV")})
    from phr.settings import reset_settings_cache

    reset_settings_cache()
    return env


def _loaded_residents(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM resident")).scalar() or 0)
    except Exception:  # no schema yet
        return 0
    finally:
        engine.dispose()


# ---- the paramedic call on the city ------------------------------------------------------------


def paramedic(args: argparse.Namespace) -> dict[str, Any]:
    """Crews call for residents with an emergency pre-consent and an ACP."""
    from sqlalchemy import text

    from consent.identity.cards import issue_card
    from phr.db import make_engine, set_engine, transaction

    env = _env(args)
    set_engine(make_engine(url=args.database_url))
    with transaction() as s:
        rows = s.execute(
            text(
                "SELECT p.id, p.content FROM resource p WHERE p.resource_type = 'Patient' "
                "AND EXISTS (SELECT 1 FROM consent_rule r WHERE r.resident_id = p.id "
                "AND r.emergency) AND EXISTS (SELECT 1 FROM acp_version a "
                "WHERE a.resident_id = p.id) ORDER BY p.id"
            )
        ).all()
        people = []
        for i, (rid, content) in enumerate(rows):
            p = json.loads(content)
            name = p["name"][0]
            person = {
                "resident_id": rid,
                "family": name["family"],
                "given": " ".join(name.get("given") or []),
                "birth_date": p["birthDate"],
                "sex": p["gender"],
            }
            if i < args.cards:
                card = issue_card(s, rid, out_dir=args.data_dir / "cards")
                person["certificate"] = card.certificate_path.read_text()
            people.append(person)
    set_engine(None)
    if not people:
        return {"error": "no resident with an emergency pre-consent and an ACP"}
    creds = common.register_client(env, paramedic_call.EMS, kind="ems", scopes=["system/*.rs"])
    ns = _ns(
        warmup=args.warmup,
        duration=args.duration,
        concurrency=args.crews,
        card_share=0.5,
        database_url=args.database_url,
    )
    with common.run_server(
        args.database_url, workers=args.workers, data_dir=args.data_dir
    ) as server:
        tok = common.token(server.base_url, creds)
        result = paramedic_call.measure(ns, server, tok, people)
    result["people"] = len(people)
    return result


# ---- polypharmacy on the city ------------------------------------------------------------------


def polypharmacy(args: argparse.Namespace) -> dict[str, Any]:
    """One review for random residents with medicines; screening of every resident."""
    from sqlalchemy import text

    from consent.actors import Actor
    from phr.db import make_engine, set_engine, transaction
    from phr.polypharmacy import fhir, service
    from phr.polypharmacy.screen import screen

    _env(args)
    engine = make_engine(url=args.database_url)
    set_engine(engine)
    with transaction() as s:
        ids = list(
            s.execute(
                text(
                    "SELECT DISTINCT resident_id FROM resource "
                    "WHERE resource_type = 'MedicationRequest' ORDER BY resident_id"
                )
            ).scalars()
        )
    rng = random.Random(args.seed)
    actor = Actor.system("bench")
    timings = []
    for rid in rng.sample(ids, min(args.reviews, len(ids))):
        with transaction() as s:
            t = time.perf_counter()
            fhir.bundle(service.review(s, actor, rid))
            timings.append((time.perf_counter() - t) * 1e3)
    out: dict[str, Any] = {
        "reviews": len(timings),
        "review_p50_ms": round(statistics.median(timings), 1) if timings else None,
        "review_p99_ms": round(common.percentile(timings, 99), 1) if timings else None,
    }
    if not args.skip_screen:
        with tempfile.TemporaryDirectory(prefix="phr-bench-city-") as tmp:
            t0 = time.perf_counter()
            with transaction() as s:
                rep = screen(s, Path(tmp), workers=args.workers, record=False)
            total = time.perf_counter() - t0
        out.update(
            screen_residents=rep.residents,
            screen_with_medicines=rep.with_medicines,
            screen_s=round(total, 1),
            screen_ms_per_resident=round(total / max(1, rep.residents) * 1e3, 2),
            findings=rep.findings,
        )
    set_engine(None)
    engine.dispose()
    return out


# ---- one size ----------------------------------------------------------------------------------


def one_size(args: argparse.Namespace, scale: float) -> dict[str, Any]:
    n = max(1, round(make_city.TSUKUBA * scale))
    out: dict[str, Any] = {"scale": scale, "residents": n, "load_before": os.getloadavg()}
    if args.reuse and _loaded_residents(args.database_url) == n:
        print(f"\n# {scale:g} of Tsukuba: reusing the {n:,} residents loaded", flush=True)
        out["generation"] = None
    else:
        print(f"\n# {scale:g} of Tsukuba: generating {n:,} residents", flush=True)
        gen = make_city.run(
            _ns(
                database_url=args.database_url,
                residents=n,
                scale=None,
                seed=args.seed,
                workers=args.gen_workers,
                batch=200,
                drug_list=None,
                data_dir=args.data_dir,
                no_analyze=False,
                json=None,
            )
        )
        print(make_city.report(gen), flush=True)
        out["generation"] = gen
    out["size"] = common.database_size(args.database_url)
    fhir_api._CREDS.clear()
    out["fhir_api"] = fhir_api.run(
        _ns(
            database_url=args.database_url,
            synthea=args.synthea,
            resources=0,
            load="none",
            loaders=1,
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=args.warmup,
            workers=str(args.workers),
            scenarios=",".join(fhir_api.SCENARIOS),
            profile=None,
            profile_gil=False,
        )
    )
    print(fhir_api.report(out["fhir_api"]), flush=True)
    out["paramedic"] = paramedic(args)
    print(f"paramedic: {json.dumps(out['paramedic'], default=str)[:2000]}", flush=True)
    out["polypharmacy"] = polypharmacy(args)
    print(f"polypharmacy: {out['polypharmacy']}", flush=True)
    out["bulk_export"] = bulk_export.main(
        ["--database-url", args.database_url, "--load", "none", "--scenarios", "system,own"]
    )
    out["load_after"] = os.getloadavg()
    return out


# ---- the table ---------------------------------------------------------------------------------


def _api(size: dict[str, Any], scenario: str) -> dict[str, Any] | None:
    rows = [r for r in size["fhir_api"]["rows"] if r["scenario"] == scenario]
    return rows[0] if rows else None


def _latency(r: dict[str, Any] | None) -> str:
    if not r:
        return "-"
    return (
        f"{r['p50_ms']:,} / {r['p99_ms']:,} ms, {r['req_per_s']:,.0f} req/s, "
        f"{r.get('server_cpu_ms_per_req', '-')} ms server CPU/req"
    )


def _generation(s: dict[str, Any]) -> str:
    g = s["generation"]
    return f"{g['resources_per_s']:,} resources/s ({g['write_s']:,.0f} s)" if g else "reused"


def _paramedic(s: dict[str, Any]) -> str:
    p = s["paramedic"]
    whole = p["rows"][0]
    return (
        f"{whole['p50_ms']:,} / {whole['p99_ms']:,} ms, {p['calls_per_s']} calls/s, "
        f"{p['cpu'].get('server_cpu_ms_per_call', '-')} ms server CPU/call, "
        f"{p['errors']} errors ({p['people']:,} residents)"
    )


def _screen(s: dict[str, Any]) -> str:
    p = s["polypharmacy"]
    return f"{p['screen_s']:,} s ({p['screen_ms_per_resident']} ms/resident)"


def summary_rows(
    ingest_result: dict[str, Any] | None, sizes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    def col(s: dict[str, Any]) -> str:
        return f"{s['scale'] * 100:g} % ({s['residents']:,} residents)"

    rows: list[dict[str, Any]] = []

    def add(measure: str, cell: Any) -> None:
        row: dict[str, Any] = {"measure": measure}
        for s in sizes:
            try:
                row[col(s)] = cell(s)
            except (KeyError, TypeError, IndexError):
                row[col(s)] = "-"
        rows.append(row)

    add(
        "data: resources / database",
        lambda s: f"{s['size']['resources']:,} / {s['size']['bytes'] / 2**30:,.1f} GiB",
    )
    add(
        "generation (make_city, bulk write path)",
        _generation,
    )
    if ingest_result:
        best = max(ingest_result["rows"], key=lambda r: r["resources_per_s"])
        text = (
            f"{best['resources_per_s']:,.0f} resources/s ({best['clients']} clients, "
            f"bundle p50/p99 {best['bundle_p50_ms']:,}/{best['bundle_p99_ms']:,} ms; "
            "empty database)"
        )
        add("ingest POST /fhir (Synthea bundles)", lambda s: text)
    else:
        add("ingest POST /fhir (Synthea bundles)", lambda s: "not run")
    names = {
        "read": "FHIR read by id p50/p99, throughput",
        "search-code": "search Observation patient+code",
        "search-date": "search Observation patient+date",
        "search-name": "search Patient by name",
        "everything": "Patient/$everything",
    }
    for scenario, label in names.items():
        add(label, lambda s, sc=scenario: _latency(_api(s, sc)))
    add(
        "paramedic call (4 requests) p50/p99, calls/s",
        _paramedic,
    )
    add(
        "polypharmacy: one review p50/p99",
        lambda s: (
            f"{s['polypharmacy']['review_p50_ms']:,} / {s['polypharmacy']['review_p99_ms']:,} ms"
        ),
    )
    add(
        "polypharmacy: screen every resident",
        _screen,
    )
    for i, what in enumerate(("system", "own chart")):
        add(
            f"bulk export ({what}): rate, peak RSS",
            lambda s, i=i: (
                f"{s['bulk_export']['exports'][i]['resources/s']:,} resources/s, "
                f"{s['bulk_export']['exports'][i]['peak RSS MB']:,} MB"
            ),
        )
    for label, pattern in (
        ("correctness peer (Medplum)", "peer*.py"),
        ("load: 64 clients, 60 s", "load.py"),
        ("security suite", "security*.py"),
    ):
        present = sorted(p.name for p in (ROOT / "bench").glob(pattern))
        note = (
            f"not run ({', '.join(present)}: run it separately)"
            if present
            else f"not run (bench/{pattern} not present)"
        )
        add(label, lambda s, note=note: note)
    add(
        "load average before / after",
        lambda s: " / ".join(f"{x[0]:.1f}" for x in (s["load_before"], s["load_after"])),
    )
    return rows


def print_table(args: argparse.Namespace, results: dict[str, Any]) -> None:
    scales = [s["scale"] for s in results["sizes"]]
    print("\n## City benchmark: Tsukuba at " + ", ".join(f"{s:g}" for s in scales) + "\n")
    print(common.markdown_table(summary_rows(results["ingest"], results["sizes"])))
    print()
    print(
        f"p50 / p99 latency, client side; API: {args.concurrency} clients, paramedic: "
        f"{args.crews} crews, uvicorn --workers {args.workers}, {args.duration:g} s measured "
        f"after {args.warmup:g} s warm-up per scenario; whole run {results['wall_s']:,} s."
    )
    print()
    print(common.machine_table(common.machine(args.database_url)))


def merged(files: list[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {"ingest": None, "sizes": [], "wall_s": 0}
    for f in files:
        r = json.loads(f.read_text())
        out["ingest"] = out["ingest"] or r["ingest"]
        out["sizes"] += r["sizes"]
        out["wall_s"] += r["wall_s"]
    out["sizes"].sort(key=lambda s: s["scale"])
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.table_from:
        results = merged(args.table_from)
        print_table(args, results)
        return results
    args.data_dir.mkdir(parents=True, exist_ok=True)
    _env(args)
    t0 = time.perf_counter()
    results: dict[str, Any] = {"ingest": None, "sizes": []}
    scales = sorted(float(x) for x in args.scales.split(",") if x.strip())
    if not args.skip_ingest and not args.reuse:
        results["ingest"] = ingest.run(
            _ns(
                database_url=args.database_url,
                synthea=args.synthea,
                copies=args.ingest_copies,
                clients="2",
                workers=args.workers,
                profile=None,
                profile_gil=False,
            )
        )
        print(ingest.report(results["ingest"]), flush=True)
    for scale in scales:
        results["sizes"].append(one_size(args, scale))
    results["wall_s"] = round(time.perf_counter() - t0)
    print_table(args, results)
    common.write_json(args.json, results)
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
