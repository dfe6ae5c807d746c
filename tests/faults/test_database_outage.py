"""PostgreSQL stopped and started again under traffic: while it is down every request gets
a clean 503 with ``Retry-After`` — an OperationOutcome on FHIR routes, an error page for
pages — never a 500 or a hang; once it is back, the same server process answers again
without a restart (the pool pre-pings and replaces the dead connections).

The test brings its own PostgreSQL cluster (initdb in a temporary folder, on a free port),
so it runs in both CI passes and never touches a cluster anyone else uses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from bench import common
from tests.conftest import needs, patient_bundle
from tests.faults.conftest import FaultDb, server

PGBINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))


def _as_postgres(cmd: str) -> None:
    """Run a PostgreSQL tool as the ``postgres`` user when we are root (it refuses root)."""
    args = ["su", "postgres", "-c", cmd] if os.geteuid() == 0 else ["sh", "-c", cmd]
    subprocess.run(args, check=True, capture_output=True, timeout=120)


@dataclass
class Cluster:
    bin: Path
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, action: str, *flags: str) -> None:
        opts = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        _as_postgres(
            f"{self.bin}/pg_ctl -D {self.data}/db -l {self.data}/log -w -t 60 "
            f"-o '{opts}' {' '.join(flags)} {action}"
        )


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    data = Path(tempfile.mkdtemp(prefix="phr-faults-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    c = Cluster(PGBINS[-1], data, common.free_port())
    _as_postgres(f"{c.bin}/initdb -D {data}/db -U postgres -A trust --no-sync >/dev/null")
    c.pg_ctl("start")
    try:
        yield c
    finally:
        c.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(data, ignore_errors=True)


@dataclass
class Traffic:
    """Client threads sending requests back to back; every answer kept."""

    requests: dict[str, Callable[[httpx.Client], httpx.Response]]
    answers: list[tuple[float, str, int, str, dict[str, str], str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self, base_url: str, per_kind: int = 2) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._loop, args=(base_url, kind), daemon=True)
            for kind in self.requests
            for _ in range(per_kind)
        ]
        for t in threads:
            t.start()
        return threads

    def _loop(self, base_url: str, kind: str) -> None:
        with httpx.Client(base_url=base_url, timeout=15) as c:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    r = self.requests[kind](c)
                    row = (
                        t0,
                        kind,
                        r.status_code,
                        r.headers.get("content-type", ""),
                        dict(r.headers),
                        r.text,
                    )
                except httpx.HTTPError as exc:  # a hang (timeout) or a dropped connection
                    row = (t0, kind, -1, "", {}, repr(exc))
                self.answers.append(row)
                time.sleep(0.02)

    def stop(self, threads: list[threading.Thread]) -> None:
        self._stop.set()
        for t in threads:
            t.join(timeout=30)


@needs(bool(PGBINS), "PostgreSQL server binaries (apt postgresql) are not installed")
def test_postgres_restart_under_traffic_gives_503_then_recovers_without_restart(
    cluster: Cluster, tmp_path: Path
) -> None:
    from phr.migrate import upgrade

    engine = create_engine(cluster.url, pool_pre_ping=True)
    upgrade(engine)
    db = FaultDb(cluster.url, tmp_path, engine)
    creds = db.add_org("clinic-a", "hospital")
    engine.dispose()

    with server(db) as srv:
        tok = common.token(srv.base_url, creds)
        fhir = {"Authorization": f"Bearer {tok}", "Accept": "application/fhir+json"}
        r = httpx.post(srv.fhir, json=patient_bundle(), headers=fhir, timeout=60)
        assert r.status_code == 200, r.text
        # A page that needs the database: the session cookie is looked up there.
        page = {"Accept": "text/html", "Cookie": "phr_session=not-a-live-session"}
        traffic = Traffic(
            {
                "fhir": lambda c: c.get("/fhir/Patient?family=筑波", headers=fhir),
                "page": lambda c: c.get("/me", headers=page),
            }
        )
        threads = traffic.run(srv.base_url)
        time.sleep(1.0)
        t_down = time.monotonic()
        cluster.pg_ctl("stop", "-m", "fast")
        time.sleep(2.0)
        cluster.pg_ctl("start")
        t_up = time.monotonic()
        deadline = t_up + 20
        while time.monotonic() < deadline:  # until both kinds answer as before again
            recent = [a for a in traffic.answers[-8:] if a[0] > t_up]
            if len(recent) == 8 and all(a[2] in (200, 303) for a in recent):
                break
            time.sleep(0.2)
        t_ok = time.monotonic()
        time.sleep(1.5)
        traffic.stop(threads)
        assert srv.process.poll() is None  # the same process all along
        log = srv.log_tail(200_000)

    answers = traffic.answers
    broken = [a for a in answers if a[2] not in (200, 303, 503)]
    assert not broken, broken[:3]  # no 500, no dropped connection, no timeout
    before = [a for a in answers if a[0] < t_down - 0.5]  # answered before the stop
    assert before and all(a[2] in (200, 303) for a in before)
    outage = [a for a in answers if a[2] == 503]
    assert {a[1] for a in outage} == {"fhir", "page"}, "no 503 seen during the outage"
    for _, kind, _, ctype, headers, body in outage:
        assert int(headers["retry-after"]) > 0
        if kind == "fhir":
            assert ctype.startswith("application/fhir+json")
            assert '"resourceType":"OperationOutcome"' in body.replace(" ", "")
        else:
            assert ctype.startswith("text/html") and "<html" in body
    assert t_ok - t_up < 20, "not recovered within 20 s of PostgreSQL being back"
    after = [a for a in answers if a[0] > t_ok]
    assert {a[1] for a in after} == {"fhir", "page"}
    assert all(a[2] in (200, 303) for a in after), after[:3]
    assert "Traceback" not in log
