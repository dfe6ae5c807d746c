"""The whole Synthea R4 sample (40 patients, 9,394 resources) through the gateway, untouched.

Every resource must come back through the choke point by the platform id the
transaction-response gave it, the per-type counts must match the bundles (Organization and
Practitioner entries shared between bundles under the same fullUrl are stored once), and
sending a bundle again must write nothing.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from consent.identity.clients import register_organization
from fhir_gateway.ingest import process_bundle
from phr.store import repository as repo
from phr.store import search as fsearch
from phr.store.models import ResourceVersion
from phr.store.reader import RecordReader
from tests.conftest import SYNTHEA_DIR, require

pytestmark = pytest.mark.slow

ORG = "synthea-general"
SOURCE = f"urn:phr:organization:{ORG}"


def bundle_files() -> list[Path]:
    files = sorted(SYNTHEA_DIR.glob("*.json")) if SYNTHEA_DIR.is_dir() else []
    require(bool(files), f"the Synthea sample bundles (*.json) are not in {SYNTHEA_DIR}")
    return files


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_bytes())


def hospital(session: Session) -> Actor:
    register_organization(session, id=ORG, name="Synthea General Hospital", kind="hospital")
    session.commit()
    return Actor(
        kind="organization",
        client_id=f"{ORG}-client",
        organization_id=ORG,
        organization_kind="hospital",
        scopes=frozenset({"system/*.cruds"}),
    )


def location(entry: dict[str, Any]) -> tuple[str, str, int]:
    """``Type/id/_history/n`` of a transaction-response entry, split."""
    rtype, rid, history, version = entry["response"]["location"].split("/")
    assert history == "_history"
    return rtype, rid, int(version)


def versions(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(ResourceVersion)) or 0)


class TestSyntheaSample:
    def test_every_resource_of_every_bundle_is_stored_readable_and_counted_once(
        self, session: Session
    ) -> None:
        files = bundle_files()
        actor = hospital(session)
        full_urls: dict[str, set[str]] = defaultdict(set)  # type -> distinct fullUrls
        platform: dict[str, tuple[str, str]] = {}  # fullUrl -> (type, platform id)
        patients: dict[str, str] = {}  # Patient fullUrl -> platform id
        sent = 0
        for path in files:
            bundle = load(path)
            originals = [(e["fullUrl"], e["resource"]["resourceType"]) for e in bundle["entry"]]
            out = process_bundle(session, bundle, actor=actor)
            session.commit()
            assert out["type"] == "transaction-response", path.name
            assert len(out["entry"]) == len(originals), path.name
            for (full_url, rtype), answer in zip(originals, out["entry"], strict=True):
                got_type, rid, _ = location(answer)
                assert got_type == rtype, f"{path.name}: {full_url}"
                # The same fullUrl in two bundles must land on the same platform resource.
                assert platform.setdefault(full_url, (rtype, rid)) == (rtype, rid), full_url
                full_urls[rtype].add(full_url)
                if rtype == "Patient":
                    patients[full_url] = rid
            sent += len(originals)

        assert sent == sum(len(load(p)["entry"]) for p in files)
        assert len(patients) == len(files)
        ids_per_type = Counter(rtype for rtype, _ in platform.values())
        assert ids_per_type == Counter({t: len(u) for t, u in full_urls.items()})

        reader = RecordReader(session, actor, Purpose.TREATMENT)
        for full_url, (rtype, rid) in platform.items():
            row = reader.read(rtype, rid)
            body = repo.load_json(row.content)
            assert (body["resourceType"], body["id"]) == (rtype, rid), full_url
            assert body["meta"]["source"] == SOURCE
            assert "urn:uuid:" not in row.content, f"{rtype}/{rid} kept a bundle-local reference"

        for rtype, urls in full_urls.items():
            found = reader.search(fsearch.parse(rtype, [("_summary", "count")]))
            assert found.total == len(urls), rtype

    def test_an_observation_points_at_its_patients_platform_id(self, session: Session) -> None:
        path = bundle_files()[0]
        bundle = load(path)
        patient_url = bundle["entry"][0]["fullUrl"]
        wanted = sum(
            1
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Observation"
            and e["resource"].get("subject", {}).get("reference") == patient_url
        )
        actor = hospital(session)
        out = process_bundle(session, bundle, actor=actor)
        pid = location(out["entry"][0])[1]
        found = RecordReader(session, actor, Purpose.TREATMENT).search(
            fsearch.parse("Observation", [("patient", pid), ("_count", "1000")])
        )
        assert wanted > 0
        assert found.total == wanted
        assert all(
            repo.load_json(r.content)["subject"]["reference"] == f"Patient/{pid}"
            for r in found.matches
        )

    def test_sending_a_bundle_again_writes_no_new_version(self, session: Session) -> None:
        path = bundle_files()[0]
        actor = hospital(session)
        first = process_bundle(session, load(path), actor=actor)
        session.commit()
        before = versions(session)
        again = process_bundle(session, load(path), actor=actor)
        session.commit()
        assert versions(session) == before
        assert [location(e) for e in again["entry"]] == [location(e) for e in first["entry"]]
        assert {e["response"]["status"] for e in again["entry"]} == {"200 OK"}
