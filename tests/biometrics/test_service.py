"""Enrollment, exact search with narrowing, deletion across index reloads and workers,
encryption at rest, audit, authorisation and the rate limit — on the real database."""

from __future__ import annotations

import base64
from datetime import date

import numpy as np
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from consent.actors import Actor
from consent.models import AuditEntry
from consent.notifications import Notification
from phr.biometrics import repository as repo
from phr.biometrics import service
from phr.biometrics.models import BiometricPhoto, BiometricTemplate, BiometricTombstone
from phr.errors import Forbidden, InvalidInput, NotFound
from phr.settings import get_settings
from tests.biometrics.conftest import (
    EMS,
    PARAMEDIC,
    MakeResident,
    at_similarity,
    random_unit,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


def threshold() -> float:
    return get_settings().biometric_match_threshold


def enroll(session: Session, actor: Actor, *vectors: np.ndarray, **kw: object) -> str:
    got = service.enroll(session, actor, consent=True, vectors=[v.tolist() for v in vectors], **kw)  # type: ignore[arg-type]
    session.commit()
    return got.templates[-1].id


class TestEnrollmentAndSearch:
    def test_an_enrolled_resident_is_found_with_their_similarity(
        self, session: Session, make_resident: MakeResident, rng: np.random.Generator
    ) -> None:
        face = random_unit(rng)
        enroll(session, make_resident("r-1"), face)
        for i in range(20):
            enroll(session, make_resident(f"other-{i}"), random_unit(rng))
        probe = at_similarity(face, 0.97, rng)
        found = service.identify(session, EMS, probe.tolist())
        assert [c.resident_id for c in found] == ["r-1"]
        assert found[0].score == pytest.approx(0.97, abs=1e-4)

    def test_nothing_above_the_threshold_is_not_identified(
        self, session: Session, make_resident: MakeResident, rng: np.random.Generator
    ) -> None:
        face = random_unit(rng)
        enroll(session, make_resident("r-1"), face)
        below = at_similarity(face, threshold() - 0.002, rng)
        above = at_similarity(face, threshold() + 0.002, rng)
        assert service.identify(session, EMS, below.tolist()) == []
        assert [c.resident_id for c in service.identify(session, EMS, above.tolist())] == ["r-1"]

    def test_at_most_three_candidates_best_first_one_per_resident(
        self, session: Session, make_resident: MakeResident, rng: np.random.Generator
    ) -> None:
        face = random_unit(rng)
        sims = [0.95, 0.99, 0.96, 0.98, 0.97]
        for i, s in enumerate(sims):
            # two templates each: only the resident's best counts
            enroll(
                session,
                make_resident(f"r-{i}"),
                at_similarity(face, s, rng),
                at_similarity(face, s - 0.001, rng),
            )
        found = service.identify(session, EMS, face.tolist(), limit=10)
        assert [c.resident_id for c in found] == ["r-1", "r-3", "r-4"]
        assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)
        assert len(service.identify(session, EMS, face.tolist(), limit=1)) == 1

    def test_vectors_of_the_wrong_shape_are_refused(
        self, session: Session, make_resident: MakeResident
    ) -> None:
        actor = make_resident("r-1")
        for bad in ([1.0] * 3, [0.0] * 128, [float("nan")] + [1.0] * 127):
            with pytest.raises(InvalidInput):
                service.enroll(session, actor, consent=True, vectors=[bad])
        with pytest.raises(InvalidInput):
            service.identify(session, EMS, [1.0] * 5)

    def test_enrollment_needs_consent_and_a_photo_needs_its_own(
        self, session: Session, make_resident: MakeResident, rng: np.random.Generator
    ) -> None:
        actor = make_resident("r-1")
        v = random_unit(rng).tolist()
        with pytest.raises(InvalidInput):
            service.enroll(session, actor, consent=False, vectors=[v])
        with pytest.raises(InvalidInput):
            service.enroll(session, actor, consent=True, vectors=[v], photo=PNG)
        got = service.enroll(
            session, actor, consent=True, vectors=[v], photo=PNG, photo_consent=True
        )
        assert got.status == "active" and got.has_photo and got.photo_consent
        assert got.consent_version == service.CONSENT_VERSION


class TestNarrowing:
    @pytest.fixture
    def face(
        self, session: Session, make_resident: MakeResident, rng: np.random.Generator
    ) -> np.ndarray:
        face = random_unit(rng)
        people = {
            "woman-1950-tsukuba": ("female", "1950-04-01", "305-0031", 0.99),
            "man-1990-tsukuba": ("male", "1990-06-15", "305-0031", 0.98),
            "woman-1990-other": ("female", "1990-01-10", "300-0001", 0.97),
            "unknown": (None, None, None, 0.96),
        }
        for rid, (gender, birth, postal, sim) in people.items():
            enroll(
                session,
                make_resident(rid, gender=gender, birth=birth, postal=postal),
                at_similarity(face, sim, rng),
            )
        return face

    def ids(self, session: Session, face: np.ndarray, **narrow: object) -> list[str]:
        found = service.identify(session, EMS, face.tolist(), **narrow)  # type: ignore[arg-type]
        return [c.resident_id for c in found]

    def test_sex_narrows_but_keeps_residents_of_unknown_sex(
        self, session: Session, face: np.ndarray
    ) -> None:
        assert self.ids(session, face, sex="male") == ["man-1990-tsukuba", "unknown"]

    def test_apparent_age_range_narrows_by_birth_date(
        self, session: Session, face: np.ndarray
    ) -> None:
        today = date.today()
        age_1990 = today.year - 1990 - (1 if (today.month, today.day) < (6, 15) else 0)
        got = self.ids(session, face, age_min=age_1990 - 3, age_max=age_1990 + 3)
        assert got == ["man-1990-tsukuba", "woman-1990-other", "unknown"]
        assert self.ids(session, face, age_min=70, age_max=90) == ["woman-1950-tsukuba", "unknown"]

    def test_district_narrows_by_home_postal_code(self, session: Session, face: np.ndarray) -> None:
        assert self.ids(session, face, district="〒300-0001") == ["woman-1990-other", "unknown"]
        assert self.ids(session, face, district="999-9999") == ["unknown"]

    def test_filters_combine(self, session: Session, face: np.ndarray) -> None:
        got = self.ids(session, face, sex="female", district="3050031", age_min=60)
        assert got == ["woman-1950-tsukuba", "unknown"]

    def test_impossible_ranges_are_refused(self, session: Session, face: np.ndarray) -> None:
        with pytest.raises(InvalidInput):
            self.ids(session, face, age_min=50, age_max=40)
        with pytest.raises(InvalidInput):
            self.ids(session, face, sex="robot")


class TestDeletion:
    def test_a_deleted_template_never_matches_again_in_any_worker_or_after_reload(
        self, session: Session, make_resident: MakeResident, rng: np.random.Generator
    ) -> None:
        face = random_unit(rng)
        actor = make_resident("r-1")
        enroll(session, actor, face)
        enroll(session, make_resident("r-2"), random_unit(rng))
        assert service.identify(session, EMS, face.tolist())
        worker_1 = service.gallery_index(session)
        service.reset_index()  # a second worker process loads its own index
        worker_2 = service.gallery_index(session)
        assert worker_1 is not worker_2 and len(worker_1) == len(worker_2) == 2

        service.withdraw(session, actor)
        session.commit()

        assert service.identify(session, EMS, face.tolist()) == []  # worker 2
        assert len(worker_2) == 1
        service._index = worker_1  # worker 1, which last synced before the deletion
        assert service.identify(session, EMS, face.tolist()) == []
        assert len(worker_1) == 1
        service.reset_index()  # a restart: the whole gallery is loaded again
        assert service.identify(session, EMS, face.tolist()) == []
        assert len(service.gallery_index(session)) == 1

    def test_deletion_is_real_in_the_database(
        self, session: Session, make_resident: MakeResident, rng: np.random.Generator
    ) -> None:
        actor = make_resident("r-1")
        tid = enroll(session, actor, random_unit(rng), photo=PNG, photo_consent=True)
        got = service.withdraw(session, actor)
        session.commit()
        assert got.status == "withdrawn" and not got.templates and not got.has_photo
        assert session.scalars(select(BiometricTemplate)).all() == []
        assert session.scalars(select(BiometricPhoto)).all() == []
        # What stays: the template id and the generation that deleted it, nothing else.
        tomb = session.get(BiometricTombstone, tid)
        assert tomb is not None
        with pytest.raises(NotFound):
            service.withdraw(session, Actor(kind="resident", resident_id="nobody"))

    def test_one_template_can_be_deleted(
        self, session: Session, make_resident: MakeResident, rng: np.random.Generator
    ) -> None:
        actor = make_resident("r-1")
        a, b = random_unit(rng), random_unit(rng)
        enroll(session, actor, a)
        tid_b = enroll(session, actor, b)
        assert service.identify(session, EMS, b.tolist())
        left = service.delete_template(session, actor, tid_b)
        session.commit()
        assert len(left.templates) == 1
        assert service.identify(session, EMS, b.tolist()) == []
        assert [c.resident_id for c in service.identify(session, EMS, a.tolist())] == ["r-1"]
        with pytest.raises(NotFound):
            service.delete_template(session, actor, tid_b)

    def test_an_enrollment_rolled_back_after_the_index_saw_it_is_forgotten(
        self, session: Session, make_resident: MakeResident, rng: np.random.Generator
    ) -> None:
        enroll(session, make_resident("r-1"), random_unit(rng))
        ghost = random_unit(rng)
        nested = session.begin_nested()
        service.enroll(session, make_resident("r-ghost"), consent=True, vectors=[ghost.tolist()])
        assert service.identify(session, EMS, ghost.tolist())  # this transaction sees it
        nested.rollback()
        # The next change takes the same generation number the rolled-back one had.
        other = random_unit(rng)
        enroll(session, make_resident("r-2"), other)
        assert service.identify(session, EMS, ghost.tolist()) == []
        assert [c.resident_id for c in service.identify(session, EMS, other.tolist())] == ["r-2"]


class TestEncryptionAtRest:
    def test_the_vector_and_the_photo_are_not_stored_in_clear(
        self, session: Session, make_resident: MakeResident, rng: np.random.Generator
    ) -> None:
        face = random_unit(rng).astype(np.float32)
        photo = PNG + b"a face only this resident has" * 4
        tid = enroll(session, make_resident("r-1"), face, photo=photo, photo_consent=True)
        stored = session.get(BiometricTemplate, tid)
        assert stored is not None
        raw = face.tobytes()
        dump = " ".join(
            str(v)
            for row in session.execute(text("SELECT * FROM biometric_template")).all()
            for v in row
        )
        photo_dump = " ".join(
            str(v)
            for row in session.execute(text("SELECT * FROM biometric_photo")).all()
            for v in row
        )
        for needle in (
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
            raw.hex(),
            f"{float(face[0]):.6f}",
        ):
            assert needle not in dump
        assert base64.b64encode(photo).decode()[:40] not in photo_dump
        assert photo.hex()[:40] not in photo_dump
        assert stored.sealed.startswith("v1.")

    def test_a_sealed_template_copied_to_another_resident_does_not_open(
        self, session: Session, make_resident: MakeResident, rng: np.random.Generator
    ) -> None:
        tid = enroll(session, make_resident("r-1"), random_unit(rng))
        enroll(session, make_resident("r-2"), random_unit(rng))
        stolen = session.get(BiometricTemplate, tid)
        assert stolen is not None
        session.execute(
            text("UPDATE biometric_template SET sealed = :s WHERE resident_id = 'r-2'"),
            {"s": stolen.sealed},
        )
        session.commit()
        from phr.biometrics.keys import DecryptionError

        with pytest.raises(DecryptionError):
            service.identify(session, EMS, random_unit(rng).tolist())


class TestAuthorisation:
    @pytest.mark.parametrize(
        "actor",
        [
            Actor(kind="resident", resident_id="r-1"),
            Actor(kind="organization", organization_id="c", organization_kind="clinic"),
            Actor(kind="organization", organization_id="h", organization_kind="hospital"),
            Actor(
                kind="staff",
                user_id="n",
                organization_id="ems-1",
                organization_kind="ems",
                role="clerk",
            ),
        ],
        ids=["resident", "clinic", "hospital", "ems-clerk"],
    )
    def test_only_ems_and_its_paramedics_search(
        self, session: Session, actor: Actor, rng: np.random.Generator
    ) -> None:
        with pytest.raises(Forbidden):
            service.identify(session, actor, random_unit(rng).tolist())
        with pytest.raises(Forbidden):
            service.reference_photo(session, actor, "r-1")
        entries = session.scalars(select(AuditEntry).where(AuditEntry.outcome == "deny")).all()
        assert {e.action for e in entries} == {service.SEARCH_ACTION, service.PHOTO_ACTION}

    def test_a_paramedic_searches(
        self, session: Session, make_resident: MakeResident, rng: np.random.Generator
    ) -> None:
        face = random_unit(rng)
        enroll(session, make_resident("r-1"), face)
        assert service.identify(session, PARAMEDIC, face.tolist())

    def test_only_the_resident_enrolls_and_deletes(self, session: Session) -> None:
        with pytest.raises(Forbidden):
            service.enroll(session, EMS, consent=True, vectors=[[1.0] * 128])
        with pytest.raises(Forbidden):
            service.withdraw(session, PARAMEDIC)


class TestAuditAndPhoto:
    def test_each_candidate_sees_the_search_in_their_log_and_is_notified(
        self, session: Session, make_resident: MakeResident, rng: np.random.Generator
    ) -> None:
        face = random_unit(rng)
        enroll(session, make_resident("r-1"), at_similarity(face, 0.99, rng))
        enroll(session, make_resident("r-2"), at_similarity(face, 0.97, rng))
        service.identify(session, PARAMEDIC, face.tolist(), sex="female")
        service.identify(session, PARAMEDIC, random_unit(rng).tolist())
        session.commit()
        rows = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == service.SEARCH_ACTION)
            .order_by(AuditEntry.seq)
        ).all()
        assert [(e.resident_id, e.count, e.purpose, e.user_id) for e in rows] == [
            ("r-1", 1, "ETREAT", "medic-1"),
            ("r-2", 1, "ETREAT", "medic-1"),
            (None, 0, "ETREAT", "medic-1"),
        ]
        assert "candidate 1/2 score=0.990 sex=female" in rows[0].detail
        assert rows[2].detail.startswith("not identified compared=2")
        told = session.scalars(select(Notification.resident_id)).all()
        assert {"r-1", "r-2"} <= set(told)

    def test_the_photo_of_a_recent_candidate_only(
        self, session: Session, make_resident: MakeResident, rng: np.random.Generator
    ) -> None:
        face = random_unit(rng)
        enroll(session, make_resident("r-1"), face, photo=PNG, photo_consent=True)
        enroll(session, make_resident("r-2"), random_unit(rng), photo=PNG, photo_consent=True)
        enroll(session, make_resident("r-3"), at_similarity(face, 0.98, rng))
        found = service.identify(session, EMS, face.tolist())
        assert [c.resident_id for c in found] == ["r-1", "r-3"]
        assert service.reference_photo(session, EMS, "r-1") == PNG
        assert service.reference_photo(session, EMS, "r-3") is None  # no photo given
        with pytest.raises(NotFound):
            service.reference_photo(session, EMS, "r-2")  # not a candidate
        other_ems = Actor(kind="organization", organization_id="ems-2", organization_kind="ems")
        with pytest.raises(NotFound):
            service.reference_photo(session, other_ems, "r-1")
        fetched = session.execute(
            select(AuditEntry.resident_id, AuditEntry.outcome, AuditEntry.organization_id)
            .where(AuditEntry.action == service.PHOTO_ACTION)
            .order_by(AuditEntry.seq)
        ).all()
        assert [tuple(r) for r in fetched] == [
            ("r-1", "permit", "ems-1"),
            ("r-3", "not-found", "ems-1"),
            ("r-2", "deny", "ems-1"),
            ("r-1", "deny", "ems-2"),
        ]


class TestRateLimit:
    def test_searches_beyond_the_limit_are_refused_and_logged(
        self,
        session: Session,
        make_resident: MakeResident,
        rng: np.random.Generator,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(get_settings(), "biometric_searches_per_minute", 2)
        probe = random_unit(rng).tolist()
        service.identify(session, PARAMEDIC, probe)
        service.identify(session, PARAMEDIC, probe)
        with pytest.raises(service.RateLimited) as refused:
            service.identify(session, PARAMEDIC, probe)
        assert refused.value.status_code == 429 and "Retry-After" in refused.value.headers
        # another paramedic has their own allowance
        other = Actor(**{**PARAMEDIC.__dict__, "user_id": "medic-2"})
        service.identify(session, other, probe)
        denied = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == service.SEARCH_ACTION, AuditEntry.outcome == "deny"
            )
        ).all()
        assert [e.detail for e in denied] == ["rate limit"]


def test_the_generation_counter_orders_changes(session: Session) -> None:
    g0, _ = repo.state(session)
    assert repo.next_generation(session) == g0 + 1
    assert repo.next_generation(session) == g0 + 2
    assert repo.state(session)[0] == g0 + 2


def test_warm_up_loads_the_gallery_before_the_first_search(
    session: Session, make_resident: MakeResident, rng: np.random.Generator
) -> None:
    enroll(session, make_resident("r-1"), random_unit(rng))
    enroll(session, make_resident("r-2"), random_unit(rng))
    assert service.warm_up() == 2
    generation, _ = repo.state(session)
    assert service.gallery_index(session).generation == generation


class TestNarrowingFollowsTheRecord:
    """A resident who moves is still found by a search narrowed to their new district."""

    def test_the_gateway_refreshes_the_district_when_the_golden_patient_changes(
        self, session: Session, client: object, make_org: object, rng: np.random.Generator
    ) -> None:
        from fastapi.testclient import TestClient

        from tests.conftest import patient_bundle

        assert isinstance(client, TestClient)
        clinic = make_org("clinic-move", "clinic")  # type: ignore[operator]

        def post(postal: str) -> str:
            b = patient_bundle()
            b["entry"][0]["resource"]["address"] = [{"use": "home", "postalCode": postal}]
            r = client.post("/fhir", json=b, headers=clinic["headers"])
            assert r.status_code == 200, r.text
            return str(r.json()["entry"][0]["response"]["location"].split("/")[1])

        rid = post("305-0031")
        face = random_unit(rng)
        enroll(session, Actor(kind="resident", resident_id=rid, client_id="app"), face)
        session.commit()
        assert self.ids(session, face, "3050031") == [rid]
        assert post("300-1234") == rid  # the clinic records the move
        session.commit()
        assert self.ids(session, face, "3001234") == [rid]
        assert self.ids(session, face, "3050031") == []
        logged = session.scalars(
            select(AuditEntry).where(
                AuditEntry.resident_id == rid, AuditEntry.client_id == "biometrics-refresh"
            )
        ).all()
        assert logged and {e.purpose for e in logged} == {"HOPERAT"}

    def test_the_catch_up_refreshes_what_changed_elsewhere(
        self, session: Session, make_resident: MakeResident, rng: np.random.Generator
    ) -> None:
        from phr.store.repository import Put, put_many

        face = random_unit(rng)
        enroll(session, make_resident("mover", postal="305-0031"), face)
        enroll(session, make_resident("stayer", postal="305-0031"), at_similarity(face, 0.97, rng))
        session.commit()
        moved = {
            "resourceType": "Patient",
            "id": "mover",
            "gender": "female",
            "birthDate": "1950-04-01",
            "address": [{"use": "home", "postalCode": "300-1234"}],
        }
        put_many(session, [Put(moved, "mover")])  # written past the gateway
        session.commit()
        assert service.refresh_stale(session) == 1
        assert service.refresh_stale(session) == 0
        session.commit()
        assert self.ids(session, face, "3001234") == ["mover"]

    @staticmethod
    def ids(session: Session, face: np.ndarray, district: str) -> list[str]:
        found = service.identify(session, EMS, face.tolist(), district=district)
        return [c.resident_id for c in found]
