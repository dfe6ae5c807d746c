"""Shared helpers of the benchmarks: database reset, the server process, clients, Synthea
replication, load generation, percentiles and a description of the machine.

Benchmarks print figures; they never assert timings (docs/performance.md).
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the scripts run as ``python bench/x.py`` without installing
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = os.environ.get(
    "PHR_BENCH_DATABASE_URL", "postgresql+psycopg://phr:phr@127.0.0.1/phr_bench"
)
DEFAULT_SYNTHEA_DIR = Path(
    os.environ.get("PHR_SYNTHEA_DIR", str(ROOT.parent / "shared" / "data" / "synthea-r4"))
)
# Organization and Practitioner entries are shared reference data: every copy of a bundle
# keeps their fullUrls, so the gateway stores them once (as it does for a real clinic).
SHARED_TYPES = frozenset({"Organization", "Practitioner"})
DEFAULT_SCOPES = ("system/*.rs", "system/Bundle.c", "system/*.cu")
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_COPY_NS = uuid.UUID("8f0f9b1c-6c53-4d3e-9a53-2b6f3f1d7a10")


# ---- command line ------------------------------------------------------------------------------


def add_profile_arguments(parser: Any) -> None:
    parser.add_argument(
        "--profile",
        type=Path,
        help="record py-spy profiles (raw collapsed stacks and a text summary of the "
        "hotspots) of the server processes during each measured phase into this folder; "
        "figures taken while profiling are slower than without (needs py-spy)",
    )
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="profile only samples holding the GIL (where the server burns CPU) instead of "
        "wall-clock samples (which also show waiting for PostgreSQL)",
    )


def add_common_arguments(parser: Any) -> None:
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="PostgreSQL database to use; its public schema is DROPPED and re-migrated "
        "(default: %(default)s, or $PHR_BENCH_DATABASE_URL)",
    )
    parser.add_argument(
        "--synthea",
        type=Path,
        default=DEFAULT_SYNTHEA_DIR,
        help="folder of Synthea R4 transaction bundles (default: %(default)s)",
    )


# ---- database ----------------------------------------------------------------------------------


def reset_database(url: str) -> None:
    """Drop the ``public`` schema and build it again with the Alembic migrations."""
    from sqlalchemy import text

    from phr.db import make_engine
    from phr.migrate import upgrade

    if not url.startswith("postgresql"):
        raise SystemExit(f"the benchmarks run on PostgreSQL, not {url}")
    engine = make_engine(url=url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        upgrade(engine)
    finally:
        engine.dispose()


def vacuum_analyze(url: str) -> float:
    """``VACUUM ANALYZE`` after a bulk load, as autovacuum would do a little later: without
    statistics the planner takes every index subquery for one row and nests loops."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    t0 = time.perf_counter()
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    return time.perf_counter() - t0


def database_size(url: str) -> dict[str, Any]:
    """Rows per resource type (current versions) and the database size."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT resource_type, count(*) FROM resource GROUP BY resource_type")
            ).all()
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
            residents = conn.execute(text("SELECT count(*) FROM resident")).scalar()
    finally:
        engine.dispose()
    per_type = {t: int(n) for t, n in rows}
    return {
        "resources": sum(per_type.values()),
        "per_type": per_type,
        "residents": int(residents or 0),
        "bytes": int(size or 0),
    }


def postgres_version(url: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar()).split()[0]
    except Exception as exc:  # the machine table must print even if the DB is down
        return f"unavailable ({type(exc).__name__})"
    finally:
        engine.dispose()


# ---- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(database_url: str, data_dir: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PHR_DATA_DIR": str(data_dir),
        "PHR_DATABASE_URL": database_url,
        "PHR_BASE_URL": f"http://127.0.0.1:{port}",
        "PHR_ENV": "test",
        # One token lasts a whole benchmark phase.
        "PHR_ACCESS_TOKEN_TTL_SECONDS": "3600",
        # The simulated crews share a few paramedic accounts and call far more often than
        # one crew can: the identification limit (PHR_LOOKUPS_PER_ACTOR, proven by
        # tests/security/test_limits.py) would refuse them, so benchmarks lift it.
        "PHR_LOOKUPS_PER_ACTOR": os.environ.get("PHR_LOOKUPS_PER_ACTOR", "1000000"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


@dataclass
class Server:
    base_url: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes]
    workers: int

    @property
    def fhir(self) -> str:
        return f"{self.base_url}/fhir"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@contextmanager
def run_server(
    database_url: str, *, workers: int = 2, data_dir: Path | None = None
) -> Iterator[Server]:
    """uvicorn with ``workers`` processes on a free loopback port; always stopped."""
    with tempfile.TemporaryDirectory(prefix="phr-bench-") as tmp:
        data = data_dir or Path(tmp)
        port = free_port()
        env = server_env(database_url, data, port)
        log_path = Path(tmp) / "server.log"
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "phr.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        server = Server(f"http://127.0.0.1:{port}", env, log_path, proc, workers)
        try:
            _wait_healthy(server)
            yield server
        finally:
            _stop(proc)


def _wait_healthy(server: Server, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=2).status_code == 200:
                # Every worker must be up, not only the first to accept.
                if server.workers > 1:
                    time.sleep(1.0 + 0.5 * server.workers)
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not healthy after {seconds} s:\n{server.log_tail()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # uvicorn stops its workers itself
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # our own session: the server and its workers
        proc.wait(timeout=10)


def worker_pids(server: Server) -> list[int]:
    """The processes that serve requests: uvicorn itself with one worker, else its workers."""
    if server.workers <= 1:
        return [server.process.pid]
    pids: list[int] = []
    for task in Path(f"/proc/{server.process.pid}/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    out = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"resource_tracker" not in cmd:
            out.append(pid)
    return out


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy not found: pip install py-spy")
    return found


class Profiler:
    """py-spy ``record --format raw`` on every server process, and a summary when stopped.

    The summary (``<label>-summary.txt``) lists the functions with the most samples on
    top of the stack (self) and anywhere in it (inclusive), and the share per package.
    """

    def __init__(
        self, server: Server, folder: Path, label: str, *, gil: bool = False, rate: int = 100
    ) -> None:
        self.server, self.folder, self.label, self.rate = server, folder, label, rate
        self.gil = gil  # only samples holding the GIL: CPU time in Python, no waiting
        self.procs: list[subprocess.Popen[bytes]] = []
        self.outputs: list[Path] = []
        self._timer: threading.Timer | None = None

    def start(self, delay: float = 0.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if delay > 0:
            self._timer = threading.Timer(delay, self._spawn)
            self._timer.start()
        else:
            self._spawn()

    def _spawn(self) -> None:
        spy = py_spy()
        for pid in worker_pids(self.server):
            out = self.folder / f"{self.label}-pid{pid}.txt"
            self.outputs.append(out)
            cmd = [spy, "record", "--pid", str(pid), "--format", "raw", "--output", str(out)]
            cmd += ["--rate", str(self.rate), "--full-filenames"] + (["--gil"] if self.gil else [])
            self.procs.append(
                subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )

    def stop(self) -> Path | None:
        if self._timer:
            self._timer.cancel()
            self._timer.join()
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        files = [o for o in self.outputs if o.exists()]
        if not files:
            return None
        summary = self.folder / f"{self.label}-summary.txt"
        summary.write_text(summarize_profiles(files))
        return summary


# Leaf frames of threads that wait for work (the thread pool, uvicorn's supervisor pipe,
# the event loop's selector): not time spent on a request.
IDLE_LEAVES = frozenset(
    {
        "Condition.wait",
        "Event.wait",
        "Connection._recv",
        "EpollSelector.select",
        "BaseSelector.select",
        "Queue.get",
        "sleep",
    }
)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame(raw: str) -> tuple[str, str]:
    m = _FRAME.match(raw.strip())
    if not m:
        return raw.strip(), ""
    return m.group("func"), m.group("file")


OURS = ("phr", "fhir_gateway", "consent")


def _package(file: str) -> str:
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/", 1)[0]
    for ours in OURS:
        if file.startswith(f"{ours}/") or f"/{ours}/" in file:
            return ours
    if "/lib/python" in file or file.startswith("<"):
        return "stdlib"
    return file.split("/", 1)[0] or "?"


def summarize_profiles(files: Sequence[Path], top: int = 25) -> str:
    """Self and inclusive sample shares per function, and self share per package."""
    self_: dict[str, int] = {}
    incl: dict[str, int] = {}
    pkg: dict[str, int] = {}
    total = 0
    idle = 0
    for path in files:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack or not n.isdigit():
                continue
            count = int(n)
            frames = [_frame(f) for f in stack.split(";") if f]
            # py-spy puts the thread name first; frames are outermost -> innermost.
            frames = [f for f in frames if f[1]]
            if not frames:
                continue
            leaf = frames[-1]
            if leaf[0] in IDLE_LEAVES:
                idle += count
                continue
            total += count
            key = f"{leaf[0]} ({_short(leaf[1])})"
            self_[key] = self_.get(key, 0) + count
            p = _package(leaf[1])
            pkg[p] = pkg.get(p, 0) + count
            for f in {f"{fn} ({_short(fl)})" for fn, fl in frames if _package(fl) in OURS}:
                incl[f] = incl.get(f, 0) + count
    if not total:
        return "no samples\n"

    def block(title: str, d: dict[str, int], k: int) -> list[str]:
        rows = sorted(d.items(), key=lambda kv: -kv[1])[:k]
        return [title] + [f"{100 * v / total:6.1f}%  {name}" for name, v in rows] + [""]

    lines = [
        f"{total} busy samples from {len(files)} process(es) "
        f"({idle} samples of idle threads left out); shares are of busy samples.",
        "psycopg Connection.wait / waiting = blocked on PostgreSQL.",
        "",
    ]
    lines += block("Self time by package (leaf frame):", pkg, 15)
    lines += block("Self time by function (leaf frame):", self_, top)
    lines += block("Inclusive time of our own functions (anywhere on the stack):", incl, top * 2)
    return "\n".join(lines)


def _short(file: str) -> str:
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1]
    root = str(ROOT) + "/"
    return file[len(root) :] if file.startswith(root) else file


# ---- organisations and tokens ------------------------------------------------------------------


@dataclass
class Credentials:
    organization_id: str
    client_id: str
    client_secret: str


def register_client(
    env: dict[str, str], org_id: str, *, kind: str = "hospital", scopes: Sequence[str] = ()
) -> Credentials:
    """``phr org add`` with the server's environment; returns the new client's secret."""
    args = [sys.executable, "-m", "phr.cli", "org", "add", org_id, "--name", org_id]
    args += ["--kind", kind]
    for s in scopes or DEFAULT_SCOPES:
        args += ["--scope", s]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"phr org add failed:\n{done.stderr}")
    out = json.loads(done.stdout)
    return Credentials(org_id, out["client_id"], out["client_secret"])


def token(base_url: str, creds: Credentials) -> str:
    r = httpx.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(creds.client_id, creds.client_secret),
        timeout=30,
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


# ---- Synthea bundles and their copies ----------------------------------------------------------


def synthea_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.json"))
    if not files:
        raise SystemExit(f"no Synthea bundles in {folder}")
    return files


def load_bundles(folder: Path) -> list[bytes]:
    """The bundles as compact JSON bytes (what a client would send)."""
    return [
        json.dumps(json.loads(p.read_bytes()), separators=(",", ":")).encode()
        for p in synthea_files(folder)
    ]


def entries_of(raw: bytes) -> int:
    return len(json.loads(raw)["entry"])


def shared_ids(raw: bytes) -> set[bytes]:
    """UUIDs of the shared reference resources (kept the same in every copy)."""
    bundle = json.loads(raw)
    out: set[bytes] = set()
    for e in bundle["entry"]:
        if e["resource"]["resourceType"] in SHARED_TYPES:
            out.add(e["resource"]["id"].encode())
            out.add(e["fullUrl"].rsplit(":", 1)[-1].encode())
    return out


def replicate(raw: bytes, copy: int) -> bytes:
    """Copy ``copy`` of a bundle: a different person with the same history.

    Copy 0 is the bundle unchanged. Other copies get fresh (deterministic) UUIDs for
    every fullUrl, id and reference except the shared Organization/Practitioner ones,
    a suffix on each Patient identifier value (so the master patient index sees a new
    person) and on the given name (so it does not queue a possible-duplicate review).
    """
    if copy == 0:
        return raw
    keep = shared_ids(raw)
    prefix = f"{copy}:".encode()

    def fresh(m: re.Match[bytes]) -> bytes:
        old = m.group(0)
        if old in keep:
            return old
        return str(uuid.uuid5(_COPY_NS, (prefix + old).decode())).encode()

    bundle = json.loads(_UUID.sub(fresh, raw))
    for e in bundle["entry"]:
        res = e["resource"]
        if res["resourceType"] != "Patient":
            continue
        for ident in res.get("identifier", []):
            if "value" in ident:
                ident["value"] = f"{ident['value']}-c{copy}"
        for name in res.get("name", []):
            name["given"] = [f"{g}{copy}" for g in name.get("given", [])]
    return json.dumps(bundle, separators=(",", ":")).encode()


# ---- where the CPU goes -----------------------------------------------------------------------


class CpuMeter:
    """CPU seconds per group of processes over a window, from /proc/<pid>/stat.

    Groups: ``server`` (uvicorn and its workers), ``postgres`` (backends of the benchmark
    database and PostgreSQL's own background processes), ``client`` (this process: the
    load generator) and ``other`` (everything else on the machine, e.g. other people's
    jobs, which make the figures worse than on a quiet machine).
    """

    def __init__(self, server: Server, database_url: str) -> None:
        from sqlalchemy.engine import make_url

        self.server_pids = {server.process.pid, *worker_pids(server)}
        self.database = make_url(database_url).database or ""
        self._start: dict[int, tuple[str, float]] = {}
        self._t0 = 0.0
        self._hz = os.sysconf("SC_CLK_TCK")

    def _group(self, pid: int, comm: str, cmd: str) -> str:
        if pid in self.server_pids:
            return "server"
        if pid == os.getpid():
            return "client"
        if comm.startswith("postgres") or cmd.startswith("postgres"):
            # Backends show "postgres: 15/main: user database host ..."; background
            # processes (checkpointer, walwriter, ...) have no database.
            parts = cmd.split()
            if len(parts) >= 4 and parts[1].endswith(":") and parts[3] != self.database:
                return "other"
            return "postgres"
        return "other"

    def _snapshot(self) -> dict[int, tuple[str, float]]:
        out = {}
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            try:
                stat = (p / "stat").read_text()
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            f = stat[stat.rindex(")") + 2 :].split()
            ticks = int(f[11]) + int(f[12])
            pid = int(p.name)
            out[pid] = (self._group(pid, comm, cmd.strip()), ticks / self._hz)
        return out

    def start(self) -> None:
        self._start = self._snapshot()
        self._t0 = time.perf_counter()

    def stop(self) -> dict[str, float]:
        """CPU seconds per group, plus ``seconds`` (the window)."""
        end = self._snapshot()
        out = {"server": 0.0, "postgres": 0.0, "client": 0.0, "other": 0.0}
        for pid, (group, t) in end.items():
            before = self._start.get(pid, (group, 0.0))[1]  # new processes: all their time
            out[group] += max(0.0, t - before)
        out["seconds"] = time.perf_counter() - self._t0
        return out


def cpu_columns(cpu: dict[str, float], units: int, unit: str) -> dict[str, Any]:
    """CPU use of each group as % of one core, and the server's CPU ms per ``unit``."""
    secs = cpu.get("seconds") or 1.0
    return {
        f"server_cpu_ms_per_{unit}": round(1000 * cpu["server"] / max(1, units), 3),
        "server_cpu_%": round(100 * cpu["server"] / secs),
        "pg_cpu_%": round(100 * cpu["postgres"] / secs),
        "client_cpu_%": round(100 * cpu["client"] / secs),
        "other_cpu_%": round(100 * cpu["other"] / secs),
    }


# ---- measuring ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


@dataclass
class LoadResult:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    bytes_received: int = 0
    error_samples: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def row(self) -> dict[str, Any]:
        lat = self.latencies_ms
        return {
            "scenario": self.name,
            "requests": self.requests,
            "errors": self.errors,
            "req_per_s": round(self.throughput, 1),
            "p50_ms": round(percentile(lat, 50), 2),
            "p90_ms": round(percentile(lat, 90), 2),
            "p99_ms": round(percentile(lat, 99), 2),
            "mean_ms": round(statistics.fmean(lat), 2) if lat else float("nan"),
            "kb_per_response": round(self.bytes_received / max(1, self.requests) / 1024, 1),
        }


RequestMaker = Callable[[random.Random], str]


def run_load(
    *,
    name: str,
    base_url: str,
    headers: dict[str, str],
    make_path: RequestMaker,
    concurrency: int,
    duration: float,
    warmup: float,
    seed: int = 20261124,
    meter: CpuMeter | None = None,
) -> LoadResult:
    """``concurrency`` threads, each with its own keep-alive connection, issue GETs back to
    back; only requests *started* inside the measured window after the warm-up count."""
    result = LoadResult(name)
    lock = threading.Lock()
    start = time.perf_counter()
    t_measure = start + warmup
    t_end = t_measure + duration

    def worker(n: int) -> None:
        rnd = random.Random(seed * 1000 + n)
        lat: list[float] = []
        errors = 0
        received = 0
        samples: list[str] = []
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        with httpx.Client(base_url=base_url, headers=headers, timeout=60, limits=limits) as c:
            while True:
                t0 = time.perf_counter()
                if t0 >= t_end:
                    break
                path = make_path(rnd)
                try:
                    r = c.get(path)
                    body = r.content
                    ok = r.status_code == 200
                except httpx.HTTPError as exc:
                    ok, body = False, repr(exc).encode()
                t1 = time.perf_counter()
                if t0 < t_measure:
                    continue
                if ok:
                    lat.append((t1 - t0) * 1000)
                    received += len(body)
                else:
                    errors += 1
                    if len(samples) < 3:
                        samples.append(f"{path}: {body[:300]!r}")
        with lock:
            result.latencies_ms += lat
            result.errors += errors
            result.bytes_received += received
            result.error_samples += samples

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    if meter:
        time.sleep(max(0.0, t_measure - time.perf_counter()))
        meter.start()
    for t in threads:
        t.join()
    if meter:
        result.cpu = meter.stop()
    result.seconds = duration
    return result


# ---- reporting ---------------------------------------------------------------------------------


def machine(database_url: str | None = None) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    out = {
        "date": date.today().isoformat(),
        "cpu": cpu,
        "cores": f"{usable} usable ({cores} online)",
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    if database_url:
        out["postgresql"] = postgres_version(database_url)
    try:
        import sqlalchemy
        import uvicorn

        out["libraries"] = f"uvicorn {uvicorn.__version__}, SQLAlchemy {sqlalchemy.__version__}"
    except ImportError:
        pass
    return out


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "(no rows)"
    cols = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def machine_table(info: dict[str, str]) -> str:
    return markdown_table([{"": k, "machine": v} for k, v in info.items()])


def write_json(path: Path | None, payload: Any) -> None:
    if path:
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
