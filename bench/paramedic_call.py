"""The whole paramedic call over HTTP against uvicorn on loopback with PostgreSQL:
32 concurrent crews, each call = open an incident, identify the patient (demographic
search or the digital-ID card), confirm (birth date from a bystander, or the card), and
read the emergency summary (under the resident's emergency consent, with their ACP).

1. Load (unless ``--load none``): the schema is dropped and re-migrated and replicated
   Synthea copies are written as in bench/fhir_api.py (``--resources``); then, in
   process, the platform PIAs are seeded, every resident gets the emergency pre-consent
   and an ACP, ``--cards`` residents get a demo digital-ID card, and an EMS client is
   registered.
2. Measure: ``--concurrency`` client threads, each its own keep-alive connection, make
   calls back to back for ``--duration`` seconds after ``--warmup``. Reported: the whole
   call's latency (four requests in a row) and each request's, p50/p90/p99, errors.

    python bench/paramedic_call.py --database-url postgresql+psycopg://phr:phr@127.0.0.1/phr_x
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import common  # bench/common.py
import fhir_api  # bench/fhir_api.py: the Synthea loader
import httpx

EMS = "bench-ems"
STEPS = ("open", "identify", "confirm", "summary")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    common.add_common_arguments(p)
    p.add_argument("--resources", type=int, default=50_000, help="resources to load (at least)")
    p.add_argument("--load", choices=("direct", "none"), default="direct")
    p.add_argument("--loaders", type=int, default=os.cpu_count() or 2)
    p.add_argument("--cards", type=int, default=100, help="residents given a demo card")
    p.add_argument("--card-share", type=float, default=0.5, help="share of calls by card")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    p.add_argument("--data-dir", type=Path, help="keys and cards (default: a temp folder)")
    p.add_argument("--json", type=Path)
    return p.parse_args(argv)


# ---- setting up the residents ------------------------------------------------------------------


def prepare(args: argparse.Namespace, data_dir: Path) -> list[dict[str, Any]]:
    """Consent, ACP and cards for every resident; returns what a crew would know."""
    from sqlalchemy import text

    from consent.actors import Actor
    from consent.identity.cards import issue_card
    from consent.pia.service import seed_platform_pias
    from consent.policy import schemas as policy_schemas
    from consent.policy import service as policy
    from phr.acp import schemas as acp_schemas
    from phr.acp import service as acp
    from phr.db import transaction

    with transaction() as s:
        seed_platform_pias(s)
        rows = s.execute(
            text(
                "SELECT resident_id, content FROM resource "
                "WHERE resource_type = 'Patient' AND resident_id IS NOT NULL "
                "ORDER BY resident_id, pk"
            )
        ).all()
    people = []
    first = {}  # each resident's first Patient (portable: SQLite has no DISTINCT ON)
    for rid, content in rows:
        first.setdefault(rid, content)
    for rid, content in first.items():
        p = json.loads(content)
        name = (p.get("name") or [{}])[0]
        if not (p.get("birthDate") and p.get("gender") and name.get("family")):
            continue
        people.append(
            {
                "resident_id": rid,
                "family": name["family"],
                "given": " ".join(name.get("given") or []),
                "birth_date": p["birthDate"],
                "sex": p["gender"],
            }
        )
    content = acp_schemas.AcpContent(
        own_words="延命より穏やかに",
        treatments=acp_schemas.Treatments(resuscitation="do_not_want", intubation="do_not_want"),
        contacts=[acp_schemas.Person(name="家族", relationship="子", phone="090-0000-0000")],
    )
    for i, person in enumerate(people):
        resident = Actor(kind="resident", resident_id=person["resident_id"])
        with transaction() as s:
            policy.set_emergency_consent(
                s, resident, policy_schemas.EmergencyConsentIn(enabled=True)
            )
            acp.save(session=s, actor=resident, body=acp_schemas.AcpSave(content=content))
            if i < args.cards:
                card = issue_card(s, person["resident_id"], out_dir=data_dir / "cards")
                person["certificate"] = card.certificate_path.read_text()
    print(
        f"prepared {len(people)} residents ({min(args.cards, len(people))} cards)", file=sys.stderr
    )
    return people


# ---- one call ----------------------------------------------------------------------------------


def call(c: httpx.Client, person: dict[str, Any], by_card: bool) -> tuple[list[float], str | None]:
    """The four requests of one call; (their latencies in ms, an error or None)."""
    lat: list[float] = []

    def timed(method: str, path: str, body: Any = None) -> httpx.Response:
        t0 = time.perf_counter()
        r = c.request(method, path, json=body)
        r.read()
        lat.append((time.perf_counter() - t0) * 1000)
        return r

    base = "/api/emergency/incidents"
    r = timed("POST", base, {"district": "bench"})
    if r.status_code != 201:
        return lat, f"open {r.status_code} {r.text[:200]}"
    incident = r.json()["id"]
    if by_card:
        r = timed(
            "POST", f"{base}/{incident}/identify/card", {"certificate": person["certificate"]}
        )
    else:
        q = {k: person[k] for k in ("family", "given", "birth_date", "sex")}
        r = timed("POST", f"{base}/{incident}/identify/demographic", q)
    if r.status_code != 200 or not r.json()["candidates"]:
        return lat, f"identify {r.status_code} {r.text[:200]}"
    cand = r.json()["candidates"][0]["id"]
    confirm: dict[str, Any] = {"candidate_id": cand}
    if by_card:
        confirm.update(method="card", certificate=person["certificate"])
    else:
        confirm.update(method="birth_date", birth_date=person["birth_date"])
    r = timed("POST", f"{base}/{incident}/confirm", confirm)
    if r.status_code != 200:
        return lat, f"confirm {r.status_code} {r.text[:200]}"
    r = timed("GET", f"{base}/{incident}/summary")
    if r.status_code != 200 or r.json()["consent"] != "granted" or not r.json()["acp"]:
        return lat, f"summary {r.status_code} {r.text[:200]}"
    return lat, None


def measure(
    args: argparse.Namespace, server: common.Server, tok: str, people: list[dict[str, Any]]
) -> dict[str, Any]:
    calls: list[float] = []
    steps: dict[str, list[float]] = {s: [] for s in STEPS}
    errors: list[str] = []
    lock = threading.Lock()
    start = time.perf_counter()
    t_measure, t_end = start + args.warmup, start + args.warmup + args.duration
    carded = [p for p in people if "certificate" in p]

    def worker(n: int) -> None:
        rnd = random.Random(20261125 + n)
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        headers = {"Authorization": f"Bearer {tok}"}
        with httpx.Client(
            base_url=server.base_url, headers=headers, timeout=60, limits=limits
        ) as c:
            while (t0 := time.perf_counter()) < t_end:
                by_card = bool(carded) and rnd.random() < args.card_share
                person = rnd.choice(carded if by_card else people)
                try:
                    lat, err = call(c, person, by_card)
                except httpx.HTTPError as exc:
                    lat, err = [], repr(exc)
                if t0 < t_measure:
                    continue
                with lock:
                    if err:
                        errors.append(err)
                        continue
                    calls.append(sum(lat))
                    for s, v in zip(STEPS, lat, strict=True):
                        steps[s].append(v)

    meter = common.CpuMeter(server, args.database_url)
    threads = [
        threading.Thread(target=worker, args=(i,), daemon=True) for i in range(args.concurrency)
    ]
    for t in threads:
        t.start()
    time.sleep(max(0.0, t_measure - time.perf_counter()))
    meter.start()
    for t in threads:
        t.join()
    cpu = meter.stop()

    def row(name: str, xs: list[float]) -> dict[str, Any]:
        return {
            "what": name,
            "count": len(xs),
            "p50_ms": round(common.percentile(xs, 50), 1),
            "p90_ms": round(common.percentile(xs, 90), 1),
            "p99_ms": round(common.percentile(xs, 99), 1),
        }

    rows = [row("whole call (4 requests)", calls)] + [row(f"  {s}", steps[s]) for s in STEPS]
    return {
        "rows": rows,
        "errors": len(errors),
        "error_samples": errors[:5],
        "calls_per_s": round(len(calls) / args.duration, 1),
        "cpu": common.cpu_columns(cpu, len(calls), "call"),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="phr-bench-paramedic-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        env = common.server_env(args.database_url, data_dir, 0)
        os.environ.update({k: env[k] for k in ("PHR_DATABASE_URL", "PHR_DATA_DIR", "PHR_ENV")})
        if args.load == "direct":
            originals = common.load_bundles(args.synthea)
            per_copy = sum(common.entries_of(b) for b in originals)
            copies = max(1, math.ceil(args.resources / per_copy))
            print(f"loading {copies} copies ({copies * per_copy:,} resources) ...", file=sys.stderr)
            common.reset_database(args.database_url)
            fhir_api._creds(env)
            fhir_api.load_direct(args, copies, env)
        people = prepare(args, data_dir)
        common.vacuum_analyze(args.database_url)
        creds = common.register_client(env, EMS, kind="ems", scopes=["system/*.rs"])
        size = common.database_size(args.database_url)
        with common.run_server(
            args.database_url, workers=args.workers, data_dir=data_dir
        ) as server:
            tok = common.token(server.base_url, creds)
            result = measure(args, server, tok, people)
    return {
        "machine": common.machine(args.database_url),
        "size": size,
        "residents_prepared": len(people),
        "concurrency": args.concurrency,
        "workers": args.workers,
        "duration_s": args.duration,
        **result,
    }


def report(result: dict[str, Any]) -> str:
    size = result["size"]
    lines = [
        "## Paramedic call (identify + consent + emergency summary)",
        "",
        f"{result['concurrency']} concurrent crews, uvicorn --workers {result['workers']}, "
        f"{result['duration_s']:.0f} s measured; data: {size['resources']:,} resources, "
        f"{size['residents']:,} residents ({result['residents_prepared']:,} with emergency "
        f"consent, an ACP and a demographic record), database {size['bytes'] / 2**20:,.0f} MiB.",
        "",
        common.markdown_table(result["rows"]),
        "",
        f"errors: {result['errors']}; calls/s: {result['calls_per_s']}; cpu: {result['cpu']}",
        "",
        common.machine_table(result["machine"]),
    ]
    if result["error_samples"]:
        lines += ["", "error samples: " + "; ".join(result["error_samples"])]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    result = run(args)
    print(report(result))
    common.write_json(args.json, result)


if __name__ == "__main__":
    main()
