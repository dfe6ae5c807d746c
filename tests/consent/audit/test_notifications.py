"""Notifications: inbox rows and outbox messages written in the caller's transaction, the
emergency-access notice to the resident and their trusted persons, and delivery."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import notifications as nt
from consent.actors import Actor, Purpose
from consent.identity.clients import register_organization
from consent.models import Notification, OutboxMessage
from phr.errors import InvalidInput, NotFound

Use = Callable[[Actor | None], None]
HANAKO = Actor(kind="resident", resident_id="hanako")
PARAMEDIC = Actor(
    kind="staff",
    user_id="emt-7",
    organization_id="tsukuba-fire",
    organization_kind="ems",
    role="paramedic",
)


def outbox_rows(session: Session) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


class FailingOutbox:
    def deliver(self, message: nt.OutgoingMessage) -> None:
        raise ConnectionError("smtp down")


class TestNotify:
    def test_notify_writes_inbox_rows_and_outbox_messages(self, session: Session) -> None:
        rows = nt.notify(
            session,
            resident_id="hanako",
            kind="consent_changed",
            title="同意が変更されました",
            body="あなたの同意が更新されました。",
            data={"consent": "Consent/c-1"},
            trusted_persons=["tp-1"],
            channels=["mail", "sms"],
        )
        assert [n.recipient for n in rows] == ["resident:hanako", "trusted:tp-1"]
        assert all(n.resident_id == "hanako" and n.read_at is None for n in rows)
        assert rows[0].data == {"consent": "Consent/c-1"}
        out = outbox_rows(session)
        assert sorted((o.recipient, o.channel) for o in out) == [
            ("resident:hanako", "mail"),
            ("resident:hanako", "sms"),
            ("trusted:tp-1", "mail"),
            ("trusted:tp-1", "sms"),
        ]
        assert {o.status for o in out} == {"pending"}
        # References only: no address is ever written to the outbox.
        assert all(o.recipient.split(":")[0] in ("resident", "trusted") for o in out)

    def test_an_unknown_channel_is_refused(self, session: Session) -> None:
        with pytest.raises(InvalidInput):
            nt.notify(session, resident_id="r", kind="k", title="t", body="b", channels=["fax"])

    def test_notifications_go_with_a_rolled_back_transaction(self, session: Session) -> None:
        nested = session.begin_nested()
        nt.notify(session, resident_id="r", kind="k", title="t", body="b")
        nested.rollback()
        assert session.scalars(select(Notification)).first() is None
        assert outbox_rows(session) == []


class TestEmergencyAccess:
    @pytest.fixture(autouse=True)
    def _fire_department(self, session: Session) -> None:
        register_organization(session, id="tsukuba-fire", name="つくば市消防本部", kind="ems")

    def test_the_resident_and_their_chosen_trusted_person_are_notified(
        self, session: Session
    ) -> None:
        nt.add_watcher(
            session, resident_id="hanako", trusted_person_id="daughter", channels=["sms"]
        )
        nt.add_watcher(
            session, resident_id="hanako", trusted_person_id="neighbour", kinds=["other"]
        )
        rows = nt.notify_emergency_access(
            session,
            resident_id="hanako",
            actor=PARAMEDIC,
            purpose=Purpose.EMERGENCY,
            what="緊急時情報 (アレルギー・服薬・病名)",
        )
        assert [n.recipient for n in rows] == ["resident:hanako", "trusted:daughter"]
        resident, daughter = rows
        assert resident.kind == "emergency_access"
        assert "つくば市消防本部 (救急隊員) が救急医療のためにあなたの緊急時情報" in resident.body
        assert "見守っている方" in daughter.body
        assert [(o.recipient, o.channel) for o in outbox_rows(session)] == [
            ("resident:hanako", "mail"),
            ("trusted:daughter", "sms"),
        ]

    def test_repeated_reads_by_the_same_organisation_make_one_notification(
        self, session: Session
    ) -> None:
        for _ in range(3):
            nt.notify_emergency_access(
                session,
                resident_id="hanako",
                actor=PARAMEDIC,
                purpose=Purpose.EMERGENCY,
                what="緊急時情報",
                trusted_persons=[],
            )
        inbox = nt.list_notifications(session, recipient="resident:hanako")
        assert len(inbox) == 1 and inbox[0].data["params"]["repeats"] == 2
        assert nt.render(inbox[0], "en")["body"].endswith("(2 more times).")
        assert len(outbox_rows(session)) == 1

    def test_the_types_seen_are_named_in_the_readers_language(self, session: Session) -> None:
        (n,) = nt.notify_emergency_access(
            session,
            resident_id="hanako",
            actor=PARAMEDIC,
            purpose=Purpose.EMERGENCY,
            resource_types=["AllergyIntolerance", "MedicationStatement", "AllergyIntolerance"],
            trusted_persons=[],
        )
        assert "あなたのアレルギー情報・服薬情報を見ました" in n.body
        assert (
            "viewed your allergies and medicines for emergency treatment"
            in (nt.render(n, "en")["body"])
        )

    def test_the_readers_hook_notifies_only_for_permitted_emergency_reads(
        self, session: Session
    ) -> None:
        from consent.audit import Access

        accesses = [
            Access("search", "permit", resident_id="hanako", count=2,
                   detail="AllergyIntolerance?patient=hanako AllergyIntolerance/a1 Condition/c1"),
            Access("read", "deny", "Observation", "o1", "jiro"),
        ]  # fmt: skip
        assert nt.notify_emergency_accesses(session, PARAMEDIC, Purpose.TREATMENT, accesses) == []
        (n,) = nt.notify_emergency_accesses(session, PARAMEDIC, Purpose.EMERGENCY, accesses)
        assert n.recipient == "resident:hanako"
        assert "あなたのアレルギー情報・病名を見ました" in n.body

    def test_watchers_can_be_removed(self, session: Session) -> None:
        nt.add_watcher(session, resident_id="hanako", trusted_person_id="daughter")
        assert nt.watchers_for(session, "hanako", "emergency_access") == [("daughter", ["mail"])]
        assert nt.remove_watcher(session, resident_id="hanako", trusted_person_id="daughter")
        assert nt.watchers_for(session, "hanako", "emergency_access") == []


class TestDelivery:
    def test_deliver_outbox_spools_messages_and_marks_them_sent(
        self, session: Session, tmp_path: Path
    ) -> None:
        nt.notify(session, resident_id="hanako", kind="k", title="件名", body="本文")
        spool = tmp_path / "spool.jsonl"
        result = nt.deliver_outbox(session, nt.LoggingOutbox(spool))
        assert (result.sent, result.retry, result.failed) == (1, 0, 0)
        (row,) = outbox_rows(session)
        assert row.status == "sent" and row.sent_at is not None and row.attempts == 1
        line = json.loads(spool.read_text().strip())
        assert (line["recipient"], line["title"], line["body"]) == (
            "resident:hanako",
            "件名",
            "本文",
        )
        assert spool.stat().st_mode & 0o077 == 0
        assert nt.deliver_outbox(session, nt.LoggingOutbox(spool)).sent == 0

    def test_a_failing_channel_is_retried_then_marked_failed(self, session: Session) -> None:
        nt.notify(session, resident_id="hanako", kind="k", title="t", body="b")
        first = nt.deliver_outbox(session, FailingOutbox(), max_attempts=2)
        assert (first.retry, first.failed) == (1, 0)
        second = nt.deliver_outbox(session, FailingOutbox(), max_attempts=2)
        assert (second.retry, second.failed) == (0, 1)
        (row,) = outbox_rows(session)
        assert (row.status, row.attempts, row.last_error) == ("failed", 2, "ConnectionError")

    def test_the_cli_job_delivers_pending_messages(self, session: Session, data_dir: Path) -> None:
        from click.testing import CliRunner

        from consent.audit_cli import audit

        nt.notify(session, resident_id="hanako", kind="k", title="t", body="b")
        session.commit()
        result = CliRunner().invoke(audit, ["deliver-outbox"])
        assert result.exit_code == 0, result.output
        assert "sent 1" in result.output
        assert [o.status for o in outbox_rows(session)] == ["sent"]
        assert (data_dir / "outbox" / "spool.jsonl").exists()

    def test_load_outbox_takes_a_module_and_class(self) -> None:
        assert isinstance(nt.load_outbox("consent.notifications:LoggingOutbox"), nt.LoggingOutbox)
        with pytest.raises(InvalidInput):
            nt.load_outbox("nonsense")


class TestInboxRoutes:
    def test_a_resident_reads_and_marks_their_notifications(
        self, client: TestClient, session: Session, as_actor: Use
    ) -> None:
        register_organization(session, id="tsukuba-fire", name="つくば市消防本部", kind="ems")
        nt.notify_emergency_access(
            session,
            resident_id="hanako",
            actor=PARAMEDIC,
            purpose=Purpose.EMERGENCY,
            what="emergency set",
            trusted_persons=[],
        )
        nt.notify(session, resident_id="jiro", kind="k", title="not yours", body="b")
        session.commit()
        as_actor(HANAKO)
        inbox = client.get("/api/me/notifications?lang=en").json()["notifications"]
        assert len(inbox) == 1
        (n,) = inbox
        assert n["title"] == "Your record was viewed in an emergency" and n["read"] is False
        r = client.post(f"/api/me/notifications/{n['id']}/read")
        assert r.status_code == 200 and r.json()["read"] is True
        assert client.get("/api/me/notifications?unread=true").json()["notifications"] == []
        ja = client.get("/api/me/notifications").json()["notifications"][0]
        assert ja["title"] == "緊急時にあなたの情報が見られました"

    def test_someone_elses_notification_is_not_found(
        self, client: TestClient, session: Session, as_actor: Use
    ) -> None:
        (other,) = nt.notify(session, resident_id="jiro", kind="k", title="t", body="b")
        session.commit()
        as_actor(HANAKO)
        assert client.post(f"/api/me/notifications/{other.id}/read").status_code == 404
        with pytest.raises(NotFound):
            nt.mark_read(session, recipient="resident:hanako", notification_id=other.id)

    def test_without_a_token_it_is_401(self, client: TestClient) -> None:
        assert client.get("/api/me/notifications").status_code == 401
        assert client.post("/api/me/notifications/x/read").status_code == 401
