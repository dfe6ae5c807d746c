"""``phr demo load``: a deterministic synthetic Tsukuba through the real ingest paths.

Small cities (30 residents, two Synthea bundles) keep these tests fast; the loader is the
same one that loads 1,000 residents.
"""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from consent.models import OAuthClient
from fhir_gateway.identity import MYNUMBER_SYSTEM, hash_mynumber, valid_mynumber
from fhir_gateway.models import IdentityLink, MatchReview
from phr.demo import orgs
from phr.demo.clinical import health_of
from phr.demo.drugs import DRUG_CODE_SYSTEM, Catalogue
from phr.demo.people import AS_OF, KOKUHO, KYOKAI, generate_residents
from phr.store.models import Resource, ResourceSource, ResourceVersion
from tests.conftest import DRUGS_CSV, SYNTHEA_DIR, needs

SEED = 20261124
N = 30

pytestmark = needs(
    DRUGS_CSV.exists(), "the national drug list is not in ../shared/data/jp-drugs (outside data)"
)


@pytest.fixture
def synthea_two(tmp_path: Path) -> Path:
    """Two of the Synthea bundles (copied at test time; never into the repository)."""
    d = tmp_path / "synthea"
    d.mkdir()
    for p in sorted(SYNTHEA_DIR.glob("*.json"))[:2]:
        shutil.copy(p, d / p.name)
    return d


@pytest.fixture
def load_city(session: Session, synthea_two: Path) -> Callable[[], Path]:
    from phr.demo.loader import load

    def run() -> Path:
        return load(residents=N, seed=SEED, synthea_dir=synthea_two)

    return run


def _resident_of(session: Session, mynumber: str) -> str:
    rid = session.scalar(
        select(IdentityLink.resident_id).where(
            IdentityLink.kind == "mynumber",
            IdentityLink.system == MYNUMBER_SYSTEM,
            IdentityLink.value == hash_mynumber(mynumber),
        )
    )
    assert rid is not None
    return str(rid)


def _contents(session: Session, resident: str, rtype: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Resource.content).where(
            Resource.resident_id == resident,
            Resource.resource_type == rtype,
            Resource.deleted.is_(False),
        )
    ).all()
    return [orjson.loads(c) for c in rows]


def _counts(session: Session) -> dict[str, int]:
    return {
        "resource_version": session.scalar(select(func.count()).select_from(ResourceVersion)) or 0,
        "resource_source": session.scalar(select(func.count()).select_from(ResourceSource)) or 0,
        "identity_link": session.scalar(select(func.count()).select_from(IdentityLink)) or 0,
        "oauth_client": session.scalar(select(func.count()).select_from(OAuthClient)) or 0,
    }


# ---- the generator ---------------------------------------------------------------------------


class TestGenerator:
    def test_the_same_seed_gives_the_same_city(self) -> None:
        catalogue = Catalogue.load()
        a = generate_residents(SEED, 50)
        b = generate_residents(SEED, 50)
        assert [(r.name, r.kana, r.birth_date, r.mynumber, r.address) for r in a] == [
            (r.name, r.kana, r.birth_date, r.mynumber, r.address) for r in b
        ]
        ha = [health_of(r, SEED, catalogue) for r in a]
        hb = [health_of(r, SEED, catalogue) for r in b]
        values_a = [
            (m.kind, m.value, m.value2) for h in ha for v in h.visits for m in v.measurements
        ]
        values_b = [
            (m.kind, m.value, m.value2) for h in hb for v in h.visits for m in v.measurements
        ]
        assert values_a and values_a == values_b
        other = generate_residents(SEED + 1, 50)
        assert [r.name for r in other] != [r.name for r in a]

    def test_residents_look_like_tsukuba(self) -> None:
        people = generate_residents(SEED, 1000)
        assert len({r.mynumber for r in people}) == 1000
        assert all(valid_mynumber(r.mynumber) for r in people)
        assert all(r.address.startswith("茨城県つくば市") for r in people)
        assert all(len(r.postal_code) == 8 and r.postal_code[3] == "-" for r in people)
        # kana readings are katakana
        assert all(
            all("\u30a0" <= ch <= "\u30ff" for ch in r.family_kana + r.given_kana) for r in people
        )
        assert {r.sex for r in people} == {"M", "F"}
        older = sum(1 for r in people if r.age >= 65) / len(people)
        children = sum(1 for r in people if r.age < 15) / len(people)
        assert 0.25 <= older <= 0.4 and 0.05 <= children <= 0.2
        assert any(r.tsuchiura for r in people) and any(r.changed_insurer for r in people)

    def test_medicines_come_from_the_national_list_only(self) -> None:
        catalogue = Catalogue.load()
        codes = set()
        for r in generate_residents(SEED, 200):
            for v in health_of(r, SEED, catalogue).visits:
                codes |= {p.product.code for p in v.prescriptions}
        assert len(codes) > 20
        assert codes <= catalogue.codes


# ---- loading ---------------------------------------------------------------------------------


class TestLoad:
    def test_credentials_and_every_client_reads_its_own_data(
        self, session: Session, client: TestClient, load_city: Callable[[], Path]
    ) -> None:
        path = load_city()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        creds = json.loads(path.read_text(encoding="utf-8"))
        assert creds["residents"] == N
        assert creds["token_endpoint"].endswith("/oauth/token")
        assert creds["fhir_base"].endswith("/fhir")
        by_org = {c["organization"]: c for c in creds["clients"]}
        expected = {o.id for o in orgs.ORGANIZATIONS}
        if not any(SYNTHEA_DIR.glob("*.json")):
            expected.discard(orgs.SYNTHEA.id)
        assert set(by_org) == expected
        # The files an operator would import, written where `phr import` would read them.
        demo = path.parent / "demo"
        assert (demo / "municipal" / "tsukuba-city" / "vaccination.csv").exists()
        assert (demo / "insurer" / "kyokai-ibaraki" / "insurer-dispensing.csv").exists()
        kinds = {c["kind"] for c in creds["clients"]}
        assert {
            "clinic",
            "hospital",
            "pharmacy",
            "ems",
            "nurse_station",
            "municipality",
            "insurer",
        } <= kinds
        assert by_org["tsukuba-fire"]["scopes"] == ["system/*.rs"]
        assert by_org["tsukuba-city"]["scopes"] == ["system/*.rs", "system/Bundle.c"]
        assert by_org["takezono-naika"]["client_id"] == "demo-takezono-naika"
        assert creds["example_patients"]
        assert all(e["id"] and e["name"] and e["note"] for e in creds["example_patients"])

        senders = {
            "tsukuba-chuo-clinic",
            "takezono-naika",
            "tsukuba-gakuen-hospital",
            "tsukuba-city",
            "tsuchiura-city",
            "kyokai-ibaraki",
            "tsukuba-kokuho",
        } | ({orgs.SYNTHEA.id} & expected)
        for c in creds["clients"]:
            r = client.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(c["client_id"], c["client_secret"]),
            )
            assert r.status_code == 200, (c["client_id"], r.text)
            headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
            r = client.get("/fhir/Patient", headers=headers, params={"_summary": "count"})
            assert r.status_code == 200, (c["client_id"], r.text)
            if c["organization"] in senders:
                assert r.json()["total"] >= 1, c["organization"]

    def test_one_resident_across_two_cities_and_two_insurers(
        self, session: Session, load_city: Callable[[], Path]
    ) -> None:
        load_city()
        persona = generate_residents(SEED, 1)[0]
        assert persona.tsuchiura is not None and persona.changed_insurer
        resident = _resident_of(session, persona.mynumber)
        sources = set(
            session.scalars(
                select(ResourceSource.organization_id).where(ResourceSource.resident_id == resident)
            )
        )
        assert {"tsuchiura-city", "tsukuba-city", KYOKAI, KOKUHO} <= sources
        patients = _contents(session, resident, "Patient")
        assert len(patients) == 1
        assert patients[0]["birthDate"] == persona.birth_date.isoformat()
        # 資格異動: the 協会けんぽ link ended when the つくば市国保 one started.
        links = session.scalars(
            select(IdentityLink).where(
                IdentityLink.resident_id == resident, IdentityLink.kind == "insurance"
            )
        ).all()
        by_system = {link.system: link for link in links}
        kyokai = by_system["urn:phr:insurer:01080016"]
        kokuho = by_system["urn:phr:insurer:083220"]
        assert kokuho.valid_to is None
        assert kyokai.valid_to is not None and kyokai.valid_to <= AS_OF
        # Older vaccinations from 土浦市, newer from つくば市: one history.
        imms = _contents(session, resident, "Immunization")
        origins = {i["meta"]["source"] for i in imms}
        assert {
            "urn:phr:organization:tsuchiura-city",
            "urn:phr:organization:tsukuba-city",
        } <= origins

    def test_the_database_holds_what_the_seed_generated(
        self, session: Session, load_city: Callable[[], Path]
    ) -> None:
        load_city()
        catalogue = Catalogue.load()
        people = generate_residents(SEED, N)
        stored = {
            (p["birthDate"], p["name"][0].get("family"), (p["name"][0].get("given") or [""])[0])
            for p in (
                orjson.loads(c)
                for c in session.scalars(
                    select(Resource.content).where(Resource.resource_type == "Patient")
                )
            )
        }
        for r in people:
            if health_of(r, SEED, catalogue).vaccinations:
                assert (r.birth_date.isoformat(), r.family, r.given) in stored
        # The persona's HbA1c values are the generated ones, in the same order.
        persona = people[0]
        story = health_of(persona, SEED, catalogue)
        want = [m.value for v in story.visits for m in v.measurements if m.kind == "hba1c"]
        assert want
        rows = session.scalars(
            select(Resource.content).where(
                Resource.resource_type == "Observation",
                Resource.pk.in_(
                    select(ResourceSource.resource_pk).where(
                        ResourceSource.organization_id == "tsukuba-chuo-clinic"
                    )
                ),
            )
        ).all()
        got = sorted(
            (o["effectiveDateTime"], o["valueQuantity"]["value"])
            for o in map(orjson.loads, rows)
            if o["code"]["coding"][0]["code"] == "4548-4"
            and o["effectiveDateTime"][:10]
            in {v.day.isoformat() for v in story.visits if v.clinic == "tsukuba-chuo-clinic"}
        )
        assert [v for _, v in got] == want

    def test_medicines_carry_real_codes_of_the_national_list(
        self, session: Session, load_city: Callable[[], Path]
    ) -> None:
        load_city()
        catalogue = Catalogue.load()
        seen = 0
        for rtype in ("MedicationRequest", "MedicationDispense"):
            for content in session.scalars(
                select(Resource.content).where(
                    Resource.resource_type == rtype,
                    Resource.pk.in_(
                        select(ResourceSource.resource_pk).where(
                            ResourceSource.organization_id.in_(
                                [
                                    "tsukuba-chuo-clinic",
                                    "takezono-naika",
                                    "tsukuba-gakuen-hospital",
                                    KYOKAI,
                                    KOKUHO,
                                ]
                            )
                        )
                    ),
                )
            ):
                med = orjson.loads(content)["medicationCodeableConcept"]
                codes = [c["code"] for c in med["coding"] if c["system"] == DRUG_CODE_SYSTEM]
                assert len(codes) == 1 and codes[0] in catalogue.codes
                seen += 1
        assert seen > 50

    def test_loading_again_changes_nothing(
        self, session: Session, load_city: Callable[[], Path]
    ) -> None:
        path = load_city()
        before, creds = _counts(session), path.read_bytes()
        load_city()
        assert _counts(session) == before
        assert path.read_bytes() == creds

    def test_lost_credentials_rotate_the_demo_clients(
        self, session: Session, client: TestClient, load_city: Callable[[], Path]
    ) -> None:
        path = load_city()
        old = {
            c["client_id"]: c["client_secret"]
            for c in json.loads(path.read_text(encoding="utf-8"))["clients"]
        }
        versions = _counts(session)["resource_version"]
        path.unlink()
        load_city()
        new = {
            c["client_id"]: c["client_secret"]
            for c in json.loads(path.read_text(encoding="utf-8"))["clients"]
        }
        assert new.keys() == old.keys()
        assert all(new[k] != old[k] for k in new)
        assert _counts(session)["resource_version"] == versions
        cid = "demo-tsukuba-fire"
        token = {"grant_type": "client_credentials"}
        assert client.post("/oauth/token", data=token, auth=(cid, old[cid])).status_code == 401
        assert client.post("/oauth/token", data=token, auth=(cid, new[cid])).status_code == 200

    def test_clinic_records_join_the_resident_the_insurer_knows(
        self, session: Session, load_city: Callable[[], Path]
    ) -> None:
        """The clinics send the 被保険者個人識別子, not the My Number: the gateway links
        their patients to the resident through the insurance number."""
        load_city()
        persona = generate_residents(SEED, 1)[0]
        resident = _resident_of(session, persona.mynumber)
        assert len(_contents(session, resident, "Patient")) == 1
        requests = _contents(session, resident, "MedicationRequest")
        assert requests, "the clinic's prescriptions are filed under another resident"
        assert all(date.fromisoformat(r["authoredOn"][:10]) <= AS_OF for r in requests)
        dispensed = _contents(session, resident, "MedicationDispense")
        assert {r["medicationCodeableConcept"]["coding"][0]["code"] for r in requests} & {
            d["medicationCodeableConcept"]["coding"][0]["code"] for d in dispensed
        }
        reviews = session.scalar(
            select(func.count())
            .select_from(MatchReview)
            .where(or_(MatchReview.resident_id == resident, MatchReview.candidate_id == resident))
        )
        assert reviews == 0
