"""Appends from concurrent transactions still form one gap-free chain (run it on
PostgreSQL too: PHR_TEST_DATABASE_URL), and the ``phr audit`` commands."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, delete, select, text
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
        seals = s.scalar(select(AuditSeal.id).order_by(AuditSeal.id.desc()).limit(1)) or 0
    try:
        yield factory
    finally:
        with factory.begin() as s:
            s.execute(delete(AuditSeal).where(AuditSeal.id > seals))
            s.execute(delete(AuditEntry).where(AuditEntry.seq > seq))
            s.execute(
                AuditChainHead.__table__.update().values(seq=seq, hash=hash_)  # type: ignore[attr-defined]
            )


def test_four_threads_appending_at_once_make_one_valid_chain(
    committed: sessionmaker[Session],
) -> None:
    threads, per_thread = 4, 20
    start = threading.Barrier(threads)
    errors: list[BaseException] = []
    with committed() as s:
        before = s.get(AuditChainHead, 1)
        assert before is not None
        first_seq = before.seq

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
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
                        # Take the chain head early and hold it a moment, so that the
                        # others have to wait for it.
                        audit.flush(s)
                        time.sleep(0.002)
                    s.commit()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors, errors
    expected = threads * sum(1 + i % 3 for i in range(per_thread))
    with committed() as s:
        seqs = list(
            s.scalars(select(AuditEntry.seq).where(AuditEntry.seq > first_seq).order_by("seq"))
        )
        assert seqs == list(range(first_seq + 1, first_seq + expected + 1))
        report = audit.verify_chain(s)
        assert report.ok, report.problems
        assert report.head_seq == first_seq + expected


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
        session.execute(text("UPDATE audit_entry SET detail = 'x'"))
        result = CliRunner().invoke(audit_cli, ["seal"])
        assert result.exit_code == 1 and "not sealed" in result.output
