"""Clinic transaction and batch Bundles: references, conditionals, all-or-nothing,
idempotent re-import, provenance and the master patient index."""

from __future__ import annotations

import copy
import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from consent.models import Organization
from fhir_gateway.ingest import process_bundle
from fhir_gateway.models import IdentityLink, MatchReview
from phr.errors import InvalidInput, PayloadTooLarge, UnprocessableResource
from phr.store import repository as repo
from phr.store import search as fsearch
from phr.store.indexer import utcnow
from phr.store.models import Resource, ResourceVersion
from phr.store.reader import RecordReader
from tests.conftest import observation_entry, patient_bundle

SCOPES = frozenset({"system/*.rs", "system/Bundle.c", "system/*.cud"})


def clinic(session: Session, org_id: str = "clinic-a") -> Actor:
    if session.get(Organization, org_id) is None:
        session.add(Organization(id=org_id, name=org_id, kind="clinic", created_at=utcnow()))
        session.flush()
    return Actor(
        kind="organization",
        client_id=f"{org_id}-client",
        organization_id=org_id,
        organization_kind="clinic",
        scopes=SCOPES,
    )


def count(session: Session, model: type = Resource, **where: str) -> int:
    stmt = select(func.count()).select_from(model)
    for k, v in where.items():
        stmt = stmt.where(getattr(model, k) == v)
    return int(session.scalar(stmt) or 0)


def location_id(entry: dict) -> str:
    return entry["response"]["location"].split("/")[1]


class TestTransactions:
    def test_urn_uuid_references_resolve_to_the_stored_patient(self, session: Session) -> None:
        b = patient_bundle(extra=[observation_entry("22222222-2222-4222-8222-222222222222")])
        out = process_bundle(session, b, actor=clinic(session))
        assert out["type"] == "transaction-response"
        pid, oid = location_id(out["entry"][0]), location_id(out["entry"][1])
        assert out["entry"][1]["response"]["status"] == "201 Created"
        obs = repo.load_json(
            session.execute(repo.current_statement("Observation", oid)).scalar_one().content
        )
        assert obs["subject"]["reference"] == f"Patient/{pid}"
        assert obs["meta"]["source"] == "urn:phr:organization:clinic-a"
        assert (
            session.execute(repo.current_statement("Observation", oid)).scalar_one().resident_id
            == pid
        )

    def test_resending_the_same_bundle_changes_nothing(self, session: Session) -> None:
        b = patient_bundle(extra=[observation_entry("22222222-2222-4222-8222-222222222222")])
        actor = clinic(session)
        first = process_bundle(session, copy.deepcopy(b), actor=actor)
        versions = count(session, ResourceVersion)
        second = process_bundle(session, copy.deepcopy(b), actor=actor)
        assert count(session, ResourceVersion) == versions
        assert [location_id(e) for e in first["entry"]] == [location_id(e) for e in second["entry"]]

    def test_a_changed_source_record_becomes_a_new_version(self, session: Session) -> None:
        actor = clinic(session)
        process_bundle(
            session,
            patient_bundle(
                extra=[observation_entry("22222222-2222-4222-8222-222222222222", value=6.1)]
            ),
            actor=actor,
        )
        out = process_bundle(
            session,
            patient_bundle(
                extra=[observation_entry("22222222-2222-4222-8222-222222222222", value=6.4)]
            ),
            actor=actor,
        )
        assert out["entry"][1]["response"]["location"].endswith("/_history/2")

    def test_one_invalid_entry_rejects_the_whole_transaction(self, session: Session) -> None:
        bad = observation_entry("33333333-3333-4333-8333-333333333333")
        bad["resource"]["status"] = "not-a-status"
        before = count(session)
        with pytest.raises(InvalidInput) as err:
            process_bundle(
                session,
                patient_bundle(
                    extra=[observation_entry("22222222-2222-4222-8222-222222222222"), bad]
                ),
                actor=clinic(session),
            )
        assert count(session) == before
        assert any(
            "entry[2]" in (i.get("expression") or [""])[0]
            for i in err.value.operation_outcome()["issue"]
        )

    def test_an_unresolvable_reference_is_refused(self, session: Session) -> None:
        dangling = observation_entry("22222222-2222-4222-8222-222222222222")
        dangling["resource"]["subject"]["reference"] = "urn:uuid:99999999-9999-4999-8999-9999"
        with pytest.raises(UnprocessableResource, match="unresolved reference"):
            process_bundle(
                session,
                {"resourceType": "Bundle", "type": "transaction", "entry": [dangling]},
                actor=clinic(session),
            )

    def test_too_many_entries_is_refused_before_any_work(
        self, session: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from phr.settings import get_settings

        monkeypatch.setattr(get_settings(), "max_bundle_entries", 2)
        b = patient_bundle(
            extra=[observation_entry(f"2222222{i}-2222-4222-8222-222222222222") for i in range(3)]
        )
        with pytest.raises(PayloadTooLarge):
            process_bundle(session, b, actor=clinic(session))

    def test_conditional_create_finds_the_existing_resource(self, session: Session) -> None:
        actor = clinic(session)
        e = observation_entry("22222222-2222-4222-8222-222222222222")
        e["resource"]["identifier"] = [{"system": "urn:clinic-a:lab", "value": "L-1"}]
        first = process_bundle(session, patient_bundle(extra=[copy.deepcopy(e)]), actor=actor)
        e2 = copy.deepcopy(e)
        e2["fullUrl"] = "urn:uuid:44444444-4444-4444-8444-444444444444"
        e2["request"]["ifNoneExist"] = "identifier=urn:clinic-a:lab|L-1"
        second = process_bundle(session, patient_bundle(extra=[e2]), actor=actor)
        assert location_id(second["entry"][1]) == location_id(first["entry"][1])
        assert second["entry"][1]["response"]["status"] == "200 OK"

    def test_conditional_update_by_identifier(self, session: Session) -> None:
        actor = clinic(session)
        e = observation_entry("22222222-2222-4222-8222-222222222222", value=6.0)
        e["resource"]["identifier"] = [{"system": "urn:clinic-a:lab", "value": "L-2"}]
        first = process_bundle(session, patient_bundle(extra=[copy.deepcopy(e)]), actor=actor)
        upd = copy.deepcopy(e)
        upd["resource"]["valueQuantity"]["value"] = 6.6
        upd["request"] = {"method": "PUT", "url": "Observation?identifier=urn:clinic-a:lab|L-2"}
        out = process_bundle(session, patient_bundle(extra=[upd]), actor=actor)
        assert location_id(out["entry"][1]) == location_id(first["entry"][1])
        assert out["entry"][1]["response"]["location"].endswith("/_history/2")

    def test_a_batch_applies_good_entries_and_reports_bad_ones(self, session: Session) -> None:
        actor = clinic(session)
        process_bundle(session, patient_bundle(), actor=actor)
        good = observation_entry("22222222-2222-4222-8222-222222222222")
        good["resource"]["subject"] = {
            "reference": "Patient?identifier=urn:oid:1.2.392.100495.20.3.51.11234567|12345"
        }
        bad = copy.deepcopy(good)
        bad["resource"]["status"] = "bogus"
        out = process_bundle(
            session, {"resourceType": "Bundle", "type": "batch", "entry": [good, bad]}, actor=actor
        )
        assert out["entry"][0]["response"]["status"] == "201 Created"
        assert out["entry"][1]["response"]["status"] == "400"
        assert out["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"

    def test_every_write_has_provenance(self, session: Session) -> None:
        out = process_bundle(
            session,
            patient_bundle(extra=[observation_entry("22222222-2222-4222-8222-222222222222")]),
            actor=clinic(session),
        )
        oid = location_id(out["entry"][1])
        req = fsearch.parse("Provenance", [("target", f"Observation/{oid}")])
        provs = [
            repo.load_json(r.content)
            for r in RecordReader(session, Actor.system(), Purpose.OPERATIONS).search(req).matches
        ]
        assert len(provs) == 1
        assert provs[0]["agent"][0]["who"]["reference"] == "Organization/clinic-a"
        # One Provenance for the whole bundle, the patient included.
        pid = location_id(out["entry"][0])
        everyone = RecordReader(session, Actor.system(), Purpose.OPERATIONS).search(
            fsearch.parse("Provenance", [("patient", pid)])
        )
        assert everyone.total == 1
        targets = {
            t["reference"].split("/_history")[0]
            for t in repo.load_json(everyone.matches[0].content)["target"]
        }
        assert {f"Patient/{pid}", f"Observation/{oid}"} <= targets


class TestIdentity:
    def test_two_clinics_with_their_own_numbers_are_not_merged_automatically(
        self, session: Session
    ) -> None:
        a = process_bundle(session, patient_bundle(mrn="A-1"), actor=clinic(session, "clinic-a"))
        b = process_bundle(session, patient_bundle(mrn="B-9"), actor=clinic(session, "clinic-b"))
        assert location_id(a["entry"][0]) != location_id(b["entry"][0])
        review = session.scalars(select(MatchReview)).one()
        assert review.reason == "possible-duplicate" and review.status == "open"

    def test_a_resident_keeps_one_record_when_the_same_clinic_resends(
        self, session: Session
    ) -> None:
        actor = clinic(session)
        a = process_bundle(session, patient_bundle(), actor=actor)
        b = process_bundle(session, patient_bundle(given="花子", family="筑波"), actor=actor)
        assert location_id(a["entry"][0]) == location_id(b["entry"][0])

    def test_a_conflicting_birth_date_goes_to_review_not_merge(self, session: Session) -> None:
        actor = clinic(session)
        a = process_bundle(session, patient_bundle(birth="1950-04-01"), actor=actor)
        b = process_bundle(session, patient_bundle(birth="1988-12-24"), actor=actor)
        assert location_id(a["entry"][0]) != location_id(b["entry"][0])
        assert session.scalars(select(MatchReview)).one().reason == "conflicting-demographics"

    def test_approving_a_review_merges_the_records(self, session: Session) -> None:
        from fhir_gateway.identity import merge

        a = process_bundle(
            session,
            patient_bundle(
                mrn="A-1", extra=[observation_entry("22222222-2222-4222-8222-222222222222")]
            ),
            actor=clinic(session, "clinic-a"),
        )
        process_bundle(
            session,
            patient_bundle(
                mrn="B-9",
                extra=[observation_entry("33333333-3333-4333-8333-333333333333", value=7.0)],
            ),
            actor=clinic(session, "clinic-b"),
        )
        review = session.scalars(select(MatchReview)).one()
        keep = merge(session, review.pk, reviewer="staff-1")
        assert keep == location_id(a["entry"][0])
        got = RecordReader(session, Actor.system(), Purpose.OPERATIONS).search(
            fsearch.parse("Observation", [("patient", keep)])
        )
        assert got.total == 2
        assert count(session, IdentityLink, resident_id=review.resident_id) == 0

    def test_a_my_number_is_never_stored(self, session: Session) -> None:
        number = "123456789018"
        b = patient_bundle()
        b["entry"][0]["resource"]["identifier"].append(
            {"system": "urn:oid:1.2.392.100495.20.3.81", "value": number}
        )
        process_bundle(session, b, actor=clinic(session))
        for model in (Resource, ResourceVersion, IdentityLink):
            for row in session.scalars(select(model)):
                assert number not in json.dumps(
                    {c.name: str(getattr(row, c.name)) for c in model.__table__.columns}
                )


class TestSourceIdSpaces:
    def test_two_clinics_with_the_same_ids_do_not_touch_each_others_records(
        self, session: Session
    ) -> None:
        def bundle(mrn: str, value: float) -> dict:
            e = observation_entry("22222222-2222-4222-8222-222222222222", value=value)
            e["fullUrl"] = "http://clinic.example/fhir/Observation/obs-1"
            e["resource"]["id"] = "obs-1"
            e["request"] = {"method": "PUT", "url": "Observation/obs-1"}
            return patient_bundle(mrn=mrn, family="別人", given=mrn, extra=[e])

        a = process_bundle(session, bundle("A-1", 5.0), actor=clinic(session, "clinic-a"))
        b = process_bundle(session, bundle("B-1", 9.0), actor=clinic(session, "clinic-b"))
        oa, ob = location_id(a["entry"][1]), location_id(b["entry"][1])
        assert oa != ob and "obs-1" not in (oa, ob)
        row = session.execute(repo.current_statement("Observation", oa)).scalar_one()
        assert row.version_id == 1 and repo.load_json(row.content)["valueQuantity"]["value"] == 5
        assert row.resident_id == location_id(a["entry"][0])

    def test_a_clinic_cannot_file_records_under_another_clinics_patient(
        self, session: Session
    ) -> None:
        a = process_bundle(session, patient_bundle(mrn="A-1"), actor=clinic(session, "clinic-a"))
        theirs = location_id(a["entry"][0])
        e = observation_entry("22222222-2222-4222-8222-222222222222")
        e["resource"]["subject"] = {"reference": f"Patient/{theirs}"}
        with pytest.raises(UnprocessableResource):
            process_bundle(
                session,
                {"resourceType": "Bundle", "type": "transaction", "entry": [e]},
                actor=clinic(session, "clinic-b"),
            )

    def test_a_clinic_updates_its_record_by_the_platform_id_it_was_given(
        self, session: Session
    ) -> None:
        actor = clinic(session)
        out = process_bundle(
            session,
            patient_bundle(extra=[observation_entry("22222222-2222-4222-8222-222222222222")]),
            actor=actor,
        )
        oid = location_id(out["entry"][1])
        row = session.execute(repo.current_statement("Observation", oid)).scalar_one()
        body = repo.load_json(row.content)
        body["valueQuantity"]["value"] = 9.9
        again = process_bundle(
            session,
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {"resource": body, "request": {"method": "PUT", "url": f"Observation/{oid}"}}
                ],
            },
            actor=actor,
        )
        assert again["entry"][0]["response"]["location"] == f"Observation/{oid}/_history/2"


class TestSameFactFromTwoClinics:
    def test_references_to_a_merged_record_point_at_the_stored_one(self, session: Session) -> None:
        mynumber = {"system": "urn:oid:1.2.392.100495.20.3.81", "value": "123456789018"}

        def bundle(mrn: str) -> dict:
            b = patient_bundle(
                mrn=mrn,
                extra=[observation_entry("22222222-2222-4222-8222-222222222222", value=6.1)],
            )
            b["entry"][0]["resource"]["identifier"].append(dict(mynumber))
            return b

        a = process_bundle(session, bundle("A-1"), actor=clinic(session, "clinic-a"))
        b = bundle("B-1")
        b["entry"].append(
            {
                "fullUrl": "urn:uuid:99999999-9999-4999-8999-999999999999",
                "resource": {
                    "resourceType": "DiagnosticReport",
                    "status": "final",
                    "code": {"text": "HbA1c"},
                    "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
                    "result": [{"reference": "urn:uuid:22222222-2222-4222-8222-222222222222"}],
                },
                "request": {"method": "POST", "url": "DiagnosticReport"},
            }
        )
        out = process_bundle(session, b, actor=clinic(session, "clinic-b"))
        obs_a = location_id(a["entry"][1])
        assert location_id(out["entry"][1]) == obs_a  # the same fact, stored once
        report = repo.load_json(
            session.execute(
                repo.current_statement("DiagnosticReport", location_id(out["entry"][2]))
            )
            .scalar_one()
            .content
        )
        assert report["result"] == [{"reference": f"Observation/{obs_a}"}]
