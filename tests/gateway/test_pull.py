"""Pulling from a clinic's FHIR server: paging, retries, idempotency, reference mapping.

The clinic's server is faked with ``httpx.MockTransport`` serving recorded-style searchset
pages from ``tests/gateway/recorded/``; everything on our side is real.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import fhir_gateway.sources.pull as pull_module
from consent.identity.clients import register_organization
from fhir_gateway.sources.pull import DEFAULT_TYPES, PullError, PullReport, pull
from phr.store import repository as repo
from phr.store.models import Resource, ResourceSource, ResourceVersion

RECORDED = Path(__file__).parent / "recorded"
BASE = "https://clinic.example.jp/fhir"
ORG = "clinic-pull"


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDED / name).read_text(encoding="utf-8"))
    return data


def empty_searchset(url: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 0,
        "link": [{"relation": "self", "url": url}],
    }


class FakeClinic:
    """A clinic FHIR server: recorded pages, and failures queued per resource type."""

    def __init__(self) -> None:
        self.pages: dict[str, dict[str, Any]] = {
            "Patient": recorded("patient-page.json"),
            "Observation": recorded("observation-page-1.json"),
            "Condition": recorded("condition-page.json"),
            "_getpages": recorded("observation-page-2.json"),
        }
        # what the server answers before the real page, per route: a status, or an exception
        self.failures: dict[str, list[int | Exception]] = {}
        self.always_fail: dict[str, int] = {}
        self.requests: list[httpx.Request] = []
        self.headers: dict[str, dict[str, str]] = {}

    def route(self, request: httpx.Request) -> str:
        if "_getpages" in request.url.params:
            offset = request.url.params.get("_getpagesoffset", "2")
            return "_getpages" if offset == "2" else f"_getpages{offset}"
        return request.url.path.rsplit("/", 1)[1]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.route(request)
        if route in self.always_fail:
            return httpx.Response(
                self.always_fail[route],
                json={
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "exception", "diagnostics": "boom"}],
                },
            )
        queued = self.failures.get(route)
        if queued:
            failure = queued.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return httpx.Response(failure, headers=self.headers.get(route, {}))
        page = self.pages.get(route) or empty_searchset(str(request.url))
        return httpx.Response(200, json=page, headers={"Content-Type": "application/fhir+json"})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    def paths(self) -> list[str]:
        return [self.route(r) for r in self.requests]


@pytest.fixture
def clinic_org(session: Session) -> str:
    register_organization(session, id=ORG, name="つくば内科クリニック", kind="clinic")
    session.commit()
    return ORG


@pytest.fixture
def server() -> FakeClinic:
    return FakeClinic()


@pytest.fixture
def run(clinic_org: str, server: FakeClinic) -> Callable[..., PullReport]:
    def go(**kw: Any) -> PullReport:
        kw.setdefault("types", ["Patient", "Condition", "Observation"])
        kw.setdefault("backoff", 0)
        with server.client() as c:
            return pull(organization_id=clinic_org, base_url=BASE, client=c, **kw)

    return go


def count(session: Session, model: type = Resource, **where: str) -> int:
    stmt = select(func.count()).select_from(model)
    for k, v in where.items():
        stmt = stmt.where(getattr(model, k) == v)
    return int(session.scalar(stmt) or 0)


def pulled(session: Session, rtype: str) -> dict[str, dict[str, Any]]:
    """The clinic's id -> the stored resource, for what this clinic contributed."""
    rows = session.execute(
        select(ResourceSource.source_key, Resource.content, Resource.resident_id)
        .join(Resource, Resource.pk == ResourceSource.resource_pk)
        .where(ResourceSource.organization_id == ORG, ResourceSource.resource_type == rtype)
    ).all()
    return {key: {**repo.load_json(content), "_resident": res} for key, content, res in rows}


class TestPaging:
    def test_next_links_are_followed_to_the_last_page(
        self, run: Callable[..., PullReport], server: FakeClinic, session: Session
    ) -> None:
        report = run()
        assert server.paths() == ["Patient", "Condition", "Observation", "_getpages"]
        assert report.types["Observation"].pages == 2
        assert report.types["Observation"].created == 3
        assert set(pulled(session, "Observation")) == {"obs-5001", "obs-5002", "obs-5003"}

    def test_included_and_outcome_entries_are_not_stored(
        self, run: Callable[..., PullReport], session: Session
    ) -> None:
        report = run()
        assert report.types["Observation"].skipped == 2
        assert report.types["Patient"].created == 2
        assert count(session, ResourceSource, organization_id=ORG, resource_type="Patient") == 2

    def test_the_first_request_asks_for_pages_of_100(
        self, run: Callable[..., PullReport], server: FakeClinic
    ) -> None:
        run(types=["Patient"])
        params = server.requests[0].url.params
        assert params["_count"] == "100" and "_lastUpdated" not in params
        assert server.requests[0].headers["accept"] == "application/fhir+json"

    def test_patients_are_pulled_first_and_the_default_types_all_asked(
        self, run: Callable[..., PullReport], server: FakeClinic
    ) -> None:
        run(types=None)
        assert server.paths()[0] == "Patient"
        assert [p for p in server.paths() if p != "_getpages"] == list(DEFAULT_TYPES)
        run(types=["Observation", "Patient"])
        assert server.paths()[-3:] == ["Patient", "Observation", "_getpages"]

    def test_since_adds_last_updated_ge(
        self, run: Callable[..., PullReport], server: FakeClinic
    ) -> None:
        run(types=["Patient"])  # an earlier pull brought the patients
        n = len(server.requests)
        report = run(types=["Observation"], since="2025-02-01T00:00:00+09:00")
        first = server.requests[n].url.params
        assert first["_lastUpdated"] == "ge2025-02-01T00:00:00+09:00"
        assert "%2B09%3A00" in str(server.requests[n].url) or "%2B09:00" in str(
            server.requests[n].url
        )
        # the next link carries the server's own query, not ours added again
        assert "_lastUpdated" not in server.requests[n + 1].url.params
        assert "since 2025-02-01" in report.summary()

    def test_a_bad_since_is_refused_before_any_request(
        self, run: Callable[..., PullReport], server: FakeClinic
    ) -> None:
        with pytest.raises(PullError, match="since"):
            run(since="last tuesday")
        assert server.requests == []

    def test_the_token_is_sent_as_a_bearer(
        self, run: Callable[..., PullReport], server: FakeClinic
    ) -> None:
        run(types=["Patient"], token="s3cret")
        assert server.requests[0].headers["authorization"] == "Bearer s3cret"

    def test_a_next_link_to_another_server_is_not_followed(
        self, run: Callable[..., PullReport], server: FakeClinic
    ) -> None:
        page = copy.deepcopy(server.pages["Observation"])
        page["link"][1]["url"] = "https://evil.example.com/fhir?_getpages=x"
        server.pages["Observation"] = page
        with pytest.raises(PullError, match="leaves the clinic's server"):
            run(types=["Patient", "Observation"], token="s3cret")
        assert all(r.url.host == "clinic.example.jp" for r in server.requests)

    def test_a_long_chain_of_pages_is_walked(
        self, run: Callable[..., PullReport], server: FakeClinic, session: Session
    ) -> None:
        page2 = copy.deepcopy(server.pages["_getpages"])
        page3 = copy.deepcopy(server.pages["_getpages"])
        next3 = page2["link"][0]["url"].replace("_getpagesoffset=2", "_getpagesoffset=4")
        page2["link"].append({"relation": "next", "url": next3})
        page3["entry"][0]["resource"]["id"] = "obs-5004"
        server.pages["_getpages"], server.pages["_getpages4"] = page2, page3
        report = run(types=["Patient", "Observation"])
        assert report.types["Observation"].pages == 3
        assert set(pulled(session, "Observation")) == {
            "obs-5001",
            "obs-5002",
            "obs-5003",
            "obs-5004",
        }

    def test_a_next_link_back_to_an_earlier_page_stops_the_loop(
        self, run: Callable[..., PullReport], server: FakeClinic
    ) -> None:
        page2 = copy.deepcopy(server.pages["_getpages"])
        page2["link"].append({"relation": "next", "url": page2["link"][0]["url"]})
        server.pages["_getpages"] = page2
        with pytest.raises(PullError, match="repeats an earlier page"):
            run(types=["Patient", "Observation"])


class TestRetries:
    def test_a_503_then_success_is_retried(
        self, run: Callable[..., PullReport], server: FakeClinic, session: Session
    ) -> None:
        server.failures["_getpages"] = [503]
        report = run()
        assert report.retries == 1
        assert server.paths().count("_getpages") == 2
        assert len(pulled(session, "Observation")) == 3

    def test_connection_errors_and_429_are_retried(
        self, run: Callable[..., PullReport], server: FakeClinic
    ) -> None:
        server.failures["Patient"] = [httpx.ConnectError("connection refused"), 429, 502]
        report = run(types=["Patient"])
        assert report.retries == 3 and report.types["Patient"].created == 2

    def test_retry_after_is_honoured_and_capped(
        self,
        run: Callable[..., PullReport],
        server: FakeClinic,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        waits: list[float] = []
        monkeypatch.setattr(pull_module.time, "sleep", waits.append)
        server.failures["Patient"] = [429]
        server.headers["Patient"] = {"Retry-After": "7"}
        run(types=["Patient"])
        server.failures["Patient"] = [503]
        server.headers["Patient"] = {"Retry-After": "86400"}
        run(types=["Patient"])
        assert waits == [7.0, pull_module.MAX_RETRY_DELAY]

    def test_backoff_doubles(
        self,
        run: Callable[..., PullReport],
        server: FakeClinic,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        waits: list[float] = []
        monkeypatch.setattr(pull_module.time, "sleep", waits.append)
        server.failures["Patient"] = [500, 500, 500]
        run(types=["Patient"], backoff=0.5)
        assert waits == [0.5, 1.0, 2.0]

    def test_a_persistent_500_gives_a_clear_error_and_earlier_pages_stay(
        self, run: Callable[..., PullReport], server: FakeClinic, session: Session
    ) -> None:
        server.always_fail["_getpages"] = 500
        with pytest.raises(PullError) as err:
            run(max_retries=3)
        message = str(err.value)
        assert "failed after 4 attempts" in message and "HTTP 500" in message
        assert "boom" in message and "_getpages" in message
        assert message.startswith("Observation page 2: GET https://clinic.example.jp/fhir?")
        assert err.value.report.retries == 3
        assert server.paths().count("_getpages") == 4
        # Patients, the Condition and the first Observation page were committed.
        assert set(pulled(session, "Patient")) == {"pt-1001", "pt-1002"}
        assert set(pulled(session, "Condition")) == {"cond-3001"}
        assert set(pulled(session, "Observation")) == {"obs-5001", "obs-5002"}

    def test_a_client_error_is_not_retried(
        self, run: Callable[..., PullReport], server: FakeClinic
    ) -> None:
        server.always_fail["Patient"] = 401
        with pytest.raises(PullError, match="HTTP 401"):
            run(types=["Patient"])
        assert len(server.requests) == 1

    def test_a_page_the_gateway_rejects_is_not_stored_but_earlier_ones_are(
        self, run: Callable[..., PullReport], server: FakeClinic, session: Session
    ) -> None:
        page = copy.deepcopy(server.pages["_getpages"])
        page["entry"][0]["resource"]["valueQuantity"]["value"] = "lots"
        server.pages["_getpages"] = page
        with pytest.raises(PullError, match="rejected by the gateway") as err:
            run()
        assert "Observation page 2" in str(err.value)
        assert set(pulled(session, "Observation")) == {"obs-5001", "obs-5002"}

    def test_an_unknown_organisation_is_refused(self, session: Session) -> None:
        with pytest.raises(PullError, match="not registered"):
            pull(organization_id="nobody", base_url=BASE, client=FakeClinic().client())


class TestIdempotency:
    def test_re_running_the_pull_changes_nothing(
        self, run: Callable[..., PullReport], session: Session
    ) -> None:
        first = run()
        versions = count(session, ResourceVersion)
        resources = count(session, Resource)
        sources = count(session, ResourceSource)
        second = run()
        assert count(session, ResourceVersion) == versions
        assert count(session, Resource) == resources
        assert count(session, ResourceSource) == sources
        assert first.total("created") == 6
        assert second.total("created") == 0 and second.total("updated") == 0
        assert second.total("unchanged") == 6
        assert "6 unchanged" in second.summary()

    def test_a_changed_record_becomes_a_new_version(
        self, run: Callable[..., PullReport], server: FakeClinic, session: Session
    ) -> None:
        run()
        page = copy.deepcopy(server.pages["Observation"])
        page["entry"][0]["resource"]["valueQuantity"]["value"] = 6.9
        server.pages["Observation"] = page
        report = run()
        assert report.types["Observation"].updated == 1
        assert report.types["Observation"].unchanged == 2
        obs = pulled(session, "Observation")["obs-5001"]
        assert obs["valueQuantity"]["value"] == 6.9 and obs["meta"]["versionId"] == "2"

    def test_two_clinics_with_the_same_ids_do_not_overwrite_each_other(
        self, run: Callable[..., PullReport], session: Session
    ) -> None:
        run()
        register_organization(session, id="clinic-two", name="並木医院", kind="clinic")
        session.commit()
        other = FakeClinic()
        for e in other.pages["Patient"]["entry"]:
            e["resource"]["identifier"][0]["value"] += "-2"
            e["resource"]["name"][0]["family"] = "並木"
            e["resource"]["birthDate"] = "1990-01-01"
        other.pages["Observation"]["entry"][0]["resource"]["valueQuantity"]["value"] = 9.9
        del other.pages["Observation"]["link"][1:]  # one page, on its own server
        with other.client() as c:
            report = pull(
                organization_id="clinic-two",
                base_url="https://namiki.example.jp/fhir",
                types=["Patient", "Observation"],
                client=c,
                backoff=0,
            )
        assert report.types["Observation"].created == 2
        ours = pulled(session, "Observation")["obs-5001"]
        assert ours["valueQuantity"]["value"] == 7.2 and ours["meta"]["versionId"] == "1"
        assert ours["_resident"] == pulled(session, "Patient")["pt-1001"]["id"]


class TestReferences:
    def test_pulled_observations_reference_the_platform_patient(
        self, run: Callable[..., PullReport], session: Session
    ) -> None:
        run()
        patients = pulled(session, "Patient")
        p1001, p1002 = patients["pt-1001"]["id"], patients["pt-1002"]["id"]
        assert p1001 != "pt-1001"
        obs = pulled(session, "Observation")
        # relative and absolute references to the clinic's Patient both map
        assert obs["obs-5001"]["subject"]["reference"] == f"Patient/{p1001}"
        assert obs["obs-5002"]["subject"]["reference"] == f"Patient/{p1001}"
        assert obs["obs-5003"]["subject"]["reference"] == f"Patient/{p1002}"
        assert obs["obs-5001"]["_resident"] == p1001
        cond = pulled(session, "Condition")["cond-3001"]
        assert cond["subject"]["reference"] == f"Patient/{p1001}" and cond["_resident"] == p1001

    def test_an_incremental_pull_of_observations_alone_still_maps_patients(
        self, run: Callable[..., PullReport], server: FakeClinic, session: Session
    ) -> None:
        run(types=["Patient"])
        run(types=["Observation"], since="2025-01-01")
        p1001 = pulled(session, "Patient")["pt-1001"]["id"]
        assert pulled(session, "Observation")["obs-5001"]["subject"]["reference"] == (
            f"Patient/{p1001}"
        )
