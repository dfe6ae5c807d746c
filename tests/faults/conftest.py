"""Fault tests: real server and CLI subprocesses, real signals, a database of their own.

Each test gets a fresh, migrated database that the subprocesses share with the test: a
SQLite file, or (when ``PHR_TEST_DATABASE_URL`` is set) a schema of its own in that
PostgreSQL database, dropped afterwards. The rest of the suite's database is untouched.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from bench import common

ROOT = Path(__file__).resolve().parents[2]

# Tables whose rows a unit of work writes; a crash must leave them as they were.
TABLES = (
    "resource",
    "resource_version",
    "resource_source",
    "identity_link",
    "import_job",
    "resident",
    "audit_entry",
)


@dataclass
class FaultDb:
    url: str
    data_dir: Path
    engine: Engine

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a ``phr`` subprocess on this database."""
        env = common.server_env(self.url, self.data_dir, 0)
        env.update({"PHR_BULK_WORKERS": "0", "PHR_AUDIT_CHAIN_INTERVAL": "0", **extra})
        return env

    def counts(self) -> dict[str, int]:
        """Rows per table and resources per type: the state a crash must not change."""
        with self.engine.connect() as conn:
            out = {
                t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in TABLES
            }
            for rtype, n in conn.execute(
                text("SELECT resource_type, count(*) FROM resource GROUP BY resource_type")
            ):
                out[f"resource:{rtype}"] = int(n)
        return out

    def add_org(
        self, org_id: str, kind: str, scopes: list[str] | None = None
    ) -> common.Credentials:
        """Register an organisation and its client (in this process: a ``phr org add``
        subprocess costs seconds of start-up on a busy machine)."""
        from sqlalchemy.orm import Session

        from consent.identity.clients import register_client, register_organization

        with Session(self.engine) as session, session.begin():
            register_organization(session, id=org_id, name=org_id, kind=kind)
            client, secret = register_client(
                session,
                organization_id=org_id,
                name=f"{org_id} client",
                scopes=scopes or list(common.DEFAULT_SCOPES),
            )
            return common.Credentials(org_id, client.client_id, secret)

    def scalar(self, sql: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql)).scalar()

    def writer_active(self) -> bool:
        """True while another connection is inside a write transaction: on PostgreSQL one
        that has written rows (it has a transaction id); on SQLite one that holds the
        writer lock (every transaction takes it at BEGIN IMMEDIATE, phr/db.py)."""
        if self.is_sqlite:
            path = self.url.removeprefix("sqlite:///")
            con = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                con.execute("BEGIN IMMEDIATE")  # fails while another writer holds the lock
                con.execute("ROLLBACK")
                return False
            except sqlite3.OperationalError:
                return True
            finally:
                con.close()
        return bool(
            self.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                f"'{APP_NAME}' AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
            )
        )


APP_NAME = "phr-faults"


@contextmanager
def _database(tmp_path: Path, base: str | None) -> Iterator[FaultDb]:
    """A fresh, migrated database: a schema of its own in the PostgreSQL database ``base``,
    or a SQLite file when ``base`` is None."""
    from phr.migrate import upgrade

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    schema = None
    if base:
        schema = f"faults_{uuid.uuid4().hex[:12]}"
        admin = create_engine(base)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        sep = "&" if "?" in base else "?"
        url = f"{base}{sep}options=-csearch_path%3D{schema}&application_name={APP_NAME}"
    else:
        url = f"sqlite:///{tmp_path / 'phr.db'}"
    engine = create_engine(url)
    if url.startswith("sqlite"):
        from sqlalchemy import event

        from phr.db import _sqlite_pragmas

        event.listen(engine, "connect", _sqlite_pragmas)
    upgrade(engine)
    try:
        yield FaultDb(url, data_dir, engine)
    finally:
        engine.dispose()
        if schema:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


@pytest.fixture
def fault_db(tmp_path: Path) -> Iterator[FaultDb]:
    """The pass's database: PostgreSQL when ``PHR_TEST_DATABASE_URL`` is set, else SQLite."""
    with _database(tmp_path, os.environ.get("PHR_TEST_DATABASE_URL")) as db:
        yield db


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[FaultDb]:
    """A SQLite file in either pass (for faults that only SQLite can stage)."""
    with _database(tmp_path, None) as db:
        yield db


def phr(
    db: FaultDb, *args: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the ``phr`` command on the test's database."""
    return subprocess.run(
        [sys.executable, "-m", "phr.cli", *args],
        cwd=ROOT,
        env=db.env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def kill_when(
    proc: subprocess.Popen[Any], condition: Callable[[], bool], seconds: float = 60
) -> None:
    """SIGKILL ``proc`` as soon as ``condition()`` holds (polled); fail if it never does or
    the process ends first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the process ended (status {proc.returncode}) before the fault")
        if condition():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            assert proc.returncode == -signal.SIGKILL
            return
        time.sleep(0.005)
    proc.kill()
    pytest.fail("the condition for the fault never held")


@contextmanager
def server(db: FaultDb, **env: str) -> Iterator[common.Server]:
    """``phr serve`` (uvicorn, one process) on the test's database; stopped at the end
    unless the test killed it already."""
    saved = dict(os.environ)
    os.environ.update(db.env(**env))
    try:
        with common.run_server(db.url, workers=1, data_dir=db.data_dir) as srv:
            yield srv
    finally:
        os.environ.clear()
        os.environ.update(saved)
