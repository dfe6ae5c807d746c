"""Appends from concurrent transactions still form one gap-free chain (run it on
PostgreSQL too: PHR_TEST_DATABASE_URL), and the ``phr audit`` commands."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from consent import audit
from consent.actors import Actor, Purpose
from consent.audit_cli import audit as audit_cli
from consent.models import AuditChainHead, AuditEntry, AuditSeal

CLINIC = Actor(kind="organization", client_id="c1", organization_id="clinic-a")


@pytest.fixture
def committed(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions that really commit; whatever they append is removed afterwards and the
    chain head put back, so the other tests see the chain as it was."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as s:
        head = s.get(AuditChainHead, 1)
        assert head is not None
        seq, hash_ = head.seq, head.hash
        pk = s.scalar(select(func.max(AuditEntry.pk))) or 0
        seals = s.scalar(select(AuditSeal.id).order_by(AuditSeal.id.desc()).limit(1)) or 0
    try:
        yield factory
    finally:
        with factory.begin() as s:
            s.execute(delete(AuditSeal).where(AuditSeal.id > seals))
            s.execute(delete(AuditEntry).where(AuditEntry.pk > pk))
            s.execute(
                AuditChainHead.__table__.update().values(seq=seq, hash=hash_)  # type: ignore[attr-defined]
            )


def test_requests_and_chainers_running_at_once_make_one_valid_chain(
    committed: sessionmaker[Session],
) -> None:
    """Four writers commit entries while two chainers chain them: every entry is chained
    exactly once, in one gap-free, valid chain."""
    writers, per_writer = 4, 20
    start = threading.Barrier(writers + 2)
    done = threading.Event()
    errors: list[BaseException] = []
    with committed() as s:
        before = s.get(AuditChainHead, 1)
        assert before is not None
        first_seq = before.seq

    def write(t: int) -> None:
        try:
            start.wait()
            for i in range(per_writer):
                with committed() as s:
                    audit.record(
                        s,
                        CLINIC,
                        Purpose.TREATMENT,
                        [
                            audit.Access("read", "permit", "Observation", f"{t}-{i}-{k}", f"r{t}")
                            for k in range(1 + i % 3)
                        ],
                    )
                    if i % 2:
                        time.sleep(0.002)  # hold the transaction open a moment
                    s.commit()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def chain() -> None:
        try:
            start.wait()
            while not done.is_set():
                with committed() as s:
                    audit.chain_pending(s, limit=7)
                    s.commit()
                time.sleep(0.001)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=write, args=(t,)) for t in range(writers)]
    chainers = [threading.Thread(target=chain) for _ in range(2)]
    for w in [*workers, *chainers]:
        w.start()
    for w in workers:
        w.join(timeout=120)
    done.set()
    for c in chainers:
        c.join(timeout=60)
    assert not errors, errors
    expected = writers * sum(1 + i % 3 for i in range(per_writer))
    with committed() as s:
        audit.chain_all(s)
        s.commit()
        seqs = list(
            s.scalars(select(AuditEntry.seq).where(AuditEntry.seq > first_seq).order_by("seq"))
        )
        assert seqs == list(range(first_seq + 1, first_seq + expected + 1))
        assert audit.pending_count(s) == 0
        report = audit.verify_chain(s)
        assert report.ok, report.problems
        assert report.head_seq == first_seq + expected


def test_the_chainer_thread_chains_what_requests_commit(
    committed: sessionmaker[Session],
) -> None:
    from consent.audit_chainer import AuditChainer
    from phr.db import set_session_factory

    set_session_factory(committed)
    chainer = AuditChainer(0.05)
    try:
        chainer.start()
        with committed() as s:
            audit.record(s, CLINIC, Purpose.TREATMENT, [audit.Access("read", "permit")])
            s.commit()
            pk = s.scalar(select(func.max(AuditEntry.pk)))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with committed() as s:
                if s.scalar(select(AuditEntry.seq).where(AuditEntry.pk == pk)) is not None:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the chainer did not chain the entry within 10 s")
        with committed() as s:
            audit.record(s, CLINIC, Purpose.TREATMENT, [audit.Access("read", "permit")])
            s.commit()
        chainer.stop()  # a last round on the way out
        with committed() as s:
            assert audit.pending_count(s) == 0
            assert audit.verify_chain(s).ok
    finally:
        chainer.stop()
        set_session_factory(None)


def test_record_costs_little_per_entry(committed: sessionmaker[Session]) -> None:
    """Not a timed assertion: prints the cost of record() + commit per entry (see -s)."""
    n = 200
    with committed() as s:
        t0 = time.perf_counter()
        for i in range(n):
            audit.record(
                s, CLINIC, Purpose.TREATMENT, [audit.Access("read", "permit", "O", str(i))]
            )
            s.commit()
        per_request = (time.perf_counter() - t0) / n
        batch = [audit.Access("search", "permit", resident_id=f"r{i}", count=1) for i in range(n)]
        t0 = time.perf_counter()
        audit.record(s, CLINIC, Purpose.TREATMENT, batch)
        s.commit()
        per_entry = (time.perf_counter() - t0) / n
    print(
        f"\nrecord()+commit, 1 entry per transaction: {per_request * 1e3:.3f} ms; "
        f"{n} entries in one transaction: {per_entry * 1e6:.1f} us per entry"
    )


class TestCommands:
    def test_verify_exits_0_on_an_intact_log_and_1_on_a_tampered_one(
        self, session: Session
    ) -> None:
        for _ in range(3):
            audit.record(session, CLINIC, Purpose.TREATMENT, [audit.Access("read", "permit")])
            session.commit()
        runner = CliRunner()
        chained = runner.invoke(audit_cli, ["chain"])
        assert chained.exit_code == 0 and chained.output.startswith("chained ")
        ok = runner.invoke(audit_cli, ["verify"])
        assert ok.exit_code == 0 and "access log intact" in ok.output
        last = session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1))
        session.execute(text("UPDATE audit_entry SET role = 'x' WHERE seq = :s"), {"s": last})
        bad = runner.invoke(audit_cli, ["verify"])
        assert bad.exit_code == 1
        assert f"seq {last}: edited" in bad.output

    def test_seal_then_verify_since_seal(self, session: Session) -> None:
        audit.record(session, CLINIC, Purpose.TREATMENT, [audit.Access("read", "permit")])
        session.commit()
        runner = CliRunner()
        sealed = runner.invoke(audit_cli, ["seal"])
        assert sealed.exit_code == 0 and sealed.output.startswith("sealed seq ")
        again = runner.invoke(audit_cli, ["seal"])
        assert "nothing to seal" in again.output
        since = runner.invoke(audit_cli, ["verify", "--since-seal"])
        assert since.exit_code == 0 and "0 entries" in since.output
        key = runner.invoke(audit_cli, ["seal-key"])
        assert "BEGIN PUBLIC KEY" in key.output

    def test_seal_refuses_a_tampered_log(self, session: Session) -> None:
        audit.record(session, CLINIC, Purpose.TREATMENT, [audit.Access("read", "permit")])
        session.commit()
        audit.chain_all(session)
        session.execute(text("UPDATE audit_entry SET detail = 'x'"))
        result = CliRunner().invoke(audit_cli, ["seal"])
        assert result.exit_code == 1 and "not sealed" in result.output
