"""The resident's ACP pages: view, save (a new version each time), earlier versions,
conversations, trusted persons; CSRF on every POST; one resident never sees another's."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.actors import Actor
from phr.acp import service as acp_service
from tests.web.conftest import csrf_of, sign_in
from tests.web.test_pages import text_of

PLAN = {
    "own_words": "家で穏やかに過ごしたい",
    "treatment-resuscitation": "do_not_want",
    "treatment-intubation": "do_not_want",
    "treatment-transfusion": "want",
    "treatment-tube_feeding": "trial",
    "place_of_care": "home",
    "place_of_death": "home",
    "what_matters": "孫の顔を見ること",
    "contact-0-name": "筑波 一郎",
    "contact-0-relationship": "長男",
    "contact-0-phone": "090-0000-0000",
    "contact-1-name": "筑波 桜",
    "contact-1-relationship": "長女",
    "doctor-name": "山田 太郎",
    "doctor-clinic": "山田医院",
}


@pytest.fixture(autouse=True)
def pias(session: Session) -> None:
    from consent.pia.service import seed_platform_pias

    seed_platform_pias(session)
    session.commit()


def post(client: TestClient, path: str, data: dict[str, Any], *, page: str = "/me/acp") -> Any:
    token = csrf_of(client.get(page).text)
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def save(client: TestClient, **changes: str) -> Any:
    r = post(client, "/me/acp", {**PLAN, **changes}, page="/me/acp/edit")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/me/acp?done=saved"
    return r


class TestPlan:
    def test_no_plan_yet_invites_to_start(self, client: TestClient, hanako: str) -> None:
        sign_in(client, hanako)
        page = text_of(client.get("/me/acp").text)
        assert "まだ記録がありません" in page
        assert 'href="/me/acp"' in client.get("/me").text  # in the site menu

    def test_save_shows_the_current_plan_dated_with_what_to_do_and_not(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        save(client)
        page = text_of(client.get("/me/acp").text)
        assert "いまの内容（第1版）" in page and "に記録" in page
        do_not = page.split("してほしくないこと", 1)[1].split("まだ決めていないこと")[0]
        assert "心肺蘇生" in do_not and "気管挿管・人工呼吸器" in do_not
        assert "輸血" not in do_not
        want = page.split("してほしいこと", 1)[1].split("一定期間試して")[0]
        assert "輸血" in want
        trial = page.split("一定期間試して判断してほしいこと", 1)[1].split("してほしくないこと")[0]
        assert "経管栄養" in trial
        assert "筑波 一郎（長男）" in page and "山田医院" in page
        assert "孫の顔を見ること" in page

    def test_every_save_is_a_new_version_and_earlier_ones_stay_readable(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        save(client)
        save(client, **{"treatment-resuscitation": "want"})
        versions = text_of(client.get("/me/acp/versions").text)
        assert "第2版" in versions and "第1版" in versions
        old = client.get("/me/acp/versions/1")
        assert old.status_code == 200
        text = text_of(old.text)
        assert "これは前の版（第1版）です。いまの内容は第2版です。" in text
        assert "心肺蘇生" in text.split("してほしくないこと", 1)[1].split("まだ決めて")[0]
        current = text_of(client.get("/me/acp").text)
        assert "いまの内容（第2版）" in current
        assert "心肺蘇生" in current.split("してほしいこと", 1)[1].split("一定期間")[0]
        # a version that does not exist: back to the list
        r = client.get("/me/acp/versions/9", follow_redirects=False)
        assert r.status_code == 303

    def test_the_edit_form_is_filled_with_the_current_plan(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        save(client)
        html = client.get("/me/acp/edit").text
        assert 'value="do_not_want" checked' in html
        assert 'value="筑波 一郎"' in html
        assert "保存すると第2版になります" in text_of(html)
        for field in ("own_words", "treatment-resuscitation-want", "contact-0-name", "held_on"):
            assert f'<label for="{field}">' in html, field

    def test_a_row_without_a_name_is_refused_and_nothing_saved(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        r = post(client, "/me/acp", {**PLAN, "contact-3-phone": "1"}, page="/me/acp/edit")
        assert r.status_code == 400
        assert "お名前も書いてください" in r.text
        assert "まだ記録がありません" in client.get("/me/acp").text

    def test_english(self, client: TestClient, hanako: str) -> None:
        sign_in(client, hanako)
        save(client)
        page = text_of(client.get("/me/acp?lang=en").text)
        assert "Current plan (version 1)" in page
        assert "Not to do" in page and "Cardiopulmonary resuscitation" in page
        assert "Earlier versions" in text_of(client.get("/me/acp/versions?lang=en").text)


class TestConversations:
    def test_a_save_with_a_conversation_records_who_when_and_what_changed(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        save(client)
        save(
            client,
            **{
                "treatment-dialysis": "do_not_want",
                "held_on": "2026-11-20",
                "participant-0-name": "山田 太郎",
                "participant-0-relationship": "かかりつけ医",
                "note": "透析について話した",
            },
        )
        page = text_of(client.get("/me/acp/conversations").text)
        assert "2026-11-20" in page and "山田 太郎（かかりつけ医）" in page
        assert "人工透析: 未定 → 希望しない" in page
        assert "透析について話した" in page

    def test_a_conversation_that_changed_nothing(self, client: TestClient, hanako: str) -> None:
        sign_in(client, hanako)
        save(client)
        data = {"held_on": "2026-11-21", "participant-0-name": "筑波 桜"}
        r = post(client, "/me/acp/conversations", data, page="/me/acp/conversations")
        assert r.status_code == 303
        page = text_of(client.get("/me/acp/conversations").text)
        assert "内容は変えずに確認しました（第1版）" in page
        # without a person: refused
        r = post(client, "/me/acp/conversations", {"held_on": "2026-11-21"})
        assert r.status_code == 400 and "少なくとも一人" in r.text


class TestTrusted:
    def test_invite_shows_the_code_once_and_withdraw_ends_it(
        self, client: TestClient, hanako: str, session: Session
    ) -> None:
        sign_in(client, hanako)
        r = post(client, "/me/acp/trusted", {"label": "長女 桜", "relationship": "長女"})
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store"
        code = r.text.split("<code>", 1)[1].split("</code>", 1)[0]
        assert len(code) >= 8
        again = client.get("/me/acp/trusted").text
        assert code not in again and "受け取り待ち" in text_of(again)
        invitation = acp_service.list_invitations(
            session=session, actor=Actor(kind="resident", resident_id=hanako)
        )[0]
        r = post(client, f"/me/acp/trusted/{invitation.id}/withdraw", {}, page="/me/acp/trusted")
        assert r.status_code == 303
        assert "共有をやめました" in text_of(client.get("/me/acp/trusted").text)


class TestSecurity:
    def test_every_post_needs_the_csrf_token(self, client: TestClient, hanako: str) -> None:
        sign_in(client, hanako)
        client.get("/me/acp")
        for path, data in (
            ("/me/acp", PLAN),
            ("/me/acp/conversations", {"held_on": "2026-11-21", "participant-0-name": "x"}),
            ("/me/acp/trusted", {"label": "x"}),
            ("/me/acp/trusted/nothing/withdraw", {}),
        ):
            r = client.post(path, data={**data, "csrf_token": "wrong"}, follow_redirects=False)
            assert r.status_code == 403, path
            r = client.post(path, data=data, follow_redirects=False)
            assert r.status_code == 403, path
        assert "まだ記録がありません" in client.get("/me/acp").text

    def test_a_resident_never_sees_another_residents_acp(
        self, client: TestClient, hanako: str, taro: str, session: Session
    ) -> None:
        sign_in(client, hanako)
        save(client)
        post(client, "/me/acp/trusted", {"label": "長女 桜"})
        invitation = acp_service.list_invitations(
            session=session, actor=Actor(kind="resident", resident_id=hanako)
        )[0]
        client.cookies.clear()
        sign_in(client, taro)
        assert "まだ記録がありません" in client.get("/me/acp").text
        assert "家で穏やかに過ごしたい" not in client.get("/me/acp/versions/1").text
        assert client.get("/me/acp/versions/1", follow_redirects=False).status_code == 303
        assert "長女 桜" not in client.get("/me/acp/trusted").text
        r = post(client, f"/me/acp/trusted/{invitation.id}/withdraw", {}, page="/me/acp/trusted")
        assert r.status_code == 404
        assert "共有中" not in r.text and "長女 桜" not in r.text

    def test_signed_out_goes_to_sign_in(self, client: TestClient) -> None:
        for path in ("/me/acp", "/me/acp/edit", "/me/acp/versions", "/me/acp/trusted"):
            r = client.get(path, follow_redirects=False)
            assert r.status_code == 303
            assert r.headers["location"].startswith("/me/signin?return_to=")


class TestTrustedPersonPages:
    @pytest.fixture(autouse=True)
    def cheap_argon2(self) -> Any:
        from argon2 import PasswordHasher, profiles

        from consent.staff.service import configure_password_hasher

        configure_password_hasher(PasswordHasher.from_parameters(profiles.CHEAPEST))
        yield
        configure_password_hasher(None)

    def test_accept_sign_in_read_the_current_plan_until_withdrawn(
        self, client: TestClient, app: Any, hanako: str, taro: str, session: Session
    ) -> None:
        sign_in(client, hanako)
        save(client)
        r = post(client, "/me/acp/trusted", {"label": "長女 桜", "relationship": "長女"})
        code = r.text.split("<code>", 1)[1].split("</code>", 1)[0]
        assert 'href="/acp/trusted/signin"' in r.text
        with TestClient(app) as person:
            r = person.get("/acp/trusted", follow_redirects=False)
            assert r.headers["location"].startswith("/acp/trusted/signin?return_to=")
            account = {"login": "sakura@example.jp", "passphrase": "a long enough passphrase"}
            bad = post(
                person,
                "/acp/trusted/accept",
                {"code": "x" * 16, "name": "桜", **account},
                page="/acp/trusted/signin",
            )
            assert bad.status_code == 400
            r = post(
                person,
                "/acp/trusted/accept",
                {"code": code, "name": "筑波 桜", **account},
                page="/acp/trusted/signin",
            )
            assert r.status_code == 303 and r.headers["location"] == "/acp/trusted"
            listing = person.get("/acp/trusted").text
            assert f"/acp/trusted/residents/{hanako}" in listing
            plan = text_of(person.get(f"/acp/trusted/residents/{hanako}").text)
            assert "いまの内容（第1版）" in plan and "家で穏やかに過ごしたい" in plan
            other = person.get(f"/acp/trusted/residents/{taro}")
            assert other.status_code == 404 and "共有されていない" in text_of(other.text)
            # sign out, and back in with the passphrase (a wrong one is refused)
            post(person, "/acp/trusted/signout", {}, page="/acp/trusted")
            assert person.get("/acp/trusted", follow_redirects=False).status_code == 303
            wrong = {**account, "passphrase": "not the passphrase"}
            r = post(person, "/acp/trusted/signin", wrong, page="/acp/trusted/signin")
            assert r.status_code == 401
            r = post(person, "/acp/trusted/signin", account, page="/acp/trusted/signin")
            assert r.status_code == 303
            # the resident withdraws: nothing more to read
            invitation = acp_service.list_invitations(
                session=session, actor=Actor(kind="resident", resident_id=hanako)
            )[0]
            post(client, f"/me/acp/trusted/{invitation.id}/withdraw", {}, page="/me/acp/trusted")
            assert person.get(f"/acp/trusted/residents/{hanako}").status_code == 404
            assert hanako not in person.get("/acp/trusted").text

    def test_the_trusted_pages_need_the_csrf_token(self, client: TestClient) -> None:
        client.get("/acp/trusted/signin")
        for path in ("/acp/trusted/signin", "/acp/trusted/accept", "/acp/trusted/signout"):
            assert client.post(path, data={"csrf_token": "x"}).status_code == 403, path

    def test_the_sign_in_page_has_the_headers_and_labelled_fields(self, client: TestClient) -> None:
        for lang in ("ja", "en"):
            r = client.get(f"/acp/trusted/signin?lang={lang}")
            assert r.status_code == 200
            assert "default-src 'none'" in r.headers["content-security-policy"]
            assert r.headers["cache-control"] == "no-store"
            html = r.text
            assert "<style" not in html and " style=" not in html and "<script" not in html
            for field in re.findall(r'<input[^>]*\sid="([^"]+)"', html):
                assert f'<label for="{field}">' in html, field
        assert "Accept an invitation" in r.text
