"""kill -9 in the middle of a unit of work: a municipal import (``phr import``) and a FHIR
transaction Bundle POSTed to ``phr serve``. After the crash nothing of it is in the
database; running it again completes, and a third run changes nothing (idempotent)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from bench import common
from tests.conftest import SYNTHEA_DIR, needs
from tests.faults.conftest import ROOT, FaultDb, kill_when, phr, server
from tests.gateway.conftest import mynumber, person, write_csv

CITY = "tsukuba-city"
PERSONS = 100


def vaccination_file(path: Path) -> Path:
    """Two doses for each of PERSONS people: 2 x PERSONS rows."""
    rows = []
    for i in range(PERSONS):
        p = person(mynumber(f"2{i:010d}"), given_name=f"太郎{i}", given_name_kana=f"タロウ{i}")
        for dose in (1, 2):
            rows.append(
                p
                | {
                    "vaccine_code": "HIB",
                    "dose_number": str(dose),
                    "date": f"2024-0{dose}-10",
                    "lot_number": "HB123A",
                    "performer": "つくば小児科クリニック",
                    "status": "completed",
                }
            )
    return write_csv(path, rows)


def test_import_killed_mid_transaction_leaves_nothing_and_reruns_idempotently(
    fault_db: FaultDb, tmp_path: Path
) -> None:
    db = fault_db
    csv = vaccination_file(tmp_path / "vaccination.csv")
    db.add_org(CITY, "municipality")
    before = db.counts()

    cmd = [sys.executable, "-m", "phr.cli", "import", "vaccination", str(csv), "--org", CITY]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=db.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    kill_when(proc, db.writer_active)  # killed inside its write transaction
    assert db.counts() == before  # nothing partial: no resource, no job, no resident

    done = phr(db, "import", "vaccination", str(csv), "--org", CITY)
    assert done.returncode == 0, done.stderr
    after = db.counts()
    # What a clean run writes: one Immunization per row, one Patient per person.
    assert after["resource:Immunization"] == 2 * PERSONS
    assert after["resource:Patient"] == PERSONS
    assert after["resident"] == PERSONS
    assert after["import_job"] == before["import_job"] + 1

    again = phr(db, "import", "vaccination", str(csv), "--org", CITY)
    assert again.returncode == 0, again.stderr
    assert '"unchanged": 200' in again.stdout.replace("'", '"')
    assert db.counts() == after | {"import_job": after["import_job"] + 1}


def bundle_of() -> dict[str, Any]:
    """The median Synthea bundle (hundreds of entries)."""
    files = sorted(SYNTHEA_DIR.glob("*.json"), key=lambda p: p.stat().st_size)
    path = files[len(files) // 2]
    return dict(json.loads(path.read_bytes()))


@needs(SYNTHEA_DIR.exists(), "the Synthea bundles of ../shared/data are not here")
def test_transaction_bundle_killed_mid_post_is_all_or_nothing(fault_db: FaultDb) -> None:
    db = fault_db
    bundle = bundle_of()
    body = json.dumps(bundle).encode()
    headers = {"Content-Type": "application/fhir+json"}
    outcome: dict[str, Any] = {}

    def post(srv: common.Server, tok: str) -> None:
        try:
            r = httpx.post(
                f"{srv.fhir}",
                content=body,
                headers=headers | {"Authorization": f"Bearer {tok}"},
                timeout=120,
            )
            outcome["status"] = r.status_code
        except httpx.TransportError as exc:
            outcome["error"] = exc

    with server(db) as srv:
        creds = db.add_org("clinic-a", "hospital")
        tok = common.token(srv.base_url, creds)
        before = db.counts()
        poster = threading.Thread(target=post, args=(srv, tok))
        poster.start()
        kill_when(srv.process, db.writer_active)
        poster.join(timeout=30)
    assert "error" in outcome, outcome  # the client saw the connection drop, no answer
    assert db.counts() == before  # not one resource of the Bundle

    outcome.clear()
    with server(db) as srv:
        tok = common.token(srv.base_url, creds)
        post(srv, tok)
        assert outcome.get("status") == 200, outcome
        after = db.counts()
        resources = after["resource"] - before["resource"]
        assert resources == len(bundle["entry"]) + after.get("resource:Provenance", 0)
        post(srv, tok)  # the same Bundle again: nothing new
        assert outcome.get("status") == 200, outcome
        assert db.counts()["resource"] == after["resource"]
