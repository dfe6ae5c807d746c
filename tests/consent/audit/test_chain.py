"""The access log as a hash chain: every access leaves an entry, and editing, removing or
reordering one — or forging a seal — is found by verification."""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from consent import audit
from consent.actors import Actor, Purpose
from consent.models import AuditChainHead, AuditEntry, AuditSeal
from phr.errors import Conflict, NotFound
from phr.store.reader import RecordReader
from tests.conftest import OrgFactory

from .conftest import entry_count, last_entries

CLINIC = Actor(kind="organization", client_id="c1", organization_id="clinic-a")


def make_entries(session: Session, n: int, *, resident: str = "r1") -> None:
    """n committed entries, one record() call each, then chained."""
    for i in range(n):
        audit.record(
            session,
            CLINIC,
            Purpose.TREATMENT,
            [audit.Access("read", "permit", "Observation", f"o{i}", resident, count=1)],
        )
    session.commit()
    audit.chain_all(session)
    session.commit()


def seq_span(session: Session) -> tuple[int, int]:
    rows = session.scalars(
        select(AuditEntry.seq).where(AuditEntry.seq.is_not(None)).order_by(AuditEntry.seq)
    ).all()
    assert rows[0] is not None and rows[-1] is not None
    return rows[0], rows[-1]


class TestEveryAccessLeavesAnEntry:
    def test_reads_searches_history_and_refusals_through_the_api_are_each_logged(
        self, client: TestClient, session: Session, make_org: OrgFactory, clinic: dict, loaded: dict
    ) -> None:
        h = clinic["headers"]
        before = entry_count(session)
        assert client.get(f"/fhir/Observation/{loaded['obs1']}", headers=h).status_code == 200
        assert entry_count(session) == before + 1
        r = client.get("/fhir/Observation", params={"patient": loaded["patient"]}, headers=h)
        assert r.status_code == 200 and len(r.json()["entry"]) == 3
        assert entry_count(session) == before + 2
        assert client.get(f"/fhir/Observation/{loaded['obs1']}/_history", headers=h).is_success
        assert entry_count(session) == before + 3
        other = make_org("clinic-b", "clinic")
        n = entry_count(session)
        r = client.get(f"/fhir/Observation/{loaded['obs2']}", headers=other["headers"])
        assert r.status_code == 404
        assert entry_count(session) == n + 1

        read, search, history, denied = last_entries(session, 4)
        assert (read.action, read.outcome, read.resource_id) == ("read", "permit", loaded["obs1"])
        assert (search.action, search.count, search.resident_id) == (
            "search",
            3,
            loaded["patient"],
        )
        assert history.action == "history"
        assert (denied.outcome, denied.organization_id, denied.resident_id) == (
            "deny",
            "clinic-b",
            loaded["patient"],
        )
        assert audit.verify_chain(session).ok

    def test_entries_are_numbered_without_gaps_and_linked_by_hash(
        self, client: TestClient, session: Session, clinic: dict, loaded: dict
    ) -> None:
        for key in ("obs1", "obs2", "obs3"):
            client.get(f"/fhir/Observation/{key and loaded[key]}", headers=clinic["headers"])
        assert audit.chain_pending(session) > 0
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert [r.seq for r in rows] == list(range(rows[0].seq, rows[0].seq + len(rows)))
        for before, after in itertools.pairwise(rows):
            assert after.prev_hash == before.entry_hash
        for row in rows:
            data = {f: getattr(row, f) for f in audit.HASHED_FIELDS}
            assert audit.compute_entry_hash(data) == row.entry_hash
        head = session.get(AuditChainHead, 1)
        assert head is not None and (head.seq, head.hash) == (rows[-1].seq, rows[-1].entry_hash)

    def test_one_request_that_touches_several_residents_is_one_insert_of_one_entry_each(
        self, session: Session
    ) -> None:
        audit.record(
            session,
            CLINIC,
            Purpose.TREATMENT,
            [audit.Access("search", "permit", resident_id=r, count=2) for r in ("a", "b", "c")],
        )
        session.commit()
        rows = last_entries(session, 3)
        assert [r.resident_id for r in rows] == ["a", "b", "c"]
        assert rows[1].prev_hash == rows[0].entry_hash and rows[2].prev_hash == rows[1].entry_hash


class TestWriting:
    def test_a_transaction_reads_its_own_entries_before_commit(self, session: Session) -> None:
        n = entry_count(session)
        audit.record(session, CLINIC, Purpose.TREATMENT, [audit.Access("read", "permit")])
        assert entry_count(session) == n + 1

    def test_a_raw_sql_query_of_the_log_also_sees_them(self, session: Session) -> None:
        n = entry_count(session)
        audit.record(session, CLINIC, Purpose.TREATMENT, [audit.Access("read", "permit")])
        assert session.execute(text("SELECT count(*) FROM audit_entry")).scalar() == n + 1

    def test_writing_takes_no_lock_on_the_chain_head(self, session: Session) -> None:
        head = session.get(AuditChainHead, 1)
        assert head is not None
        before = (head.seq, head.hash)
        audit.record(session, CLINIC, Purpose.TREATMENT, [audit.Access("read", "permit")])
        session.refresh(head)
        assert (head.seq, head.hash) == before
        assert audit.pending_count(session) >= 1

    def test_a_rolled_back_transaction_leaves_no_entry_but_a_denial_is_re_recorded(
        self, session: Session
    ) -> None:
        from phr.db import transaction
        from phr.store import repository as repo

        written = repo.put_many(
            session,
            [
                repo.Put(
                    {"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
                    "someone",
                )
            ],
        )
        session.commit()
        n = entry_count(session)
        with pytest.raises(NotFound), transaction() as s:
            reader = RecordReader(s, CLINIC, Purpose.TREATMENT)
            audit.record(s, CLINIC, Purpose.TREATMENT, [audit.Access("search", "permit")])
            reader.read("Observation", written[0].id)
        rows = last_entries(session, 1)
        assert entry_count(session) == n + 1  # the search went with the rollback
        assert (rows[0].action, rows[0].outcome) == ("read", "deny")
        assert audit.verify_chain(session).ok


class TestVerification:
    def test_an_untouched_chain_verifies(self, session: Session) -> None:
        make_entries(session, 5)
        report = audit.verify_chain(session)
        assert report.ok and report.problems == [] and report.checked >= 5

    def test_verification_reads_in_batches(self, session: Session) -> None:
        make_entries(session, 25)
        first, last = seq_span(session)
        report = audit.verify_chain(session, batch_size=7)
        assert report.ok and report.checked == last - first + 1

    def test_an_edited_entry_is_reported_at_its_seq(self, session: Session) -> None:
        make_entries(session, 5)
        first, _ = seq_span(session)
        target = first + 2
        session.execute(
            text("UPDATE audit_entry SET organization_id = 'someone-else' WHERE seq = :s"),
            {"s": target},
        )
        report = audit.verify_chain(session)
        assert not report.ok
        assert report.first_bad_seq == target
        assert report.problems == [f"seq {target}: edited (its content does not match its hash)"]

    def test_an_edited_and_rehashed_entry_breaks_the_link_to_the_next(
        self, session: Session
    ) -> None:
        make_entries(session, 5)
        first, _ = seq_span(session)
        target = first + 1
        row = session.scalars(select(AuditEntry).where(AuditEntry.seq == target)).one()
        data = {f: getattr(row, f) for f in audit.HASHED_FIELDS}
        data["detail"] = "nothing to see"
        forged = audit.compute_entry_hash(data)
        session.execute(
            text(
                "UPDATE audit_entry SET detail = 'nothing to see', entry_hash = :h WHERE seq = :s"
            ),
            {"h": forged, "s": target},
        )
        report = audit.verify_chain(session)
        assert report.first_bad_seq == target + 1
        assert f"seq {target + 1}: does not follow seq {target}" in report.problems[0]

    def test_a_wholesale_rewrite_stops_after_max_problems(self, session: Session) -> None:
        make_entries(session, 8)
        session.execute(text("UPDATE audit_entry SET detail = 'rewritten'"))
        report = audit.verify_chain(session, max_problems=3)
        assert len(report.problems) == 4 and report.problems[-1] == "... more problems not listed"

    def test_a_removed_entry_is_reported_as_missing(self, session: Session) -> None:
        make_entries(session, 5)
        first, _ = seq_span(session)
        session.execute(text("DELETE FROM audit_entry WHERE seq = :s"), {"s": first + 3})
        report = audit.verify_chain(session)
        assert not report.ok
        assert report.problems == [f"seq {first + 3}: missing (entry removed)"]

    def test_entries_removed_from_the_end_are_reported(self, session: Session) -> None:
        make_entries(session, 5)
        _, last = seq_span(session)
        session.execute(text("DELETE FROM audit_entry WHERE seq >= :s"), {"s": last - 1})
        report = audit.verify_chain(session)
        assert report.problems == [
            f"seq {last - 1}-{last}: missing at the end of the chain (entries removed)"
        ]

    def test_two_swapped_entries_are_reported_as_reordered(self, session: Session) -> None:
        make_entries(session, 5)
        first, _ = seq_span(session)
        a, b = first + 1, first + 2
        for stmt, params in (
            ("UPDATE audit_entry SET seq = -1 WHERE seq = :a", {"a": a}),
            ("UPDATE audit_entry SET seq = :a WHERE seq = :b", {"a": a, "b": b}),
            ("UPDATE audit_entry SET seq = :b WHERE seq = -1", {"b": b}),
        ):
            session.execute(text(stmt), params)
        report = audit.verify_chain(session)
        assert report.first_bad_seq == a
        assert report.problems == [
            f"seq {a}: holds the entry written as seq {b} (entries reordered or renumbered)",
            f"seq {b}: holds the entry written as seq {a} (entries reordered or renumbered)",
        ]


class TestSeals:
    def test_a_seal_signs_the_head_and_verifies_with_the_published_key(
        self, client: TestClient, session: Session
    ) -> None:
        make_entries(session, 3)
        row = audit.seal(session)
        assert row is not None
        first, last = seq_span(session)
        head = session.scalars(select(AuditEntry).where(AuditEntry.seq == last)).one()
        assert (row.seq_from, row.seq_to, row.head_hash) == (first, last, head.entry_hash)

        published = client.get("/api/audit/seal-key").json()
        assert published["key_id"] == row.key_id and published["algorithm"] == "Ed25519"
        public = load_pem_public_key(published["public_key_pem"].encode())
        assert isinstance(public, Ed25519PublicKey)
        message = audit.seal_message(
            seq_from=row.seq_from,
            seq_to=row.seq_to,
            head_hash=row.head_hash,
            signed_at=row.signed_at,
            key_id=row.key_id,
        )
        public.verify(base64.b64decode(row.signature), message)  # raises if forged
        listed = client.get("/api/audit/seals").json()["seals"][0]
        assert listed["head_hash"] == row.head_hash and listed["message"] == message.decode()

    def test_sealing_twice_without_new_entries_does_nothing(self, session: Session) -> None:
        make_entries(session, 2)
        assert audit.seal(session) is not None
        assert audit.seal(session) is None
        make_entries(session, 2)
        second = audit.seal(session)
        _, last = seq_span(session)
        assert second is not None and (second.seq_from, second.seq_to) == (last - 1, last)
        report = audit.verify_chain(session)
        assert report.ok and report.seals_checked == 2

    def test_a_tampered_seal_signature_is_reported(self, session: Session) -> None:
        make_entries(session, 3)
        row = audit.seal(session)
        assert row is not None
        sig = bytearray(base64.b64decode(row.signature))
        sig[0] ^= 1
        session.execute(
            text("UPDATE audit_seal SET signature = :s WHERE id = :i"),
            {"s": base64.b64encode(bytes(sig)).decode(), "i": row.id},
        )
        report = audit.verify_chain(session)
        assert not report.ok
        assert report.problems == [
            f"seal {row.id} (seq {row.seq_from}-{row.seq_to}): signature does not verify"
        ]

    def test_a_seal_over_a_rewritten_chain_is_reported(self, session: Session) -> None:
        """Rewriting an entry and recomputing every hash after it fools the chain, not the
        seal."""
        make_entries(session, 4)
        row = audit.seal(session)
        assert row is not None
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        prev = audit.GENESIS_HASH
        for e in entries:
            data = {f: getattr(e, f) for f in audit.HASHED_FIELDS}
            data["prev_hash"] = prev
            if e.seq == entries[1].seq:
                data["organization_id"] = "innocent"
            prev = audit.compute_entry_hash(data)
            session.execute(
                text(
                    "UPDATE audit_entry SET organization_id = :o, prev_hash = :p, entry_hash = :h "
                    "WHERE seq = :s"
                ),
                {"o": data["organization_id"], "p": data["prev_hash"], "h": prev, "s": e.seq},
            )
        session.execute(text("UPDATE audit_chain_head SET hash = :h"), {"h": prev})
        report = audit.verify_chain(session)
        assert report.problems == [
            f"seal {row.id} (seq {row.seq_from}-{row.seq_to}): head hash no longer matches "
            f"seq {row.seq_to} (entries up to it were rewritten)"
        ]

    def test_a_removed_seal_is_reported(self, session: Session) -> None:
        make_entries(session, 2)
        first = audit.seal(session)
        make_entries(session, 2)
        second = audit.seal(session)
        assert first is not None and second is not None
        session.execute(text("DELETE FROM audit_seal WHERE id = :i"), {"i": first.id})
        report = audit.verify_chain(session)
        assert report.problems == [
            f"seal {second.id} (seq {second.seq_from}-{second.seq_to}) should start at "
            f"seq {first.seq_from}: a seal was removed or altered"
        ]

    def test_sealing_refuses_a_tampered_chain(self, session: Session) -> None:
        make_entries(session, 3)
        first, _ = seq_span(session)
        session.execute(text("UPDATE audit_entry SET count = 99 WHERE seq = :s"), {"s": first + 1})
        with pytest.raises(Conflict, match=f"seq {first + 1}: edited"):
            audit.seal(session)
        assert session.scalars(select(AuditSeal)).first() is None

    def test_verify_since_seal_starts_after_the_last_good_seal(self, session: Session) -> None:
        make_entries(session, 3)
        sealed = audit.seal(session)
        assert sealed is not None
        make_entries(session, 2)
        report = audit.verify_chain(session, since_seal=True)
        assert report.ok and report.start_seq == sealed.seq_to + 1 and report.checked == 2
        _, last = seq_span(session)
        session.execute(text("UPDATE audit_entry SET count = 7 WHERE seq = :s"), {"s": last})
        report = audit.verify_chain(session, since_seal=True)
        assert report.problems == [f"seq {last}: edited (its content does not match its hash)"]


class TestMigration:
    def test_entries_written_before_the_chain_existed_are_chained_by_the_migration(
        self, tmp_path: Any
    ) -> None:
        from sqlalchemy.orm import sessionmaker

        from phr.db import make_engine
        from phr.migrate import upgrade

        engine = make_engine(url=f"sqlite:///{tmp_path / 'old.db'}")
        try:
            upgrade(engine, revision="82c857885568")
            with engine.begin() as conn:
                for i in range(3):
                    conn.execute(
                        text(
                            "INSERT INTO audit_entry (at, actor_kind, purpose, action, outcome, "
                            "count, detail, resident_id) VALUES ('2026-11-01 09:00:00.123456', "
                            "'organization', 'TREAT', 'read', 'permit', 1, 'Observation/x', "
                            ":r)"
                        ),
                        {"r": f"r{i}"},
                    )
            upgrade(engine, revision="cacd9fa0c26f")
            upgrade(engine)  # and on to the background chaining (b4c7d9e1f2a3) and beyond
            with sessionmaker(engine)() as s:
                report = audit.verify_chain(s)
                assert report.ok and report.checked == 3
                audit.record(s, CLINIC, Purpose.TREATMENT, [audit.Access("read", "permit")])
                s.commit()
                assert audit.verify_chain(s).pending == 1
                assert audit.chain_pending(s) == 1
                s.commit()
                report = audit.verify_chain(s)
                assert report.ok and report.checked == 4 and report.pending == 0
        finally:
            engine.dispose()


def test_the_canonical_form_is_sorted_compact_utf8_json() -> None:
    from datetime import datetime

    row: dict[str, Any] = dict.fromkeys(audit.HASHED_FIELDS)
    row.update(seq=1, prev_hash="0" * 64, at=datetime(2026, 11, 24, 0, 12), detail="検査", count=2)
    data = audit.canonical_bytes(row)
    assert data.startswith(b'{"action":null,"actor_kind":null,"at":"2026-11-24T00:12:00.000000"')
    assert "検査".encode() in data and b" " not in data
    # The documented form (and what the migration computes) is stdlib json's:
    for detail in ('検査 "quoted" \\ \n\t\x00\x1f\x7f\u2028 🚑', ""):
        row["detail"] = detail
        doc = {
            k: (v.isoformat(timespec="microseconds") if k == "at" else v) for k, v in row.items()
        }
        expected = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        assert audit.canonical_bytes(row) == expected.encode()
