"""A real server process, driven by an outside FHIR client library (fhirpy).

The server runs under uvicorn on a free loopback port with its own data directory and
database (a SQLite file, or PostgreSQL when PHR_TEST_E2E_DATABASE_URL is set — that
database's ``public`` schema is dropped and rebuilt, like PHR_TEST_DATABASE_URL's). A
clinic is registered with the ``phr`` command, three Synthea bundles go in through
``POST /fhir``, and fhirpy searches, pages and reads them back. The server's log is printed
when a test fails.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SYNTHEA_DIR, require
from tests.e2e.server import (
    ROOT,
    LiveServer,
    free_port,
    fresh_postgres,
    phr,
    stop,
    wait_healthy,
)

pytestmark = pytest.mark.e2e

fhirpy = pytest.importorskip("fhirpy")

BUNDLES = ("Barney_Abbott_", "Lenard_Dibbert_", "Rufus_Kihn_")
LOINC = "http://loinc.org"


@dataclass
class Sent:
    """One posted Synthea bundle, what it held and where the server put its patient."""

    path: Path
    bundle: dict[str, Any]
    response: dict[str, Any]
    patient_id: str = ""
    family: str = ""
    ids: dict[str, tuple[str, str]] = field(default_factory=dict)  # fullUrl -> (type, id)
    platform: dict[str, str] = field(default_factory=dict)  # the bundle's id -> platform id

    def observations(self) -> list[dict[str, Any]]:
        return [
            e["resource"]
            for e in self.bundle["entry"]
            if e["resource"]["resourceType"] == "Observation"
        ]


@dataclass
class Server(LiveServer):
    token: str = ""
    sent: list[Sent] = field(default_factory=list)

    @property
    def fhir(self) -> str:
        return f"{self.base_url}/fhir"

    def client(self) -> Any:
        return fhirpy.SyncFHIRClient(
            self.fhir, authorization=f"Bearer {self.token}", requests_config={"timeout": 30}
        )


def synthea_files() -> list[Path]:
    files = []
    for prefix in BUNDLES:
        found = sorted(SYNTHEA_DIR.glob(f"{prefix}*.json"))
        require(bool(found), f"the Synthea sample bundle {prefix}*.json is not in {SYNTHEA_DIR}")
        files.append(found[0])
    return files


def post_bundles(server: Server, files: list[Path]) -> None:
    with httpx.Client(
        headers={
            "Authorization": f"Bearer {server.token}",
            "Content-Type": "application/fhir+json",
        },
        timeout=60,
    ) as http:
        for path in files:
            raw = path.read_bytes()
            r = http.post(server.fhir, content=raw)
            assert r.status_code == 200, f"{path.name}: {r.status_code} {r.text[:2000]}"
            bundle = json.loads(raw)
            sent = Sent(path, bundle, r.json())
            for e, answer in zip(bundle["entry"], sent.response["entry"], strict=True):
                rtype, rid = answer["response"]["location"].split("/")[:2]
                sent.ids[e["fullUrl"]] = (rtype, rid)
                sent.platform[e["resource"]["id"]] = rid
            first = bundle["entry"][0]
            assert first["resource"]["resourceType"] == "Patient"
            sent.patient_id = sent.ids[first["fullUrl"]][1]
            sent.family = first["resource"]["name"][0]["family"]
            server.sent.append(sent)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    files = synthea_files()
    tmp = tmp_path_factory.mktemp("e2e-server")
    port = free_port()
    url = os.environ.get("PHR_TEST_E2E_DATABASE_URL")
    if url:
        fresh_postgres(url)
    else:
        url = f"sqlite:///{(tmp / 'phr.db').as_posix()}"
    env = {
        **os.environ,
        "PHR_DATA_DIR": str(tmp),
        "PHR_BASE_URL": f"http://127.0.0.1:{port}",
        "PHR_ENV": "test",
        "PHR_DATABASE_URL": url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    phr(env, "db", "upgrade")
    creds = json.loads(phr(env, "org", "add", "e2e-clinic", "--name", "E2E", "--kind", "clinic"))

    srv = Server(base_url=f"http://127.0.0.1:{port}", log_path=tmp / "server.log")
    with srv.log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "phr.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(proc, srv)
        r = httpx.post(
            f"{srv.base_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(creds["client_id"], creds["client_secret"]),
        )
        assert r.status_code == 200, r.text
        srv.token = r.json()["access_token"]
        post_bundles(srv, files)
        yield srv
    finally:
        stop(proc)


@pytest.fixture
def live(server: Server) -> Iterator[Server]:
    """The shared server; its log so far is printed if the test fails."""
    yield server
    print(f"---- server log ({server.log_path}) ----\n{server.log()[-20_000:]}")


def effective(obs: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(obs["effectiveDateTime"])


def has_code(obs: dict[str, Any], code: str) -> bool:
    return any(
        c.get("system") == LOINC and c.get("code") == code for c in obs["code"].get("coding", [])
    )


def cutoff_between(dates: list[datetime]) -> datetime:
    """Midnight UTC of a day well clear of every date (so time zones cannot matter)."""
    dates = sorted(dates)
    for earlier, later in itertools.pairwise(dates):
        if later - earlier > timedelta(days=4):
            day = (earlier + (later - earlier) / 2).astimezone(UTC)
            return day.replace(hour=0, minute=0, second=0, microsecond=0)
    raise AssertionError("no gap of several days between these observations")


class TestFhirpyAgainstARunningServer:
    def test_each_bundle_was_accepted_entry_by_entry(self, live: Server) -> None:
        for sent in live.sent:
            statuses = {e["response"]["status"] for e in sent.response["entry"]}
            assert statuses <= {"201 Created", "200 OK"}, sent.path.name
            assert len(sent.response["entry"]) == len(sent.bundle["entry"])

    def test_patients_are_found_by_family_name(self, live: Server) -> None:
        client = live.client()
        for sent in live.sent:
            found = client.resources("Patient").search(family=sent.family).fetch_all()
            assert [p.id for p in found] == [sent.patient_id]
            assert found[0]["name"][0]["family"] == sent.family
        assert client.resources("Patient").search(family="NoSuchFamily").fetch_all() == []

    def test_a_patient_is_read_by_id(self, live: Server) -> None:
        sent = live.sent[0]
        patient = live.client().reference("Patient", sent.patient_id).to_resource()
        original = sent.bundle["entry"][0]["resource"]
        assert patient.id == sent.patient_id
        assert patient["birthDate"] == original["birthDate"]
        assert patient["gender"] == original["gender"]
        assert patient["meta"]["versionId"] == "1"

    def test_observations_by_patient_code_and_date_prefix_match_the_bundle(
        self, live: Server
    ) -> None:
        client = live.client()
        code = "8302-2"  # body height: measured at most check-ups, over the years
        for sent in live.sent:
            wanted = [o for o in sent.observations() if has_code(o, code)]
            cutoff = cutoff_between([effective(o) for o in wanted])
            day = cutoff.date().isoformat()
            after = {sent.platform[o["id"]] for o in wanted if effective(o) >= cutoff}
            before = {sent.platform[o["id"]] for o in wanted if effective(o) < cutoff}
            assert after and before
            heights = client.resources("Observation").search(
                patient=sent.patient_id, code=f"{LOINC}|{code}"
            )
            assert {o.id for o in heights.search(date__ge=day).fetch_all()} == after
            assert {o.id for o in heights.search(date__lt=day).fetch_all()} == before
            assert {o.id for o in heights.fetch_all()} == after | before

    def test_paging_through_a_patients_observations_returns_every_one(self, live: Server) -> None:
        client = live.client()
        for sent in live.sent:
            pages = client.resources("Observation").search(patient=sent.patient_id).limit(7)
            found = pages.fetch_all()
            first_page = pages.fetch()
            expected = {sent.platform[o["id"]] for o in sent.observations()}
            assert len(first_page) == 7
            assert len(found) == len(expected) == len(sent.observations())
            assert {obs.id for obs in found} == expected
            assert all(obs["subject"]["reference"] == f"Patient/{sent.patient_id}" for obs in found)

    def test_an_observation_is_read_by_id_with_its_references_rewritten(self, live: Server) -> None:
        sent = live.sent[-1]
        original = sent.observations()[0]
        rid = sent.platform[original["id"]]
        obs = live.client().reference("Observation", rid).to_resource()
        assert (obs.resource_type, obs.id) == ("Observation", rid)
        assert obs["code"] == original["code"]
        assert obs["effectiveDateTime"] == original["effectiveDateTime"]
        assert obs["subject"]["reference"] == f"Patient/{sent.patient_id}"
        encounter = sent.ids[original["encounter"]["reference"]]
        assert obs["encounter"]["reference"] == "/".join(encounter)
        assert obs["meta"]["source"] == "urn:phr:organization:e2e-clinic"
