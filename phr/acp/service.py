"""ACP (もしもの時の話し合い): save a new version, read the current one or an earlier
one, record conversations, and share with trusted persons.

Every read goes through :class:`~phr.store.reader.RecordReader` on the advance-directive
``Consent`` (the index card); only what the choke point lets through is unsealed. The
resident reads as themselves (``PATRQT``); trusted persons (``Actor`` kind
``trusted_person``, service ``acp``) by the sharing consent written when they accepted
the resident's invitation; paramedics and the receiving hospital by the emergency
pre-consent (``ETREAT``, service ``emergency``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from consent import audit, notifications
from consent.actors import Actor, Purpose
from consent.policy import schemas as policy_schemas
from consent.policy import service as policy
from consent.staff.service import hash_password, verify_password
from phr.acp import fhir, keys, repository
from phr.acp import schemas as s
from phr.acp.models import (
    AcpConversation,
    AcpVersion,
    TrustedInvitation,
    TrustedPerson,
    TrustedSession,
)
from phr.db import after_rollback
from phr.errors import Conflict, Forbidden, NotAuthenticated, NotFound
from phr.store import repository as repo
from phr.store.indexer import utcnow
from phr.store.models import Resident, Resource
from phr.store.reader import RecordReader

__all__ = [
    "INVITATION_TTL",
    "SESSION_TTL",
    "CurrentAcp",
    "accept_invitation",
    "changes_between",
    "conversations",
    "current",
    "current_document",
    "invite",
    "list_invitations",
    "mine",
    "open_card",
    "read_version",
    "record_conversation",
    "revoke_invitation",
    "save",
    "shared_with",
    "sign_in",
    "trusted_actor",
    "versions",
]

INVITATION_TTL = timedelta(days=14)
SESSION_TTL = timedelta(hours=12)
MAX_FAILED_SIGN_INS = 5
LOCKOUT = timedelta(minutes=15)
SERVICE = "acp"
ACP_UPDATED = "acp_updated"


def _resident(actor: Actor) -> str:
    if actor.kind != "resident" or not actor.resident_id:
        raise Forbidden("only the resident records their ACP")
    return actor.resident_id


def _context(consent_id: str, version: int) -> str:
    return f"acp:{consent_id}:{version}"


def _audit(session: Session, actor: Actor, action: str, resident_id: str, detail: str = "") -> None:
    audit.record(
        session,
        actor,
        Purpose.PATIENT_ACCESS,
        [audit.Access(action, "permit", "Consent", None, resident_id, count=1, detail=detail)],
    )


# ---- versions ----------------------------------------------------------------------------


def save(*, session: Session, actor: Actor, body: s.AcpSave) -> s.AcpRead:
    """A new version of the resident's ACP (the earlier ones stay readable)."""
    rid = _resident(actor)
    consent_id = repository.consent_id_of(session, rid)
    before: s.AcpRead | None = None
    if consent_id is None:
        consent_id = repo.new_id()
    elif body.conversation is not None:  # what changed is part of the conversation
        before = current(session=session, actor=actor, resident_id=rid)
    now = utcnow()
    latest = repository.latest_version(session, consent_id)
    card = fhir.index_card(rid, consent_id, version=latest + 1, recorded_at=now)
    written = repo.put_many(session, [repo.Put(card, rid)], now=now)[0]
    version = written.version_id
    if version != latest + 1:  # the card was written elsewhere in between
        raise Conflict("the ACP changed meanwhile; reload and save again")
    document = fhir.adi_document(rid, body.content, version=version, recorded_at=now)
    session.add(
        AcpVersion(
            resident_id=rid,
            consent_id=consent_id,
            version=version,
            created_at=now,
            created_by=actor.label[:80],
            sealed=keys.seal_json(document, context=_context(consent_id, version)),
        )
    )
    if body.conversation is not None:
        _conversation(
            session,
            rid,
            body.conversation,
            before=before.version if before else None,
            after=version,
            changes=changes_between(before.content if before else None, body.content),
        )
    session.flush()
    _audit(session, actor, "acp-save", rid, f"Consent/{consent_id} version {version}")
    trusted = repository.trusted_of(session, rid)
    notifications.notify(
        session,
        resident_id=rid,
        kind=ACP_UPDATED,
        title=f"もしもの時の話し合い（第{version}版）が保存されました",
        body=f"The advance care plan was saved (version {version}).",
        data={"version": version},
        trusted_persons=trusted,
    )
    return s.AcpRead(
        resident_id=rid,
        version=version,
        current=True,
        current_version=version,
        recorded_at=now,
        consent=f"Consent/{consent_id}/_history/{version}",
        content=body.content,
    )


def _open(session: Session, consent_id: str, version: int) -> tuple[AcpVersion, dict[str, Any]]:
    row = repository.version_row(session, consent_id, version)
    if row is None:
        raise NotFound("this ACP version has no content")
    document = keys.open_json(row.sealed, context=_context(consent_id, version))
    assert isinstance(document, dict)
    return row, document


def _reader(session: Session, actor: Actor, purpose: Purpose | None) -> RecordReader:
    if purpose is None:
        purpose = Purpose.PATIENT_ACCESS
    return RecordReader(session, actor, purpose)


@dataclass(frozen=True)
class CurrentAcp:
    consent_id: str
    version: int
    recorded_at: datetime
    document: dict[str, Any]  # the ADI document Bundle
    card: dict[str, Any]  # the advance-directive Consent as stored


def current_document(session: Session, reader: RecordReader, resident_id: str) -> CurrentAcp | None:
    """The current ADI document, if the reader may see the resident's ACP (else None).

    The card is read through the choke point (logged, consent applied) before anything
    is unsealed."""
    consent_id = repository.consent_id_of(session, resident_id)
    if consent_id is None:
        return None
    try:
        row = reader.read("Consent", consent_id)
    except NotFound:
        return None
    return open_card(session, row)


def open_card(session: Session, row: Resource) -> CurrentAcp:
    """Unseal the version an advance-directive Consent row (already read through the
    choke point by the caller) stands for."""
    version_row, document = _open(session, row.id, row.version_id)
    card = repo.load_json(row.content)
    return CurrentAcp(row.id, row.version_id, version_row.created_at, document, card)


def current(
    *, session: Session, actor: Actor, resident_id: str, purpose: Purpose | None = None
) -> s.AcpRead | None:
    found = current_document(session, _reader(session, actor, purpose), resident_id)
    if found is None:
        if actor.kind != "resident":
            raise NotFound("no ACP shared with you")
        return None
    return s.AcpRead(
        resident_id=resident_id,
        version=found.version,
        current=True,
        current_version=found.version,
        recorded_at=found.recorded_at,
        consent=f"Consent/{found.consent_id}/_history/{found.version}",
        content=fhir.content_of(found.document),
    )


def mine(*, session: Session, actor: Actor) -> s.AcpRead | None:
    """The resident's own current ACP (None when none is recorded yet)."""
    return current(session=session, actor=actor, resident_id=_resident(actor))


def read_version(*, session: Session, actor: Actor, version: int) -> s.AcpRead:
    """An earlier (or the current) version — the resident's own."""
    rid = _resident(actor)
    consent_id = repository.consent_id_of(session, rid)
    if consent_id is None:
        raise NotFound("no ACP recorded yet")
    reader = _reader(session, actor, None)
    reader.vread("Consent", consent_id, version)
    latest = reader.read("Consent", consent_id).version_id
    row, document = _open(session, consent_id, version)
    return s.AcpRead(
        resident_id=rid,
        version=version,
        current=version == latest,
        current_version=latest,
        recorded_at=row.created_at,
        consent=f"Consent/{consent_id}/_history/{version}",
        content=fhir.content_of(document),
    )


def versions(*, session: Session, actor: Actor) -> list[s.VersionInfo]:
    rid = _resident(actor)
    consent_id = repository.consent_id_of(session, rid)
    if consent_id is None:
        return []
    rows, _ = _reader(session, actor, None).history(
        resource_type="Consent", id=consent_id, count=1000
    )
    latest = max(r.version_id for r in rows)
    return [
        s.VersionInfo(
            version=r.version_id, current=r.version_id == latest, recorded_at=r.last_updated
        )
        for r in sorted(rows, key=lambda r: -r.version_id)
    ]


# ---- conversations -----------------------------------------------------------------------


def changes_between(old: s.AcpContent | None, new: s.AcpContent) -> list[str]:
    """What changed, one plain line per item (Japanese labels)."""
    if old is None:
        return ["初めて記録 / first version"]
    out = []
    for key in s.TREATMENTS:
        a, b = getattr(old.treatments, key), getattr(new.treatments, key)
        if a != b:
            label = fhir.TREATMENT_LABELS[key][0]
            out.append(f"{label}: {fhir.CHOICE_LABELS[a][0]} → {fhir.CHOICE_LABELS[b][0]}")
    for key, label in (("place_of_care", "療養の場所"), ("place_of_death", "最期の場所")):
        a, b = getattr(old, key), getattr(new, key)
        if a != b:
            out.append(f"{label}: {fhir.PLACE_LABELS[a][0]} → {fhir.PLACE_LABELS[b][0]}")
    for key, label in (
        ("own_words", "本人の言葉"),
        ("what_matters", "大切にしていること"),
        ("religious_cultural", "宗教・文化的な希望"),
        ("place_note", "場所についての補足"),
        ("contacts", "連絡先"),
        ("trusted_persons", "信頼できる人"),
        ("spokesperson", "代弁者"),
        ("family_doctor", "かかりつけ医"),
    ):
        if getattr(old, key) != getattr(new, key):
            out.append(f"{label}を変更")
    return out


def _conversation(
    session: Session,
    rid: str,
    body: s.ConversationIn,
    *,
    before: int | None,
    after: int | None,
    changes: list[str],
) -> AcpConversation:
    conv_id = repo.new_id()
    row = AcpConversation(
        id=conv_id,
        resident_id=rid,
        held_at=datetime.combine(body.held_on, time()),
        recorded_at=utcnow(),
        version_before=before,
        version_after=after,
        sealed=keys.seal_json(
            {
                "participants": [p.model_dump() for p in body.participants],
                "note": body.note,
                "changes": changes,
            },
            context=f"acp-conversation:{conv_id}",
        ),
    )
    session.add(row)
    return row


def record_conversation(
    *, session: Session, actor: Actor, body: s.ConversationIn
) -> s.ConversationRead:
    """A conversation that changed nothing (the plan was talked over and confirmed)."""
    rid = _resident(actor)
    cur = current(session=session, actor=actor, resident_id=rid)
    v = cur.version if cur else None
    row = _conversation(session, rid, body, before=v, after=v, changes=[])
    session.flush()
    _audit(session, actor, "acp-conversation", rid)
    return _conversation_read(row)


def _conversation_read(row: AcpConversation) -> s.ConversationRead:
    data = keys.open_json(row.sealed, context=f"acp-conversation:{row.id}")
    assert isinstance(data, dict)
    return s.ConversationRead(
        id=row.id,
        held_on=row.held_at.date(),
        recorded_at=row.recorded_at,
        participants=[s.Person.model_validate(p) for p in data["participants"]],
        note=data["note"],
        version_before=row.version_before,
        version_after=row.version_after,
        changes=data["changes"],
    )


def conversations(*, session: Session, actor: Actor) -> list[s.ConversationRead]:
    rid = _resident(actor)
    rows = repository.conversations(session, rid)
    if rows:
        _audit(session, actor, "acp-conversations", rid, f"{len(rows)} conversations")
    return [_conversation_read(r) for r in rows]


# ---- trusted persons ---------------------------------------------------------------------


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _login_hash(login: str) -> str:
    return _hash("phr-trusted-login:" + login.strip().lower())


def _invitation_read(row: TrustedInvitation, code: str | None = None) -> s.InvitationRead:
    label = keys.open_json(row.label_sealed, context=f"trusted-invitation:{row.id}")
    assert isinstance(label, dict)
    return s.InvitationRead(
        id=row.id,
        label=str(label.get("label", "")),
        relationship=str(label.get("relationship", "")),
        invited_at=row.invited_at,
        expires_at=row.expires_at,
        accepted=row.accepted_at is not None,
        revoked=row.revoked_at is not None,
        code=code,
    )


def invite(*, session: Session, actor: Actor, body: s.InvitationCreate) -> s.InvitationRead:
    """The resident invites a trusted person; the code is shown once, to hand over."""
    rid = _resident(actor)
    code = secrets.token_urlsafe(12)
    now = utcnow()
    inv_id = repo.new_id()
    row = TrustedInvitation(
        id=inv_id,
        resident_id=rid,
        code_hash=_hash(code),
        label_sealed=keys.seal_json(body.model_dump(), context=f"trusted-invitation:{inv_id}"),
        invited_at=now,
        expires_at=now + INVITATION_TTL,
    )
    session.add(row)
    session.flush()
    _audit(session, actor, "acp-invite", rid, f"invitation {inv_id}")
    return _invitation_read(row, code)


def list_invitations(*, session: Session, actor: Actor) -> list[s.InvitationRead]:
    rid = _resident(actor)
    return [_invitation_read(r) for r in repository.invitations_of(session, rid)]


def revoke_invitation(*, session: Session, actor: Actor, invitation_id: str) -> s.InvitationRead:
    """The resident stops sharing with this person: their consent is revoked at once."""
    rid = _resident(actor)
    row = session.get(TrustedInvitation, invitation_id)
    if row is None or row.resident_id != rid:
        raise NotFound("invitation not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        if row.consent_id:
            policy.revoke_consent(session, actor, row.consent_id)
        if row.person_id:
            notifications.remove_watcher(session, resident_id=rid, trusted_person_id=row.person_id)
        session.flush()
        _audit(session, actor, "acp-uninvite", rid, f"invitation {row.id}")
    return _invitation_read(row)


def accept_invitation(*, session: Session, body: s.AcceptInvitation) -> s.TrustedSessionRead:
    """The invited person accepts with the code: an account (or their existing one, with
    its passphrase) gets the resident's sharing consent; returns a signed-in session."""
    now = utcnow()
    row = repository.invitation_by_code(session, _hash(body.code))
    if row is None or row.revoked_at is not None or row.accepted_at is not None:
        raise NotFound("this invitation is unknown, used or withdrawn")
    if row.expires_at <= now:
        raise NotFound("this invitation has expired; ask for a new one")
    person = repository.person_by_login(session, _login_hash(body.login))
    if person is None:
        pid = repo.new_id()
        person = TrustedPerson(
            id=pid,
            login_hash=_login_hash(body.login),
            passphrase_hash=hash_password(body.passphrase),
            name_sealed=keys.seal_json({"name": body.name}, context=f"trusted-person:{pid}"),
            created_at=now,
            failed_attempts=0,
        )
        session.add(person)
    else:
        _check_passphrase(session, person, body.passphrase)
    # The resident decided to share by inviting; the consent records that decision in
    # their record, in their name (performer Patient), naming this person.
    resident = Actor(kind="resident", resident_id=row.resident_id, client_id="acp-invitation")
    consent = policy.create_consent(
        session,
        resident,
        policy_schemas.ConsentCreate(
            decision="permit",
            recipients=[policy_schemas.Recipient(kind="person", value=person.id)],
            purposes=[Purpose.PATIENT_ACCESS],
            data_classes=["Consent"],
        ),
    )
    row.accepted_at = now
    row.person_id = person.id
    row.consent_id = consent.id
    notifications.add_watcher(
        session,
        resident_id=row.resident_id,
        trusted_person_id=person.id,
        kinds=[notifications.EMERGENCY_ACCESS, ACP_UPDATED, "emergency_incident"],
    )
    notifications.notify(
        session,
        resident_id=row.resident_id,
        kind="acp_trusted_accepted",
        title="信頼できる人が招待を受け入れました",
        body="Your trusted person accepted the invitation and can read your advance care plan.",
        data={"invitation": row.id},
    )
    session.flush()
    audit.record(
        session,
        Actor(kind="trusted_person", user_id=person.id, client_id="acp-invitation"),
        Purpose.PATIENT_ACCESS,
        [audit.Access("acp-accept", "permit", "Consent", consent.id, row.resident_id, count=1)],
    )
    return _start_session(session, person.id)


def _start_session(session: Session, person_id: str) -> s.TrustedSessionRead:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        TrustedSession(
            token_hash=_hash(token),
            person_id=person_id,
            created_at=now,
            expires_at=now + SESSION_TTL,
        )
    )
    session.flush()
    return s.TrustedSessionRead(token=token, expires_at=now + SESSION_TTL, person_id=person_id)


def _count_failure(session: Session, person_id: str) -> None:
    """A wrong passphrase, counted in its own transaction (the request's is undone)."""
    person = session.get(TrustedPerson, person_id)
    if person is None:
        return
    person.failed_attempts += 1
    if person.failed_attempts >= MAX_FAILED_SIGN_INS:
        person.failed_attempts = 0
        person.locked_until = utcnow() + LOCKOUT


def _check_passphrase(session: Session, person: TrustedPerson | None, passphrase: str) -> None:
    if person is not None and person.locked_until and person.locked_until > utcnow():
        raise NotAuthenticated("too many wrong passphrases; try again later")
    # Verify against a hash either way, so timing does not tell whether the login exists.
    stored = person.passphrase_hash if person else hash_password(secrets.token_urlsafe(12))
    if not verify_password(passphrase, stored) or person is None:
        if person is not None:
            pid = person.id
            after_rollback(session, lambda s: _count_failure(s, pid))
        raise NotAuthenticated("unknown login or wrong passphrase")
    person.failed_attempts = 0
    person.locked_until = None


def sign_in(*, session: Session, body: s.SignIn) -> s.TrustedSessionRead:
    person = repository.person_by_login(session, _login_hash(body.login))
    _check_passphrase(session, person, body.passphrase)
    assert person is not None
    return _start_session(session, person.id)


def trusted_actor(session: Session, token: str) -> Actor:
    """The trusted person of a session token (the acp service acting for them)."""
    row = repository.session_row(session, _hash(token))
    if row is None or row.expires_at <= utcnow():
        raise NotAuthenticated("sign in again")
    return Actor(
        kind="trusted_person",
        user_id=row.person_id,
        client_id="trusted-person",
        service=SERVICE,
    )


def shared_with(*, session: Session, actor: Actor) -> list[s.SharedResident]:
    if actor.kind != "trusted_person" or not actor.user_id:
        raise Forbidden("for trusted persons")
    return [
        s.SharedResident(resident_id=r.resident_id, invitation_id=r.id)
        for r in repository.accepted_invitations(session, actor.user_id)
        if session.get(Resident, r.resident_id) is not None
    ]
