"""Two tablets give the same prescribed medicine at the same moment: exactly one
administration, the stock down once. Real threads, each with its own connection and
transaction, on the real database (SQLite or PostgreSQL, whichever the suite runs on)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from consent.staff import service as staff_service
from consent.staff.models import StaffUser
from phr.errors import Conflict
from phr.homecare import schemas, service
from phr.homecare.models import Order, Stock, Visit
from phr.store.models import Resource
from tests.homecare.conftest import make_world

SCHEMA = "homecare_concurrency"


@pytest.fixture
def committed(engine: Engine, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions that really commit, on a database of their own (a separate SQLite file, or
    a separate schema of the PostgreSQL test database), built by the migrations and
    dropped afterwards: the other tests roll back one outer transaction, which other
    connections could never see, and must not see these rows either."""
    from phr.db import make_engine, set_session_factory
    from phr.migrate import upgrade

    url = os.environ.get("PHR_TEST_DATABASE_URL")
    if url:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        own = create_engine(url, connect_args={"options": f"-csearch_path={SCHEMA}"})
    else:
        own = make_engine(url=f"sqlite:///{tmp_path / 'concurrency.db'}")
    upgrade(own)
    factory = sessionmaker(bind=own, expire_on_commit=False)
    set_session_factory(factory)
    try:
        yield factory
    finally:
        set_session_factory(None)
        own.dispose()
        if url:
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))


def _prepared(factory: sessionmaker[Session]) -> tuple[str, str, str, str]:
    with factory() as s:
        w = make_world(s, suffix="-" + uuid.uuid4().hex[:8])
        vid = w.to_visit()
        w.vitals(vid)
        w.consult(vid)
        [oid] = w.prescribe(vid, quantity=2)
        w.guide(vid)
        s.commit()
        return vid, oid, w.good, w.nurse.user_id or ""


def test_two_tablets_giving_at_once_give_once(committed: sessionmaker[Session]) -> None:
    vid, oid, stock_id, nurse_id = _prepared(committed)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    # SQLite transactions begin with BEGIN IMMEDIATE (phr.db): the second tablet's first
    # read waits for the first tablet's commit, so there they start together and are
    # serialised by the database; PostgreSQL lets both read the visit before either writes.
    sqlite = committed.kw["bind"].dialect.name == "sqlite"

    def tablet() -> None:
        if sqlite:
            barrier.wait(timeout=10)
        with committed() as s:
            user = s.get(StaffUser, nurse_id)
            assert user is not None
            actor = staff_service.staff_actor(user, client_id="tablet", scopes=("user/*.rs",))
            s.get(Visit, vid)  # on PostgreSQL both tablets have read it before either writes
            if not sqlite:
                barrier.wait(timeout=10)
            try:
                service.administer(
                    session=s, actor=actor, visit_id=vid, body=schemas.Administer(order_id=oid)
                )
                s.commit()
                result = "given"
            except Conflict:
                s.rollback()
                result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=tablet) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["given", "refused"]
    with committed() as s:
        stock = s.get(Stock, stock_id)
        order = s.get(Order, oid)
        assert stock is not None and order is not None
        assert stock.quantity == 8  # 10 deposited, 2 given once
        assert order.status == "administered" and order.administration_ref
        given = s.scalars(
            select(Resource.id).where(
                Resource.resource_type == "MedicationAdministration",
                Resource.resident_id == stock.resident_id,
            )
        ).all()
        assert len(given) == 1
