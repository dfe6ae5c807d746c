"""The paramedic flow: open an incident, identify (candidates), confirm, read the
emergency summary, record vitals and findings, send the status report (状態報告) to a
hospital, let the hospital see the handover, close.

Every step is in the access log; the resident and the trusted persons who watch
``emergency_incident`` are notified of each step (reads under ``ETREAT`` also notify
through the choke point's own hook).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from consent import audit, notifications
from consent.actors import Actor, Purpose
from consent.identity import jpki
from consent.models import Organization
from consent.policy import schemas as policy_schemas
from consent.policy import service as policy
from fhir_gateway.ingest import SourceRecord, store_records
from phr.acp import keys
from phr.db import after_rollback
from phr.emergency import flows, identify, repository, schemas
from phr.emergency.models import Incident, IncidentCandidate, IncidentNote
from phr.errors import Forbidden, InvalidInput, NotFound
from phr.security import limiter
from phr.settings import get_settings
from phr.store import repository as repo
from phr.store.indexer import iso_instant, utcnow
from phr.store.reader import RecordReader

__all__ = [
    "METHODS",
    "Candidate",
    "add_candidates",
    "close",
    "confirm",
    "identify_by_card",
    "identify_by_demographics",
    "incident_read",
    "open_incident",
    "record_finding",
    "record_vitals",
    "status_report",
]

log = logging.getLogger(__name__)

METHODS = ("face", "card", "demographic")
INCIDENT_KIND = "emergency_incident"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
JCS_SYSTEM = "urn:phr:codesystem:japan-coma-scale"
NOT_IDENTIFIED = "該当者なし（一致する1名を特定できません）/ not identified"
# Lookups per incident: enough for typos and a second card, too few to sweep the
# register by trying birth dates.
MAX_IDENTIFY_ATTEMPTS = 10


# Across incidents, an actor's lookups are limited too (phr.security.limiter).
TooManyAttempts = limiter.TooManyAttempts


class Candidate(Protocol):
    """What any identification method proposes (the face search's ``Candidate`` too)."""

    @property
    def resident_id(self) -> str: ...

    @property
    def score(self) -> float: ...


@dataclass(frozen=True)
class Proposed:
    resident_id: str
    score: float


def _ems(actor: Actor) -> str:
    if actor.kind not in ("organization", "staff") or actor.organization_kind != "ems":
        raise Forbidden("only an EMS organisation's crews do this")
    assert actor.organization_id
    return actor.organization_id


def _own(session: Session, actor: Actor, incident_id: str) -> Incident:
    """The incident of the caller's organisation (attending EMS or receiving hospital)."""
    if actor.kind not in ("organization", "staff") or not actor.organization_id:
        raise Forbidden("for EMS and hospitals")
    row = repository.incident_for(session, incident_id, actor.organization_id)
    if row is None:
        _record_refusal(
            session,
            actor,
            audit.Access("incident-read", "not-found", detail=f"incident {incident_id}"),
        )
        raise NotFound(f"incident {incident_id} not found")
    return row


def _record_refusal(session: Session, actor: Actor, entry: audit.Access) -> None:
    """Log a refused step: the request fails and its transaction is undone, so the entry
    is written again after the rollback (as the choke point does for denied reads)."""
    audit.record(session, actor, Purpose.EMERGENCY, [entry])
    after_rollback(session, lambda s: audit.record(s, actor, Purpose.EMERGENCY, [entry]))


def _attending(session: Session, actor: Actor, incident_id: str) -> Incident:
    org = _ems(actor)
    row = _own(session, actor, incident_id)
    if row.ems_organization_id != org:
        raise NotFound(f"incident {incident_id} not found")
    return row


def _log(
    session: Session,
    actor: Actor,
    action: str,
    incident: Incident,
    *,
    outcome: str = "permit",
    resident_id: str | None = None,
    detail: str = "",
    refused: bool = False,
) -> None:
    """One access-log entry of a step; ``refused`` when the request is about to fail."""
    entry = audit.Access(
        action,
        outcome,
        None,
        None,
        resident_id or incident.resident_id,
        count=1,
        detail=f"incident {incident.id} {detail}".strip(),
    )
    if refused:
        _record_refusal(session, actor, entry)
    else:
        audit.record(session, actor, Purpose.EMERGENCY, [entry])


def _tell(session: Session, incident: Incident, title: str, body: str) -> None:
    """The resident, and trusted persons watching emergencies, hear of each step."""
    if not incident.resident_id:
        return
    watchers = [
        p for p, _ in notifications.watchers_for(session, incident.resident_id, INCIDENT_KIND)
    ]
    notifications.notify(
        session,
        resident_id=incident.resident_id,
        kind=INCIDENT_KIND,
        title=title,
        body=body,
        data={"incident": incident.id, "status": incident.status},
        trusted_persons=watchers,
    )


def _candidate_read(c: IncidentCandidate) -> schemas.CandidateRead:
    return schemas.CandidateRead(
        id=c.pk,
        method=c.method,
        score=c.score,
        status=c.status,
        resident_ref=f"candidate-{c.pk}",
    )


def incident_read(session: Session, incident: Incident) -> schemas.IncidentRead:
    return schemas.IncidentRead(
        id=incident.id,
        status=incident.status,
        ems_organization_id=incident.ems_organization_id,
        opened_at=incident.opened_at,
        district=incident.district,
        confirmed=incident.resident_id is not None,
        confirmed_method=incident.confirmed_method,
        hospital_id=incident.hospital_id,
        closed_at=incident.closed_at,
        candidates=[_candidate_read(c) for c in repository.candidates(session, incident.id)],
    )


# ---- open and identify ---------------------------------------------------------------------


def open_incident(*, session: Session, actor: Actor, body: schemas.IncidentCreate) -> Incident:
    org = _ems(actor)
    row = Incident(
        id=repo.new_id(),
        ems_organization_id=org,
        opened_by=actor.label[:80],
        opened_at=utcnow(),
        district=body.district,
        status=flows.OPEN,
        identify_attempts=0,
    )
    session.add(row)
    session.flush()
    _log(session, actor, "incident-open", row)
    return row


def add_candidates(
    session: Session,
    incident_id: str,
    method: str,
    candidates: Iterable[Candidate],
    *,
    actor: Actor | None = None,
) -> list[IncidentCandidate]:
    """Store what an identification method proposed (at most three are kept, best first).

    The face route calls this after merging its shortlist; nothing here reveals who the
    candidates are, and nothing is unlocked until :func:`confirm`."""
    if method not in METHODS:
        raise InvalidInput(f"unknown identification method {method!r}")
    incident = repository.get_incident(session, incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id} not found")
    flows.require(incident.status, frozenset({flows.OPEN}), "adding candidates")
    known = {(c.resident_id, c.method) for c in repository.candidates(session, incident_id)}
    best = sorted(candidates, key=lambda c: -float(c.score))[:3]
    now = utcnow()
    rows = []
    for c in best:
        if (c.resident_id, method) in known:
            continue
        row = IncidentCandidate(
            incident_id=incident_id,
            resident_id=c.resident_id,
            method=method,
            score=float(c.score),
            created_at=now,
            status="candidate",
        )
        session.add(row)
        rows.append(row)
    session.flush()
    _log(
        session,
        actor or identify.lookup_actor(Actor.system(identify.SERVICE)),
        "incident-candidates",
        incident,
        detail=f"method={method} candidates={len(rows)}",
    )
    return rows


def _attempt(session: Session, actor: Actor, incident: Incident) -> None:
    flows.require(incident.status, frozenset({flows.OPEN}), "identification")
    if incident.identify_attempts >= MAX_IDENTIFY_ATTEMPTS:
        _log(
            session,
            actor,
            "incident-identify",
            incident,
            outcome="deny",
            detail="throttled",
            refused=True,
        )
        raise TooManyAttempts(
            f"more than {MAX_IDENTIFY_ATTEMPTS} lookups for this incident; open a new one "
            "if this is really another patient"
        )
    settings = get_settings()
    limiter.count_lookup(
        session,
        limiter.Counter(
            "emergency-identify",
            limiter.actor_key(actor),
            settings.lookups_per_actor,
            settings.lookup_window_seconds,
        ),
    )
    incident.identify_attempts += 1


def _result(added: Sequence[IncidentCandidate]) -> schemas.IdentifyResult:
    return schemas.IdentifyResult(
        identified=bool(added),
        message=(
            "候補者がいます。確認してください / candidate found: confirm it"
            if added
            else NOT_IDENTIFIED
        ),
        candidates=[_candidate_read(c) for c in added],
    )


def identify_by_demographics(
    *, session: Session, actor: Actor, incident_id: str, query: schemas.DemographicQuery
) -> schemas.IdentifyResult:
    incident = _attending(session, actor, incident_id)
    _attempt(session, actor, incident)
    reader = RecordReader(session, identify.lookup_actor(actor), Purpose.EMERGENCY)
    found = identify.demographic(reader, query)
    added = (
        add_candidates(session, incident.id, "demographic", [Proposed(found, 1.0)], actor=actor)
        if found
        else []
    )
    if not found:
        _log(session, actor, "incident-identify", incident, outcome="not-found", detail="demo")
    return _result(added)


def identify_by_card(
    *, session: Session, actor: Actor, incident_id: str, query: schemas.CardQuery
) -> schemas.IdentifyResult:
    incident = _attending(session, actor, incident_id)
    _attempt(session, actor, incident)
    try:
        resident = identify.card(session, query.certificate)
    except jpki.CardRefused as refused:
        _log(session, actor, "incident-identify", incident, outcome="deny", detail=refused.reason)
        return schemas.IdentifyResult(
            identified=False, message=f"{NOT_IDENTIFIED} ({refused.reason})", candidates=[]
        )
    added = add_candidates(session, incident.id, "card", [Proposed(resident, 1.0)], actor=actor)
    if not added:  # proposed before: return the existing candidate
        added = [
            c
            for c in repository.candidates(session, incident.id)
            if c.resident_id == resident and c.method == "card"
        ]
    return _result(added)


def identify_by_face(
    *, session: Session, actor: Actor, incident_id: str, probe: schemas.FaceProbe
) -> schemas.IdentifyResult:
    """1:N face search (:mod:`phr.biometrics`) over the enrolled residents, narrowed by
    what the crew sees; at most three candidates above the calibrated threshold join the
    incident. A face candidate is confirmed visually (the reference photo side by side),
    by a bystander's birth date or by the card — never by the score alone."""
    from phr.biometrics import service as biometrics

    incident = _attending(session, actor, incident_id)
    _attempt(session, actor, incident)
    narrowing: dict[str, Any] = {
        "sex": probe.sex,
        "age_min": probe.age_min,
        "age_max": probe.age_max,
        "district": probe.district,
        "limit": probe.limit,
    }
    if probe.embedding is not None:
        found = biometrics.identify(session, actor, probe.embedding, **narrowing)
    else:
        assert probe.image is not None
        image = biometrics.decode_base64(probe.image, "image")
        found = biometrics.identify_image(session, actor, image, **narrowing)
    if not found:
        _log(session, actor, "incident-identify", incident, outcome="not-found", detail="face")
        return _result([])
    proposed = [Proposed(c.resident_id, c.score) for c in found]
    add_candidates(session, incident.id, "face", proposed, actor=actor)
    wanted = {c.resident_id for c in found}
    return _result(
        [
            c
            for c in repository.candidates(session, incident.id)
            if c.method == "face" and c.resident_id in wanted
        ]
    )


# ---- confirm -----------------------------------------------------------------------------------


def confirm(*, session: Session, actor: Actor, incident_id: str, body: schemas.Confirm) -> Incident:
    """The crew confirms one candidate: by the card, by the birth date a bystander gives,
    or visually against the reference photo (face candidates). Only then is the incident
    identified and the emergency episode opened."""
    incident = _attending(session, actor, incident_id)
    flows.check(incident.status, flows.IDENTIFIED)
    cands = repository.candidates(session, incident.id)
    cand = next((c for c in cands if c.pk == body.candidate_id), None)
    if cand is None or cand.status != "candidate":
        raise NotFound("candidate not found")
    ok = False
    reason = ""
    if body.method == "card":
        if not body.certificate:
            raise InvalidInput("confirming by card needs the card's certificate")
        try:
            ok = identify.card(session, body.certificate) == cand.resident_id
        except jpki.CardRefused as refused:
            reason = refused.reason
    elif body.method == "birth_date":
        if body.birth_date is None:
            raise InvalidInput("confirming by birth date needs the birth date")
        reader = RecordReader(session, identify.lookup_actor(actor), Purpose.EMERGENCY)
        ok = identify.birth_date_of(reader, cand.resident_id) == body.birth_date
    else:
        if cand.method != "face":
            raise InvalidInput("visual confirmation is for face candidates (reference photo)")
        ok = body.photo_checked
    if not ok:
        _log(
            session,
            actor,
            "incident-confirm",
            incident,
            outcome="deny",
            detail=f"candidate {cand.pk} by {body.method} {reason}".strip(),
            refused=True,
        )
        raise Forbidden("the candidate is not confirmed; nothing is unlocked")
    now = utcnow()
    for c in cands:
        c.status = "confirmed" if c.pk == cand.pk else "rejected"
    episode = policy.open_episode(
        session, actor, policy_schemas.EpisodeCreate(patient=cand.resident_id)
    )
    incident.resident_id = cand.resident_id
    incident.confirmed_method = body.method
    incident.confirmed_by = actor.label[:80]
    incident.confirmed_at = now
    incident.episode_id = episode.id
    incident.status = flows.IDENTIFIED
    session.flush()
    _log(session, actor, "incident-confirm", incident, detail=f"by {body.method}")
    _tell(
        session,
        incident,
        "救急隊があなたを確認しました",
        "Paramedics attending an emergency have identified you.",
    )
    return incident


# ---- vitals, findings, status report ---------------------------------------------------------


def _unlocked(session: Session, actor: Actor, incident_id: str) -> Incident:
    incident = _attending(session, actor, incident_id)
    flows.require(incident.status, flows.UNLOCKED, "recording")
    assert incident.resident_id
    return incident


def _observation(
    incident: Incident, code: tuple[str, str, str], category: str, at: str, **value: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": code[0], "code": code[1], "display": code[2]}]},
        "subject": {"reference": f"Patient/{incident.resident_id}"},
        "effectiveDateTime": at,
        **value,
    }


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": code}}


def _store(
    session: Session, actor: Actor, incident: Incident, kind: str, resources: list[dict[str, Any]]
) -> list[str]:
    n = len(repository.notes(session, incident.id))
    result = store_records(
        session,
        organization_id=incident.ems_organization_id,
        records=[
            SourceRecord(f"incident:{incident.id}:{n}:{i}", r) for i, r in enumerate(resources)
        ],
    )
    refs = [f"{o.resource_type}/{o.id}" for o in result.outcomes]
    session.add(
        IncidentNote(
            incident_id=incident.id,
            kind=kind,
            created_at=utcnow(),
            author=actor.label[:80],
            resource_refs=" ".join(refs),
        )
    )
    session.flush()
    _log(session, actor, f"incident-{kind}", incident, detail=" ".join(refs))
    return refs


def record_vitals(
    *, session: Session, actor: Actor, incident_id: str, body: schemas.Vitals
) -> schemas.RecordedRead:
    """Vital signs as FHIR Observations (LOINC vital-sign codes as the FHIR vital signs
    profiles name them; JCS, the Japan Coma Scale, in a local code system)."""
    incident = _unlocked(session, actor, incident_id)
    at = iso_instant((body.measured_at or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None))
    out: list[dict[str, Any]] = []
    vs = "vital-signs"
    if body.systolic is not None and body.diastolic is not None:
        out.append(
            _observation(
                incident,
                (LOINC, "85354-9", "Blood pressure panel"),
                vs,
                at,
                component=[
                    {
                        "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                        **_quantity(body.systolic, "mmHg", "mm[Hg]"),
                    },
                    {
                        "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                        **_quantity(body.diastolic, "mmHg", "mm[Hg]"),
                    },
                ],
            )
        )
    simple = (
        (body.pulse, ("8867-4", "Heart rate"), ("/min", "/min")),
        (body.respiratory_rate, ("9279-1", "Respiratory rate"), ("/min", "/min")),
        (body.spo2, ("59408-5", "Oxygen saturation by pulse oximetry"), ("%", "%")),
        (body.temperature, ("8310-5", "Body temperature"), ("Cel", "Cel")),
    )
    for value, (code, display), (unit, ucum) in simple:
        if value is not None:
            out.append(
                _observation(
                    incident, (LOINC, code, display), vs, at, **_quantity(value, unit, ucum)
                )
            )
    if body.jcs is not None:
        out.append(
            _observation(
                incident,
                (JCS_SYSTEM, "jcs", "Japan Coma Scale"),
                "exam",
                at,
                valueCodeableConcept={
                    "coding": [{"system": JCS_SYSTEM, "code": str(body.jcs)}],
                    "text": f"JCS {body.jcs}",
                },
            )
        )
    if not out:
        raise InvalidInput("no vital sign given")
    return schemas.RecordedRead(
        incident_id=incident.id,
        kind="vitals",
        references=_store(session, actor, incident, "vitals", out),
    )


def record_finding(
    *, session: Session, actor: Actor, incident_id: str, body: schemas.Finding
) -> schemas.RecordedRead:
    incident = _unlocked(session, actor, incident_id)
    at = iso_instant(utcnow())
    obs = _observation(
        incident,
        ("urn:phr:codesystem:ems", "finding", "救急隊所見 / paramedic finding"),
        "exam",
        at,
        valueString=body.text,
    )
    refs = _store(session, actor, incident, "finding", [obs])
    return schemas.RecordedRead(incident_id=incident.id, kind="finding", references=refs)


def status_report(
    *, session: Session, actor: Actor, incident_id: str, body: schemas.StatusReport
) -> Incident:
    """状態報告 to the chosen hospital: the hospital becomes the receiving organisation of
    the emergency episode, and so sees the summary and the ACP before arrival."""
    incident = _unlocked(session, actor, incident_id)
    flows.check(incident.status, flows.REPORTED)
    hospital = session.get(Organization, body.hospital_id)
    if hospital is None or hospital.kind != "hospital" or not hospital.active:
        raise InvalidInput(f"{body.hospital_id} is not a hospital")
    now = utcnow()
    note = IncidentNote(
        incident_id=incident.id,
        kind="status_report",
        created_at=now,
        author=actor.label[:80],
        resource_refs="",
    )
    session.add(note)
    session.flush()
    note.sealed = keys.seal_json(
        {**body.model_dump(), "sent_at": iso_instant(now)},
        context=f"incident-note:{incident.id}:{note.pk}",
    )
    assert incident.episode_id
    policy.handover(
        session,
        actor,
        incident.episode_id,
        policy_schemas.HandoverIn(receiving_organization_id=hospital.id),
    )
    incident.hospital_id = hospital.id
    incident.reported_at = now
    incident.status = flows.REPORTED
    session.flush()
    _log(session, actor, "incident-status-report", incident, detail=f"to {hospital.id}")
    _tell(
        session,
        incident,
        f"救急隊が{hospital.name}へ状態を報告しました",
        f"The paramedics reported your condition to {hospital.name}.",
    )
    return incident


def status_reports(session: Session, incident: Incident) -> list[dict[str, Any]]:
    out = []
    for n in repository.notes(session, incident.id, "status_report"):
        if n.sealed:
            data = keys.open_json(n.sealed, context=f"incident-note:{incident.id}:{n.pk}")
            assert isinstance(data, dict)
            out.append(data)
    return out


def close(*, session: Session, actor: Actor, incident_id: str) -> Incident:
    incident = _attending(session, actor, incident_id)
    flows.check(incident.status, flows.CLOSED)
    if incident.episode_id:
        policy.close_episode(session, actor, incident.episode_id)
    incident.status = flows.CLOSED
    incident.closed_at = utcnow()
    session.flush()
    _log(session, actor, "incident-close", incident)
    _tell(
        session,
        incident,
        "救急対応が終了しました。救急時の情報は見られなくなりました",
        "The emergency is closed; your emergency information is no longer shown.",
    )
    return incident


def get(*, session: Session, actor: Actor, incident_id: str) -> Incident:
    incident = _own(session, actor, incident_id)
    _log(session, actor, "incident-read", incident)
    return incident


def attending(*, session: Session, actor: Actor) -> list[Incident]:
    """The caller's EMS organisation's incidents not yet closed (the tablet's list)."""
    return repository.open_incidents(session, _ems(actor))


def incoming(*, session: Session, actor: Actor) -> list[Incident]:
    if actor.kind not in ("organization", "staff") or actor.organization_kind != "hospital":
        raise Forbidden("for hospitals")
    assert actor.organization_id
    return repository.incoming(session, actor.organization_id)


def handover_incident(*, session: Session, actor: Actor, incident_id: str) -> Incident:
    """The incident as its receiving hospital sees it (another hospital: not found)."""
    if actor.kind not in ("organization", "staff") or actor.organization_kind != "hospital":
        raise Forbidden("for the receiving hospital")
    incident = _own(session, actor, incident_id)
    if incident.hospital_id != actor.organization_id:
        raise NotFound(f"incident {incident_id} not found")
    _log(session, actor, "incident-handover", incident)
    return incident
