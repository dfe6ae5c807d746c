"""``resident_access_clause`` (the fast path for searches by patient and ``$everything``)
decides exactly as ``access_clause`` for every row of the resident, across consent
shapes, actors and purposes — and gives no consent-based access to other residents."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from consent import engine
from consent.actors import Actor, Purpose
from consent.policy import schemas, service
from consent.policy.models import EmergencyEpisode
from phr.store import repository as repo
from phr.store.indexer import utcnow
from phr.store.models import Resource, ResourceSource

RID, OTHER = "res-clause-1", "res-clause-2"
ICD10 = "http://hl7.org/fhir/sid/icd-10"


def _resources(rid: str) -> list[dict[str, Any]]:
    return [
        {"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"}},
        {"resourceType": "Observation", "status": "final", "code": {"text": "HIV test"},
         "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                "code": "HIV"}]}},
        {"resourceType": "Condition", "code": {"coding": [{"system": ICD10, "code": "F32.9"}]},
         "subject": {"reference": f"Patient/{rid}"}},
        {"resourceType": "Condition", "code": {"coding": [{"system": ICD10, "code": "E11.9"}]},
         "subject": {"reference": f"Patient/{rid}"}},
        {"resourceType": "AllergyIntolerance", "patient": {"reference": f"Patient/{rid}"}},
        {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
         "subject": {"reference": f"Patient/{rid}"}, "medicationCodeableConcept": {"text": "x"}},
    ]  # fmt: skip


CONSENTS: dict[str, list[dict[str, Any]]] = {
    "none": [],
    "org permit all": [{"recipients": [{"kind": "organization", "value": "clinic-b"}]}],
    "kind permit treatment": [
        {"recipients": [{"kind": "org_kind", "value": "clinic"}], "purposes": ["TREAT"]}
    ],
    "permit with mental health": [
        {
            "recipients": [{"kind": "organization", "value": "clinic-b"}],
            "sensitive_categories": ["mental-health"],
        }
    ],
    "permit two classes": [
        {
            "recipients": [{"kind": "any"}],
            "data_classes": ["Observation", "Condition"],
        }
    ],
    "permit except observations": [
        {
            "recipients": [{"kind": "organization", "value": "clinic-b"}],
            "exceptions": [{"data_classes": ["Observation"]}],
        }
    ],
    "permit and a separate deny": [
        {"recipients": [{"kind": "any"}]},
        {"decision": "deny", "recipients": [{"kind": "role", "value": "doctor"}]},
    ],
    "expired permit": [
        {
            "recipients": [{"kind": "organization", "value": "clinic-b"}],
            "period_end": utcnow() - timedelta(days=1),
        }
    ],
    "research only": [{"recipients": [{"kind": "any"}], "purposes": ["HRESCH"]}],
}

ACTORS = {
    "clinic-b": Actor(
        kind="organization", client_id="cb", organization_id="clinic-b", organization_kind="clinic"
    ),
    "doctor at clinic-b": Actor(
        kind="staff",
        user_id="dr-1",
        organization_id="clinic-b",
        organization_kind="clinic",
        role="doctor",
    ),
    "hospital-c": Actor(
        kind="organization", client_id="hc", organization_id="hosp-c", organization_kind="hospital"
    ),
    "contributor": Actor(
        kind="organization", client_id="ca", organization_id="clinic-a", organization_kind="clinic"
    ),
}


@pytest.fixture
def records(session: Session) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for rid in (RID, OTHER):
        written = repo.put_many(session, [repo.Put(r, rid) for r in _resources(rid)])
        out[rid] = [w.pk for w in written]
    # clinic-a contributed the first two records of each resident
    for rid in (RID, OTHER):
        for pk in out[rid][:2]:
            session.add(
                ResourceSource(
                    resource_pk=pk,
                    resident_id=rid,
                    organization_id="clinic-a",
                    resource_type="Observation",
                    source_key=f"k{pk}",
                    source_hash="h",
                    received_at=utcnow(),
                )
            )
    session.flush()
    return out


def _visible(session: Session, clause: ColumnElement[bool], rid: str) -> set[int]:
    return set(
        session.scalars(
            select(Resource.pk).where(
                Resource.resident_id == rid, Resource.deleted.is_(False), clause
            )
        )
    )


@pytest.mark.parametrize("shape", sorted(CONSENTS))
def test_same_decision_as_the_general_clause(
    session: Session, records: dict[str, list[int]], shape: str
) -> None:
    for body in CONSENTS[shape]:
        service.create_consent(
            session,
            Actor(kind="resident", resident_id=RID, client_id="app"),
            schemas.ConsentCreate(**body),
        )
    session.flush()
    purposes = (Purpose.TREATMENT, Purpose.MEDICATION_REVIEW, Purpose.RESEARCH)
    seen_any = False
    for (name, actor), purpose in itertools.product(ACTORS.items(), purposes):
        general = _visible(session, engine.access_clause(actor, purpose, session), RID)
        fast = _visible(session, engine.resident_access_clause(actor, purpose, session, RID), RID)
        assert fast == general, (shape, name, purpose)
        seen_any = seen_any or bool(general - set(records[RID][:2]))
        # The other resident's rows: only what the actor contributed, never by RID's rules.
        other = _visible(
            session, engine.resident_access_clause(actor, purpose, session, RID), OTHER
        )
        expected = set(records[OTHER][:2]) if name == "contributor" else set()
        assert other == expected, (shape, name, purpose)
    if shape in ("org permit all", "permit two classes", "permit and a separate deny"):
        assert seen_any, "the scenario should let someone see consented data"


def test_emergency_pre_consent_falls_back_to_the_episode_check(
    session: Session, records: dict[str, list[int]]
) -> None:
    resident = Actor(kind="resident", resident_id=RID, client_id="app")
    service.set_emergency_consent(session, resident, schemas.EmergencyConsentIn(enabled=True))
    session.flush()
    ems = Actor(
        kind="organization", client_id="e", organization_id="ems-1", organization_kind="ems"
    )
    for_episode = engine.resident_access_clause(ems, Purpose.EMERGENCY, session, RID)
    assert _visible(session, for_episode, RID) == set()
    session.add(
        EmergencyEpisode(
            id="ep-1",
            resident_id=RID,
            ems_organization_id="ems-1",
            opened_by="p-1",
            opened_at=utcnow(),
            expires_at=utcnow() + timedelta(hours=1),
        )
    )
    session.flush()
    general = _visible(session, engine.access_clause(ems, Purpose.EMERGENCY, session), RID)
    fast = _visible(
        session, engine.resident_access_clause(ems, Purpose.EMERGENCY, session, RID), RID
    )
    assert fast == general and fast
