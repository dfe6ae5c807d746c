"""Load test: ``--clients`` concurrent clients for ``--duration`` seconds against ``phr
serve`` (uvicorn) on loopback, on a mix of clinician FHIR reads and searches (OAuth2
client credentials), resident web pages (demo-card sign-in session) and paramedic calls.

1. A fresh database: a SQLite file in a temporary folder, or the PostgreSQL database of
   ``--database-url`` (its ``public`` schema is DROPPED and re-migrated). ``--bundles``
   Synthea bundles are written ``--copies`` times (bench/fhir_api.py's loader); every
   resident gets the emergency consent, an ACP and a demo card (bench/paramedic_call.py).
2. The server starts with ``--workers`` processes; each client is one thread with its own
   keep-alive connection and one role: a clinician (FHIR read or search by code, date or
   name), a resident (signed in with their card; any page of the web app) or a paramedic
   crew (the whole call: open, identify, confirm, emergency summary). The clients are
   shared out by ``--mix``.
3. Reported per kind: requests, errors, p50/p90/p99 against each issue's goal; the
   server's resident memory (RSS of its processes, sampled every second): at the start of
   the measured window, at its end, the maximum and the slope.

The figures are information. Zero errors and flat memory are properties: with
``--check`` the exit status is 1 on any error, or if the server's RSS grew by more than
``--max-growth-mb`` over the measured window (median of its first five samples to median
of its last five).

    python bench/load.py                                  # SQLite, 64 clients, 60 s
    python bench/load.py --database-url postgresql+psycopg://phr:phr@127.0.0.1/phr_load
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common  # bench/common.py
import fhir_api  # bench/fhir_api.py: the Synthea loader and the FHIR requests
import httpx
import paramedic_call  # bench/paramedic_call.py: residents' consent, ACP, cards; one call

GOALS_MS = {  # p99 goals of the issues (docs/performance.md)
    "fhir search": 50.0,
    "fhir read": 20.0,
    "web page": 300.0,
    "paramedic call": 150.0,
}
SEARCHES = ("search-code", "search-date", "search-name")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--database-url", help="PostgreSQL database (default: a SQLite file)")
    p.add_argument("--synthea", type=Path, default=common.DEFAULT_SYNTHEA_DIR)
    p.add_argument("--bundles", type=int, default=10, help="Synthea bundles used (by name)")
    p.add_argument("--copies", type=int, default=3, help="copies of each (other residents)")
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    p.add_argument(
        "--warmup",
        type=float,
        default=15.0,
        help="unmeasured seconds first (the server's thread and connection pools fill up)",
    )
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    p.add_argument(
        "--mix",
        default="clinician=0.5,resident=0.3,paramedic=0.2",
        help="share of the clients in each role",
    )
    p.add_argument("--check", action="store_true", help="exit 1 on an error or memory growth")
    p.add_argument("--max-growth-mb", type=float, default=64.0)
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


# ---- the data ----------------------------------------------------------------------------------


def prepare(args: argparse.Namespace, url: str, data_dir: Path) -> dict[str, Any]:
    """Load the residents; return what each role needs."""
    env = common.server_env(url, data_dir, 0)
    os.environ.update({k: env[k] for k in ("PHR_DATABASE_URL", "PHR_DATA_DIR", "PHR_ENV")})
    if url.startswith("postgresql"):
        common.reset_database(url)
    else:
        from phr.db import make_engine
        from phr.migrate import upgrade

        engine = make_engine(url=url)
        upgrade(engine)
        engine.dispose()
    clinician = common.Credentials(fhir_api.ORG, *fhir_api._creds(env))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="phr-load-synthea-") as subset:
        for path in common.synthea_files(args.synthea)[: args.bundles]:
            (Path(subset) / path.name).symlink_to(path)
        loaded = sum(fhir_api._load_copies((subset, [c])) for c in range(max(1, args.copies)))
    load_s = time.perf_counter() - t0
    targets = samples(url)  # the clinic's own records (not the consents made below)
    people = paramedic_call.prepare(argparse.Namespace(cards=10**9), data_dir)
    if url.startswith("postgresql"):
        common.vacuum_analyze(url)
    ems = common.register_client(env, paramedic_call.EMS, kind="ems", scopes=["system/*.rs"])
    return {
        "clinician": clinician,
        "ems": ems,
        "people": people,
        "samples": targets,
        "loaded": loaded,
        "load_s": load_s,
    }


def samples(url: str, n: int = 5000) -> dict[str, list[Any]]:
    """Targets of the clinicians' requests, drawn from the data (the same shape as
    fhir_api.samples, which is PostgreSQL only)."""
    from sqlalchemy import create_engine, text

    def pick(rows: list[Any]) -> list[Any]:
        return random.Random(20261125).sample(rows, min(n, len(rows)))

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            q = {
                "reads": "SELECT resource_type, id FROM resource WHERE resource_type <> "
                "'Provenance' AND NOT deleted",
                "codes": "SELECT resident_id, system, code FROM search_token WHERE "
                "resource_type = 'Observation' AND param = 'code'",
                "dates": "SELECT resident_id, low FROM search_date WHERE resource_type = "
                "'Observation' AND param = 'date'",
            }
            out = {
                k: pick([tuple(r) for r in conn.execute(text(sql)).all()]) for k, sql in q.items()
            }
            patients = conn.execute(
                text("SELECT id, content FROM resource WHERE resource_type = 'Patient'")
            ).all()
    finally:
        engine.dispose()
    import json

    out["patients"] = [pid for pid, _ in patients]
    out["families"] = sorted(
        {json.loads(c)["name"][0]["family"] for _, c in patients if json.loads(c).get("name")}
    )
    return out


# ---- the clients -------------------------------------------------------------------------------


@dataclass
class Kind:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    def add(self, ms: float, error: str | None) -> None:
        if error is None:
            self.latencies_ms.append(ms)
            return
        self.errors += 1
        if len(self.samples) < 5:
            self.samples.append(error)


class Load:
    def __init__(self, args: argparse.Namespace, server: common.Server, data: dict[str, Any]):
        self.args, self.server, self.data = args, server, data
        self.kinds = {k: Kind() for k in GOALS_MS}
        self.lock = threading.Lock()
        start = time.perf_counter()
        self.t_measure = start + args.warmup
        self.t_end = self.t_measure + args.duration
        self.paths = fhir_api.path_makers(data["samples"])
        self.clinician_token = common.token(server.base_url, data["clinician"])
        self.ems_token = common.token(server.base_url, data["ems"])

    def record(self, kind: str, t0: float, ms: float, error: str | None) -> None:
        if t0 < self.t_measure:
            return
        with self.lock:
            self.kinds[kind].add(ms, error)

    def client(self, role: str, n: int) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        with httpx.Client(base_url=self.server.base_url, timeout=60, limits=limits) as c:
            rnd = random.Random(20261125 * 100 + n)
            getattr(self, role)(c, rnd)

    def clinician(self, c: httpx.Client, rnd: random.Random) -> None:
        c.headers.update(
            {"Authorization": f"Bearer {self.clinician_token}", "Accept": "application/fhir+json"}
        )
        while (t0 := time.perf_counter()) < self.t_end:
            scenario = "read" if rnd.random() < 0.5 else rnd.choice(SEARCHES)
            path = self.paths[scenario](rnd)
            error = _get(c, path)
            kind = "fhir read" if scenario == "read" else "fhir search"
            self.record(kind, t0, (time.perf_counter() - t0) * 1000, error)

    def resident(self, c: httpx.Client, rnd: random.Random) -> None:
        from tests.web.conftest import sign_in
        from tests.web.test_security import PAGES

        person = rnd.choice(self.data["people"])
        c.headers["Accept"] = "text/html"
        try:
            sign_in(c, person["resident_id"])  # type: ignore[arg-type]
        except (AssertionError, httpx.HTTPError) as exc:
            self.record("web page", self.t_measure, 0.0, f"sign-in: {exc!r}"[:300])
            return
        while (t0 := time.perf_counter()) < self.t_end:
            path = rnd.choice(PAGES)
            error = _get(c, path)
            self.record("web page", t0, (time.perf_counter() - t0) * 1000, error)

    def paramedic(self, c: httpx.Client, rnd: random.Random) -> None:
        c.headers["Authorization"] = f"Bearer {self.ems_token}"
        people = self.data["people"]
        while (t0 := time.perf_counter()) < self.t_end:
            by_card = rnd.random() < 0.5
            try:
                lat, error = paramedic_call.call(c, rnd.choice(people), by_card)
            except httpx.HTTPError as exc:
                lat, error = [], repr(exc)
            self.record("paramedic call", t0, sum(lat), error)


def _get(c: httpx.Client, path: str) -> str | None:
    try:
        r = c.get(path)
    except httpx.HTTPError as exc:
        return f"{path}: {exc!r}"
    if r.status_code != 200:
        return f"{path}: {r.status_code} {r.text[:200]}"
    return None


def roles(mix: str, clients: int) -> list[str]:
    shares = {k: float(v) for k, v in (part.split("=") for part in mix.split(","))}
    total = sum(shares.values())
    out: list[str] = []
    for role, share in shares.items():
        out += [role] * round(clients * share / total)
    return (out + [next(iter(shares))] * clients)[:clients]


# ---- memory ------------------------------------------------------------------------------------


class RssSampler:
    """The server's resident set size (all its processes), once a second."""

    def __init__(self, server: common.Server) -> None:
        self.server = server
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.perf_counter()

    def rss_mib(self) -> float:
        total = 0
        for pid in {self.server.process.pid, *common.worker_pids(self.server)}:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append((time.perf_counter() - self._t0, self.rss_mib()))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self, since: float) -> dict[str, float]:
        window = [(t, m) for t, m in self.samples if t >= since]
        if len(window) < 10:
            return {"samples": len(window)}
        ts, ms = [t for t, _ in window], [m for _, m in window]
        slope = statistics.linear_regression(ts, ms).slope * 60
        half = len(ts) // 2  # a leak keeps its slope; a warm-up flattens out
        slope2 = statistics.linear_regression(ts[half:], ms[half:]).slope * 60
        start, end = statistics.median(ms[:5]), statistics.median(ms[-5:])
        return {
            "samples": len(window),
            "start_mib": round(start, 1),
            "end_mib": round(end, 1),
            "max_mib": round(max(ms), 1),
            "growth_mib": round(end - start, 1),
            "slope_mib_per_min": round(slope, 2),
            "slope_2nd_half_mib_per_min": round(slope2, 2),
        }


# ---- running -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="phr-load-") as tmp:
        data_dir = Path(tmp)
        url = args.database_url or f"sqlite:///{data_dir / 'phr.db'}"
        data = prepare(args, url, data_dir)
        size = _size(url)
        with common.run_server(url, workers=args.workers, data_dir=data_dir) as server:
            load = Load(args, server, data)
            rss = RssSampler(server)
            rss.start()
            assigned = roles(args.mix, args.clients)
            threads = [
                threading.Thread(target=load.client, args=(role, i), daemon=True)
                for i, role in enumerate(assigned)
            ]
            meter = common.CpuMeter(server, url)
            for t in threads:
                t.start()
            time.sleep(max(0.0, load.t_measure - time.perf_counter()))
            meter.start()
            for t in threads:
                t.join()
            cpu = meter.stop()
            rss.stop()
            memory = rss.summary(since=args.warmup)
            faults = [ln for ln in server.log_tail(200_000).splitlines() if "fault" in ln][:5]
    rows = []
    for name, k in load.kinds.items():
        lat = k.latencies_ms
        p99 = common.percentile(lat, 99)
        rows.append(
            {
                "kind": name,
                "clients": sum(1 for r in assigned if _role_of(name) == r),
                "requests": len(lat) + k.errors,
                "errors": k.errors,
                "per_s": round(len(lat) / args.duration, 1),
                "p50_ms": round(common.percentile(lat, 50), 1),
                "p90_ms": round(common.percentile(lat, 90), 1),
                "p99_ms": round(p99, 1),
                "goal_p99_ms": GOALS_MS[name],
                "goal": "met" if p99 <= GOALS_MS[name] else "missed",
            }
        )
    return {
        "database": "PostgreSQL" if url.startswith("postgresql") else "SQLite",
        "clients": args.clients,
        "mix": args.mix,
        "workers": args.workers,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "size": size,
        "loaded": data["loaded"],
        "load_s": round(data["load_s"], 1),
        "rows": rows,
        "errors": sum(k.errors for k in load.kinds.values()),
        "error_samples": {n: k.samples for n, k in load.kinds.items() if k.samples},
        "server_log": faults,
        "memory": memory,
        "cpu_%": {k: round(100 * v / cpu["seconds"]) for k, v in cpu.items() if k != "seconds"},
        "machine": common.machine(url if url.startswith("postgresql") else None),
    }


def _role_of(kind: str) -> str:
    return {"web page": "resident", "paramedic call": "paramedic"}.get(kind, "clinician")


def _size(url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            resources = conn.execute(text("SELECT count(*) FROM resource")).scalar_one()
            residents = conn.execute(text("SELECT count(*) FROM resident")).scalar_one()
    finally:
        engine.dispose()
    return {"resources": int(resources), "residents": int(residents)}


def verdict(args: argparse.Namespace, result: dict[str, Any]) -> list[str]:
    """The properties: no error, memory flat (and enough samples to tell)."""
    problems = []
    if result["errors"]:
        problems.append(f"{result['errors']} errors: {result['error_samples']}")
    if not any(r["requests"] for r in result["rows"]):
        problems.append("no request was made")
    mem = result["memory"]
    if "growth_mib" not in mem:
        problems.append(f"too few memory samples ({mem.get('samples')})")
    elif mem["growth_mib"] > args.max_growth_mb:
        problems.append(
            f"server memory grew {mem['growth_mib']} MiB over the window "
            f"(bound {args.max_growth_mb} MiB)"
        )
    return problems


def report(result: dict[str, Any]) -> str:
    size, mem = result["size"], result["memory"]
    lines = [
        f"## Load ({result['database']})",
        "",
        f"{result['clients']} concurrent clients ({result['mix']}), uvicorn --workers "
        f"{result['workers']}, {result['duration_s']:.0f} s measured after "
        f"{result['warmup_s']:.0f} s warm-up; data: {size['resources']:,} resources, "
        f"{size['residents']:,} residents (loaded in {result['load_s']} s).",
        "",
        common.markdown_table(result["rows"]),
        "",
        "Server memory (RSS of all its processes, MiB): "
        + ", ".join(f"{k} {v}" for k, v in mem.items()),
        "",
        f"errors: {result['errors']}",
        "",
        "CPU over the window, % of one core (other = everyone else on the machine): "
        + ", ".join(f"{k} {v}" for k, v in result["cpu_%"].items()),
        "",
        common.machine_table(result["machine"]),
    ]
    if result["error_samples"]:
        lines += ["", f"error samples: {result['error_samples']}"]
    if result["server_log"]:
        lines += ["", "server log: " + " | ".join(result["server_log"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print(report(result))
    common.write_json(args.json, result)
    problems = verdict(args, result)
    for p in problems:
        print(f"FAILED: {p}", file=sys.stderr)
    return 1 if args.check and problems else 0


if __name__ == "__main__":
    sys.exit(main())
