"""Security headers on every answer: every GET route of the application (enumerated from
the router, like the route sweep), without credentials and with each kind of
credentials, whatever the status — pages, JSON APIs, FHIR, errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from phr.settings import reset_settings_cache
from tests.conftest import OrgFactory, user_token_headers
from tests.consent.test_route_sweep import routes

# Not personal data and meant to be cached: fingerprinted assets, the published keys and
# discovery documents, the access log's public seals.
CACHEABLE = (
    "/static/",
    "/.well-known/",
    "/fhir/.well-known/",
    "/api/audit/seal-key",
    "/api/audit/seals",
)


def get_routes(app: Any) -> Iterator[str]:
    for method, path in sorted(set(routes(app))):
        if method == "GET":
            yield re.sub(r"\{[^}]+\}", "x", path)


def check(path: str, r: Any) -> list[str]:
    h = r.headers
    wrong = []
    if h.get("x-content-type-options") != "nosniff":
        wrong.append("nosniff")
    if h.get("referrer-policy") not in ("same-origin", "no-referrer", "strict-origin"):
        wrong.append("referrer-policy")
    csp = h.get("content-security-policy", "")
    if "frame-ancestors 'none'" not in csp or h.get("x-frame-options") != "DENY":
        wrong.append("framing")
    if "default-src 'none'" not in csp or "unsafe-inline" in csp or "unsafe-eval" in csp:
        wrong.append(f"csp {csp!r}")
    if "text/html" in h.get("content-type", "") and "form-action 'none'" in csp:
        wrong.append("a page whose forms cannot be sent")
    if not path.startswith(CACHEABLE) and "no-store" not in h.get("cache-control", ""):
        wrong.append(f"cache-control {h.get('cache-control')!r}")
    if "strict-transport-security" in h:
        wrong.append("hsts over http")
    return [f"{path} {r.status_code}: {w}" for w in wrong]


@pytest.fixture
def credentials(session: Session, make_org: OrgFactory) -> dict[str, dict[str, str]]:
    from phr.store.indexer import utcnow
    from phr.store.models import Resident

    session.add(Resident(id="hdr-resident", created_at=utcnow(), status="active"))
    clinic = make_org("clinic-hdr", "clinic")
    return {
        "nobody": {},
        "clinic": clinic["headers"],
        "resident": user_token_headers(
            session, subject_kind="resident", subject_id="hdr-resident", resident_id="hdr-resident"
        ),
    }


def test_every_get_route_answers_with_the_security_headers(
    client: TestClient, app: Any, credentials: dict[str, dict[str, str]]
) -> None:
    wrong: list[str] = []
    paths = list(get_routes(app))
    assert len(paths) > 60
    for who, headers in credentials.items():
        for path in paths:
            r = client.get(path, headers=headers, follow_redirects=False)
            wrong += [f"{who} {w}" for w in check(path, r)]
    assert wrong == []


def test_errors_and_refusals_carry_them_too(client: TestClient) -> None:
    for r in (
        client.get("/no/such/route"),
        client.get("/fhir/Nonsense/1"),
        client.post("/fhir", content=b"{", headers={"Content-Type": "application/fhir+json"}),
        client.request("PATCH", "/health"),
    ):
        assert r.status_code >= 400
        assert check("error", r) == []


def test_pages_keep_their_stricter_page_policy(client: TestClient) -> None:
    csp = client.get("/me/signin").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "form-action 'self'" in csp


def test_hsts_is_sent_when_the_site_is_served_over_https(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHR_BASE_URL", "https://phr.example.jp")
    monkeypatch.setenv("PHR_HSTS_MAX_AGE", "600")
    reset_settings_cache()
    try:
        for path in ("/health", "/fhir/metadata", "/me/signin"):
            assert client.get(path).headers["strict-transport-security"] == "max-age=600"
    finally:
        monkeypatch.undo()
        reset_settings_cache()
