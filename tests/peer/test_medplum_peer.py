"""The correctness peer in CI: a few Synthea bundles loaded into this server and into
Medplum's in-memory FHIR router (bench/peer, ``npm ci`` there), then the battery of
bench/peer_compare.py run against both; every result set must agree (or differ only in
the documented way the query names). The full run with latencies is
``python bench/peer_compare.py`` (docs/performance.md)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SYNTHEA_DIR, OrgFactory, needs

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import peer_compare  # noqa: E402  (bench/ is not a package)

BUNDLES = 3  # the smallest ones: the whole test stays well under a minute

pytestmark = [
    needs(peer_compare.peer_ready() is None, f"Medplum peer: {peer_compare.peer_ready()}"),
    needs(
        SYNTHEA_DIR.is_dir() and any(SYNTHEA_DIR.glob("*.json")),
        f"outside data: no Synthea bundles (*.json) in {SYNTHEA_DIR}",
    ),
]


def _smallest_bundles() -> list[bytes]:
    files = sorted(SYNTHEA_DIR.glob("*.json"), key=lambda p: (p.stat().st_size, p.name))
    assert len(files) >= BUNDLES, f"need {BUNDLES} Synthea bundles in {SYNTHEA_DIR}"
    return peer_compare.read_bundles(files[:BUNDLES])


@pytest.fixture
def peer_url() -> Any:
    """A fresh peer per test: its memory is its whole database."""
    with peer_compare.run_peer() as url:
        yield url


def test_result_sets_match_medplum(client: Any, make_org: OrgFactory, peer_url: str) -> None:
    bundles = _smallest_bundles()
    org = make_org(peer_compare.ORG, kind="hospital")
    ours = peer_compare.Target("ours", client, org["headers"])
    with httpx.Client(base_url=peer_url, timeout=120) as pc:
        peer = peer_compare.Target("medplum", pc, pages_by_offset=True)
        mid = len(bundles) // 2
        loaded = peer_compare.load(ours, bundles, mark_after=mid)
        assert peer_compare.load(peer, bundles, mark_after=mid) == loaded
        facts = peer_compare.Facts.of(bundles)
        queries = peer_compare.battery(facts)
        outcomes = peer_compare.compare(ours, peer, queries, facts.resources)

    report = peer_compare.report(
        outcomes, {"bundles": len(bundles), "resources": loaded, "repeats": 1}
    )
    assert not peer_compare.unexplained(outcomes), report
    # Not vacuous: every parameter type is exercised and most searches find something.
    kinds = {o.query.kind for o in outcomes}
    assert {"token", "string", "date", "reference", "quantity", "_id", "_sort"} <= kinds
    found = Counter(o.status for o in outcomes if any(k[0] == "match" for k in o.ours.keys))
    assert found["match"] >= 0.8 * sum(1 for q in queries if q.expect == "equal"), report
    assert any(o.ours.pages > 1 for o in outcomes), "no query paged"
    assert any(k[0] == "include" for o in outcomes for k in o.ours.keys), "no include"


def test_peer_answers_a_search_and_a_read(peer_url: str) -> None:
    """The wrapper itself: a created Patient is found by search and read back."""
    with httpx.Client(base_url=peer_url) as pc:
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": "urn:uuid:5d1b2f3e-0000-4000-8000-000000000001",
                    "resource": {
                        "resourceType": "Patient",
                        "name": [{"family": "Peerstone", "given": ["Ada"]}],
                        "birthDate": "1970-01-02",
                    },
                    "request": {"method": "POST", "url": "Patient"},
                }
            ],
        }
        r = pc.post("/fhir", json=bundle)
        assert r.status_code == 200, r.text
        loc = r.json()["entry"][0]["response"]["location"]
        found = pc.get("/fhir/Patient", params={"family": "peerstone"}).json()
        assert [e["resource"]["id"] for e in found["entry"]] == [loc.split("/")[1]]
        read = pc.get(f"/fhir/{loc.split('/_history')[0]}")
        assert read.status_code == 200 and read.json()["birthDate"] == "1970-01-02"
        assert pc.get("/fhir/Patient/does-not-exist").status_code == 404
