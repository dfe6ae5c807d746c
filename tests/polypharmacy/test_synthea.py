"""The Synthea bundles' medicines (RxNorm): matched by ingredient, or reported as
unrecognised — never dropped."""

from __future__ import annotations

import orjson
import pytest

from phr.polypharmacy.kb import knowledge_base
from phr.polypharmacy.master import components
from phr.polypharmacy.reconcile import reconcile
from tests.conftest import require
from tests.polypharmacy.helpers import SYNTHEA, TODAY, catalogue


def synthea_requests() -> list[dict]:
    out = []
    for path in sorted(SYNTHEA.glob("*.json")):
        bundle = orjson.loads(path.read_bytes())
        for e in bundle.get("entry", []):
            r = e.get("resource", {})
            if r.get("resourceType") == "MedicationRequest":
                r = {**r, "id": r.get("id") or e["fullUrl"].rsplit(":", 1)[-1]}
                out.append(r)
    return out


@pytest.fixture(scope="module")
def requests() -> list[dict]:
    found = synthea_requests()
    require(bool(found), f"the Synthea sample bundles are not at {SYNTHEA}")
    return found


def test_every_synthea_medicine_is_matched_or_reported(requests: list[dict]) -> None:
    meds = reconcile(requests, {}, knowledge_base(), today=TODAY)
    assert sum(len(m.sources) for m in meds) == len(requests) == 187
    on_list = {c for p in catalogue().values() for c in components(p.ingredient)}
    matched = [m for m in meds if m.recognised]
    unrecognised = [m for m in meds if not m.recognised]
    assert matched and unrecognised
    for m in matched:
        assert m.how == "rxnorm"
        assert set(m.ingredients) <= on_list, m.ingredients
    names = {m.name for m in matched}
    assert {"イブプロフェン", "アセトアミノフェン", "クロピドグレル硫酸塩"} <= names
    # Synthea's own misspelling stays visible as unrecognised, not silently dropped.
    assert any("Simvistatin" in m.name for m in unrecognised)
    # A combination product maps to each of its ingredients.
    assert any(
        set(m.ingredients) == {"アモキシシリン水和物", "クラブラン酸カリウム"} for m in matched
    )


def test_naproxen_and_ibuprofen_from_synthea_are_nsaids(requests: list[dict]) -> None:
    meds = reconcile(requests, {}, knowledge_base(), today=TODAY)
    nsaids = {m.name for m in meds if "nsaid" in m.classes}
    assert {"イブプロフェン", "ナプロキセン"} <= nsaids
