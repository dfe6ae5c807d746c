"""A deletion committed in one process is never matched by another, long-running process
(a second uvicorn worker): it learns of it through the gallery generation on its next
search. Runs on its own database file, since two processes only share committed data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from consent.actors import Actor
from consent.identity.clients import register_organization
from phr.biometrics import service
from phr.db import make_engine
from phr.migrate import upgrade
from phr.store.indexer import utcnow
from phr.store.models import Resident

ROOT = Path(__file__).resolve().parents[2]


def test_a_deletion_reaches_another_running_process(tmp_path: Path, data_dir: Path) -> None:
    url = f"sqlite:///{tmp_path / 'two-processes.db'}"
    engine = make_engine(url=url)
    upgrade(engine)
    rng = np.random.default_rng(1)
    faces = {rid: rng.standard_normal(128) for rid in ("r-1", "r-2")}
    resident = Actor(kind="resident", resident_id="r-1", client_id="app")
    with Session(engine) as s, s.begin():
        register_organization(s, id="ems-1", name="EMS", kind="ems")
        for rid, face in faces.items():
            s.add(Resident(id=rid, created_at=utcnow(), status="active"))
            s.flush()
            who = Actor(kind="resident", resident_id=rid, client_id="app")
            service.enroll(s, who, consent=True, vectors=[face.tolist()])

    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.biometrics.search_worker", url],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PHR_DATA_DIR": str(data_dir)},
    )
    assert worker.stdin is not None and worker.stdout is not None

    def search(face: np.ndarray) -> list[str]:
        worker.stdin.write(json.dumps(face.tolist()) + "\n")  # type: ignore[union-attr]
        worker.stdin.flush()  # type: ignore[union-attr]
        return json.loads(worker.stdout.readline())  # type: ignore[union-attr]

    try:
        assert search(faces["r-1"]) == ["r-1"]  # the worker has loaded the gallery
        with Session(engine) as s, s.begin():
            service.withdraw(s, resident)
        assert search(faces["r-1"]) == []
        assert search(faces["r-2"]) == ["r-2"]
    finally:
        worker.stdin.close()
        worker.wait(timeout=30)
        worker.stdout.close()
        engine.dispose()
    assert worker.returncode == 0
