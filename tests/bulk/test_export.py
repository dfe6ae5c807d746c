"""FHIR Bulk Data export: the async pattern, consent filtering, audit, files at rest."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.actors import Purpose
from consent.models import AuditEntry
from phr.bulk import files, worker
from phr.bulk.models import BulkExportJob
from tests.conftest import observation_entry, patient_bundle
from tests.consent.policy.conftest import SEARCHED, permit, visible

SHARED = ("Organization", "Practitioner", "Location", "Group")
FIRST_URN = b"11111111-1111-4111-8111-111111111111"
ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


def kick_off(client: TestClient, url: str, headers: dict[str, str], **params: str) -> str:
    r = client.get(url, params=params, headers={**headers, **ASYNC})
    assert r.status_code == 202, r.text
    return str(r.headers["Content-Location"])


def finished(client: TestClient, status_url: str, headers: dict[str, str]) -> dict[str, Any]:
    r = client.get(status_url, headers=headers)
    assert r.status_code == 202 and r.headers["X-Progress"] == "queued"
    assert worker.run_pending() == 1
    r = client.get(status_url, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def download(client: TestClient, manifest: dict[str, Any], headers: dict[str, str]) -> list[Any]:
    out = []
    for o in manifest["output"]:
        r = client.get(o["url"], headers=headers)
        assert r.status_code == 200 and r.headers["content-type"] == "application/fhir+ndjson"
        lines = [orjson.loads(line) for line in r.text.splitlines() if line]
        assert len(lines) == o["count"] and {x["resourceType"] for x in lines} == {o["type"]}
        out += lines
    return out


@pytest.fixture
def second(client: TestClient, world: dict[str, Any]) -> str:
    """Another resident of clinic A, who consented to nothing."""
    b = patient_bundle(
        mrn="99999", family="山田", given="太郎", birth="1960-01-01", gender="male",
        extra=[observation_entry("66666666-6666-4666-8666-666666666666", value=7.5)],
    )  # fmt: skip
    # Its own fullUrl: the same urn:uuid as the first resident's bundle is not a new person.
    b = orjson.loads(orjson.dumps(b).replace(FIRST_URN, b"77777777-7777-4777-8777-777777777777"))
    r = client.post("/fhir", json=b, headers=world["orgs"]["owner"]["headers"])
    assert r.status_code == 200, r.text
    return str(r.json()["entry"][0]["response"]["location"].split("/")[1])


def test_a_consent_limited_export_holds_exactly_what_the_caller_reads_one_by_one(
    session: Session, client: TestClient, world: dict[str, Any], second: str
) -> None:
    permit(
        session,
        world,
        recipients=[{"kind": "organization", "value": "hospital-b"}],
        purposes=["TREAT"],
    )
    session.commit()
    h = world["orgs"]["hospital"]["headers"]
    manifest = finished(client, kick_off(client, "/fhir/$export", h), h)
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert manifest["request"].endswith("/fhir/$export")
    exported = download(client, manifest, h)
    by_resident = {
        x["id"]
        for x in exported
        if x["resourceType"] in SEARCHED and x["resourceType"] != "Patient"
    }
    assert second not in {x["id"] for x in exported}
    assert not any(
        x.get("subject", {}).get("reference") == f"Patient/{second}" for x in exported
    ), "nothing of the resident who did not consent"
    one_by_one = visible(client, world, "hospital")
    assert {x["id"] for x in exported if x["resourceType"] in SEARCHED} == one_by_one
    assert world["depression"] not in by_resident  # sensitive data not named by the consent
    # One audited access per resident whose data left, naming the consent.
    entries = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "export", AuditEntry.organization_id == "hospital-b"
        )
    ).all()
    assert [e.resident_id for e in entries] == [world["patient"]]
    mine = [x for x in exported if x["resourceType"] not in SHARED]
    assert entries[0].count == len(mine) and entries[0].consent_ref, sorted(
        x["resourceType"] for x in exported
    )


def test_patient_and_group_level_with_type_and_since(
    session: Session, client: TestClient, world: dict[str, Any], second: str
) -> None:
    owner = world["orgs"]["owner"]["headers"]
    m = finished(
        client, kick_off(client, "/fhir/Patient/$export", owner, _type="Observation"), owner
    )
    obs = download(client, m, owner)
    assert {o["type"] for o in m["output"]} == {"Observation"}
    assert {x["subject"]["reference"] for x in obs} == {
        f"Patient/{world['patient']}",
        f"Patient/{second}",
    }
    group = {
        "resourceType": "Group",
        "type": "person",
        "actual": True,
        "member": [{"entity": {"reference": f"Patient/{second}"}}],
    }
    r = client.post("/fhir/Group", json=group, headers=owner)
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    m = finished(client, kick_off(client, f"/fhir/Group/{gid}/$export", owner), owner)
    got = download(client, m, owner)
    assert {x["resourceType"] for x in got} == {"Patient", "Observation"}
    assert {x["id"] for x in got if x["resourceType"] == "Patient"} == {second}
    m = finished(
        client, kick_off(client, "/fhir/$export", owner, _since="2999-01-01T00:00:00Z"), owner
    )
    assert m["output"] == []


def test_kick_off_errors_status_deletion_and_who_may_poll(
    client: TestClient, world: dict[str, Any]
) -> None:
    owner = world["orgs"]["owner"]["headers"]
    other = world["orgs"]["hospital"]["headers"]
    r = client.get("/fhir/$export", headers=owner)
    assert r.status_code == 400 and "respond-async" in r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    for bad in ({"_type": "NoSuchType"}, {"_outputFormat": "text/csv"}, {"_typeFilter": "x"}):
        assert (
            client.get("/fhir/$export", params=bad, headers={**owner, **ASYNC}).status_code == 400
        )
    assert client.get("/fhir/Group/nope/$export", headers={**owner, **ASYNC}).status_code == 404
    status_url = kick_off(client, "/fhir/$export", owner, _type="Patient")
    assert client.get(status_url, headers=other).status_code == 404
    m = finished(client, status_url, owner)
    [out] = m["output"]
    assert client.get(out["url"], headers=other).status_code == 404
    assert client.delete(status_url, headers=other).status_code == 404
    assert client.delete(status_url, headers=owner).status_code == 202
    assert client.get(status_url, headers=owner).status_code == 404
    assert client.get(out["url"], headers=owner).status_code == 404


def test_finished_exports_expire_and_are_purged(
    session: Session, client: TestClient, world: dict[str, Any]
) -> None:
    from datetime import timedelta
    from email.utils import parsedate_to_datetime

    owner = world["orgs"]["owner"]["headers"]
    status_url = kick_off(client, "/fhir/$export", owner, _type="Patient")
    m = finished(client, status_url, owner)
    job_id = status_url.rsplit("/", 1)[1]
    r = client.get(status_url, headers=owner)
    job = session.get(BulkExportJob, job_id)
    assert job is not None and job.finished_at is not None
    expires = parsedate_to_datetime(r.headers["Expires"]).replace(tzinfo=None)
    assert abs(expires - (job.finished_at + timedelta(hours=24))) < timedelta(seconds=1)
    assert worker.purge_expired() == 0  # not yet

    job.finished_at -= timedelta(hours=25)
    session.commit()
    assert client.get(status_url, headers=owner).status_code == 404  # expired: gone
    assert client.get(m["output"][0]["url"], headers=owner).status_code == 404
    orphan = files.job_dir("orphan-of-an-interrupted-delete")
    orphan.mkdir(parents=True)
    (orphan / "done").write_text("x")
    assert worker.purge_expired() == 1
    session.expire_all()
    assert session.get(BulkExportJob, job_id) is None
    assert not files.job_dir(job_id).exists() and not orphan.exists()


def test_files_are_sealed_at_rest(client: TestClient, world: dict[str, Any]) -> None:
    owner = world["orgs"]["owner"]["headers"]
    status_url = kick_off(client, "/fhir/$export", owner, _type="Patient")
    m = finished(client, status_url, owner)
    job_id = status_url.rsplit("/", 1)[1]
    raw = (files.job_dir(job_id) / "Patient.ndjson").read_bytes()
    assert "筑波".encode() not in raw and b"Patient" not in raw
    assert "筑波" in client.get(m["output"][0]["url"], headers=owner).text


def test_a_killed_server_leaves_the_started_job_failed(
    session: Session, client: TestClient, world: dict[str, Any]
) -> None:
    owner = world["orgs"]["owner"]["headers"]
    started = kick_off(client, "/fhir/$export", owner)
    queued = kick_off(client, "/fhir/$export", owner)
    job_id = started.rsplit("/", 1)[1]
    (files.job_dir(job_id) / "started").write_text("then the server was killed")
    (files.job_dir(job_id) / "Patient.ndjson").write_text("partial")
    assert worker.recover() == (1, 1)
    session.expire_all()
    job = session.get(BulkExportJob, job_id)
    assert job is not None and job.status == "failed"
    assert not (files.job_dir(job_id) / "Patient.ndjson").exists()
    r = client.get(started, headers=owner)
    assert r.status_code == 500 and "server stopped" in r.text
    assert client.get(queued, headers=owner).status_code == 202
    assert worker.run_pending() == 1
    assert client.get(queued, headers=owner).status_code == 200
    assert Purpose.TREATMENT.value == "TREAT"


def test_the_worker_thread_runs_a_kicked_off_job(
    client: TestClient, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real thread, woken by the kick-off. While it runs, this test only watches the
    file system (the thread borrows the test's database connection)."""
    import time

    from phr.settings import reset_settings_cache

    monkeypatch.setenv("PHR_BULK_WORKERS", "1")
    reset_settings_cache()
    owner = world["orgs"]["owner"]["headers"]
    status_url = kick_off(client, "/fhir/$export", owner, _type="Patient")
    done = files.job_dir(status_url.rsplit("/", 1)[1]) / "done"
    deadline = time.monotonic() + 30
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.WORKER.stop()
    assert done.exists()
    r = client.get(status_url, headers=owner)
    assert r.status_code == 200 and r.json()["output"][0]["count"] == 1


def test_the_capability_statement_announces_bulk_export(client: TestClient) -> None:
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    cs = client.get("/fhir/metadata").json()
    CapabilityStatement.model_validate(cs)
    assert cs["instantiates"] == ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"]
    assert {o["name"] for o in cs["rest"][0]["operation"]} == {"export"}
    patient = next(r for r in cs["rest"][0]["resource"] if r["type"] == "Patient")
    assert "export" in {o["name"] for o in patient["operation"]}
