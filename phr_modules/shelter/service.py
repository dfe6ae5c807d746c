"""The shelter's intake (受付) and what its staff see.

open an intake → identify (restricted demographic search or the digital-ID card, exactly
as the paramedic flow: ``phr.emergency.identify``) → a *candidate*, never shown → confirm
(the birth date the evacuee or a companion gives, or the card) → checked in: the episode
of the resident's disaster-time consent is opened for this shelter (ADR 0006), and only
then does the module's reader show anything → the evacuee's view and the shelter list →
leave (the episode closes, nothing is shown any more).

Every step is in the resident's access log (purpose ``DISASTER``); refused steps too,
also when the request is undone. The record is read only through the module's reader
(``phr.modules.ModuleReader``): the resident's consent, the module's PIA, the declared
types.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from consent import audit
from consent.actors import Actor
from consent.identity import jpki
from consent.policy import schemas as policy_schemas
from consent.policy import service as policy
from phr.db import after_rollback
from phr.emergency import identify
from phr.errors import Forbidden, InvalidInput, NotFound, PHRError
from phr.modules import ModuleReader
from phr.polypharmacy.reconcile import as_of
from phr.store import repository as store_repo
from phr.store.indexer import utcnow
from phr.web import repository as web_repository
from phr_modules.shelter import PURPOSE, RESOURCE_TYPES, continuity, repository, schemas
from phr_modules.shelter.models import ShelterIntake

__all__ = [
    "TooManyAttempts",
    "confirm",
    "evacuee",
    "get_intake",
    "identify_by_card",
    "identify_by_demographics",
    "intake_read",
    "leave",
    "open_intake",
    "reception",
    "shelter_list",
]

# Lookups per intake: enough for typos and a second card, too few to sweep the register.
MAX_IDENTIFY_ATTEMPTS = 10
# A check-in keeps the disaster consent in force this long unless the evacuee leaves
# first (a new intake renews it).
STAY = timedelta(days=7)
NOT_IDENTIFIED = "該当者なし（一致する1名を特定できません）/ not identified"
NO_CONSENT = "災害時の情報提供の同意がありません / no disaster-time consent on file"
NOTICE = (
    "避難所があなたの災害時の情報（服薬・アレルギー等）を参照できる状態になりました",
    "The shelter you checked in at can now see your medicines, allergies and problems",
)


class TooManyAttempts(PHRError):
    status_code = 429
    code = "throttled"
    error = "too_many_attempts"


def _shelter(actor: Actor) -> str:
    if actor.kind not in ("organization", "staff") or actor.organization_kind != "shelter":
        raise Forbidden("for evacuation shelters only")
    if actor.kind == "staff" and actor.role != "shelter_staff":
        raise Forbidden("for shelter staff only")
    assert actor.organization_id
    return actor.organization_id


def _log(
    session: Session,
    actor: Actor,
    action: str,
    row: ShelterIntake,
    *,
    outcome: str = "permit",
    resident_id: str | None = None,
    detail: str = "",
    refused: bool = False,
) -> None:
    entry = audit.Access(
        action,
        outcome,
        resident_id=resident_id or row.resident_id,
        count=1,
        detail=f"shelter intake {row.id} {detail}".strip(),
    )
    audit.record(session, actor, PURPOSE, [entry])
    if refused:  # the request fails and is undone: keep the refusal in the log
        after_rollback(session, lambda s: audit.record(s, actor, PURPOSE, [entry]))


def intake_read(row: ShelterIntake) -> schemas.IntakeRead:
    return schemas.IntakeRead(
        id=row.id,
        number=row.number,
        status=row.status,
        opened_at=row.opened_at,
        candidate_waiting=row.status == "open" and row.candidate_resident_id is not None,
        candidate_method=row.candidate_method if row.status == "open" else None,
        confirmed_method=row.confirmed_method,
        checked_in_at=row.checked_in_at,
        left_at=row.left_at,
    )


def open_intake(session: Session, actor: Actor) -> ShelterIntake:
    shelter = _shelter(actor)
    row = ShelterIntake(
        id=store_repo.new_id(),
        shelter_id=shelter,
        number=repository.next_number(session, shelter),
        opened_by=actor.label[:80],
        opened_at=utcnow(),
        status="open",
        identify_attempts=0,
    )
    session.add(row)
    session.flush()
    _log(session, actor, "shelter-intake", row)
    return row


def get_intake(session: Session, actor: Actor, intake_id: str) -> ShelterIntake:
    row = repository.get(session, intake_id, _shelter(actor))
    if row is None:
        raise NotFound(f"intake {intake_id} not found")
    return row


def _attempt(session: Session, actor: Actor, row: ShelterIntake) -> None:
    if row.status != "open":
        raise InvalidInput("this intake is already identified")
    if row.identify_attempts >= MAX_IDENTIFY_ATTEMPTS:
        _log(session, actor, "shelter-identify", row, outcome="deny", detail="throttled",
             refused=True)  # fmt: skip
        raise TooManyAttempts(f"more than {MAX_IDENTIFY_ATTEMPTS} lookups for this intake")
    row.identify_attempts += 1


def _propose(
    session: Session, actor: Actor, row: ShelterIntake, resident: str | None, method: str
) -> schemas.IdentifyResult:
    if resident is None:
        _log(session, actor, "shelter-identify", row, outcome="not-found", detail=method)
        return schemas.IdentifyResult(
            identified=False, message=NOT_IDENTIFIED, intake=intake_read(row)
        )
    row.candidate_resident_id, row.candidate_method = resident, method
    session.flush()
    _log(session, actor, "shelter-identify", row, resident_id=resident, detail=method)
    return schemas.IdentifyResult(
        identified=True,
        message="候補者がいます。確認してください / candidate found: confirm it",
        intake=intake_read(row),
    )


def identify_by_demographics(
    session: Session,
    actor: Actor,
    lookup: ModuleReader,
    intake_id: str,
    query: schemas.DemographicQuery,
) -> schemas.IdentifyResult:
    """Name and/or kana, birth date and sex: a candidate only when exactly one resident
    matches exactly (``phr.emergency.identify.demographic`` over the module's
    identification reader)."""
    row = get_intake(session, actor, intake_id)
    _attempt(session, actor, row)
    return _propose(session, actor, row, identify.demographic(lookup, query), "demographic")


def identify_by_card(
    session: Session, actor: Actor, intake_id: str, query: schemas.CardQuery
) -> schemas.IdentifyResult:
    """The digital-ID card's certificate, checked as at card sign-in."""
    row = get_intake(session, actor, intake_id)
    _attempt(session, actor, row)
    try:
        resident: str | None = identify.card(session, query.certificate)
    except jpki.CardRefused as refused:
        _log(session, actor, "shelter-identify", row, outcome="deny", detail=refused.reason)
        resident = None
    return _propose(session, actor, row, resident, "card")


def confirm(
    session: Session,
    actor: Actor,
    lookup: ModuleReader,
    intake_id: str,
    body: schemas.Confirm,
) -> ShelterIntake:
    """Confirm the candidate by the birth date the evacuee or a companion gives (compared,
    never shown) or by the card; then check in and open the disaster-consent episode."""
    row = get_intake(session, actor, intake_id)
    if row.status != "open" or row.candidate_resident_id is None:
        raise NotFound("no candidate to confirm")
    rid = row.candidate_resident_id
    ok, reason = False, ""
    if body.method == "card":
        if not body.certificate:
            raise InvalidInput("confirming by card needs the card's certificate")
        try:
            ok = identify.card(session, body.certificate) == rid
        except jpki.CardRefused as refused:
            reason = refused.reason
    else:
        if body.birth_date is None:
            raise InvalidInput("confirming by birth date needs the birth date")
        ok = identify.birth_date_of(lookup, rid) == body.birth_date
    if not ok:
        _log(session, actor, "shelter-confirm", row, outcome="deny", resident_id=rid,
             detail=f"by {body.method} {reason}".strip(), refused=True)  # fmt: skip
        raise Forbidden("the candidate is not confirmed; nothing is unlocked")
    episode = policy.open_episode(
        session,
        actor,
        policy_schemas.EpisodeCreate(patient=rid),
        kinds=("shelter",),
        notice=NOTICE,
        hours=STAY.total_seconds() / 3600,
    )
    row.resident_id, row.confirmed_method = rid, body.method
    row.status, row.checked_in_at, row.episode_id = "checked_in", utcnow(), episode.id
    session.flush()
    _log(session, actor, "shelter-confirm", row, detail=f"by {body.method}")
    return row


def leave(session: Session, actor: Actor, intake_id: str) -> ShelterIntake:
    """The evacuee leaves (or the intake is cancelled): nothing is shown any more."""
    row = get_intake(session, actor, intake_id)
    if row.status == "left":
        return row
    if row.episode_id:
        policy.close_episode(session, actor, row.episode_id)
    row.status, row.left_at = "left", utcnow()
    session.flush()
    _log(session, actor, "shelter-leave", row)
    return row


def _orgs(session: Session) -> dict[str, str]:
    return {o.id: o.name for o in web_repository.organizations(session)}


def _continuity(
    session: Session, reader: ModuleReader, row: ShelterIntake, orgs: dict[str, str]
) -> continuity.Continuity | None:
    if row.status != "checked_in" or row.resident_id is None:
        return None
    rows = list(reader.compartment(row.resident_id, types=sorted(RESOURCE_TYPES)))
    view = continuity.build(session, row.resident_id, rows, today=as_of(utcnow()), orgs=orgs)
    return view if view.patient is not None else None


def evacuee(
    session: Session, actor: Actor, reader: ModuleReader, intake_id: str
) -> schemas.EvacueeView:
    """The checked-in evacuee's medicines to continue, allergies, problems and needs —
    nothing before check-in, nothing without the disaster-time consent."""
    row = get_intake(session, actor, intake_id)
    found = _continuity(session, reader, row, _orgs(session))
    if found is None:
        return schemas.EvacueeView(
            intake=intake_read(row),
            consent="none",
            message=NO_CONSENT if row.status == "checked_in" else "",
            generated_at=utcnow(),
        )
    return schemas.EvacueeView(
        intake=intake_read(row),
        consent="granted",
        patient=found.patient,
        needs=found.needs,
        allergies=found.allergies,
        problems=found.problems,
        medicines=found.medicines,
        acp_on_file=found.acp_on_file,
        acp_date=found.acp_date,
        generated_at=utcnow(),
    )


def shelter_list(
    session: Session, actor: Actor, reader: ModuleReader, *, needs_only: bool = False
) -> list[schemas.ListEntry]:
    """Everyone checked in at this shelter with their needs (labels only), or only those
    who need support."""
    orgs = _orgs(session)
    out = []
    for row in repository.checked_in(session, _shelter(actor)):
        found = _continuity(session, reader, row, orgs)
        if needs_only and (found is None or not found.needs):
            continue
        p = found.patient if found else None
        out.append(
            schemas.ListEntry(
                intake_id=row.id,
                number=row.number,
                checked_in_at=row.checked_in_at,
                consent="granted" if found else "none",
                name=p.name if p else None,
                age=p.age if p else None,
                sex=p.sex if p else None,
                needs=found.needs if found else [],
            )
        )
    return out


def reception(session: Session, actor: Actor) -> list[ShelterIntake]:
    """Intakes at this shelter not yet identified."""
    return repository.open_and_present(session, _shelter(actor))
