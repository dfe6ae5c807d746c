"""ACP: versions, conversations, encryption at rest, trusted persons."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from consent.models import AuditEntry, Notification
from phr.models_registry import metadata

ME = "/api/me/acp"
Headers = Callable[[str], dict[str, str]]


def content(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "own_words": "できるだけ家で、家族と過ごしたい",
        "treatments": {"resuscitation": "undecided", "tube_feeding": "do_not_want"},
        "place_of_care": "home",
        "place_of_death": "home",
        "what_matters": "孫の成長を見守ること",
        "religious_cultural": "浄土真宗",
        "contacts": [
            {"name": "筑波 一郎", "relationship": "長男", "phone": "090-0000-0001"},
            {"name": "筑波 次郎", "relationship": "次男", "phone": "090-0000-0002"},
        ],
        "trusted_persons": [{"name": "筑波 桜", "relationship": "長女"}],
        "spokesperson": {"name": "筑波 桜", "relationship": "長女"},
        "family_doctor": {"name": "山田 太郎", "clinic": "山田内科", "phone": "029-000-0000"},
    }
    body.update(kw)
    return body


def save(client: TestClient, headers: dict[str, str], **kw: Any) -> Any:
    r = client.put(ME, json=kw or {"content": content()}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


class TestVersions:
    def test_every_save_is_a_new_version_and_earlier_ones_stay_readable(
        self, client: TestClient, resident_token: Headers
    ) -> None:
        h = resident_token("r-acp-1")
        assert client.get(ME, headers=h).json() is None
        first = save(client, h)
        assert first["version"] == 1 and first["current"]
        second = save(
            client,
            h,
            content=content(treatments={"resuscitation": "do_not_want"}),
            conversation={
                "held_on": "2026-11-20",
                "participants": [
                    {"name": "山田 太郎", "relationship": "かかりつけ医"},
                    {"name": "筑波 桜", "relationship": "長女"},
                ],
                "note": "心肺蘇生は望まないことを確認",
            },
        )
        third = save(client, h, content=content(place_of_death="palliative_unit"))
        assert (second["version"], third["version"]) == (2, 3)
        cur = client.get(ME, headers=h).json()
        assert cur["version"] == 3 and cur["current"] and cur["current_version"] == 3
        assert cur["content"]["place_of_death"] == "palliative_unit"
        v1 = client.get(f"{ME}/versions/1", headers=h).json()
        assert v1["current"] is False and v1["current_version"] == 3
        assert v1["content"] == first["content"]
        assert v1["content"]["treatments"]["resuscitation"] == "undecided"
        v2 = client.get(f"{ME}/versions/2", headers=h).json()
        assert v2["content"]["treatments"]["resuscitation"] == "do_not_want"
        listed = client.get(f"{ME}/versions", headers=h).json()
        assert [(v["version"], v["current"]) for v in listed] == [
            (3, True),
            (2, False),
            (1, False),
        ]

    def test_conversations_record_with_whom_when_and_what_changed(
        self, client: TestClient, resident_token: Headers
    ) -> None:
        h = resident_token("r-acp-2")
        save(client, h)
        save(
            client,
            h,
            content=content(treatments={"resuscitation": "do_not_want", "dialysis": "trial"}),
            conversation={
                "held_on": "2026-11-20",
                "participants": [{"name": "山田 太郎", "relationship": "かかりつけ医"}],
                "note": "透析は試してから判断",
            },
        )
        r = client.post(
            f"{ME}/conversations",
            json={
                "held_on": "2026-11-24",
                "participants": [{"name": "筑波 桜", "relationship": "長女"}],
                "note": "内容を確認、変更なし",
            },
            headers=h,
        )
        assert r.status_code == 201, r.text
        convs = client.get(f"{ME}/conversations", headers=h).json()
        assert [c["held_on"] for c in convs] == ["2026-11-24", "2026-11-20"]
        latest, changed = convs
        assert latest["changes"] == [] and latest["version_before"] == latest["version_after"] == 2
        assert (changed["version_before"], changed["version_after"]) == (1, 2)
        assert changed["participants"][0]["relationship"] == "かかりつけ医"
        assert "心肺蘇生: 未定 → 希望しない" in changed["changes"]
        assert "人工透析: 未定 → 一定期間試して判断" in changed["changes"]

    def test_the_stored_fhir_is_an_advance_directive_consent_without_wishes(
        self, client: TestClient, resident_token: Headers, session: Session
    ) -> None:
        h = resident_token("r-acp-3")
        saved = save(client, h)
        consent_id = saved["consent"].split("/")[1]
        from phr.store.models import Resource

        row = session.scalars(
            select(Resource).where(Resource.resource_type == "Consent", Resource.id == consent_id)
        ).one()
        assert '"adr"' in row.content and "42348-3" in row.content
        assert "家で" not in row.content

    def test_only_the_resident_saves(self, client: TestClient, make_org: Any) -> None:
        org = make_org("clinic-x", "clinic")
        r = client.put(ME, json={"content": content()}, headers=org["headers"])
        assert r.status_code == 403
        assert client.get(ME, headers=org["headers"]).status_code == 403


class TestEncryptionAtRest:
    def test_no_wish_nor_name_is_in_the_database_in_plain_text(
        self, client: TestClient, resident_token: Headers, session: Session
    ) -> None:
        h = resident_token("r-acp-4")
        marker = "胃ろうは望まないZQX"
        save(
            client,
            h,
            content=content(own_words=marker, what_matters=marker + "2"),
            conversation={
                "held_on": "2026-11-20",
                "participants": [{"name": "マーカー花子ZQX"}],
                "note": marker + "3",
            },
        )
        r = client.post(
            f"{ME}/trusted", json={"label": "マーカー桜ZQX", "relationship": "長女"}, headers=h
        )
        assert r.status_code == 201
        session.commit()
        # The needles carry Japanese characters, which neither sealed bytes nor base64 can
        # contain ("ZQX" alone turns up in a few KB of base64 about once in fifty runs).
        plain = ("ないZQX", "花子ZQX", "桜ZQX")
        found: dict[str, set[str]] = {n: set() for n in (*plain, "r-acp-4")}
        for table in metadata.sorted_tables:
            for row in session.execute(select(table)).all():
                joined = " ".join(str(v) for v in row)
                for needle, tables in found.items():
                    if needle in joined:
                        tables.add(table.name)
        assert all(found[n] == set() for n in plain), found
        # The scan does see the rows: the resident's id (a key) is in plain text.
        assert {"acp_version", "acp_conversation", "trusted_invitation"} <= found["r-acp-4"]
        # ... and what is sealed opens again.
        assert client.get(ME, headers=h).json()["content"]["own_words"] == marker
        n = session.execute(text("select count(*) from acp_version")).scalar()
        assert n == 1


class TestTrustedPersons:
    def invite(self, client: TestClient, h: dict[str, str], label: str = "長女 桜") -> Any:
        r = client.post(f"{ME}/trusted", json={"label": label, "relationship": "長女"}, headers=h)
        assert r.status_code == 201, r.text
        assert r.json()["code"]
        return r.json()

    def accept(self, client: TestClient, code: str, login: str) -> dict[str, str]:
        r = client.post(
            "/api/acp/trusted/accept",
            json={
                "code": code,
                "login": login,
                "passphrase": "a long enough passphrase",
                "name": "筑波 桜",
            },
        )
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def test_a_trusted_person_reads_the_current_acp_and_a_stranger_cannot(
        self, client: TestClient, resident_token: Headers, session: Session
    ) -> None:
        h = resident_token("r-acp-5")
        save(client, h)
        save(client, h, content=content(place_of_care="hospital"))
        inv = self.invite(client, h)
        tp = self.accept(client, inv["code"], "sakura@example.jp")
        mine = client.get("/api/acp/trusted/residents", headers=tp).json()
        assert [m["resident_id"] for m in mine] == ["r-acp-5"]
        r = client.get("/api/acp/trusted/residents/r-acp-5/acp", headers=tp)
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 2 and r.json()["content"]["place_of_care"] == "hospital"
        # A stranger: another resident's trusted person.
        other = resident_token("r-acp-6")
        save(client, other)
        stranger = self.accept(client, self.invite(client, other)["code"], "someone@example.jp")
        r = client.get("/api/acp/trusted/residents/r-acp-5/acp", headers=stranger)
        assert r.status_code == 404
        # No token, a bad token: not signed in.
        assert client.get("/api/acp/trusted/residents/r-acp-5/acp").status_code == 401
        bad = {"Authorization": "Bearer nonsense"}
        assert client.get("/api/acp/trusted/residents/r-acp-5/acp", headers=bad).status_code == 401
        # The look is in the resident's access log, by a trusted person.
        kinds = session.scalars(
            select(AuditEntry.actor_kind).where(
                AuditEntry.resident_id == "r-acp-5", AuditEntry.action == "read"
            )
        ).all()
        assert "trusted_person" in kinds

    def test_signing_in_again_and_revocation(
        self, client: TestClient, resident_token: Headers
    ) -> None:
        h = resident_token("r-acp-7")
        save(client, h)
        inv = self.invite(client, h)
        self.accept(client, inv["code"], "Sakura@Example.jp")
        # The code is used up.
        r = client.post(
            "/api/acp/trusted/accept",
            json={
                "code": inv["code"],
                "login": "x@example.jp",
                "passphrase": "a long enough passphrase",
                "name": "x",
            },
        )
        assert r.status_code == 404
        wrong = {"login": "sakura@example.jp", "passphrase": "wrong passphrase!"}
        assert client.post("/api/acp/trusted/sign-in", json=wrong).status_code == 401
        r = client.post(
            "/api/acp/trusted/sign-in",
            json={"login": "sakura@example.jp", "passphrase": "a long enough passphrase"},
        )
        assert r.status_code == 200
        tp = {"Authorization": f"Bearer {r.json()['token']}"}
        assert client.get("/api/acp/trusted/residents/r-acp-7/acp", headers=tp).status_code == 200
        assert client.delete(f"{ME}/trusted/{inv['id']}", headers=h).json()["revoked"] is True
        assert client.get("/api/acp/trusted/residents/r-acp-7/acp", headers=tp).status_code == 404
        assert client.get("/api/acp/trusted/residents", headers=tp).json() == []

    def test_five_wrong_passphrases_lock_the_account_for_a_while(
        self, client: TestClient, resident_token: Headers
    ) -> None:
        h = resident_token("r-acp-10")
        save(client, h)
        self.accept(client, self.invite(client, h)["code"], "locked@example.jp")
        wrong = {"login": "locked@example.jp", "passphrase": "wrong passphrase!"}
        for _ in range(5):
            assert client.post("/api/acp/trusted/sign-in", json=wrong).status_code == 401
        right = {**wrong, "passphrase": "a long enough passphrase"}
        r = client.post("/api/acp/trusted/sign-in", json=right)
        assert r.status_code == 401 and "try again later" in r.json()["message"]

    def test_trusted_persons_are_told_when_the_acp_changes(
        self, client: TestClient, resident_token: Headers, session: Session
    ) -> None:
        h = resident_token("r-acp-8")
        save(client, h)
        inv = self.invite(client, h)
        tp = self.accept(client, inv["code"], "sakura8@example.jp")
        person = client.get("/api/acp/trusted/residents", headers=tp)
        assert person.status_code == 200
        save(client, h, content=content(place_of_care="care_facility"))
        recipients = session.scalars(
            select(Notification.recipient).where(
                Notification.resident_id == "r-acp-8", Notification.kind == "acp_updated"
            )
        ).all()
        assert "resident:r-acp-8" in recipients
        assert any(r.startswith("trusted:") for r in recipients)
        actions = set(
            session.scalars(
                select(AuditEntry.action).where(AuditEntry.resident_id == "r-acp-8")
            ).all()
        )
        assert {"acp-save", "acp-invite", "acp-accept"} <= actions

    def test_the_trusted_person_sees_no_privacy_consent(
        self, client: TestClient, resident_token: Headers, session: Session
    ) -> None:
        """The sharing consent covers Consent resources, but privacy consents are never
        ordinary data: only the advance directive is visible."""
        h = resident_token("r-acp-9")
        save(client, h)
        inv = self.invite(client, h)
        self.accept(client, inv["code"], "sakura9@example.jp")
        from consent.actors import Actor, Purpose
        from phr.acp.models import TrustedInvitation
        from phr.store import search as fsearch
        from phr.store.reader import RecordReader

        person = session.get(TrustedInvitation, inv["id"])
        assert person is not None and person.person_id
        actor = Actor(kind="trusted_person", user_id=person.person_id, service="acp")
        reader = RecordReader(session, actor, Purpose.PATIENT_ACCESS)
        found = reader.search(fsearch.parse("Consent", [("patient", "r-acp-9")]))
        from phr.store.repository import load_json

        scopes = {load_json(m.content)["scope"]["coding"][0]["code"] for m in found.matches}
        assert scopes == {"adr"}
        # ... while the resident does have a privacy consent (the one naming this person).
        mine = RecordReader(
            session, Actor(kind="resident", resident_id="r-acp-9"), Purpose.PATIENT_ACCESS
        )
        all_scopes = {
            load_json(m.content)["scope"]["coding"][0]["code"]
            for m in mine.search(fsearch.parse("Consent", [("patient", "r-acp-9")])).matches
        }
        assert all_scopes == {"adr", "patient-privacy"}
