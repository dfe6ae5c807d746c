"""Staff sign-in over HTTP and the registry (admin) API with its authorization matrix."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Response
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.identity.clients import register_organization
from consent.models import OAuthClient, Organization
from consent.staff import auth
from consent.staff.models import StaffSession, StaffUser
from consent.staff.service import SIGN_IN_FAILED
from phr.settings import reset_settings_cache

from .conftest import BrowserFactory, StaffFactory

LOGIN = "/auth/staff/login"


class TestLogin:
    def test_the_right_credentials_set_an_http_only_lax_cookie_and_answer_who_signed_in(
        self, client: TestClient, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        r = client.post(LOGIN, json=account.login_body())
        assert r.status_code == 200, r.text
        assert r.json() == {"id": account.user.id, "organization_id": "h1", "role": "doctor"}
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("phr_staff=")
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Secure" not in cookie  # base URL is http in the tests
        assert r.headers["cache-control"] == "no-store"
        me = client.get("/auth/staff/me")
        assert me.status_code == 200
        assert me.json()["username"] == "sato"

    def test_a_form_sign_in_works_too(self, client: TestClient, make_staff: StaffFactory) -> None:
        account = make_staff("h1", "sato", "doctor")
        r = client.post(LOGIN, data=account.login_body())
        assert r.status_code == 200
        assert r.json()["id"] == account.user.id

    def test_a_form_with_next_is_redirected_there_once_signed_in(
        self, client: TestClient, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        body = account.login_body(next="/oauth/authorize?client_id=x&state=1")
        r = client.post(LOGIN, data=body, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/oauth/authorize?client_id=x&state=1"

    def test_a_next_pointing_off_the_site_is_ignored(
        self, client: TestClient, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        body = account.login_body(next="//evil.example/steal")
        r = client.post(LOGIN, data=body, follow_redirects=False)
        assert r.status_code == 200
        assert "location" not in r.headers

    def test_the_sign_in_page_is_a_form_posting_back(self, client: TestClient) -> None:
        r = client.get(LOGIN, params={"next": "/oauth/authorize?x=1"})
        assert r.status_code == 200
        assert "name=totp" in r.text
        assert "value='/oauth/authorize?x=1'" in r.text

    @pytest.mark.parametrize(
        "wrong",
        [
            {"password": "wrong horse battery staple"},
            {"totp": "WRONG"},
            {"username": "nobody"},
            {"organization_id": "no-such-org"},
        ],
        ids=["wrong-password", "wrong-totp", "unknown-user", "unknown-organisation"],
    )
    def test_every_failure_is_the_same_generic_401(
        self, client: TestClient, make_staff: StaffFactory, wrong: dict[str, str]
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        body = account.login_body(**wrong)
        if body["totp"] == "WRONG":
            body["totp"] = "000000" if account.code() != "000000" else "000001"
        r = client.post(LOGIN, json=body)
        assert r.status_code == 401
        assert r.json() == {"error": "not_authenticated", "message": SIGN_IN_FAILED}
        assert "set-cookie" not in r.headers

    def test_a_code_used_once_is_refused_the_second_time(
        self, client: TestClient, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        body = account.login_body()
        assert client.post(LOGIN, json=body).status_code == 200
        assert client.post(LOGIN, json=body).status_code == 401
        assert client.post(LOGIN, json=account.login_body(totp=account.code(1))).status_code == 200

    def test_five_failures_lock_the_account_even_though_each_request_is_rolled_back(
        self, client: TestClient, session: Session, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        for _ in range(5):
            r = client.post(LOGIN, json=account.login_body(password="wrong horse battery"))
            assert r.status_code == 401
        session.expire_all()
        user = session.get(StaffUser, account.user.id)
        assert user is not None and user.locked_until is not None
        r = client.post(LOGIN, json=account.login_body())
        assert r.status_code == 401
        assert r.json()["message"] == SIGN_IN_FAILED

    def test_a_failed_form_sign_in_shows_the_form_again_and_still_counts(
        self, client: TestClient, session: Session, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        body = account.login_body(password="wrong horse battery", next="/somewhere")
        r = client.post(LOGIN, data=body)
        assert r.status_code == 401
        assert "<form" in r.text
        session.expire_all()
        user = session.get(StaffUser, account.user.id)
        assert user is not None and user.failed_attempts == 1

    def test_a_new_sign_in_replaces_the_session_of_the_browser(
        self, client: TestClient, session: Session, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        assert client.post(LOGIN, json=account.login_body()).status_code == 200
        first = client.cookies["phr_staff"]
        assert client.post(LOGIN, json=account.login_body(totp=account.code(1))).status_code == 200
        assert client.cookies["phr_staff"] != first
        session.expire_all()
        assert session.query(StaffSession).filter_by(staff_id=account.user.id).count() == 1

    def test_logout_ends_the_session(self, client: TestClient, make_staff: StaffFactory) -> None:
        account = make_staff("h1", "sato", "doctor")
        assert client.post(LOGIN, json=account.login_body()).status_code == 200
        token = client.cookies["phr_staff"]
        r = client.post("/auth/staff/logout")
        assert r.status_code == 204
        assert 'phr_staff=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
        client.cookies.set("phr_staff", token)  # a copy kept by someone does not work either
        assert client.get("/auth/staff/me").status_code == 401

    def test_a_request_that_is_neither_json_nor_a_form_is_refused(self, client: TestClient) -> None:
        r = client.post(LOGIN, content=b"x", headers={"content-type": "text/plain"})
        assert r.status_code == 415


class TestCookie:
    def test_the_cookie_is_secure_when_the_site_is_served_over_https(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PHR_BASE_URL", "https://phr.example.jp")
        reset_settings_cache()
        try:
            response = Response()
            auth.set_session_cookie(response, "token")
            assert "Secure" in response.headers["set-cookie"]
        finally:
            monkeypatch.undo()
            reset_settings_cache()


# --------------------------------------------------------------------------- admin API


class Registry:
    """Three organisations and their people: the platform, two hospitals."""

    def __init__(self, session: Session, make_staff: StaffFactory) -> None:
        self.platform_admin = make_staff("platform", "root", "administrator", kind="platform")
        self.a_admin = make_staff("hosp-a", "admin-a", "administrator")
        self.a_clerk = make_staff("hosp-a", "clerk-a", "clerk")
        self.b_admin = make_staff("hosp-b", "admin-b", "administrator")
        register_organization(session, id="hosp-a", name="A", kind="hospital")
        self.session = session

    def requests(self) -> dict[str, tuple[str, str, Any]]:
        """name -> (method, path, JSON body); each made with fresh names so it can succeed."""
        from consent.identity.clients import register_client

        client, _ = register_client(
            self.session, organization_id="hosp-a", name="EHR", scopes=["system/*.rs"]
        )
        a = "/api/admin/organizations/hosp-a"
        return {
            "list organisations": ("GET", "/api/admin/organizations", None),
            "create organisation": (
                "POST",
                "/api/admin/organizations",
                {"id": "clinic-new", "name": "新クリニック", "kind": "clinic"},
            ),
            "deactivate organisation": ("PATCH", a, {"active": False}),
            "list staff": ("GET", f"{a}/staff", None),
            "create staff": (
                "POST",
                f"{a}/staff",
                {"username": "new-nurse", "display_name": "看護師", "role": "nurse"},
            ),
            "change staff": ("PATCH", f"{a}/staff/{self.a_clerk.user.id}", {"role": "doctor"}),
            "list clients": ("GET", f"{a}/clients", None),
            "register client": (
                "POST",
                f"{a}/clients",
                {"name": "Lab", "scopes": ["system/Observation.rs"]},
            ),
            "deactivate client": ("DELETE", f"{a}/clients/{client.client_id}", None),
        }


@pytest.fixture
def registry(session: Session, make_staff: StaffFactory) -> Registry:
    return Registry(session, make_staff)


def statuses(c: TestClient, requests: dict[str, tuple[str, str, Any]]) -> dict[str, int]:
    out = {}
    for name, (method, path, body) in requests.items():
        out[name] = c.request(method, path, json=body).status_code
    return out


ALL = [
    "list organisations",
    "create organisation",
    "deactivate organisation",
    "list staff",
    "create staff",
    "change staff",
    "list clients",
    "register client",
    "deactivate client",
]
PLATFORM_ONLY = ["create organisation", "deactivate organisation"]
OK = {"GET": 200, "POST": 201, "PATCH": 200, "DELETE": 204}


class TestAdminAuthorization:
    def test_without_a_session_every_admin_route_answers_401(
        self, registry: Registry, browser: BrowserFactory
    ) -> None:
        requests = registry.requests()
        assert statuses(browser(None), requests) == {name: 401 for name in ALL}

    def test_a_clerk_gets_403_everywhere(self, registry: Registry, browser: BrowserFactory) -> None:
        requests = registry.requests()
        assert statuses(browser(registry.a_clerk), requests) == {name: 403 for name in ALL}

    def test_another_organisations_administrator_gets_403(
        self, registry: Registry, browser: BrowserFactory
    ) -> None:
        requests = registry.requests()
        got = statuses(browser(registry.b_admin), requests)
        assert got == {name: 200 if name == "list organisations" else 403 for name in ALL}

    def test_the_organisations_own_administrator_manages_its_staff_and_clients(
        self, registry: Registry, browser: BrowserFactory
    ) -> None:
        requests = registry.requests()
        got = statuses(browser(registry.a_admin), requests)
        expected = {name: OK[requests[name][0]] for name in ALL}
        expected.update({name: 403 for name in PLATFORM_ONLY})
        assert got == expected

    def test_a_platform_administrator_may_do_everything_everywhere(
        self, registry: Registry, browser: BrowserFactory
    ) -> None:
        requests = registry.requests()
        got = statuses(browser(registry.platform_admin), requests)
        assert got == {name: OK[requests[name][0]] for name in ALL}

    def test_an_organisations_administrator_sees_only_its_own_organisation(
        self, registry: Registry, browser: BrowserFactory
    ) -> None:
        ids = [o["id"] for o in browser(registry.a_admin).get("/api/admin/organizations").json()]
        assert ids == ["hosp-a"]
        everyone = browser(registry.platform_admin).get("/api/admin/organizations").json()
        assert {"platform", "hosp-a", "hosp-b"} <= {o["id"] for o in everyone}

    def test_a_session_of_a_deactivated_organisation_stops_working(
        self, registry: Registry, browser: BrowserFactory
    ) -> None:
        admin_a = browser(registry.a_admin)
        assert admin_a.get("/api/admin/organizations/hosp-a/staff").status_code == 200
        r = browser(registry.platform_admin).patch(
            "/api/admin/organizations/hosp-a", json={"active": False}
        )
        assert r.status_code == 200 and r.json()["active"] is False
        assert admin_a.get("/api/admin/organizations/hosp-a/staff").status_code == 401


class TestAdminStaff:
    def test_a_new_account_answers_its_initial_password_and_totp_uri_once(
        self, registry: Registry, browser: BrowserFactory
    ) -> None:
        admin = browser(registry.a_admin)
        r = admin.post(
            "/api/admin/organizations/hosp-a/staff",
            json={"username": "Tanaka", "display_name": "田中 花子", "role": "nurse"},
        )
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["username"] == "tanaka"
        assert created["initial_password"]
        assert created["totp_uri"].startswith("otpauth://totp/")
        assert r.headers["cache-control"] == "no-store"
        listed = admin.get("/api/admin/organizations/hosp-a/staff").json()
        tanaka = next(s for s in listed if s["username"] == "tanaka")
        assert "initial_password" not in tanaka and "totp_uri" not in tanaka
        assert "password_hash" not in tanaka and "totp_secret" not in tanaka

    def test_a_role_the_organisation_kind_does_not_have_is_refused(
        self, registry: Registry, browser: BrowserFactory
    ) -> None:
        r = browser(registry.a_admin).post(
            "/api/admin/organizations/hosp-a/staff",
            json={"username": "yamada", "display_name": "山田", "role": "paramedic"},
        )
        assert r.status_code == 400
        assert r.json()["error"] == "invalid_input"

    def test_resetting_totp_answers_a_new_uri_once_and_the_old_secret_stops_working(
        self,
        registry: Registry,
        browser: BrowserFactory,
        client: TestClient,
    ) -> None:
        clerk = registry.a_clerk
        old_code = clerk.code()
        r = browser(registry.a_admin).patch(
            f"/api/admin/organizations/hosp-a/staff/{clerk.user.id}", json={"reset_totp": True}
        )
        assert r.status_code == 200
        assert r.json()["totp_uri"].startswith("otpauth://totp/")
        assert r.json()["initial_password"] is None
        assert client.post(LOGIN, json=clerk.login_body(totp=old_code)).status_code == 401

    def test_staff_of_another_organisation_are_not_found_under_this_one(
        self, registry: Registry, browser: BrowserFactory
    ) -> None:
        r = browser(registry.platform_admin).patch(
            f"/api/admin/organizations/hosp-a/staff/{registry.b_admin.user.id}",
            json={"role": "clerk"},
        )
        assert r.status_code == 404


class TestAdminClients:
    def test_a_registered_client_gets_its_secret_once_and_then_a_token(
        self, registry: Registry, browser: BrowserFactory, client: TestClient
    ) -> None:
        admin = browser(registry.a_admin)
        r = admin.post(
            "/api/admin/organizations/hosp-a/clients",
            json={"name": "病院EHR", "scopes": ["system/Patient.rs"]},
        )
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["client_secret"]
        assert created["scopes"] == ["system/Patient.rs"]
        listed = admin.get("/api/admin/organizations/hosp-a/clients").json()
        assert all("client_secret" not in c for c in listed)
        assert created["client_id"] in {c["client_id"] for c in listed}

        token = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(created["client_id"], created["client_secret"]),
        )
        assert token.status_code == 200, token.text
        assert token.json()["scope"] == "system/Patient.rs"

    def test_deactivating_a_client_makes_its_token_stop_working(
        self, registry: Registry, browser: BrowserFactory, client: TestClient
    ) -> None:
        admin = browser(registry.a_admin)
        created = admin.post(
            "/api/admin/organizations/hosp-a/clients",
            json={"name": "EHR", "scopes": ["system/Patient.rs"]},
        ).json()
        token = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(created["client_id"], created["client_secret"]),
        ).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.get("/fhir/Patient", headers=bearer).status_code == 200

        r = admin.delete(f"/api/admin/organizations/hosp-a/clients/{created['client_id']}")
        assert r.status_code == 204
        assert client.get("/fhir/Patient", headers=bearer).status_code == 401
        listed = admin.get("/api/admin/organizations/hosp-a/clients").json()
        assert next(c for c in listed if c["client_id"] == created["client_id"])["active"] is False

    def test_invalid_scopes_are_refused(self, registry: Registry, browser: BrowserFactory) -> None:
        r = browser(registry.a_admin).post(
            "/api/admin/organizations/hosp-a/clients",
            json={"name": "EHR", "scopes": ["everything"]},
        )
        assert r.status_code == 400

    def test_a_client_of_another_organisation_cannot_be_deactivated_through_this_one(
        self, registry: Registry, browser: BrowserFactory, session: Session
    ) -> None:
        from consent.identity.clients import register_client

        other, _ = register_client(
            session, organization_id="hosp-b", name="B", scopes=["system/*.rs"]
        )
        r = browser(registry.a_admin).delete(
            f"/api/admin/organizations/hosp-a/clients/{other.client_id}"
        )
        assert r.status_code == 404
        session.expire_all()
        row = session.get(OAuthClient, other.client_id)
        assert row is not None and row.active


class TestAdminOrganizations:
    def test_an_existing_organisation_id_is_a_conflict(
        self, registry: Registry, browser: BrowserFactory
    ) -> None:
        r = browser(registry.platform_admin).post(
            "/api/admin/organizations", json={"id": "hosp-a", "name": "A", "kind": "hospital"}
        )
        assert r.status_code == 409

    def test_the_platform_organisation_cannot_be_deactivated(
        self, registry: Registry, browser: BrowserFactory, session: Session
    ) -> None:
        r = browser(registry.platform_admin).patch(
            "/api/admin/organizations/platform", json={"active": False}
        )
        assert r.status_code == 409
        session.expire_all()
        org = session.get(Organization, "platform")
        assert org is not None and org.active
