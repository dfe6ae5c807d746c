"""Token tampering over HTTP: every forged, altered, stale or foreign token gets 401 (or
403), and no data, on the routes that would otherwise answer the victim's record.

The genuine token forged from is the contributing clinic's (it may read the whole
record), so any forgery that got through would show. Refresh-token replay after rotation
(the whole family is revoked) is tested in tests/consent/identity/test_oidc.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy.orm import Session

from consent.identity import keys, oauth
from phr.settings import get_settings
from tests.security.conftest import resident_ids


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    h, p, s = token.split(".")
    pad = lambda x: x + "=" * (-len(x) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(h))),
        json.loads(base64.urlsafe_b64decode(pad(p))),
        s,
    )


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{signature}"


def signed(claims: dict[str, Any], **header: Any) -> str:
    key = keys.signing_key()
    return jwt.encode(
        {"alg": "ES256", "kid": key.kid, "typ": "at+jwt", **header},
        claims,
        key.key,
        algorithms=["ES256"],
    )


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """The algorithm-confusion forgery, by hand (joserfc refuses to build it)."""
    head = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(secret, head.encode(), hashlib.sha256).digest()
    return f"{head}.{b64(mac)}"


def forgeries(genuine: str) -> dict[str, str]:
    header, claims, signature = parts(genuine)
    now = int(time.time())
    public_pem = keys.signing_key().key.as_pem(private=False)
    foreign = ECKey.generate_key("P-256")
    return {
        "alg none": unsigned({**header, "alg": "none"}, claims),
        "alg None, signature kept": unsigned({**header, "alg": "None"}, claims, signature),
        "HS256 keyed with the public key": hs256({**header, "alg": "HS256"}, claims, public_pem),
        "payload altered (another organisation)": unsigned(
            header, {**claims, "org": "hospital-b"}, signature
        ),
        "payload altered (wider scope)": unsigned(
            header, {**claims, "scope": "system/*.cruds"}, signature
        ),
        "signature altered": genuine[:-4] + ("AAAA" if not genuine.endswith("AAAA") else "BBBB"),
        "signature stripped": genuine.rsplit(".", 1)[0] + ".",
        "wrong issuer": signed({**claims, "iss": "https://evil.example"}),
        "wrong audience": signed({**claims, "aud": "https://evil.example/fhir"}),
        "no audience": signed({k: v for k, v in claims.items() if k != "aud"}),
        "expired": signed({**claims, "iat": now - 7200, "exp": now - 3600}),
        "not yet valid": signed({**claims, "nbf": now + 3600}),
        "unknown key": jwt.encode(
            {**header, "kid": "someone-elses"}, claims, foreign, algorithms=["ES256"]
        ),
        "foreign key under our kid": jwt.encode(header, claims, foreign, algorithms=["ES256"]),
        "kid as a path": jwt.encode(
            {**header, "kid": "../../../../etc/passwd"}, claims, foreign, algorithms=["ES256"]
        ),
        "embedded jwk": jwt.encode(
            {**header, "jwk": foreign.as_dict(private=False)},
            claims,
            foreign,
            algorithms=["ES256"],
        ),
        "an id token instead": signed(claims, typ="JWT"),
        "garbage": "eyJ." * 3,
    }


def victim_urls(world: dict[str, Any], *, all_: bool = True) -> list[str]:
    """Read, search and ``$everything`` (every forgery); more routes for genuine tokens."""
    p = world["patient"]
    core = [
        f"/fhir/Patient/{p}",
        f"/fhir/Observation?patient={p}",
        f"/fhir/Patient/{p}/$everything",
    ]
    more = [
        f"/fhir/Condition/{world['diabetes']}",
        f"/fhir/Patient/{p}/$summary",
        f"/fhir/Condition/{world['diabetes']}/_history",
    ]
    return core + more if all_ else core


def refused(r: Any, world: dict[str, Any]) -> bool:
    return r.status_code in (401, 403) and world["patient"] not in resident_ids(r.json())


def test_the_genuine_token_reads_the_record(client: TestClient, world: dict[str, Any]) -> None:
    h = world["orgs"]["owner"]["headers"]
    for url in victim_urls(world):
        assert client.get(url, headers=h).status_code == 200, url


def test_every_forgery_of_an_organisations_token_is_refused(
    client: TestClient, world: dict[str, Any]
) -> None:
    genuine = world["orgs"]["owner"]["headers"]["Authorization"].split()[1]
    wrong = []
    for name, token in forgeries(genuine).items():
        for url in victim_urls(world, all_=False):
            r = client.get(url, headers={"Authorization": f"Bearer {token}"})
            if not refused(r, world):
                wrong.append((name, url, r.status_code))
            elif r.status_code == 401:
                assert r.headers["www-authenticate"].startswith("Bearer"), name
    assert wrong == []


def test_every_forgery_of_a_residents_token_is_refused(
    client: TestClient, world: dict[str, Any], attacker: dict[str, Any]
) -> None:
    genuine = attacker["headers"]["Authorization"].split()[1]
    header, claims, signature = parts(genuine)
    as_victim = {
        **claims,
        "sub": world["patient"],
        "patient": world["patient"],
        "fhirUser": f"Patient/{world['patient']}",
    }
    tokens = {
        **forgeries(genuine),
        "payload altered to the victim": unsigned(header, as_victim, signature),
    }
    wrong = []
    for name, token in tokens.items():
        for url in [*victim_urls(world, all_=False), "/api/me/consents"]:
            r = client.get(url, headers={"Authorization": f"Bearer {token}"})
            if r.status_code not in (401, 403):
                wrong.append((name, url, r.status_code))
    assert wrong == []


def test_a_residents_genuine_token_does_not_open_another_residents_record(
    client: TestClient, world: dict[str, Any], attacker: dict[str, Any]
) -> None:
    for url in victim_urls(world):
        r = client.get(url, headers=attacker["headers"])
        assert r.status_code in (200, 403, 404), url
        assert world["patient"] not in resident_ids(r.json()), url


def test_a_token_in_the_query_string_is_not_accepted(
    client: TestClient, world: dict[str, Any]
) -> None:
    token = world["orgs"]["owner"]["headers"]["Authorization"].split()[1]
    r = client.get(f"/fhir/Patient/{world['patient']}", params={"access_token": token})
    assert r.status_code == 401


@pytest.mark.parametrize("how", ["endpoint", "family"])
def test_a_revoked_token_is_refused(
    client: TestClient,
    session: Session,
    world: dict[str, Any],
    attacker: dict[str, Any],
    how: str,
) -> None:
    h = attacker["headers"]
    assert client.get(f"/fhir/Patient/{attacker['id']}", headers=h).status_code == 200
    if how == "endpoint":
        _, claims, _ = parts(h["Authorization"].split()[1])
        revoke: Callable[[], None] = lambda: oauth.revoke_token_family(session, claims["sid"])  # noqa: E731
    else:
        revoke = lambda: oauth.revoke_subject_grants(  # noqa: E731
            session, subject_kind="resident", subject_id=attacker["id"]
        )
    revoke()
    session.commit()
    for url in (f"/fhir/Patient/{attacker['id']}", "/api/me/consents"):
        assert client.get(url, headers=h).status_code == 401, url


def test_tokens_are_short_lived(client: TestClient, world: dict[str, Any]) -> None:
    _, claims, _ = parts(world["orgs"]["owner"]["headers"]["Authorization"].split()[1])
    assert claims["exp"] - claims["iat"] == get_settings().access_token_ttl_seconds <= 900
