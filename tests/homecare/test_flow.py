"""The home-care visit through the service: the whole visit, every forbidden transition
and every refusal, consent, audit."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from consent.models import AuditEntry
from consent.policy import service as policy
from phr.errors import Conflict, Forbidden, InvalidInput, NotFound
from phr.homecare import figures, schemas, service
from phr.homecare import summary as care_summary
from phr.homecare.models import Request, Stock, Visit
from phr.store import repository as repo
from phr.store.models import Resource
from tests.homecare.conftest import CLINIC, PHARMACY, STATION, World, staff


def _resource(w: World, ref: str) -> dict[str, Any]:
    t, i = ref.split("/")
    row = w.session.scalars(
        select(Resource).where(Resource.resource_type == t, Resource.id == i)
    ).one()
    return repo.load_json(row.content)


def _stock(w: World, sid: str) -> int:
    s = w.session.get(Stock, sid)
    assert s is not None
    w.session.refresh(s)
    return s.quantity


def _actions(w: World, outcome: str = "permit") -> list[str]:
    return list(
        w.session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.resident_id == w.resident, AuditEntry.outcome == outcome,
                   AuditEntry.action.like("homecare-%"))
            .order_by(AuditEntry.pk)
        )
    )  # fmt: skip


class TestWholeVisit:
    def test_a_request_ends_with_the_medicine_given_at_home_and_the_stock_down(
        self, world: World
    ) -> None:
        w = world
        rid = w.request()
        req = w.session.get(Request, rid)
        assert req is not None and req.status == "open" and req.urgency != "red"
        assert [r.id for r in service.board(session=w.session, actor=w.clerk)] == [rid]
        vid = w.to_visit(rid)
        # RCP 2017 chart: RR 20 → 0, SpO2 95 (scale 1) → 1, air → 0, SBP 112 → 0,
        # pulse 96 → 1, alert → 0, 38.6 °C → 1.
        v = w.vitals(vid)
        assert (v.news2, v.risk) == (3, "low")
        news2 = _resource(w, v.references[-1])
        assert news2["valueInteger"] == 3 and len(news2["derivedFrom"]) == len(v.references) - 1
        w.consult(vid)
        [oid] = w.prescribe(vid)
        w.guide(vid)
        service.administer(
            session=w.session, actor=w.nurse, visit_id=vid, body=schemas.Administer(order_id=oid)
        )
        assert _stock(w, w.good) == 9
        visit = service.close(
            session=w.session, actor=w.nurse, visit_id=vid,
            body=schemas.Outcome(outcome="treated_at_home"),
        )  # fmt: skip
        read = service.visit_read(w.session, visit)
        assert read.step == "outcome" and read.outcome == "treated_at_home"
        [line] = read.orders
        assert line.status == "administered"
        adm = _resource(w, line.administration_ref or "")
        assert adm["resourceType"] == "MedicationAdministration"
        assert adm["request"]["reference"] == line.request_ref
        mr = _resource(w, line.request_ref)
        assert mr["medicationCodeableConcept"]["coding"][0]["code"] == "1141007F1063"
        consult = _resource(w, read.consultation or "")
        assert consult["class"]["code"] == "VR"
        assert consult["partOf"]["reference"] == read.encounter
        proc = _resource(w, line.guidance_ref or "")
        assert proc["resourceType"] == "Procedure"
        assert proc["reasonReference"][0]["reference"] == line.request_ref
        home = _resource(w, read.encounter)
        assert home["status"] == "finished"
        assert home["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == (
            "treated_at_home"
        )
        w.session.refresh(req)
        assert req.status == "closed" and req.outcome == "treated_at_home"
        assert [s.kind for s in read.steps] == [
            "request", "assign", "dispatch", "arrive", "vitals", "consultation",
            "prescription", "guidance", "administration", "outcome",
        ]  # fmt: skip
        for kind in ("request", "vitals", "consultation", "prescription", "guidance"):
            assert f"homecare-{kind}" in _actions(w)
        assert "homecare-administration" in _actions(w)

    def test_the_care_team_is_a_care_team_resource(self, world: World) -> None:
        from phr.homecare.models import Enrolment

        e = world.session.get(Enrolment, world.enrolment)
        assert e is not None
        team = _resource(world, e.care_team_ref)
        members = [p["member"]["identifier"]["value"] for p in team["participant"]]
        assert members == [CLINIC, STATION, PHARMACY]

    def test_a_red_urgency_refers_to_119_and_is_never_visited(self, world: World) -> None:
        w = world
        # fever protocol: a red flag (confusion / hard to wake) makes it red
        from phr.triage import protocols

        p = protocols.get_protocol("fever")
        assert p is not None
        red = next(r for r in p.rules if r.level == "red")
        answers = dict(red.when[0])
        rid = w.request(**answers)
        req = w.session.get(Request, rid)
        assert req is not None and req.urgency == "red" and req.status == "referred"
        assert service.request_read(w.session, req).call_119
        with pytest.raises(Conflict):
            service.assign(
                session=w.session, actor=w.clerk, request_id=rid,
                body=schemas.Assign(nurse_id=w.nurse.user_id or ""),
            )  # fmt: skip
        assert service.board(session=w.session, actor=w.clerk) == []

    def test_transport_hands_over_to_the_emergency_flow(self, world: World) -> None:
        from phr.emergency.models import Incident

        w = world
        vid = w.to_visit()
        w.vitals(vid, respiratory_rate=26, spo2=89, systolic=88, pulse=128, consciousness="V")
        w.consult(vid, "transport")
        visit = w.session.get(Visit, vid)
        assert visit is not None and visit.incident_id
        incident = w.session.get(Incident, visit.incident_id)
        assert incident is not None
        assert incident.resident_id == w.resident and incident.status == "identified"
        with pytest.raises(Conflict):
            w.prescribe(vid)
        with pytest.raises(Conflict):
            service.close(
                session=w.session, actor=w.nurse, visit_id=vid,
                body=schemas.Outcome(outcome="treated_at_home"),
            )  # fmt: skip
        service.close(
            session=w.session, actor=w.nurse, visit_id=vid,
            body=schemas.Outcome(outcome="transported"),
        )  # fmt: skip


class TestForbiddenTransitions:
    def test_dispatch_before_assignment_is_refused(self, world: World) -> None:
        rid = world.request()
        with pytest.raises(Conflict):
            service.dispatch(session=world.session, actor=world.clerk, request_id=rid)

    def test_arriving_before_dispatch_is_refused(self, world: World) -> None:
        rid = world.request()
        service.assign(
            session=world.session, actor=world.clerk, request_id=rid,
            body=schemas.Assign(nurse_id=world.nurse.user_id or ""),
        )  # fmt: skip
        with pytest.raises(Conflict):
            service.arrive(session=world.session, actor=world.nurse, request_id=rid)

    def test_a_second_open_request_is_refused(self, world: World) -> None:
        world.request()
        with pytest.raises(Conflict):
            world.request()

    def test_consultation_before_measurements_is_refused(self, world: World) -> None:
        vid = world.to_visit()
        with pytest.raises(Conflict):
            world.consult(vid)

    def test_prescribing_before_the_consultation_is_refused(self, world: World) -> None:
        vid = world.to_visit()
        world.vitals(vid)
        with pytest.raises(Conflict):
            world.prescribe(vid)

    def test_giving_without_guidance_is_refused(self, world: World) -> None:
        w = world
        vid = w.to_visit()
        w.vitals(vid)
        w.consult(vid)
        [oid] = w.prescribe(vid)
        with pytest.raises(Conflict, match="guidance"):
            service.administer(
                session=w.session,
                actor=w.nurse,
                visit_id=vid,
                body=schemas.Administer(order_id=oid),
            )
        assert _stock(w, w.good) == 10

    def test_guidance_without_a_prescription_is_refused(self, world: World) -> None:
        w = world
        vid = w.to_visit()
        w.vitals(vid)
        w.consult(vid)
        with pytest.raises(Conflict):
            w.guide(vid)

    def test_giving_twice_is_refused(self, world: World) -> None:
        w = world
        vid = w.to_visit()
        w.vitals(vid)
        w.consult(vid)
        [oid] = w.prescribe(vid, quantity=2)
        w.guide(vid)
        body = schemas.Administer(order_id=oid)
        service.administer(session=w.session, actor=w.nurse, visit_id=vid, body=body)
        with pytest.raises(Conflict):
            service.administer(session=w.session, actor=w.nurse, visit_id=vid, body=body)
        assert _stock(w, w.good) == 8

    def test_giving_a_medicine_of_another_consultation_is_refused(self, world: World) -> None:
        w = world
        vid = w.to_visit()
        w.vitals(vid)
        w.consult(vid)
        [oid] = w.prescribe(vid)
        w.guide(vid)
        service.administer(
            session=w.session, actor=w.nurse, visit_id=vid, body=schemas.Administer(order_id=oid)
        )
        service.close(
            session=w.session, actor=w.nurse, visit_id=vid,
            body=schemas.Outcome(outcome="treated_at_home"),
        )  # fmt: skip
        vid2 = w.to_visit()
        w.vitals(vid2)
        w.consult(vid2)
        w.prescribe(vid2)
        w.guide(vid2)
        with pytest.raises(Forbidden, match="not prescribed in this consultation"):
            service.administer(
                session=w.session, actor=w.nurse, visit_id=vid2,
                body=schemas.Administer(order_id=oid),
            )  # fmt: skip
        assert "homecare-administer" in _actions(w, "deny")

    def test_nothing_happens_after_the_outcome(self, world: World) -> None:
        w = world
        vid = w.to_visit()
        w.vitals(vid)
        w.consult(vid)
        service.close(
            session=w.session,
            actor=w.nurse,
            visit_id=vid,
            body=schemas.Outcome(outcome="follow_up"),
        )
        with pytest.raises(Conflict):
            w.vitals(vid)
        with pytest.raises(Conflict):
            w.prescribe(vid)


class TestPrescribingFromStock:
    def _consulted(self, w: World) -> str:
        vid = w.to_visit()
        w.vitals(vid)
        w.consult(vid)
        return vid

    def test_expired_stock_cannot_be_prescribed(self, world: World) -> None:
        vid = self._consulted(world)
        with pytest.raises(Forbidden, match="expired"):
            world.prescribe(vid, stock=world.expired)
        assert "homecare-prescribe" in _actions(world, "deny")

    def test_another_patients_stock_cannot_be_prescribed(self, world: World) -> None:
        w = world
        vid = self._consulted(w)
        other = Stock(
            id="foreign-lot", enrolment_id=w.enrolment, resident_id="someone-else",
            drug_code="1141007F1063", drug_name="x", quantity=5, unit="錠", lot="F",
            expiry=date.today() + timedelta(days=30), deposited_by_org=CLINIC,
            deposited_by="x", deposited_at=w.session.get(Visit, vid).started_at,  # type: ignore[union-attr]
        )  # fmt: skip
        w.session.add(other)
        w.session.flush()
        with pytest.raises(Forbidden, match="not this patient's deposited stock"):
            w.prescribe(vid, stock="foreign-lot")
        with pytest.raises(Forbidden):
            w.prescribe(vid, stock="no-such-lot")

    def test_more_than_is_left_cannot_be_prescribed(self, world: World) -> None:
        vid = self._consulted(world)
        with pytest.raises(Forbidden, match="10 錠 left, 11"):
            world.prescribe(vid, quantity=11)

    def test_the_stock_goes_down_only_on_administration(self, world: World) -> None:
        w = world
        vid = self._consulted(w)
        [oid] = w.prescribe(vid, quantity=3)
        w.guide(vid)
        assert _stock(w, w.good) == 10
        [row] = service.stock_of(session=w.session, actor=w.nurse, enrolment_id=w.enrolment)[
            1:
        ] or [None]  # the expired lot sorts after by name; find by id below
        lots = {
            s.id: s
            for s in service.stock_of(session=w.session, actor=w.nurse, enrolment_id=w.enrolment)
        }
        assert lots[w.good].reserved == 3 and lots[w.expired].expired
        service.administer(
            session=w.session, actor=w.nurse, visit_id=vid, body=schemas.Administer(order_id=oid)
        )
        assert _stock(w, w.good) == 7
        del row

    def test_a_drug_not_in_the_master_cannot_be_deposited(self, world: World) -> None:
        with pytest.raises(InvalidInput, match="national drug master"):
            service.deposit(
                session=world.session, actor=world.doctor, enrolment_id=world.enrolment,
                body=schemas.StockCreate(drug_code="9999999X9999", quantity=1, unit="錠", lot="Z",
                                         expiry=date.today() + timedelta(days=9)),
            )  # fmt: skip


class TestWrongRoleOrOrganisation:
    def test_another_station_does_not_find_the_request(self, world: World) -> None:
        rid = world.request()
        with pytest.raises(NotFound):
            service.assign(
                session=world.session, actor=world.other_nurse, request_id=rid,
                body=schemas.Assign(nurse_id=world.other_nurse.user_id or ""),
            )  # fmt: skip
        assert service.board(session=world.session, actor=world.other_nurse) == []

    def test_only_a_nurse_of_the_station_is_assigned(self, world: World) -> None:
        rid = world.request()
        for nurse in (world.other_nurse, world.clerk):
            with pytest.raises(InvalidInput):
                service.assign(
                    session=world.session, actor=world.clerk, request_id=rid,
                    body=schemas.Assign(nurse_id=nurse.user_id or ""),
                )  # fmt: skip

    def test_the_doctor_and_pharmacist_do_not_dispatch(self, world: World) -> None:
        rid = world.request()
        for actor in (world.doctor, world.pharmacist):
            with pytest.raises(Forbidden):
                service.assign(
                    session=world.session, actor=actor, request_id=rid,
                    body=schemas.Assign(nurse_id=world.nurse.user_id or ""),
                )  # fmt: skip

    def test_only_the_assigned_nurse_records_the_visit(self, world: World) -> None:
        w = world
        vid = w.to_visit()
        with pytest.raises(Forbidden):
            service.record_vitals(
                session=w.session, actor=w.nurse2, visit_id=vid,
                body=schemas.Vitals(respiratory_rate=16, spo2=97, systolic=120, pulse=70,
                                    temperature=36.8),
            )  # fmt: skip
        with pytest.raises(NotFound):
            service.record_vitals(
                session=w.session, actor=w.other_nurse, visit_id=vid,
                body=schemas.Vitals(respiratory_rate=16, spo2=97, systolic=120, pulse=70,
                                    temperature=36.8),
            )  # fmt: skip

    def test_a_nurse_or_pharmacist_cannot_consult_or_prescribe(self, world: World) -> None:
        w = world
        vid = w.to_visit()
        w.vitals(vid)
        body = schemas.Consultation(findings="x", instructions="y", decision="home")
        for actor in (w.nurse, w.pharmacist):
            with pytest.raises(Forbidden):
                service.consult(session=w.session, actor=actor, visit_id=vid, body=body)

    def test_a_doctor_of_another_clinic_does_not_find_the_visit(self, world: World) -> None:
        w = world
        from consent.identity.clients import register_organization
        from tests.conftest import OrgFactory  # noqa: F401

        register_organization(w.session, id="hc-clinic-2", name="other clinic", kind="clinic")
        doc = staff(w.session, "hc-clinic-2", "doc2", "doctor")
        vid = w.to_visit()
        w.vitals(vid)
        with pytest.raises(NotFound):
            service.consult(
                session=w.session, actor=doc, visit_id=vid,
                body=schemas.Consultation(findings="x", instructions="y", decision="home"),
            )  # fmt: skip

    def test_the_doctor_cannot_give_guidance_nor_the_pharmacist_give_medicine(
        self, world: World
    ) -> None:
        w = world
        vid = w.to_visit()
        w.vitals(vid)
        w.consult(vid)
        [oid] = w.prescribe(vid)
        with pytest.raises(Forbidden):
            service.guide(session=w.session, actor=w.doctor, visit_id=vid,
                          body=schemas.Guidance(text="x"))  # fmt: skip
        w.guide(vid)
        with pytest.raises(Forbidden):
            service.administer(session=w.session, actor=w.pharmacist, visit_id=vid,
                               body=schemas.Administer(order_id=oid))  # fmt: skip

    def test_a_resident_cannot_take_staff_steps_and_staff_cannot_ask_as_the_resident(
        self, world: World
    ) -> None:
        rid = world.request()
        with pytest.raises(Forbidden):
            service.dispatch(session=world.session, actor=world.patient, request_id=rid)
        with pytest.raises(Forbidden):
            service.create_request(
                session=world.session, actor=world.nurse,
                body=schemas.RequestCreate(complaint="fever", what="x", since="y"),
            )  # fmt: skip


class TestConsent:
    def test_with_the_home_care_consent_the_team_reads_the_record(self, world: World) -> None:
        vid = world.to_visit()
        s = care_summary.build(world.session, world.doctor, world.resident, today=date.today())
        assert s.consent and s.name and any(sec.entries for sec in s.sections)
        del vid

    def test_without_the_home_care_consent_nothing_is_read(self, world: World) -> None:
        w = world
        policy.revoke_consent(w.session, w.patient, w.extra["consent"])
        for actor in (w.doctor, w.nurse, w.pharmacist):
            s = care_summary.build(w.session, actor, w.resident, today=date.today())
            assert not s.consent and s.name is None and s.sections == []

    def test_the_phone_call_is_recorded_by_the_station(self, world: World) -> None:
        body = schemas.PhoneRequestCreate(
            resident_id=world.resident, complaint="fever", what="電話: 発熱", since="今朝"
        )
        req = service.record_call(session=world.session, actor=world.clerk, body=body)
        assert req.channel == "phone" and req.status == "open"
        with pytest.raises(NotFound):
            service.record_call(session=world.session, actor=world.other_nurse, body=body)


class TestFigures:
    def test_station_figures_count_requests_visits_and_outcomes(self, world: World) -> None:
        w = world
        vid = w.to_visit()
        w.vitals(vid)
        w.consult(vid)
        service.close(session=w.session, actor=w.nurse, visit_id=vid,
                      body=schemas.Outcome(outcome="treated_at_home"))  # fmt: skip
        [row] = figures.figures(session=w.session, actor=w.clerk, scope="station")
        assert (row.requests, row.visits, row.treated_at_home, row.share_treated_at_home) == (
            1, 1, 1, 1.0,
        )  # fmt: skip
        assert row.station_id == STATION
        assert figures.figures(session=w.session, actor=w.other_nurse, scope="station") == []
        [city] = figures.figures(session=w.session, actor=w.clerk, scope="city")
        assert city.requests == 0  # one request: suppressed (under 10)
        assert "month,station_id,requests" in figures.as_csv([row])
        with pytest.raises(Forbidden):
            figures.figures(session=w.session, actor=w.doctor, scope="station")
