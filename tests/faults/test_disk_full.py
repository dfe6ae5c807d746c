"""A full disk during an import and during a Bundle POST: a clear error (the CLI's exit
status 3 and message; the API's 507 OperationOutcome), nothing half-written, nothing
that was there lost, and the same work completes once there is room again.

The full disk is SQLite's own: ``PRAGMA max_page_count`` (tests/faults/full_disk.py)
makes a write beyond the limit fail with SQLITE_FULL, the error a full disk gives. (A
size-limited tmpfs would need mount rights, which CI containers do not have.) So these
tests run on a SQLite file in both CI passes; PostgreSQL's disk_full (SQLSTATE 53100) takes
the same path in the app (phr.db.database_fault).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench import common
from tests.conftest import SYNTHEA_DIR, needs
from tests.faults.conftest import ROOT, FaultDb, phr
from tests.faults.test_crash import CITY, PERSONS, bundle_of, vaccination_file

FULL_DISK = str(Path(__file__).with_name("full_disk.py"))


def test_import_on_a_full_disk_fails_clearly_and_writes_nothing(
    sqlite_db: FaultDb, tmp_path: Path
) -> None:
    db = sqlite_db
    db.add_org(CITY, "municipality")
    first = tmp_path / "first.csv"
    lines = vaccination_file(tmp_path / "all.csv").read_text().splitlines(keepends=True)
    first.write_text("".join(lines[:5]))  # the header and two people
    assert phr(db, "import", "vaccination", str(first), "--org", CITY).returncode == 0
    before = db.counts()

    csv = vaccination_file(tmp_path / "vaccination.csv")
    full = subprocess.run(
        [sys.executable, FULL_DISK, "import", "vaccination", str(csv), "--org", CITY],
        cwd=ROOT,
        env=db.env(PHR_FAULT_FREE_PAGES="8"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert full.returncode == 3, full.stderr
    assert "the database is full; nothing was imported" in full.stderr
    assert "Traceback" not in full.stderr
    assert db.counts() == before  # the earlier import is intact, nothing of this one

    done = phr(db, "import", "vaccination", str(csv), "--org", CITY)  # room again
    assert done.returncode == 0, done.stderr
    assert db.counts()["resource:Immunization"] == 2 * PERSONS


@contextmanager
def full_disk_server(db: FaultDb, free_pages: int) -> Iterator[common.Server]:
    port = common.free_port()
    env = common.server_env(db.url, db.data_dir, port) | db.env(
        PHR_FAULT_FREE_PAGES=str(free_pages)
    )
    env["PHR_BASE_URL"] = f"http://127.0.0.1:{port}"
    log_path = db.data_dir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, FULL_DISK, "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    srv = common.Server(f"http://127.0.0.1:{port}", env, log_path, proc, 1)
    try:
        common._wait_healthy(srv)
        yield srv
    finally:
        common._stop(proc)


@needs(SYNTHEA_DIR.exists(), "the Synthea bundles of ../shared/data are not here")
def test_bundle_post_on_a_full_disk_answers_507_and_writes_nothing(sqlite_db: FaultDb) -> None:
    db = sqlite_db
    creds = db.add_org("clinic-a", "hospital")
    bundle = bundle_of()
    with full_disk_server(db, free_pages=20) as srv:
        tok = common.token(srv.base_url, creds)
        before = db.counts()
        r = httpx.post(
            srv.fhir,
            content=json.dumps(bundle).encode(),
            headers={"Content-Type": "application/fhir+json", "Authorization": f"Bearer {tok}"},
            timeout=120,
        )
        assert r.status_code == 507, r.text
        assert r.headers["content-type"].startswith("application/fhir+json")
        body = r.json()
        assert body["resourceType"] == "OperationOutcome"
        assert "out of space" in body["issue"][0]["diagnostics"]
        assert db.counts() == before
        # Reading still works on a full disk.
        assert httpx.get(f"{srv.base_url}/health", timeout=10).status_code == 200
    assert "Traceback" not in srv.log_tail(100_000)
