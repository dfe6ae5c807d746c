"""Staff through the OpenID Connect provider: the resolver seam and the code flow.

Skipped when the provider does not offer its hooks (it is built alongside).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.identity import oidc
from consent.staff import endpoints
from consent.staff.service import update_staff
from phr.errors import NotAuthenticated

from .conftest import StaffFactory

REDIRECT = "http://localhost:8765/callback"


def test_the_staff_resolver_is_registered_with_the_provider() -> None:
    assert endpoints.OIDC_RESOLVER_REGISTERED


def test_a_staff_member_signed_in_here_is_who_the_provider_sees(
    client: TestClient, make_staff: StaffFactory
) -> None:
    account = make_staff("ems1", "yamada", "paramedic", kind="ems")
    assert client.get("/auth/session").status_code == 401
    assert client.post("/auth/staff/login", json=account.login_body()).status_code == 200
    r = client.get("/auth/session")
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["kind"] == "staff"
    assert seen["sub"] == account.user.id


def test_a_staff_member_gets_user_tokens_through_the_authorization_code_flow(
    client: TestClient, session: Session, make_staff: StaffFactory
) -> None:
    app, _ = oidc.register_app_client(
        session,
        name="救急隊タブレット",
        redirect_uris=[REDIRECT],
        public=True,
        scopes=["openid", "fhirUser", "user/*.rs"],
    )
    account = make_staff("ems1", "yamada", "paramedic", kind="ems")
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid fhirUser user/*.rs",
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    # Not signed in: the provider sends the browser to a sign-in page.
    r = client.get("/oauth/authorize", params=params, follow_redirects=False)
    assert r.status_code == 303
    assert client.post("/auth/staff/login", json=account.login_body()).status_code == 200

    page = client.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    fields = [
        (html.unescape(n), html.unescape(v))
        for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
    ]
    r = client.post(
        "/oauth/authorize",
        content=urlencode([*fields, ("decision", "approve")]),
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert r.status_code in (302, 303), r.text
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert query["state"] == ["s1"]

    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT,
            "client_id": app.client_id,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    from consent.identity.oauth import decode_access_token

    actor = decode_access_token(session, token.json()["access_token"])
    assert actor.kind == "staff"
    assert actor.user_id == account.user.id
    assert actor.organization_id == "ems1"
    assert actor.organization_kind == "ems"
    assert actor.role == "paramedic"
    assert "user/*.rs" in actor.scopes

    # Disabling the account stops the tokens its apps hold.
    update_staff(session, account.user, active=False)
    with pytest.raises(NotAuthenticated):
        decode_access_token(session, token.json()["access_token"])
