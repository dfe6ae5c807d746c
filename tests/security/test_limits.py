"""Brute force: after a few failed sign-ins (staff password or one-time code, card and
demo card, trusted person, OAuth client secret) the account and then the address are
locked out — 429 with ``Retry-After``, even for the right credentials — until the window
ends; identification lookups at the scene are limited per paramedic across incidents.

The limits are lowered here (settings) so that the tests stay short; the counting is the
same as in production, in the database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import phr.security.limiter as limiter_module
from phr.security.limiter import Counter
from phr.security.models import RateLimitWindow
from phr.settings import reset_settings_cache
from phr.store.indexer import utcnow
from tests.conftest import OrgFactory
from tests.consent.identity.conftest import challenge
from tests.consent.staff.conftest import StaffFactory
from tests.emergency.test_flow import BASE, HANAKO, open_incident

PER_ACCOUNT, PER_ADDRESS, WINDOW = 3, 6, 600


@pytest.fixture(autouse=True)
def low_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PHR_SIGNIN_FAILURES_PER_ACCOUNT", str(PER_ACCOUNT))
    monkeypatch.setenv("PHR_SIGNIN_FAILURES_PER_ADDRESS", str(PER_ADDRESS))
    monkeypatch.setenv("PHR_SIGNIN_WINDOW_SECONDS", str(WINDOW))
    monkeypatch.setenv("PHR_LOOKUPS_PER_ACTOR", "3")
    reset_settings_cache()
    yield
    monkeypatch.undo()
    reset_settings_cache()


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Move the limiter's clock forward."""

    def move(seconds: int) -> None:
        at = utcnow() + timedelta(seconds=seconds)
        monkeypatch.setattr(limiter_module, "utcnow", lambda: at)

    return move


def throttled(r: Any) -> None:
    assert r.status_code == 429, (r.status_code, r.text[:300])
    assert 0 < int(r.headers["retry-after"]) <= WINDOW
    assert r.json()["error"] == "too_many_attempts"


class TestStaffSignIn:
    def test_wrong_passwords_and_codes_lock_the_account_with_429_then_the_window_ends(
        self, client: TestClient, make_staff: StaffFactory, later: Callable[[int], None]
    ) -> None:
        account = make_staff("h-limit", "tanaka", "doctor")
        wrong = [{"password": "wrong horse battery"}, {"totp": "000000"}, {"password": "x" * 12}]
        for overrides in wrong:
            r = client.post("/auth/staff/login", json=account.login_body(**overrides))
            assert r.status_code == 401
        throttled(client.post("/auth/staff/login", json=account.login_body()))
        later(WINDOW)
        # The account lock of the staff service itself (5 failures) was not reached.
        assert client.post("/auth/staff/login", json=account.login_body()).status_code == 200

    def test_failures_on_many_accounts_lock_the_address(
        self, client: TestClient, make_staff: StaffFactory
    ) -> None:
        for i in range(PER_ADDRESS):
            body = {"organization_id": "h-x", "username": f"user{i}", "password": "p" * 12}
            r = client.post("/auth/staff/login", json={**body, "totp": "123456"})
            assert r.status_code == 401
        account = make_staff("h-limit", "suzuki", "nurse")
        throttled(client.post("/auth/staff/login", json=account.login_body()))

    def test_form_sign_in_failures_count_too(
        self, client: TestClient, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h-limit", "ito", "doctor")
        for _ in range(PER_ACCOUNT):
            body = account.login_body(password="wrong horse battery", next="/x")
            assert client.post("/auth/staff/login", data=body).status_code == 401
        throttled(client.post("/auth/staff/login", data=account.login_body(next="/x")))


class TestCardSignIn:
    def test_refused_cards_lock_the_address(
        self, client: TestClient, resident: Callable[..., str], issue: Callable[..., Any]
    ) -> None:
        card = issue(resident("r-limit"))
        for _ in range(PER_ADDRESS):
            r = client.post("/auth/card/verify", json=card.answer(challenge(client), tamper=True))
            assert r.status_code == 401
        throttled(client.post("/auth/card/verify", json=card.answer(challenge(client))))

    def test_guessing_demo_cards_locks_the_address(
        self, client: TestClient, resident: Callable[..., str], issue: Callable[..., Any]
    ) -> None:
        issue(resident("r-limit-demo"))
        page = client.get("/auth/card/demo")
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        for i in range(PER_ADDRESS):
            r = client.post(f"/auth/card/demo/nobody-{i}", data={"csrf_token": csrf})
            assert r.status_code == 404
        throttled(client.post("/auth/card/demo/nobody-x", data={"csrf_token": csrf}))


class TestTrustedPersonSignIn:
    def test_wrong_passphrases_lock_the_login(self, client: TestClient) -> None:
        body = {"login": "someone@example.jp", "passphrase": "not the passphrase"}
        for _ in range(PER_ACCOUNT):
            assert client.post("/api/acp/trusted/sign-in", json=body).status_code == 401
        throttled(client.post("/api/acp/trusted/sign-in", json=body))

    def test_guessing_invitation_codes_is_limited(self, client: TestClient) -> None:
        for i in range(PER_ACCOUNT):
            body = {
                "code": f"GUESS-{i:04d}",
                "login": "guesser@example.jp",
                "passphrase": "a long passphrase",
                "name": "誰か",
            }
            r = client.post("/api/acp/trusted/accept", json=body)
            assert r.status_code == 404, r.text
        throttled(client.post("/api/acp/trusted/accept", json=body))

    def test_the_sign_in_page_is_limited_too(self, client: TestClient) -> None:
        page = client.get("/acp/trusted/signin")
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        form = {"csrf_token": csrf, "login": "someone@example.jp", "passphrase": "wrong one"}
        for _ in range(PER_ACCOUNT):
            assert client.post("/acp/trusted/signin", data=form).status_code == 401
        throttled(client.post("/acp/trusted/signin", data=form))


class TestClientSecret:
    def test_wrong_secrets_lock_the_client_even_for_the_right_secret(
        self, client: TestClient, make_org: OrgFactory
    ) -> None:
        org = make_org("clinic-limit", "clinic")
        form = {"grant_type": "client_credentials"}
        for _ in range(PER_ACCOUNT):
            r = client.post("/oauth/token", data=form, auth=(org["client_id"], "wrong"))
            assert r.status_code == 401
        throttled(client.post("/oauth/token", data=form, auth=(org["client_id"], org["secret"])))
        # another client from elsewhere is not affected by this client's lock ...
        other = make_org("clinic-limit-2", "clinic")
        r = client.post("/oauth/token", data=form, auth=(other["client_id"], other["secret"]))
        assert r.status_code == 200


class TestIdentification:
    def test_a_paramedic_cannot_sweep_the_register_by_opening_new_incidents(
        self,
        client: TestClient,
        make_org: OrgFactory,
        pias: None,
    ) -> None:
        ems = make_org("fire-limit", "ems")
        for _ in range(3):
            incident = open_incident(client, ems)
            r = client.post(
                f"{BASE}/{incident}/identify/demographic", json=HANAKO, headers=ems["headers"]
            )
            assert r.status_code == 200, r.text
        incident = open_incident(client, ems)
        throttled(
            client.post(
                f"{BASE}/{incident}/identify/demographic", json=HANAKO, headers=ems["headers"]
            )
        )


class TestTheCounters:
    def test_windows_are_fixed_and_retry_after_counts_down_to_their_end(self) -> None:
        c = Counter("x", "y", 3, 600)
        start, left = c.window(datetime(2026, 1, 1, 0, 7, 30))
        assert start == datetime(2026, 1, 1, 0, 0) and left == 150
        assert c.window(datetime(2026, 1, 1, 0, 10))[0] == datetime(2026, 1, 1, 0, 10)

    def test_nothing_counted_is_kept_in_clear(self, client: TestClient, session: Session) -> None:
        body = {"login": "secret-login@example.jp", "passphrase": "not the passphrase"}
        client.post("/api/acp/trusted/sign-in", json=body)
        session.expire_all()
        keys = list(session.scalars(select(RateLimitWindow.key)))
        assert len(keys) == 2 and all("secret" not in k and "testclient" not in k for k in keys)
        assert session.scalar(select(func.sum(RateLimitWindow.count))) == 2
