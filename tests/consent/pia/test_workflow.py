"""The state machine, versioning and the gate (pia_approved)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.pia import repository, service
from consent.pia.models import PiaAssessment
from consent.pia.schemas import PiaCreate, PiaUpdate
from phr.errors import Conflict, Forbidden, InvalidInput
from phr.store.indexer import utcnow

from .conftest import DraftFactory, complete, risk

ALICE = "alice@tsukuba-care-co"
BOB = "bob@platform"


class TestStateMachine:
    def test_a_draft_goes_through_submit_approve_publish(
        self, session: Session, draft: DraftFactory
    ) -> None:
        pia = draft()
        assert (pia.status, pia.version) == ("draft", 1)
        assert service.submit(session, pia_id=pia.id, by=ALICE).status == "submitted"
        approved = service.approve(session, pia_id=pia.id, by=BOB)
        assert approved.status == "approved"
        assert approved.approved_by == BOB and approved.approved_at is not None
        assert approved.review_due == repository.today_jst(utcnow()) + timedelta(days=365)
        published = service.publish(session, pia_id=pia.id, by=BOB)
        assert published.status == "published" and published.published_at is not None

    @pytest.mark.parametrize(
        ("path", "action"),
        [
            ([], "approve"),
            ([], "publish"),
            ([], "return"),
            (["submit"], "submit"),
            (["submit"], "publish"),
            (["submit", "approve"], "approve"),
            (["submit", "approve"], "submit"),
            (["submit", "approve", "publish"], "publish"),
            (["submit", "approve", "publish"], "return"),
            (["withdraw"], "submit"),
            (["withdraw"], "withdraw"),
            (["submit", "approve", "withdraw"], "publish"),
        ],
    )
    def test_illegal_transitions_are_conflicts(
        self, session: Session, draft: DraftFactory, path: list[str], action: str
    ) -> None:
        pia = draft()
        for step in path:
            _action(session, pia.id, step)()
        status = pia.status
        with pytest.raises(Conflict):
            _action(session, pia.id, action)()
        assert pia.status == status

    def test_every_legal_transition_is_in_the_table(self) -> None:
        assert service.TRANSITIONS == {
            "submit": (("draft",), "submitted"),
            "return": (("submitted",), "draft"),
            "approve": (("submitted",), "approved"),
            "publish": (("approved",), "published"),
            "withdraw": (("draft", "submitted", "approved", "published"), "withdrawn"),
        }

    def test_a_submission_can_be_returned_to_draft_and_edited_again(
        self, session: Session, draft: DraftFactory
    ) -> None:
        pia = draft()
        service.submit(session, pia_id=pia.id, by=ALICE)
        with pytest.raises(Conflict):
            service.update_draft(session, pia_id=pia.id, data=PiaUpdate(retention="x"), by=ALICE)
        back = service.return_to_draft(session, pia_id=pia.id, by=BOB, reason="保存期間を具体的に")
        assert back.status == "draft" and "保存期間を具体的に" in back.status_reason
        edited = service.update_draft(
            session, pia_id=pia.id, data=PiaUpdate(retention="90日"), by=ALICE
        )
        assert edited.retention == "90日"

    def test_an_incomplete_draft_cannot_be_submitted(
        self, session: Session, draft: DraftFactory
    ) -> None:
        pia = draft(answers={"I01.1": "yes"}, risks=[], retention="")
        with pytest.raises(InvalidInput) as err:
            service.submit(session, pia_id=pia.id, by=ALICE)
        text = " ".join(i["diagnostics"] for i in err.value.issues)
        assert "63 questions unanswered" in text
        assert "risk" in text and "retention" in text
        assert pia.status == "draft"

    def test_the_submitter_cannot_approve_their_own_assessment(
        self, session: Session, draft: DraftFactory
    ) -> None:
        pia = draft()
        service.submit(session, pia_id=pia.id, by=BOB)
        with pytest.raises(Forbidden):
            service.approve(session, pia_id=pia.id, by=BOB)

    def test_a_review_date_in_the_past_is_refused(
        self, session: Session, draft: DraftFactory
    ) -> None:
        pia = draft()
        service.submit(session, pia_id=pia.id, by=ALICE)
        with pytest.raises(InvalidInput):
            service.approve(session, pia_id=pia.id, by=BOB, review_due=date(2000, 1, 1))


def _action(session: Session, pia_id: str, step: str) -> Callable[[], PiaAssessment]:
    return {
        "submit": lambda: service.submit(session, pia_id=pia_id, by=ALICE),
        "approve": lambda: service.approve(session, pia_id=pia_id, by=BOB),
        "publish": lambda: service.publish(session, pia_id=pia_id, by=BOB),
        "return": lambda: service.return_to_draft(session, pia_id=pia_id, by=BOB, reason="r"),
        "withdraw": lambda: service.withdraw(session, pia_id=pia_id, by=BOB, reason="r"),
    }[step]


class TestVersions:
    def test_a_new_version_starts_as_a_draft_copied_from_the_approved_one(
        self, session: Session, approved: DraftFactory
    ) -> None:
        v1 = approved()
        v2 = service.create_draft(
            session, data=PiaCreate(service_id="shelter", service_name="避難所 v2"), by=ALICE
        )
        assert (v2.version, v2.status) == (2, "draft")
        assert v2.organization_id == v1.organization_id
        assert v2.answers == v1.answers and v2.risks == v1.risks
        assert v2.service_name == "避難所 v2"

    def test_a_new_draft_version_does_not_disable_the_approved_one(
        self, session: Session, approved: DraftFactory
    ) -> None:
        v1 = approved()
        v2 = service.create_draft(session, data=PiaCreate(service_id="shelter"), by=ALICE)
        service.submit(session, pia_id=v2.id, by=ALICE)
        assert service.pia_approved(session, "shelter")
        assert v1.status == "approved"

    def test_approving_the_new_version_supersedes_the_one_in_force(
        self, session: Session, approved: DraftFactory
    ) -> None:
        v1 = approved()
        service.publish(session, pia_id=v1.id, by=BOB)
        v2 = service.create_draft(session, data=PiaCreate(service_id="shelter"), by=ALICE)
        service.submit(session, pia_id=v2.id, by=ALICE)
        service.approve(session, pia_id=v2.id, by=BOB)
        assert v1.status == "superseded" and v1.superseded_at is not None
        assert v2.status == "approved"
        assert service.pia_approved(session, "shelter")
        in_force = session.scalars(
            select(PiaAssessment).where(
                PiaAssessment.service_id == "shelter",
                PiaAssessment.status.in_(("approved", "published")),
            )
        ).all()
        assert [p.id for p in in_force] == [v2.id]

    def test_only_one_open_version_per_service(self, session: Session, draft: DraftFactory) -> None:
        draft()
        with pytest.raises(Conflict):
            service.create_draft(session, data=PiaCreate(service_id="shelter"), by=ALICE)

    def test_a_first_draft_needs_an_existing_operator(
        self, session: Session, draft: DraftFactory
    ) -> None:
        with pytest.raises(InvalidInput):
            service.create_draft(
                session,
                data=PiaCreate.model_validate(complete("x-ray", organization_id="nobody")),
                by=ALICE,
            )


class TestGate:
    def test_a_service_without_any_pia_is_not_approved(
        self, session: Session, orgs: dict[str, str]
    ) -> None:
        assert not service.pia_approved(session, "shelter")

    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            ([], False),
            (["submit"], False),
            (["submit", "approve"], True),
            (["submit", "approve", "publish"], True),
            (["submit", "approve", "withdraw"], False),
            (["submit", "approve", "publish", "withdraw"], False),
            (["withdraw"], False),
        ],
    )
    def test_only_an_approved_or_published_pia_opens_the_gate(
        self, session: Session, draft: DraftFactory, path: list[str], expected: bool
    ) -> None:
        pia = draft()
        for step in path:
            _action(session, pia.id, step)()
        assert service.pia_approved(session, "shelter") is expected

    def test_withdrawal_closes_the_gate_within_the_same_unit_of_work(
        self, session: Session, approved: DraftFactory
    ) -> None:
        pia = approved()
        assert service.pia_approved(session, "shelter")
        service.withdraw(session, pia_id=pia.id, by=BOB, reason="漏えい事案の調査中")
        assert not service.pia_approved(session, "shelter")

    def test_a_pia_past_its_review_date_no_longer_opens_the_gate(
        self, session: Session, approved: DraftFactory
    ) -> None:
        pia = approved()
        pia.review_due = repository.today_jst(utcnow()) - timedelta(days=1)
        session.flush()
        service.clear_gate_cache(session)
        assert not service.pia_approved(session, "shelter")
        pia.review_due = repository.today_jst(utcnow())
        session.flush()
        service.clear_gate_cache(session)
        assert service.pia_approved(session, "shelter")

    def test_the_gate_is_per_service(self, session: Session, approved: DraftFactory) -> None:
        approved("shelter")
        assert service.pia_approved(session, "shelter")
        assert not service.pia_approved(session, "analytics")

    def test_the_sql_clause_agrees_with_the_gate(
        self, session: Session, approved: DraftFactory, draft: DraftFactory
    ) -> None:
        from sqlalchemy import literal, select

        approved("shelter")
        draft("analytics")
        for sid, expected in [("shelter", True), ("analytics", False), ("none", False)]:
            got = session.execute(select(service.approved_clause(sid))).scalar_one()
            assert bool(got) is expected
            col = literal(sid)
            assert bool(session.execute(select(service.approved_clause(col))).scalar_one()) is (
                expected
            )


class TestRatingOnTheRecord:
    def test_overall_rating_is_stored_and_follows_edits(
        self, session: Session, draft: DraftFactory
    ) -> None:
        pia = draft(
            risks=[risk(impact_mental=3, likelihood=1), risk(impact_physical=4, likelihood=3)]
        )
        assert pia.overall_level == 4
        service.update_draft(
            session, pia_id=pia.id, data=PiaUpdate.model_validate({"risks": [risk()]}), by=ALICE
        )
        assert pia.overall_level == 1

    def test_unmet_safeguards_raise_the_likelihood_of_the_risks_that_depend_on_them(
        self, session: Session, draft: DraftFactory
    ) -> None:
        answers = dict.fromkeys([q for q in complete()["answers"]], "yes")
        answers.update({"I21.1": "no", "I21.2": "no", "I21.3": "no"})
        pia = draft(answers=answers, risks=[risk(items=["I21"], impact_mental=3, likelihood=1)])
        read = service.read(session, pia)
        assert read.risks[0].likelihood_declared == 1
        assert read.risks[0].likelihood_floor == 4
        assert read.risks[0].likelihood == 4
        assert read.overall is not None and read.overall.code == "very_high"


class TestGateMemory:
    def test_the_gate_answer_is_forgotten_when_the_transaction_ends(
        self, session: Session, approved: DraftFactory
    ) -> None:
        pia = approved()
        session.commit()
        assert service.pia_approved(session, "shelter")
        # A change made elsewhere (another request's session) is seen after this one's
        # transaction ends, without any explicit invalidation.
        other = Session(bind=session.get_bind(), join_transaction_mode="create_savepoint")
        try:
            service.withdraw(other, pia_id=pia.id, by=BOB, reason="停止")
            other.commit()
        finally:
            other.close()
        session.commit()
        assert not service.pia_approved(session, "shelter")
