"""Which failures of the database are answered as outages (503) or a full disk (507), and
which are bugs (500): the drivers' own exceptions, wrapped as SQLAlchemy raises them."""

from __future__ import annotations

import sqlite3

import psycopg.errors
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from phr.db import database_fault


def wrapped(cls: type, orig: BaseException, invalidated: bool = False) -> BaseException:
    return cls("SELECT 1", {}, orig, connection_invalidated=invalidated)


def test_a_full_disk_is_507_on_postgresql_and_sqlite() -> None:
    pg = wrapped(OperationalError, psycopg.errors.DiskFull("could not extend file"))
    lite = sqlite3.OperationalError("database or disk is full")
    lite.sqlite_errorcode = sqlite3.SQLITE_FULL  # set by the sqlite3 module when raised
    for exc in (pg, wrapped(OperationalError, lite)):
        fault = database_fault(exc)
        assert fault is not None and fault.status_code == 507


def test_an_unreachable_or_lost_database_or_a_full_pool_is_503_with_retry_after() -> None:
    cases = [
        wrapped(OperationalError, psycopg.OperationalError("connection refused")),
        wrapped(OperationalError, psycopg.errors.AdminShutdown("terminating connection")),
        wrapped(ProgrammingError, psycopg.ProgrammingError("the connection is lost"), True),
        PoolTimeout("QueuePool limit reached"),
    ]
    for exc in cases:
        fault = database_fault(exc)
        assert fault is not None and fault.status_code == 503, exc
        assert fault.headers["Retry-After"]


def test_other_database_errors_are_left_to_fail_as_bugs() -> None:
    assert database_fault(wrapped(IntegrityError, psycopg.errors.UniqueViolation("dup"))) is None
    assert database_fault(ValueError("not a database error")) is None
