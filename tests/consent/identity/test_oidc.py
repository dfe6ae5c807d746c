"""The OpenID Connect provider: authorization code + PKCE, tokens, refresh, revocation."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.actors import Actor
from consent.identity import keys, oauth, oidc
from consent.identity.clients import register_organization
from consent.identity.models import AuthorizationCode, TokenFamily
from consent.identity.oauth import SignedInUser
from phr.errors import NotAuthenticated
from phr.store.indexer import utcnow

from .conftest import REDIRECT_URI, Card, csrf_from, hidden_fields, pkce_pair, sign_in

Issue = Callable[..., Card]
MakeResident = Callable[..., str]
APP_SCOPES = ["openid", "fhirUser", "profile", "launch/patient", "patient/*.rs", "offline_access"]


@pytest.fixture
def app_client(session: Session) -> dict[str, Any]:
    row, secret = oidc.register_app_client(
        session,
        name="すこやかアプリ",
        redirect_uris=[REDIRECT_URI, "http://127.0.0.1:8765/cb"],
        public=True,
        scopes=APP_SCOPES,
    )
    session.commit()
    assert secret is None
    return {"client_id": row.client_id}


@pytest.fixture
def signed_in(client: TestClient, resident: MakeResident, issue: Issue) -> Callable[[str], str]:
    """Sign a resident in on the test browser with their card."""

    def make(rid: str) -> str:
        resident(rid, "筑波", "一郎" if rid.endswith("a") else "二郎")
        r = sign_in(client, issue(rid))
        assert r.status_code == 200, r.text
        return rid

    return make


def authorize_params(client_id: str, challenge: str, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": " ".join(APP_SCOPES),
        "state": "st-123",
        "nonce": secrets.token_urlsafe(8),  # a nonce seen before is refused (replay)
        "aud": "http://testserver/fhir",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return {k: v for k, v in params.items() if v != ""}


def approve(client: TestClient, params: dict[str, str], decision: str = "approve") -> Any:
    """Open the consent screen and press a button; returns the redirect to the app."""
    page = client.get("/oauth/authorize", params=params, follow_redirects=False)
    assert page.status_code == 200, page.text
    fields = hidden_fields(page.text)
    form = [(k, v) for k, v in fields if k != "csrf_token"]
    form += [("csrf_token", csrf_from(page.text)), ("decision", decision)]
    return client.post("/oauth/authorize", data=dict(form), follow_redirects=False)


def code_from(response: Any) -> str:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["st-123"]
    return query["code"][0]


def exchange(client: TestClient, client_id: str, code: str, verifier: str, **extra: str) -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    form.update(extra)
    return client.post("/oauth/token", data={k: v for k, v in form.items() if v != ""})


def tokens_for(client: TestClient, client_id: str, **extra: str) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    code = code_from(approve(client, authorize_params(client_id, challenge, **extra)))
    r = exchange(client, client_id, code, verifier)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestTheAuthorizationCodeFlow:
    def test_a_resident_signs_in_approves_the_app_and_reads_only_their_own_record(
        self,
        client: TestClient,
        app_client: dict[str, Any],
        resident: MakeResident,
        issue: Issue,
    ) -> None:
        hanako = resident("r-hanako", "筑波", "花子")
        resident("r-taro", "土浦", "太郎")
        card = issue(hanako)
        verifier, challenge = pkce_pair()
        params = authorize_params(app_client["client_id"], challenge)

        # Not signed in: off to the card sign-in page, with the way back.
        first = client.get("/oauth/authorize", params=params, follow_redirects=False)
        assert first.status_code == 303
        sign_in_page = urlsplit(first.headers["location"])
        assert sign_in_page.path == "/auth/card"
        return_to = parse_qs(sign_in_page.query)["return_to"][0]
        assert return_to.startswith("/oauth/authorize?")
        assert client.get(first.headers["location"]).status_code == 200

        assert sign_in(client, card).status_code == 200
        consent = client.get(return_to)
        assert consent.status_code == 200
        assert "すこやかアプリ" in consent.text and "patient/*.rs" in consent.text

        code = code_from(approve(client, params))
        r = exchange(client, app_client["client_id"], code, verifier)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"] == "Bearer" and body["patient"] == hanako
        assert set(body["scope"].split()) == set(APP_SCOPES)
        assert body["refresh_token"] and body["id_token"]
        assert r.headers["cache-control"] == "no-store"

        access = jwt.decode(body["access_token"], keys.signing_key().key).claims
        assert access["sub"] == hanako and access["fhirUser"] == f"Patient/{hanako}"
        assert access["aud"] == "http://testserver/fhir" and access["sid"]

        own = client.get(f"/fhir/Patient/{hanako}", headers=bearer(body["access_token"]))
        assert own.status_code == 200, own.text
        assert own.json()["name"][0]["given"] == ["花子"]
        other = client.get("/fhir/Patient/r-taro", headers=bearer(body["access_token"]))
        assert other.status_code == 404

    def test_the_id_token_is_es256_for_the_app_and_verifies_with_the_jwks(
        self, client: TestClient, app_client: dict[str, Any], signed_in: Callable[[str], str]
    ) -> None:
        rid = signed_in("r-idtoken")
        body = tokens_for(client, app_client["client_id"], nonce="n-456")
        jwks = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
        token = jwt.decode(body["id_token"], jwks, algorithms=["ES256"])
        assert token.header["alg"] == "ES256" and token.header["kid"] == keys.signing_key().kid
        claims = token.claims
        assert claims["iss"] == "http://testserver"
        assert claims["aud"] == app_client["client_id"]
        assert claims["sub"] == rid and claims["fhirUser"] == f"Patient/{rid}"
        assert claims["nonce"] == "n-456" and claims["at_hash"] and claims["auth_time"]
        assert claims["sid"] == jwt.decode(body["access_token"], jwks).claims["sid"]

    def test_userinfo_tells_the_app_who_signed_in(
        self, client: TestClient, app_client: dict[str, Any], signed_in: Callable[[str], str]
    ) -> None:
        rid = signed_in("r-userinfo")
        body = tokens_for(client, app_client["client_id"])
        info = client.get("/oauth/userinfo", headers=bearer(body["access_token"]))
        assert info.status_code == 200
        assert info.json() == {"sub": rid, "fhirUser": f"Patient/{rid}", "name": "筑波 二郎"}

    def test_the_decoded_token_is_the_resident_actor(
        self,
        client: TestClient,
        session: Session,
        app_client: dict[str, Any],
        signed_in: Callable[[str], str],
    ) -> None:
        rid = signed_in("r-actor")
        body = tokens_for(client, app_client["client_id"])
        assert oauth.decode_access_token(session, body["access_token"]) == Actor(
            kind="resident",
            resident_id=rid,
            client_id=app_client["client_id"],
            scopes=frozenset(APP_SCOPES),
        )

    def test_denying_sends_access_denied_back_to_the_app(
        self, client: TestClient, app_client: dict[str, Any], signed_in: Callable[[str], str]
    ) -> None:
        signed_in("r-deny")
        _, challenge = pkce_pair()
        r = approve(client, authorize_params(app_client["client_id"], challenge), "deny")
        assert r.status_code == 302
        query = parse_qs(urlsplit(r.headers["location"]).query)
        assert query["error"] == ["access_denied"] and query["state"] == ["st-123"]

    def test_the_consent_form_needs_its_csrf_token(
        self, client: TestClient, app_client: dict[str, Any], signed_in: Callable[[str], str]
    ) -> None:
        signed_in("r-csrf")
        _, challenge = pkce_pair()
        form = {**authorize_params(app_client["client_id"], challenge), "decision": "approve"}
        assert client.post("/oauth/authorize", data=form).status_code == 403
        form["csrf_token"] = "forged-token-forged-token-forged-token-xxxx"
        assert client.post("/oauth/authorize", data=form).status_code == 403


class TestWhatTheFlowRefuses:
    def test_a_public_app_without_pkce_is_refused(
        self, client: TestClient, app_client: dict[str, Any], signed_in: Callable[[str], str]
    ) -> None:
        signed_in("r-nopkce")
        params = authorize_params(app_client["client_id"], "", code_challenge_method="")
        r = client.get("/oauth/authorize", params=params, follow_redirects=False)
        assert r.status_code == 302
        query = parse_qs(urlsplit(r.headers["location"]).query)
        assert query["error"] == ["invalid_request"] and "PKCE" in query["error_description"][0]

    def test_the_plain_pkce_method_is_refused(
        self, client: TestClient, app_client: dict[str, Any], signed_in: Callable[[str], str]
    ) -> None:
        signed_in("r-plain")
        verifier, _ = pkce_pair()
        params = authorize_params(app_client["client_id"], verifier, code_challenge_method="plain")
        r = client.get("/oauth/authorize", params=params, follow_redirects=False)
        assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == ["invalid_request"]

    def test_a_missing_or_wrong_code_verifier_is_refused(
        self, client: TestClient, app_client: dict[str, Any], signed_in: Callable[[str], str]
    ) -> None:
        signed_in("r-verifier")
        verifier, challenge = pkce_pair()
        client_id = app_client["client_id"]
        missing_code = code_from(approve(client, authorize_params(client_id, challenge)))
        missing = exchange(client, client_id, missing_code, "")
        assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
        wrong_verifier, _ = pkce_pair()
        code = code_from(approve(client, authorize_params(client_id, challenge)))
        wrong = exchange(client, app_client["client_id"], code, wrong_verifier)
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
        # The code is spent even though the exchange failed.
        again = exchange(client, app_client["client_id"], code, verifier)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    def test_an_unregistered_redirect_uri_is_refused_without_redirecting(
        self, client: TestClient, app_client: dict[str, Any], signed_in: Callable[[str], str]
    ) -> None:
        signed_in("r-redirect")
        _, challenge = pkce_pair()
        for uri in ("https://evil.example/callback", REDIRECT_URI + "/", REDIRECT_URI + "?x=1"):
            params = authorize_params(app_client["client_id"], challenge, redirect_uri=uri)
            r = client.get("/oauth/authorize", params=params, follow_redirects=False)
            assert r.status_code == 400 and "location" not in r.headers
            assert "invalid_request" in r.text

    def test_a_different_redirect_uri_at_the_token_endpoint_is_refused(
        self, client: TestClient, app_client: dict[str, Any], signed_in: Callable[[str], str]
    ) -> None:
        signed_in("r-redirect2")
        verifier, challenge = pkce_pair()
        code = code_from(approve(client, authorize_params(app_client["client_id"], challenge)))
        r = exchange(
            client, app_client["client_id"], code, verifier, redirect_uri="http://127.0.0.1:8765/cb"
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

    def test_a_code_used_twice_is_refused_and_revokes_its_tokens(
        self, client: TestClient, app_client: dict[str, Any], signed_in: Callable[[str], str]
    ) -> None:
        rid = signed_in("r-twice")
        verifier, challenge = pkce_pair()
        code = code_from(approve(client, authorize_params(app_client["client_id"], challenge)))
        first = exchange(client, app_client["client_id"], code, verifier)
        assert first.status_code == 200
        access = first.json()["access_token"]
        assert client.get(f"/fhir/Patient/{rid}", headers=bearer(access)).status_code == 200
        second = exchange(client, app_client["client_id"], code, verifier)
        assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
        assert client.get(f"/fhir/Patient/{rid}", headers=bearer(access)).status_code == 401

    def test_a_code_older_than_sixty_seconds_is_refused(
        self,
        client: TestClient,
        session: Session,
        app_client: dict[str, Any],
        signed_in: Callable[[str], str],
    ) -> None:
        signed_in("r-slow")
        verifier, challenge = pkce_pair()
        code = code_from(approve(client, authorize_params(app_client["client_id"], challenge)))
        row = session.scalars(select(AuthorizationCode)).one()
        assert row.expires_at - row.created_at == timedelta(seconds=60)
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
        r = exchange(client, app_client["client_id"], code, verifier)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

    def test_a_code_is_bound_to_its_app(
        self,
        client: TestClient,
        session: Session,
        app_client: dict[str, Any],
        signed_in: Callable[[str], str],
    ) -> None:
        signed_in("r-bound")
        other, _ = oidc.register_app_client(
            session, name="other", redirect_uris=[REDIRECT_URI], public=True, scopes=APP_SCOPES
        )
        session.commit()
        verifier, challenge = pkce_pair()
        code = code_from(approve(client, authorize_params(app_client["client_id"], challenge)))
        r = exchange(client, other.client_id, code, verifier)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

    def test_a_scope_the_app_was_not_registered_for_is_refused(
        self, client: TestClient, app_client: dict[str, Any], signed_in: Callable[[str], str]
    ) -> None:
        signed_in("r-scope")
        _, challenge = pkce_pair()
        params = authorize_params(app_client["client_id"], challenge, scope="openid system/*.rs")
        r = client.get("/oauth/authorize", params=params, follow_redirects=False)
        assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == ["invalid_scope"]

    def test_a_token_request_for_another_fhir_server_is_refused(
        self, client: TestClient, app_client: dict[str, Any], signed_in: Callable[[str], str]
    ) -> None:
        signed_in("r-aud")
        _, challenge = pkce_pair()
        params = authorize_params(
            app_client["client_id"], challenge, aud="https://other.example/fhir"
        )
        r = client.get("/oauth/authorize", params=params, follow_redirects=False)
        assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == ["invalid_request"]

    def test_an_unknown_app_is_told_to_the_person_not_redirected(
        self, client: TestClient, signed_in: Callable[[str], str]
    ) -> None:
        signed_in("r-unknownapp")
        _, challenge = pkce_pair()
        r = client.get(
            "/oauth/authorize", params=authorize_params("nobody", challenge), follow_redirects=False
        )
        assert r.status_code == 400 and "location" not in r.headers

    def test_return_to_never_leaves_the_site(self, client: TestClient) -> None:
        page = client.get("/auth/card", params={"return_to": "https://evil.example/x"})
        assert "evil.example" not in page.text
        page = client.get("/auth/card", params={"return_to": "//evil.example/x"})
        assert "evil.example" not in page.text


class TestRefreshAndRevocation:
    def test_a_refresh_token_rotates_and_the_old_one_is_refused(
        self, client: TestClient, app_client: dict[str, Any], signed_in: Callable[[str], str]
    ) -> None:
        rid = signed_in("r-rotate")
        first = tokens_for(client, app_client["client_id"])
        form = {"grant_type": "refresh_token", "client_id": app_client["client_id"]}
        r = client.post("/oauth/token", data={**form, "refresh_token": first["refresh_token"]})
        assert r.status_code == 200, r.text
        second = r.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert second["patient"] == rid and "id_token" not in second
        assert client.get(f"/fhir/Patient/{rid}", headers=bearer(second["access_token"])).is_success

        # The rotated token comes back: refused, and the whole family is revoked.
        replay = client.post("/oauth/token", data={**form, "refresh_token": first["refresh_token"]})
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        latest = client.post(
            "/oauth/token", data={**form, "refresh_token": second["refresh_token"]}
        )
        assert latest.status_code == 400
        assert (
            client.get(f"/fhir/Patient/{rid}", headers=bearer(second["access_token"])).status_code
            == 401
        )

    def test_a_refresh_can_narrow_but_not_widen_the_scope(
        self, client: TestClient, app_client: dict[str, Any], signed_in: Callable[[str], str]
    ) -> None:
        signed_in("r-narrow")
        tokens = tokens_for(client, app_client["client_id"])
        form = {
            "grant_type": "refresh_token",
            "client_id": app_client["client_id"],
            "refresh_token": tokens["refresh_token"],
        }
        wide = client.post("/oauth/token", data={**form, "scope": "patient/*.cruds"})
        assert wide.status_code == 400 and wide.json()["error"] == "invalid_scope"
        narrow = client.post("/oauth/token", data={**form, "scope": "patient/*.rs offline_access"})
        assert narrow.status_code == 200 and narrow.json()["scope"] == "patient/*.rs offline_access"

    def test_a_revoked_refresh_token_cannot_refresh_and_its_access_tokens_stop(
        self, client: TestClient, app_client: dict[str, Any], signed_in: Callable[[str], str]
    ) -> None:
        rid = signed_in("r-revoke")
        tokens = tokens_for(client, app_client["client_id"])
        r = client.post(
            "/oauth/revoke",
            data={
                "token": tokens["refresh_token"],
                "token_type_hint": "refresh_token",
                "client_id": app_client["client_id"],
            },
        )
        assert r.status_code == 200, r.text
        refresh = client.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "client_id": app_client["client_id"],
                "refresh_token": tokens["refresh_token"],
            },
        )
        assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
        gone = client.get(f"/fhir/Patient/{rid}", headers=bearer(tokens["access_token"]))
        assert gone.status_code == 401 and "revoked" in gone.json()["issue"][0]["diagnostics"]

    def test_revoking_an_access_token_revokes_its_family(
        self,
        client: TestClient,
        session: Session,
        app_client: dict[str, Any],
        signed_in: Callable[[str], str],
    ) -> None:
        signed_in("r-revoke-at")
        tokens = tokens_for(client, app_client["client_id"])
        r = client.post(
            "/oauth/revoke",
            data={"token": tokens["access_token"], "client_id": app_client["client_id"]},
        )
        assert r.status_code == 200
        family = session.scalars(select(TokenFamily)).one()
        session.refresh(family)
        assert family.revoked_at is not None and family.revoked_reason == "revoked"

    def test_revoking_an_unknown_token_answers_200(
        self, client: TestClient, app_client: dict[str, Any]
    ) -> None:
        r = client.post(
            "/oauth/revoke", data={"token": "nonsense", "client_id": app_client["client_id"]}
        )
        assert r.status_code == 200

    def test_an_app_cannot_revoke_another_apps_token(
        self,
        client: TestClient,
        session: Session,
        app_client: dict[str, Any],
        signed_in: Callable[[str], str],
    ) -> None:
        rid = signed_in("r-other-app")
        tokens = tokens_for(client, app_client["client_id"])
        other, _ = oidc.register_app_client(
            session, name="other", redirect_uris=[REDIRECT_URI], public=True, scopes=APP_SCOPES
        )
        session.commit()
        r = client.post(
            "/oauth/revoke", data={"token": tokens["refresh_token"], "client_id": other.client_id}
        )
        assert r.status_code == 400
        assert client.get(f"/fhir/Patient/{rid}", headers=bearer(tokens["access_token"])).is_success


class TestUserTokens:
    def _family(self, session: Session, resident: MakeResident) -> tuple[TokenFamily, SignedInUser]:
        rid = resident("r-token")
        row, _ = oidc.register_app_client(
            session, name="t", redirect_uris=[REDIRECT_URI], public=True, scopes=APP_SCOPES
        )
        family = TokenFamily(
            id="fam-1",
            client_id=row.client_id,
            scope="openid patient/*.rs",
            subject_kind="resident",
            subject_id=rid,
            resident_id=rid,
            auth_time=utcnow(),
            created_at=utcnow(),
        )
        session.add(family)
        session.flush()
        return family, SignedInUser(kind="resident", id=rid, resident_id=rid)

    def _rejection(self, session: Session, token: str) -> str:
        with pytest.raises(NotAuthenticated) as caught:
            oauth.decode_access_token(session, token)
        return caught.value.message

    def _claims(self, token: str) -> dict[str, Any]:
        return dict(jwt.decode(token, keys.signing_key().key).claims)

    def _sign(
        self, claims: dict[str, Any], key: ECKey | None = None, kid: str | None = None
    ) -> str:
        signing = keys.signing_key()
        header = {"alg": "ES256", "kid": kid or signing.kid, "typ": "at+jwt"}
        return jwt.encode(header, claims, key or signing.key)

    def test_an_expired_user_token_is_rejected(
        self, session: Session, resident: MakeResident
    ) -> None:
        family, user = self._family(session, resident)
        issued = oauth.issue_user_tokens(
            session,
            family=family,
            user=user,
            scope=family.scope,
            include_refresh=False,
            now=int(time.time()) - 3600,
        )
        assert self._rejection(session, issued["access_token"]) == "access token expired"

    def test_a_user_token_for_another_audience_is_rejected(
        self, session: Session, resident: MakeResident
    ) -> None:
        family, user = self._family(session, resident)
        issued = oauth.issue_user_tokens(
            session, family=family, user=user, scope=family.scope, include_refresh=False
        )
        claims = self._claims(issued["access_token"])
        claims["aud"] = "https://elsewhere.example/fhir"
        assert "audience" in self._rejection(session, self._sign(claims))

    def test_a_user_token_with_a_wrong_signature_is_rejected(
        self, session: Session, resident: MakeResident
    ) -> None:
        family, user = self._family(session, resident)
        issued = oauth.issue_user_tokens(
            session, family=family, user=user, scope=family.scope, include_refresh=False
        )
        claims = self._claims(issued["access_token"])
        forged = self._sign(claims, ECKey.generate_key("P-256"))
        assert self._rejection(session, forged) == "access token signature is invalid"

    def test_a_user_token_claiming_another_resident_is_rejected(
        self, session: Session, resident: MakeResident
    ) -> None:
        family, user = self._family(session, resident)
        issued = oauth.issue_user_tokens(
            session, family=family, user=user, scope=family.scope, include_refresh=False
        )
        claims = self._claims(issued["access_token"])
        claims.update(sub="r-someone", fhirUser="Patient/r-someone")
        assert "inconsistent" in self._rejection(session, self._sign(claims))

    def test_a_revoked_family_rejects_its_access_tokens(
        self, session: Session, resident: MakeResident
    ) -> None:
        family, user = self._family(session, resident)
        issued = oauth.issue_user_tokens(
            session, family=family, user=user, scope=family.scope, include_refresh=False
        )
        assert oauth.decode_access_token(session, issued["access_token"]).kind == "resident"
        assert (
            oauth.revoke_subject_grants(session, subject_kind="resident", subject_id=user.id) == 1
        )
        assert self._rejection(session, issued["access_token"]) == "access token was revoked"


@pytest.fixture
def staff_resolver(session: Session) -> Iterator[SignedInUser]:
    """A staff sign-in as the staff module will provide it (an outside seam)."""
    register_organization(session, id="tsukuba-clinic", name="つくば診療所", kind="clinic")
    session.commit()
    doctor = SignedInUser(
        kind="staff",
        id="dr-sato",
        organization_id="tsukuba-clinic",
        role="doctor",
        auth_time=utcnow(),
    )

    def resolver(request: Any, session: Session) -> SignedInUser | None:
        return doctor

    oidc.register_user_resolver(resolver)
    try:
        yield doctor
    finally:
        oidc.unregister_user_resolver(resolver)


class TestStaffSignInSeam:
    def test_a_staff_member_gets_tokens_with_org_role_and_practitioner(
        self, client: TestClient, session: Session, staff_resolver: SignedInUser
    ) -> None:
        row, secret = oidc.register_app_client(
            session,
            name="診療所ビューア",
            redirect_uris=[REDIRECT_URI],
            public=False,
            scopes=["openid", "fhirUser", "user/*.rs", "patient/*.rs"],
        )
        session.commit()
        assert secret
        verifier, challenge = pkce_pair()
        scope = "openid fhirUser user/*.rs patient/*.rs"
        code = code_from(approve(client, authorize_params(row.client_id, challenge, scope=scope)))
        # A confidential app authenticates: without its secret it gets nothing.
        anonymous = exchange(client, row.client_id, code, verifier)
        assert anonymous.status_code in (400, 401)
        code = code_from(approve(client, authorize_params(row.client_id, challenge, scope=scope)))
        r = client.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            auth=(row.client_id, secret),
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert "patient" not in body
        assert body["scope"] == "openid fhirUser user/*.rs"  # no patient context for staff
        id_claims = jwt.decode(body["id_token"], keys.signing_key().key).claims
        assert id_claims["sub"] == "dr-sato" and id_claims["fhirUser"] == "Practitioner/dr-sato"
        assert (id_claims["org"], id_claims["role"]) == ("tsukuba-clinic", "doctor")
        assert oauth.decode_access_token(session, body["access_token"]) == Actor(
            kind="staff",
            user_id="dr-sato",
            client_id=row.client_id,
            organization_id="tsukuba-clinic",
            organization_kind="clinic",
            role="doctor",
            scopes=frozenset({"openid", "fhirUser", "user/*.rs"}),
        )


class TestDiscovery:
    def test_the_openid_configuration_describes_the_provider(self, client: TestClient) -> None:
        config = client.get("/.well-known/openid-configuration").json()
        base = "http://testserver"
        assert config["issuer"] == base
        assert config["authorization_endpoint"] == f"{base}/oauth/authorize"
        assert config["token_endpoint"] == f"{base}/oauth/token"
        assert config["userinfo_endpoint"] == f"{base}/oauth/userinfo"
        assert config["revocation_endpoint"] == f"{base}/oauth/revoke"
        assert config["jwks_uri"] == f"{base}/.well-known/jwks.json"
        assert config["response_types_supported"] == ["code"]
        assert config["id_token_signing_alg_values_supported"] == ["ES256"]
        assert config["code_challenge_methods_supported"] == ["S256"]
        assert {"openid", "fhirUser", "launch/patient", "patient/*.rs", "offline_access"} <= set(
            config["scopes_supported"]
        )
        assert "none" in config["token_endpoint_auth_methods_supported"]

    def test_the_smart_configuration_advertises_the_standalone_launch(
        self, client: TestClient
    ) -> None:
        for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
            config = client.get(path).json()
            assert config["authorization_endpoint"] == "http://testserver/oauth/authorize"
            assert config["code_challenge_methods_supported"] == ["S256"]
            assert {
                "openid",
                "fhirUser",
                "launch/patient",
                "patient/*.rs",
                "offline_access",
            } <= set(config["scopes_supported"])
            assert {
                "launch-standalone",
                "client-public",
                "client-confidential-symmetric",
                "context-standalone-patient",
                "permission-patient",
                "permission-v2",
                "sso-openid-connect",
            } <= set(config["capabilities"])
            assert {"authorization_code", "refresh_token", "client_credentials"} == set(
                config["grant_types_supported"]
            )


class TestAppRegistration:
    def test_redirect_uris_must_be_https_loopback_or_a_private_scheme(
        self, session: Session
    ) -> None:
        from phr.errors import InvalidInput

        for uri in ("http://app.example/cb", "https://app.example/cb#frag", "javascript:alert(1)"):
            with pytest.raises(InvalidInput):
                oidc.register_app_client(
                    session, name="x", redirect_uris=[uri], public=True, scopes=["openid"]
                )
        row, _ = oidc.register_app_client(
            session,
            name="native",
            redirect_uris=["jp.tsukuba.phr:/oauth", "http://localhost:3000/cb"],
            public=True,
            scopes=["openid", "patient/Observation.rs"],
        )
        assert row.grant_types == "authorization_code"  # no offline_access: no refresh

    def test_apps_cannot_hold_system_scopes(self, session: Session) -> None:
        from phr.errors import InvalidInput

        with pytest.raises(InvalidInput):
            oidc.register_app_client(
                session, name="x", redirect_uris=[REDIRECT_URI], public=True, scopes=["system/*.rs"]
            )

    def test_the_consent_screen_describes_scopes_in_japanese_and_english(self) -> None:
        words = oidc.describe_scope("patient/Observation.rs")
        assert words["ja"] == "あなたの検査結果・バイタルの閲覧・検索"
        assert words["en"] == "read, search your test results and vital signs"
