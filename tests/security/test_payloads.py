"""Oversized and deeply nested JSON: refused quickly (413 / 400 in the route's error
shape) before any parser or validator sees it, on FHIR writes and transactions and on the
JSON APIs — public, signed-in and sign-in routes alike."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from phr.security.middleware import json_depth
from phr.settings import get_settings, reset_settings_cache
from tests.conftest import OrgFactory

FHIR_JSON = {"Content-Type": "application/fhir+json"}
JSON = {"Content-Type": "application/json"}
# (method, path, is FHIR): the writes that take a JSON body
TARGETS = (
    ("POST", "/fhir", True),
    ("POST", "/fhir/Observation", True),
    ("PUT", "/fhir/Patient/x", True),
    ("POST", "/fhir/Patient/x/$medication-review", True),
    ("POST", "/api/triage/evaluate", False),  # public
    ("POST", "/api/me/consents", False),
    ("POST", "/auth/staff/login", False),
    ("POST", "/auth/card/verify", False),
    ("POST", "/api/acp/trusted/sign-in", False),
)


def deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def assert_error_shape(r: Any, fhir: bool) -> None:
    body = r.json()
    if fhir:
        assert body["resourceType"] == "OperationOutcome", body
    else:
        assert "error" in body and "message" in body, body


@pytest.fixture
def headers(make_org: OrgFactory) -> dict[str, str]:
    return dict(make_org("clinic-big", "clinic")["headers"])


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PHR_MAX_REQUEST_BYTES", str(1 << 20))
    monkeypatch.setenv("PHR_MAX_API_REQUEST_BYTES", str(64 << 10))
    reset_settings_cache()
    yield
    monkeypatch.undo()
    reset_settings_cache()


class TestDepth:
    def test_the_depth_scan_skips_strings_and_counts_both_kinds_of_nesting(self) -> None:
        assert json_depth(b'{"a": "[[[[{{{{", "b": [1, {"c": []}]}') == 4
        assert json_depth(b'"\\"[[["') == 0
        assert json_depth(deep_object(7)) == 7

    def test_ten_thousand_deep_json_is_refused_with_400(
        self, client: TestClient, headers: dict[str, str]
    ) -> None:
        for method, path, fhir in TARGETS:
            for body in (deep_array(10_000), deep_object(10_000)):
                started = time.monotonic()
                r = client.request(
                    method, path, content=body, headers={**headers, **(FHIR_JSON if fhir else JSON)}
                )
                assert r.status_code == 400, (path, r.status_code, r.text[:200])
                assert "nested" in r.text
                assert_error_shape(r, fhir)
                assert time.monotonic() - started < 2

    def test_refusing_a_deep_body_takes_little_memory(
        self, client: TestClient, headers: dict[str, str]
    ) -> None:
        body = deep_array(200_000)  # 400 kB; a recursive parser would need 200,000 frames
        tracemalloc.start()
        try:
            r = client.post("/fhir", content=body, headers={**headers, **FHIR_JSON})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert r.status_code == 400
        assert peak < 8 * len(body), peak  # the buffered body and its bracket copy, no tree

    def test_ordinary_nesting_passes(self, client: TestClient, headers: dict[str, str]) -> None:
        limit = get_settings().max_json_depth
        ok = client.post("/api/triage/evaluate", content=deep_array(limit), headers=JSON)
        assert ok.status_code in (400, 422) and "nested" not in ok.text


class TestNul:
    def test_nul_in_a_json_string_or_the_query_is_refused_with_400(
        self, client: TestClient, headers: dict[str, str]
    ) -> None:
        patient = b'{"resourceType": "Patient", "name": [{"family": "a\\u0000b"}]}'
        r = client.post("/fhir/Patient", content=patient, headers={**headers, **FHIR_JSON})
        assert r.status_code == 400 and "NUL" in r.text
        assert_error_shape(r, True)
        r = client.post("/api/triage/evaluate", content=b'{"complaint": "\\u0000"}', headers=JSON)
        assert r.status_code == 400 and "NUL" in r.text
        r = client.get("/fhir/Patient", params={"name": "a\x00"}, headers=headers)
        assert r.status_code == 400
        assert_error_shape(r, True)
        # an escaped backslash before "u0000" is no NUL
        text = b'{"complaint": "\\\\u0000"}'
        assert "NUL" not in client.post("/api/triage/evaluate", content=text, headers=JSON).text


class TestSize:
    def test_a_body_above_the_limit_is_refused_with_413(
        self, client: TestClient, headers: dict[str, str], small_limits: None
    ) -> None:
        s = get_settings()
        for method, path, fhir in TARGETS:
            limit = s.max_request_bytes if fhir else s.max_api_request_bytes
            r = client.request(
                method,
                path,
                content=b" " * (limit + 1),
                headers={**headers, **(FHIR_JSON if fhir else JSON)},
            )
            assert r.status_code == 413, (path, r.status_code, r.text[:200])
            assert_error_shape(r, fhir)

    @pytest.mark.parametrize(
        ("path", "size", "ctype"),
        [
            ("/api/me/consents", 50 * 1024 * 1024, JSON),
            ("/fhir", 64 * 1024 * 1024 + 1, FHIR_JSON),
        ],
    )
    def test_fifty_megabytes_are_refused_quickly_at_the_default_limits(
        self, client: TestClient, headers: dict[str, str], path: str, size: int, ctype: Any
    ) -> None:
        started = time.monotonic()
        r = client.post(path, content=b" " * size, headers={**headers, **ctype})
        assert r.status_code == 413, r.text[:200]
        assert time.monotonic() - started < 5

    def test_a_body_without_length_is_counted_as_it_streams_in(
        self, client: TestClient, headers: dict[str, str], small_limits: None
    ) -> None:
        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked
            for _ in range(40):
                yield b" " * 65536

        for path, ctype in (
            ("/fhir", FHIR_JSON),
            ("/api/me/consents", JSON),
            ("/auth/staff/login", {"Content-Type": "application/x-www-form-urlencoded"}),
        ):
            r = client.post(path, content=chunks(), headers={**headers, **ctype})
            assert r.status_code == 413, (path, r.text[:200])

    def test_a_huge_bundle_is_refused_without_a_500(
        self, client: TestClient, headers: dict[str, str]
    ) -> None:
        n = get_settings().max_bundle_entries + 1
        bundle = (
            b'{"resourceType":"Bundle","type":"transaction","entry":['
            + b",".join([b"{}"] * n)
            + b"]}"
        )
        r = client.post("/fhir", content=bundle, headers={**headers, **FHIR_JSON})
        assert r.status_code in (400, 413, 422), r.text[:200]
        assert_error_shape(r, True)

    def test_a_huge_array_in_a_json_api_is_refused_without_a_500(self, client: TestClient) -> None:
        body = b'{"complaint":"chest-pain","answers":[' + b",".join([b"1"] * 500_000) + b"]}"
        r = client.post("/api/triage/evaluate", content=body, headers=JSON)
        assert r.status_code in (400, 413, 422), r.text[:200]
