"""Database engine, sessions and the declarative base shared by every package.

One transaction per request or job: services only ``flush``; whoever opened the
session (the request dependency or a CLI job) commits or rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import JSON, Engine, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from phr.errors import InsufficientStorage, PHRError, ServiceUnavailable
from phr.settings import Settings, get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSON everywhere, JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin: the module's
    # own lazy BEGIN (only before DML) would make a SAVEPOINT commit for real.
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(settings: Settings | None = None, url: str | None = None) -> Engine:
    settings = settings or get_settings()
    url = url or settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.ensure_dirs()
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # IMMEDIATE: take the writer lock at the start, waiting up to busy_timeout for it.
        # Nearly every request writes (an access-log entry after its reads); a deferred
        # transaction that reads, then finds another process committed first, cannot
        # upgrade to a writer and fails at once (SQLITE_BUSY_SNAPSHOT, no waiting).
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_engine(url, pool_size=20, max_overflow=10, pool_pre_ping=True, pool_recycle=1800)


SQLITE_FULL = 13  # sqlite3 result code: database or disk is full
PG_DISK_FULL = "53100"  # SQLSTATE disk_full


def database_fault(exc: BaseException) -> PHRError | None:
    """What a failure of the database itself means for the client, or None for other errors.

    The disk full (SQLite's SQLITE_FULL, PostgreSQL's disk_full): 507. The database
    unreachable, restarting or its connection lost mid-request (the pool invalidates that
    connection and pre-pings the next), or no pooled connection free in time: 503 with
    ``Retry-After``. The unit of work was
    rolled back whole in both cases. Anything else is a bug, not an outage.
    """
    if isinstance(exc, PoolTimeout):  # every connection of the pool busy for pool_timeout
        return ServiceUnavailable("the server is overloaded, retry shortly")
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    if getattr(orig, "sqlite_errorcode", None) == SQLITE_FULL:
        return InsufficientStorage()
    if getattr(orig, "sqlstate", None) == PG_DISK_FULL:
        return InsufficientStorage()
    if exc.connection_invalidated or isinstance(exc, OperationalError):
        return ServiceUnavailable()
    return None


_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None


def get_engine() -> Engine:
    global _engine, _factory
    if _engine is None:
        _engine = make_engine()
        _factory = sessionmaker(_engine, expire_on_commit=False)
    return _engine


def set_engine(engine: Engine | None) -> None:
    """Point the process at another engine (tests, CLI with an explicit URL)."""
    global _engine, _factory
    _engine = engine
    _factory = sessionmaker(engine, expire_on_commit=False) if engine is not None else None


def set_session_factory(factory: sessionmaker[Session] | None) -> None:
    """Tests bind sessions to one connection whose outer transaction is rolled back."""
    global _factory
    _factory = factory


def session_factory() -> sessionmaker[Session]:
    if _factory is not None:
        return _factory
    get_engine()
    assert _factory is not None
    return _factory


@contextmanager
def transaction() -> Iterator[Session]:
    """One unit of work for a job: commit on success, roll back on any error."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        _run_after_rollback(session)
        raise
    finally:
        session.close()


def after_rollback(session: Session, action: Callable[[Session], None]) -> None:
    """Run ``action`` in a fresh transaction if this unit of work is rolled back.

    The access log uses it: a denied read must be recorded even though the request
    that attempted it fails and its transaction is undone.
    """
    session.info.setdefault("after_rollback", []).append(action)


def _run_after_rollback(session: Session) -> None:
    actions = session.info.pop("after_rollback", [])
    if not actions:
        return
    try:
        for action in actions:
            action(session)
        session.commit()
    except Exception:  # pragma: no cover - the original error matters more
        session.rollback()


def roll_back(session: Session) -> None:
    """Undo this unit of work now, as a failed request would, and run its after_rollback
    actions (a page that shows a refused step instead of failing the request)."""
    session.rollback()
    _run_after_rollback(session)


def get_session() -> Iterator[Session]:
    """FastAPI dependency: one transaction per request.

    Always declare it through :data:`SessionDep` (scope "function"): the commit must happen
    before the response is sent, so that nothing acknowledged can be lost and a failed
    commit is reported to the client instead of after the fact.
    """
    with transaction() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
