"""Every route of the application, whoever calls it: without credentials only the public
routes answer; with the wrong kind of credentials nothing personal or administrative.

The list of public routes is explicit: a new route is private until someone decides
otherwise here. Path parameters are filled with a placeholder, bodies are empty JSON, so
a route may also refuse for being badly called (400, 404, 405, 422) — what matters is that
it never answers 2xx, and never fails (5xx), to someone it is not for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import OrgFactory, user_token_headers

# (method, path template) answered to anyone: discovery, sign-in pages and protocol
# endpoints, the published PIA register and the access log's public seals.
PUBLIC = {
    ("GET", "/"),
    ("GET", "/health"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/openapi.json"),
    ("GET", "/fhir/metadata"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/.well-known/smart-configuration"),
    ("GET", "/fhir/.well-known/smart-configuration"),
    ("GET", "/api/audit/seal-key"),
    ("GET", "/api/audit/seals"),
    ("GET", "/api/pia/public"),
    ("GET", "/api/pia/public/{service_id}"),
    ("GET", "/api/pia/questionnaire"),
    ("GET", "/pia"),
    ("GET", "/pia/{service_id}"),
    ("GET", "/auth/card"),
    ("GET", "/auth/card/demo"),
    ("POST", "/auth/card/challenge"),
    ("GET", "/auth/staff/login"),
    ("GET", "/me/signin"),  # the resident web app's sign-in page
    ("GET", "/acp/trusted/signin"),  # the trusted person's sign-in and invitation page
    # Self-triage works without an account (issue 6): the protocols and their evaluation.
    ("GET", "/api/triage/complaints"),
    ("GET", "/api/triage/complaints/{complaint}"),
    ("GET", "/api/triage/complaints/{complaint}/questionnaire"),
    ("POST", "/api/triage/evaluate"),
    ("GET", "/triage"),  # the same as pages
    ("GET", "/triage/{complaint}"),
    ("POST", "/triage/{complaint}"),
    # Signing out without a session is a harmless no-op.
    ("POST", "/auth/signout"),
    ("POST", "/auth/staff/logout"),
}
REFUSALS = {400, 401, 403, 404, 405, 409, 415, 422}


def routes(app: Any) -> Iterator[tuple[str, str]]:
    def walk(items: Any, prefix: str) -> Iterator[tuple[str, str]]:
        for r in items:
            if hasattr(r, "original_router"):  # an included router (FastAPI >= 0.120)
                yield from walk(r.original_router.routes, prefix + r.include_context.prefix)
            elif hasattr(r, "routes") and not getattr(r, "methods", None):
                yield from walk(r.routes, prefix + getattr(r, "path", ""))
            else:
                for method in sorted(set(getattr(r, "methods", None) or ()) - {"HEAD", "OPTIONS"}):
                    yield method, prefix + r.path

    yield from walk(app.routes, "")


def call(client: TestClient, method: str, template: str, headers: dict[str, str]) -> int:
    url = re.sub(r"\{[^}]+\}", "x", template)
    body = {} if method in ("POST", "PUT", "PATCH") else None
    r = client.request(method, url, json=body, headers=headers, follow_redirects=False)
    return r.status_code


def test_the_sweep_sees_every_kind_of_route(app: Any) -> None:
    found = set(routes(app))
    assert len(found) > 60
    assert found >= PUBLIC, "a public route listed here does not exist (renamed?)"
    for expected in (
        ("GET", "/fhir/{resource_type}/{id}"),
        ("POST", "/fhir"),
        ("GET", "/api/me/access-log"),
        ("POST", "/oauth/token"),
    ):
        assert expected in found


def test_without_credentials_only_public_routes_answer(client: TestClient, app: Any) -> None:
    wrong = []
    for method, path in routes(app):
        status = call(client, method, path, {})
        if (method, path) in PUBLIC:
            ok = status < 500
        else:
            # A page may send the visitor to sign in instead.
            ok = status in REFUSALS or status in (302, 303, 307)
        if not ok:
            wrong.append((method, path, status))
    assert wrong == []


@pytest.mark.parametrize(
    ("who", "prefixes"),
    [
        # An organisation's client credentials reach no resident's or administrator's API.
        ("clinic", ("/api/me", "/api/admin", "/api/pia")),
        # A resident's token reaches no administrator's API and writes no clinical data.
        ("resident", ("/api/admin", "/api/emergency", "/fhir")),
    ],
)
def test_the_wrong_kind_of_credentials_get_nothing(
    client: TestClient,
    app: Any,
    make_org: OrgFactory,
    resident_headers: dict[str, str],
    who: str,
    prefixes: tuple[str, ...],
) -> None:
    headers = make_org("clinic-sweep", "clinic")["headers"] if who == "clinic" else resident_headers
    wrong = []
    for method, path in routes(app):
        if not path.startswith(prefixes) or (method, path) in PUBLIC:
            continue
        if who == "resident" and path.startswith("/fhir") and method == "GET":
            continue  # a resident reads their own record through the FHIR API
        status = call(client, method, path, headers)
        if status not in REFUSALS:
            wrong.append((method, path, status))
    assert wrong == []


@pytest.fixture
def resident_headers(session: Any) -> dict[str, str]:
    """A real resident access token (an app the resident approved)."""
    from phr.store.indexer import utcnow
    from phr.store.models import Resident

    rid = "sweep-resident"
    session.add(Resident(id=rid, created_at=utcnow(), status="active"))
    return user_token_headers(session, subject_kind="resident", subject_id=rid, resident_id=rid)
