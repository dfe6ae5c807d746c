"""Client-credentials tokens, their verification, key rotation, and discovery."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import Engine

import consent.models  # noqa: F401 - registers the tables
import phr.store.models  # noqa: F401 - registers the tables
from consent.actors import Actor
from consent.identity import keys, oauth
from consent.identity.clients import (
    hash_secret,
    register_client,
    register_organization,
    verify_secret,
)
from consent.models import OAuthClient, Organization
from phr import db
from phr.db import Base, make_engine, set_engine, transaction
from phr.errors import Forbidden, InvalidInput, NotAuthenticated, PHRError
from phr.settings import ConfigurationError, Settings, get_settings, reset_settings_cache

CLIENT_ID = "tsukuba-central-ehr"
ORG_ID = "tsukuba-central-hospital"
SCOPES = ["system/Observation.rs", "system/Patient.rs"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("PHR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PHR_ENV", "test")
    for name in ("PHR_JWT_PRIVATE_KEY_FILE", "PHR_BASE_URL", "PHR_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    reset_settings_cache()
    keys.reset_key_cache()
    yield get_settings()
    reset_settings_cache()
    keys.reset_key_cache()


@pytest.fixture
def engine(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A throwaway SQLite database; the process-wide engine is restored afterwards."""
    engine = make_engine(settings)
    Base.metadata.create_all(engine)
    monkeypatch.setattr(db, "_engine", db._engine)
    monkeypatch.setattr(db, "_factory", db._factory)
    set_engine(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def secret(engine: Engine) -> str:
    with transaction() as session:
        register_organization(session, id=ORG_ID, name="筑波中央病院", kind="hospital")
        _, plaintext = register_client(
            session, organization_id=ORG_ID, name="EHR", scopes=SCOPES, client_id=CLIENT_ID
        )
    return plaintext


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    app = FastAPI()
    app.include_router(oauth.router)

    @app.exception_handler(PHRError)
    async def render(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PHRError)
        return JSONResponse(exc.json_body(), status_code=exc.status_code, headers=exc.headers)

    @app.get("/fhir/Observation")
    def search_observations(
        actor: Annotated[Actor, Depends(oauth.require_scope("Observation", "s"))],
    ) -> dict[str, Any]:
        return {"client": actor.client_id}

    @app.post("/fhir/Patient")
    def create_patient(actor: oauth.ActorDep) -> dict[str, Any]:
        oauth.check_scope(actor, "Patient", "c")
        return {}

    return app


@pytest.fixture
def http(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def get_token(http: TestClient, secret: str, **form: str) -> dict[str, Any]:
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", **form},
        headers=basic(CLIENT_ID, secret),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def decode(token: str) -> Actor:
    with transaction() as session:
        return oauth.decode_access_token(session, token)


def sign(claims: dict[str, Any], key: ECKey, kid: str, **header: str) -> str:
    return jwt.encode({"alg": "ES256", "kid": kid, "typ": "at+jwt", **header}, claims, key)


def good_claims(settings: Settings, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.base_url,
        "sub": CLIENT_ID,
        "aud": settings.base_url + "/fhir",
        "client_id": CLIENT_ID,
        "scope": " ".join(SCOPES),
        "jti": "test",
        "iat": now,
        "exp": now + 60,
        "org": ORG_ID,
        "org_kind": "hospital",
    }
    claims.update(overrides)
    return claims


def rejection(token: str) -> str:
    with pytest.raises(NotAuthenticated) as caught:
        decode(token)
    assert "invalid_token" in caught.value.headers["WWW-Authenticate"]
    return caught.value.message


# --------------------------------------------------------------------------- token endpoint


def test_a_registered_client_gets_a_bearer_token_for_all_its_scopes(
    http: TestClient, secret: str, settings: Settings
) -> None:
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(CLIENT_ID, secret),
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    assert set(body["scope"].split()) == set(SCOPES)
    assert body["access_token"].count(".") == 2


def test_client_secret_post_works_and_a_narrower_scope_can_be_asked(
    http: TestClient, secret: str
) -> None:
    response = http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": secret,
            "scope": "system/Patient.rs",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "system/Patient.rs"


def test_a_wrong_secret_is_rejected_with_401_invalid_client(http: TestClient, secret: str) -> None:
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(CLIENT_ID, secret + "x"),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


def test_an_unknown_client_is_rejected_with_invalid_client(http: TestClient, secret: str) -> None:
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic("nobody", secret),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_a_scope_the_client_was_not_registered_for_is_rejected_with_invalid_scope(
    http: TestClient, secret: str
) -> None:
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "system/Patient.rs system/*.cruds"},
        headers=basic(CLIENT_ID, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_an_unsupported_grant_type_is_rejected(http: TestClient, secret: str) -> None:
    response = http.post(
        "/oauth/token", data={"grant_type": "password"}, headers=basic(CLIENT_ID, secret)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_a_json_body_is_rejected_as_invalid_request(http: TestClient, secret: str) -> None:
    response = http.post(
        "/oauth/token",
        json={"grant_type": "client_credentials"},
        headers=basic(CLIENT_ID, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_two_client_authentication_methods_at_once_are_rejected(
    http: TestClient, secret: str
) -> None:
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_secret": secret},
        headers=basic(CLIENT_ID, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_deactivated_client_can_no_longer_get_tokens(http: TestClient, secret: str) -> None:
    with transaction() as session:
        row = session.get(OAuthClient, CLIENT_ID)
        assert row is not None
        row.active = False
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(CLIENT_ID, secret),
    )
    assert response.status_code == 401


# --------------------------------------------------------------------------- verification


def test_the_token_decodes_to_the_organization_actor(
    http: TestClient, secret: str, settings: Settings
) -> None:
    token = get_token(http, secret)["access_token"]
    assert decode(token) == Actor(
        kind="organization",
        client_id=CLIENT_ID,
        organization_id=ORG_ID,
        organization_kind="hospital",
        scopes=frozenset(SCOPES),
    )
    unverified = jwt.decode(token, keys.signing_key().key)
    assert unverified.header == {"alg": "ES256", "kid": keys.signing_key().kid, "typ": "at+jwt"}
    claims = unverified.claims
    assert claims["iss"] == settings.base_url
    assert claims["aud"] == settings.base_url + "/fhir"
    assert claims["sub"] == claims["client_id"] == CLIENT_ID
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl_seconds
    assert (claims["org"], claims["org_kind"]) == (ORG_ID, "hospital")
    assert claims["jti"]


def test_a_bearer_token_opens_routes_its_scopes_allow_and_no_others(
    http: TestClient, secret: str
) -> None:
    token = get_token(http, secret)["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert http.get("/fhir/Observation", headers=auth).json() == {"client": CLIENT_ID}
    denied = http.post("/fhir/Patient", headers=auth)
    assert denied.status_code == 403
    assert denied.json()["message"] == "scope does not allow c on Patient"


def test_a_request_without_a_bearer_token_is_unauthenticated(http: TestClient) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer garbage"}):
        response = http.get("/fhir/Observation", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_an_expired_token_is_rejected(secret: str, settings: Settings) -> None:
    with transaction() as session:
        client = session.get(OAuthClient, CLIENT_ID)
        org = session.get(Organization, ORG_ID)
        assert client is not None and org is not None
        issued = oauth.issue_access_token(client, org, SCOPES, now=int(time.time()) - 3600)
    assert rejection(issued["access_token"]) == "access token expired"


def test_a_token_signed_with_a_foreign_key_is_rejected(secret: str, settings: Settings) -> None:
    foreign = ECKey.generate_key("P-256")
    published_kid = keys.signing_key().kid
    forged = sign(good_claims(settings), foreign, published_kid)
    assert rejection(forged) == "access token signature is invalid"
    unknown = sign(good_claims(settings), foreign, "someone-elses-key")
    assert rejection(unknown) == "access token signed by an unknown key"


def test_a_token_for_another_audience_or_issuer_is_rejected(
    secret: str, settings: Settings
) -> None:
    key = keys.signing_key()
    other_aud = sign(good_claims(settings, aud="https://elsewhere.example/fhir"), key.key, key.kid)
    assert "audience" in rejection(other_aud)
    other_iss = sign(good_claims(settings, iss="https://elsewhere.example"), key.key, key.kid)
    assert "issuer" in rejection(other_iss)


def test_a_token_that_is_not_an_es256_access_token_is_rejected(
    secret: str, settings: Settings
) -> None:
    key = keys.signing_key()
    id_token_like = sign(good_claims(settings), key.key, key.kid, typ="JWT")
    assert "at+jwt" in rejection(id_token_like)
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(b'{"sub":"x"}').rstrip(b"=").decode()
    assert "ES256" in rejection(f"{header}.{payload}.")
    assert rejection("not-a-jwt") == "malformed access token"


def test_a_deactivated_clients_tokens_are_rejected(http: TestClient, secret: str) -> None:
    token = get_token(http, secret)["access_token"]
    with transaction() as session:
        row = session.get(OAuthClient, CLIENT_ID)
        assert row is not None
        row.active = False
    assert "no longer active" in rejection(token)


def test_scopes_withdrawn_from_a_client_no_longer_count_in_its_tokens(
    http: TestClient, secret: str
) -> None:
    token = get_token(http, secret)["access_token"]
    with transaction() as session:
        row = session.get(OAuthClient, CLIENT_ID)
        assert row is not None
        row.scopes = "system/Patient.rs"
    assert decode(token).scopes == frozenset({"system/Patient.rs"})


# --------------------------------------------------------------------------- keys


def test_the_development_key_is_generated_once_with_mode_0600_and_reused(
    settings: Settings,
) -> None:
    first = keys.signing_key()
    assert first.path is not None and first.path.parent == settings.keys_dir
    assert first.path.stat().st_mode & 0o777 == 0o600
    keys.reset_key_cache()
    assert keys.signing_key().kid == first.kid
    assert len(list(settings.keys_dir.glob("jwt-signing-*.pem"))) == 1


def test_after_rotation_new_tokens_use_the_new_key_and_old_ones_verify_while_published(
    http: TestClient, secret: str
) -> None:
    old_kid = keys.signing_key().kid
    old_token = get_token(http, secret)["access_token"]
    new = keys.rotate_signing_key()
    assert new.kid != old_kid and keys.signing_key().kid == new.kid
    assert [k["kid"] for k in keys.jwks()["keys"]] == [new.kid, old_kid]

    new_token = get_token(http, secret)["access_token"]
    assert jwt.decode(new_token, new.key).header["kid"] == new.kid
    assert decode(old_token).client_id == CLIENT_ID
    assert decode(new_token).client_id == CLIENT_ID

    assert keys.retire_signing_keys(keep=1) == [old_kid]
    assert rejection(old_token) == "access token signed by an unknown key"
    assert decode(new_token).client_id == CLIENT_ID


def test_an_explicit_pem_key_file_signs_and_cannot_be_rotated_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "signing.pem"
    path.write_bytes(pem)
    monkeypatch.setenv("PHR_JWT_PRIVATE_KEY_FILE", str(path))
    reset_settings_cache()
    key = keys.signing_key()
    assert key.kid == ECKey.import_key(pem).thumbprint()
    assert key.path == path
    assert not list(get_settings().keys_dir.glob("jwt-signing-*.pem"))
    with pytest.raises(ConfigurationError):
        keys.rotate_signing_key()


def test_production_without_a_key_file_refuses_to_sign(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setenv("PHR_ENV", "production")
    reset_settings_cache()
    with pytest.raises(ConfigurationError):
        keys.signing_key()


# --------------------------------------------------------------------------- discovery


def test_smart_configuration_advertises_the_client_credentials_flow(
    http: TestClient, settings: Settings
) -> None:
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        config = http.get(path).json()
        base = settings.base_url
        assert config["issuer"] == base
        assert config["token_endpoint"] == f"{base}/oauth/token"
        assert config["jwks_uri"] == f"{base}/.well-known/jwks.json"
        assert "client_credentials" in config["grant_types_supported"]
        assert {"client_secret_basic", "client_secret_post"} <= set(
            config["token_endpoint_auth_methods_supported"]
        )
        assert {"system/*.rs", "system/*.cruds", "system/Bundle.c", "system/Patient.rs"} <= set(
            config["scopes_supported"]
        )
        assert {"client-confidential-symmetric", "permission-v2"} <= set(config["capabilities"])


def test_jwks_publishes_only_public_es256_signing_keys(http: TestClient) -> None:
    keys.signing_key()
    keys.rotate_signing_key()
    published = http.get("/.well-known/jwks.json").json()["keys"]
    assert len(published) == 2
    for jwk in published:
        assert jwk["kty"] == "EC" and jwk["crv"] == "P-256"
        assert jwk["alg"] == "ES256" and jwk["use"] == "sig" and jwk["kid"]
        assert "d" not in jwk


# --------------------------------------------------------------------------- clients, scopes


def test_secrets_are_stored_as_salted_scrypt_hashes() -> None:
    stored = hash_secret("s3cret")
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    assert stored != hash_secret("s3cret")
    assert verify_secret("s3cret", stored)
    assert not verify_secret("s3cret!", stored)
    assert not verify_secret("s3cret", "md5$00$00")
    assert not verify_secret("s3cret", "garbage")


def test_registering_an_organization_twice_returns_the_first(engine: Engine) -> None:
    with transaction() as session:
        first = register_organization(session, id="ph-1", name="Pharmacy", kind="pharmacy")
        again = register_organization(session, id="ph-1", name="Renamed", kind="clinic")
        assert again is first and again.name == "Pharmacy"


def test_a_client_cannot_be_registered_with_a_malformed_scope(engine: Engine) -> None:
    with transaction() as session:
        register_organization(session, id="ph-1", name="Pharmacy", kind="pharmacy")
        with pytest.raises(InvalidInput):
            register_client(session, organization_id="ph-1", name="x", scopes=["everything"])
        with pytest.raises(InvalidInput):
            register_client(session, organization_id="nope", name="x", scopes=SCOPES)


def test_check_scope_forbids_what_the_scopes_do_not_allow() -> None:
    actor = Actor(kind="organization", scopes=frozenset({"system/Observation.rs"}))
    oauth.check_scope(actor, "Observation", "r")
    with pytest.raises(Forbidden, match="scope does not allow u on Observation"):
        oauth.check_scope(actor, "Observation", "u")
    with pytest.raises(Forbidden, match=r"scope does not allow s on \*"):
        oauth.check_scope(actor, None, "s")
