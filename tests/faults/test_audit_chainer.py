"""The access-log chainer (ADR 0004) after kill -9: entries that requests wrote but the
killed server never chained are chained by the next server process, and ``phr audit
verify`` passes."""

from __future__ import annotations

import os
import signal
import time

import httpx

from bench import common
from tests.conftest import patient_bundle
from tests.faults.conftest import FaultDb, phr, server

PENDING = "SELECT count(*) FROM audit_entry WHERE seq IS NULL"


def test_entries_left_unchained_by_a_killed_server_are_chained_after_restart(
    fault_db: FaultDb,
) -> None:
    db = fault_db
    creds = db.add_org("clinic-a", "hospital")
    # A chainer that would not run for an hour: whatever the requests log stays pending.
    with server(db, PHR_AUDIT_CHAIN_INTERVAL="3600") as srv:
        auth = {"Authorization": f"Bearer {common.token(srv.base_url, creds)}"}
        with httpx.Client(base_url=srv.base_url, headers=auth, timeout=60) as c:
            for i in range(3):
                r = c.post("/fhir", json=patient_bundle(mrn=f"m{i}", given=f"花子{i}"))
                assert r.status_code == 200, r.text
            patients = c.get("/fhir/Patient").json()["entry"]
            for e in patients:
                assert c.get(f"/fhir/Patient/{e['resource']['id']}").status_code == 200
        pending = db.scalar(PENDING)
        assert pending >= len(patients) + 1  # the search and each read at least
        os.kill(srv.process.pid, signal.SIGKILL)
        srv.process.wait(timeout=10)
    assert db.scalar(PENDING) == pending  # nothing chained them on the way down

    with server(db, PHR_AUDIT_CHAIN_INTERVAL="0.2"):
        deadline = time.monotonic() + 30
        while db.scalar(PENDING) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert db.scalar(PENDING) == 0
    verified = phr(db, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
