"""The web app's defences: headers, cookies, CSRF, session timeout, one resident's data
never shown to another."""

from __future__ import annotations

import re
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from tests.web.conftest import csrf_of, sign_in
from tests.web.story import HANAKO, TARO

PAGES = (
    "/me",
    "/me/record",
    "/me/medicines",
    "/me/results",
    "/me/visits",
    "/me/download",
    "/me/print",
    "/me/sharing",
    "/me/emergency",
    "/me/access-log",
    "/me/notifications",
    "/me/acp",
    "/me/acp/edit",
    "/me/acp/versions",
    "/me/acp/conversations",
    "/me/acp/trusted",
)


def set_cookie_headers(response: object) -> dict[str, str]:
    out = {}
    for raw in response.headers.get_list("set-cookie"):  # type: ignore[attr-defined]
        name = raw.split("=", 1)[0]
        out[name] = raw
    return out


def attributes(raw: str) -> dict[str, str]:
    c = SimpleCookie()
    c.load(raw)
    morsel = next(iter(c.values()))
    return {k.lower(): str(v) for k, v in morsel.items() if v}


class TestHeaders:
    def test_every_page_has_a_strict_content_security_policy(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        for path in ("/", "/me/signin", *PAGES):
            r = client.get(path)
            assert r.status_code == 200, path
            csp = r.headers["content-security-policy"]
            assert "default-src 'none'" in csp
            assert "script-src 'self'" in csp
            assert "style-src 'self'" in csp
            assert "frame-ancestors 'none'" in csp
            assert "form-action 'self'" in csp
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "same-origin"
            assert r.headers["cache-control"] == "no-store"

    def test_pages_have_no_inline_script_style_or_event_handler(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        for path in ("/", "/me/signin", *PAGES):
            html = client.get(path).text
            assert "<style" not in html, path
            assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
            assert not re.search(r"\sstyle=", html), path
            assert not re.search(r"\son[a-z]+=", html), path

    def test_static_files_are_served_with_their_type_and_cache_validator(
        self, client: TestClient
    ) -> None:
        r = client.get("/static/web/web.css")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/css")
        assert r.headers["x-content-type-options"] == "nosniff"
        again = client.get("/static/web/web.css", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304
        assert client.get("/static/web/../app.py").status_code == 404


class TestCookies:
    def test_the_session_cookie_is_httponly_samesite_and_not_readable_by_script(
        self, client: TestClient, hanako: str
    ) -> None:
        page = client.get("/me/signin")
        csrf = set_cookie_headers(page)["phr_web_csrf"]
        assert {"httponly", "samesite", "path"} <= set(attributes(csrf))
        assert attributes(csrf)["samesite"].lower() == "strict"
        r = client.post(
            "/me/signin/demo",
            data={"csrf_token": csrf_of(page.text), "resident_id": hanako},
            follow_redirects=False,
        )
        session_cookie = attributes(set_cookie_headers(r)["phr_session"])
        assert session_cookie["httponly"]
        assert session_cookie["samesite"].lower() == "lax"
        assert session_cookie["path"] == "/"
        assert "secure" not in session_cookie  # plain http in tests: see the next test

    def test_cookies_are_secure_when_the_site_is_served_over_https(
        self, client: TestClient, hanako: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from phr.settings import get_settings

        monkeypatch.setattr(get_settings(), "base_url", "https://phr.example.jp")
        page = client.get("/me/signin")
        csrf = attributes(set_cookie_headers(page)["phr_web_csrf"])
        assert csrf["secure"]
        # The test client speaks plain http, so it would not send a Secure cookie back.
        client.cookies.set("phr_web_csrf", csrf_of(page.text))
        r = client.post(
            "/me/signin/demo",
            data={"csrf_token": csrf_of(page.text), "resident_id": hanako},
            headers={"Origin": "https://phr.example.jp"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        assert attributes(set_cookie_headers(r)["phr_session"])["secure"]


class TestCsrf:
    def test_sign_in_without_the_form_token_is_refused(
        self, client: TestClient, hanako: str
    ) -> None:
        client.get("/me/signin")
        r = client.post("/me/signin/demo", data={"resident_id": hanako}, follow_redirects=False)
        assert r.status_code == 403
        assert "phr_session" not in set_cookie_headers(r)

    def test_a_token_that_is_not_the_cookie_is_refused(
        self, client: TestClient, hanako: str
    ) -> None:
        client.get("/me/signin")
        r = client.post(
            "/me/signin/demo",
            data={"resident_id": hanako, "csrf_token": "x" * 43},
            follow_redirects=False,
        )
        assert r.status_code == 403

    def test_a_post_from_another_site_is_refused_even_with_the_token(
        self, client: TestClient, hanako: str
    ) -> None:
        page = client.get("/me/signin")
        r = client.post(
            "/me/signin/demo",
            data={"resident_id": hanako, "csrf_token": csrf_of(page.text)},
            headers={"Origin": "https://evil.example"},
            follow_redirects=False,
        )
        assert r.status_code == 403

    def test_revoking_without_the_token_changes_nothing(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        page = client.get("/me/sharing")
        added = client.post(
            "/me/sharing",
            data={
                "csrf_token": csrf_of(page.text),
                "recipient": "org_kind:hospital",
                "purpose": "TREAT",
            },
            follow_redirects=False,
        )
        assert added.status_code == 303
        html = client.get("/me/sharing").text
        consent_id = re.search(r'action="/me/sharing/([^/"]+)/revoke"', html)
        assert consent_id
        r = client.post(f"/me/sharing/{consent_id.group(1)}/revoke", follow_redirects=False)
        assert r.status_code == 403
        assert (
            f'action="/me/sharing/{consent_id.group(1)}/revoke"' in client.get("/me/sharing").text
        )

    def test_sign_out_needs_the_token_too(self, client: TestClient, hanako: str) -> None:
        sign_in(client, hanako)
        assert client.post("/me/signout", follow_redirects=False).status_code == 403
        assert client.get("/me", follow_redirects=False).status_code == 200


class TestSession:
    def test_pages_need_a_signed_in_resident(self, client: TestClient) -> None:
        for path in PAGES:
            r = client.get(path, follow_redirects=False)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/me/signin?return_to=")

    def test_after_thirty_idle_minutes_the_session_is_over(
        self, client: TestClient, hanako: str, session: Session
    ) -> None:
        from consent.identity.models import ResidentSession
        from phr.store.indexer import utcnow

        sign_in(client, hanako)
        assert client.get("/me/results", follow_redirects=False).status_code == 200
        session.execute(
            update(ResidentSession)
            .where(ResidentSession.resident_id == hanako)
            .values(last_seen_at=utcnow() - timedelta(minutes=31))
        )
        session.commit()
        r = client.get("/me/results", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/me/signin?return_to=/me/results&expired=1"
        page = client.get(r.headers["location"])
        assert "安全のためサインアウトしました" in page.text

    def test_signing_out_ends_the_session_on_the_server(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        old = client.cookies.get("phr_session")
        page = client.get("/me")
        r = client.post(
            "/me/signout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/me/signin?signed_out=1"
        client.cookies.set("phr_session", old or "")
        assert client.get("/me", follow_redirects=False).status_code == 303

    def test_a_revoked_card_is_refused_and_no_session_opens(
        self, client: TestClient, session: Session
    ) -> None:
        from consent.identity import cards
        from tests.web.story import ingest_story

        rid = ingest_story(session, TARO, years=1, per_year=1)
        cards.issue_card(session, rid, revoke=True)
        session.commit()
        page = client.get("/me/signin")
        r = client.post(
            "/me/signin/demo",
            data={"csrf_token": csrf_of(page.text), "resident_id": rid},
            follow_redirects=False,
        )
        assert r.status_code == 401
        assert "サインインできませんでした" in r.text and "revoked" in r.text
        assert "phr_session" not in set_cookie_headers(r)

    def test_without_demo_mode_there_is_no_demo_card_sign_in(
        self, client: TestClient, hanako: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from phr.settings import get_settings

        monkeypatch.setattr(get_settings(), "demo_mode", False)
        page = client.get("/me/signin")
        assert "マイナンバーカードでサインイン" in page.text
        assert 'action="/me/signin/demo"' not in page.text
        client.get("/")  # a page with a form token is still needed for the POST below
        r = client.post(
            "/me/signin/demo",
            data={"csrf_token": client.cookies.get("phr_web_csrf"), "resident_id": hanako},
            follow_redirects=False,
        )
        assert r.status_code == 404
        assert "phr_session" not in set_cookie_headers(r)

    def test_return_to_never_leaves_the_site(self, client: TestClient, hanako: str) -> None:
        page = client.get("/me/signin?return_to=https://evil.example/")
        r = client.post(
            "/me/signin/demo",
            data={
                "csrf_token": csrf_of(page.text),
                "resident_id": hanako,
                "return_to": "//evil.example/x",
            },
            follow_redirects=False,
        )
        assert r.headers["location"] == "/me"


class TestIsolation:
    def test_a_resident_sees_only_their_own_record(
        self, client: TestClient, hanako: str, taro: str
    ) -> None:
        sign_in(client, hanako)
        for path in PAGES:
            html = client.get(path).text
            assert TARO.family not in html, path
            assert taro not in html, path
        bundle = client.get("/me/download/record.json").json()
        assert bundle["entry"]
        for e in bundle["entry"]:
            text = str(e["resource"])
            assert taro not in text
            assert TARO.family not in text
        assert HANAKO.family in client.get("/me").text

    def test_another_residents_consent_cannot_be_revoked_or_edited(
        self, client: TestClient, hanako: str, taro: str
    ) -> None:
        sign_in(client, taro)
        page = client.get("/me/sharing")
        client.post(
            "/me/sharing",
            data={
                "csrf_token": csrf_of(page.text),
                "recipient": "org_kind:clinic",
                "purpose": "TREAT",
            },
        )
        taro_consent = re.search(
            r'action="/me/sharing/([^/"]+)/revoke"', client.get("/me/sharing").text
        )
        assert taro_consent
        consent_id = taro_consent.group(1)
        client.cookies.clear()
        sign_in(client, hanako)
        token = csrf_of(client.get("/me/sharing").text)
        r = client.post(f"/me/sharing/{consent_id}/revoke", data={"csrf_token": token})
        assert r.status_code == 404
        edit = client.get(f"/me/sharing/{consent_id}/edit", follow_redirects=False)
        assert edit.status_code == 303
        client.cookies.clear()
        sign_in(client, taro)
        assert f'action="/me/sharing/{consent_id}/revoke"' in client.get("/me/sharing").text
