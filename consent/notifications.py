"""Notifications: an in-app inbox per person, and an outbox for mail and SMS.

:func:`notify` writes, in the caller's transaction, one inbox row per recipient (the
resident, and any trusted persons) and one outbox row per channel. The outbox holds
*references* to recipients (``resident:<id>``, ``trusted:<id>``), never addresses; a
delivery job (``phr audit deliver-outbox``) hands pending messages to an :class:`Outbox`
adapter, which resolves the reference to an address and sends. The default
:class:`LoggingOutbox` appends them to a spool file in the data directory.

Emergency accesses notify the resident and the trusted persons the resident chose
(:class:`~consent.models.NotificationWatcher`): :func:`notify_emergency_access`, or
:func:`notify_emergency_accesses` with the entries just given to ``audit.record`` (the
read path's hook). Repeated reads by the same organisation within an hour update one
unread notification instead of sending one message per read.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import orjson
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from consent.audit import Access, entry_refs
from consent.audit_labels import Lang, notification_text
from consent.models import Notification, NotificationWatcher, Organization, OutboxMessage
from phr.errors import InvalidInput, NotFound
from phr.settings import Settings, get_settings
from phr.store.indexer import utcnow
from phr.store.repository import new_id

__all__ = [
    "CHANNELS",
    "DeliveryResult",
    "LoggingOutbox",
    "Outbox",
    "OutgoingMessage",
    "add_watcher",
    "deliver_outbox",
    "list_notifications",
    "load_outbox",
    "mark_read",
    "notify",
    "notify_emergency_access",
    "notify_emergency_accesses",
    "remove_watcher",
    "render",
    "watchers_for",
]

log = logging.getLogger(__name__)

CHANNELS = ("mail", "sms")
EMERGENCY_ACCESS = "emergency_access"
DEDUPE_WINDOW = timedelta(hours=1)
DEFAULT_OUTBOX = "consent.notifications:LoggingOutbox"


def resident_ref(resident_id: str) -> str:
    return f"resident:{resident_id}"


def trusted_ref(person_id: str) -> str:
    return f"trusted:{person_id}"


# --------------------------------------------------------------------------- writing


def _check_channels(channels: Sequence[str]) -> list[str]:
    out = list(dict.fromkeys(channels))
    bad = [c for c in out if c not in CHANNELS]
    if bad:
        raise InvalidInput(f"unknown notification channel(s): {', '.join(bad)}")
    return out


def _write(
    session: Session,
    *,
    recipient: str,
    resident_id: str,
    kind: str,
    title: str,
    body: str,
    data: dict[str, Any],
    channels: Sequence[str],
    dedupe_key: str | None,
    now: datetime,
) -> Notification:
    if dedupe_key:
        earlier = session.scalars(
            select(Notification)
            .where(
                Notification.recipient == recipient,
                Notification.dedupe_key == dedupe_key,
                Notification.created_at >= now - DEDUPE_WINDOW,
                Notification.read_at.is_(None),
            )
            .order_by(Notification.created_at.desc())
            .limit(1)
        ).first()
        if earlier is not None:
            params = dict(earlier.data.get("params") or {})
            params["repeats"] = int(params.get("repeats") or 0) + 1
            earlier.data = {**earlier.data, "params": params}
            return earlier
    n = Notification(
        id=new_id(),
        resident_id=resident_id,
        recipient=recipient,
        kind=kind,
        title=title[:255],
        body=body,
        created_at=now,
        data=data,
        dedupe_key=dedupe_key,
    )
    session.add(n)
    for channel in channels:
        session.add(
            OutboxMessage(
                notification_id=n.id,
                channel=channel,
                recipient=recipient,
                status="pending",
                attempts=0,
                created_at=now,
            )
        )
    return n


def notify(
    session: Session,
    *,
    resident_id: str,
    kind: str,
    title: str,
    body: str,
    data: dict[str, Any] | None = None,
    trusted_persons: Sequence[str] = (),
    channels: Sequence[str] = ("mail",),
    dedupe_key: str | None = None,
) -> list[Notification]:
    """Put a message in the resident's inbox (and the trusted persons'), and queue it for
    mail/SMS; in the caller's transaction. Returns the inbox rows, resident's first.

    With ``dedupe_key``, an unread notification with the same key from the last hour is
    updated (``data.params.repeats``) instead of writing and sending another.
    """
    chans = _check_channels(channels)
    now = utcnow()
    recipients = [resident_ref(resident_id), *(trusted_ref(p) for p in trusted_persons)]
    out = [
        _write(
            session,
            recipient=r,
            resident_id=resident_id,
            kind=kind,
            title=title,
            body=body,
            data=dict(data or {}),
            channels=chans,
            dedupe_key=dedupe_key,
            now=now,
        )
        for r in dict.fromkeys(recipients)
    ]
    session.flush()
    return out


def notify_emergency_access(
    session: Session,
    *,
    resident_id: str,
    actor: Actor,
    purpose: Purpose,
    what: str = "",
    resource_types: Sequence[str] = (),
    at: datetime | None = None,
    trusted_persons: Sequence[str] | None = None,
) -> list[Notification]:
    """Tell the resident and their chosen trusted persons that ``actor`` looked at their
    record in an emergency. ``what`` is a short plain-language phrase of what was seen
    ("緊急時情報 (アレルギー・服薬・病名)"); never clinical content. Or give the FHIR
    ``resource_types`` seen, and each reader gets them named in their language.

    ``trusted_persons`` defaults to the resident's watchers of emergency accesses.
    """
    org = session.get(Organization, actor.organization_id) if actor.organization_id else None
    at = at or utcnow()
    params = {
        "actor_kind": actor.kind,
        "organization_id": actor.organization_id,
        "organization_name": org.name if org else None,
        "role": actor.role,
        "client_id": actor.client_id,
        "purpose": purpose.value,
        "what": what,
        "types": list(dict.fromkeys(resource_types)),
        "at": at.isoformat(timespec="seconds"),
    }
    dedupe = f"{EMERGENCY_ACCESS}:{actor.organization_id or actor.client_id or actor.kind}"
    now = utcnow()
    out = []
    title, body = notification_text(EMERGENCY_ACCESS, params, "ja")
    out.append(
        _write(
            session,
            recipient=resident_ref(resident_id),
            resident_id=resident_id,
            kind=EMERGENCY_ACCESS,
            title=title,
            body=body,
            data={"template": EMERGENCY_ACCESS, "params": params},
            channels=["mail"],
            dedupe_key=dedupe,
            now=now,
        )
    )
    watchers = (
        [(p, ["mail"]) for p in trusted_persons]
        if trusted_persons is not None
        else watchers_for(session, resident_id, EMERGENCY_ACCESS)
    )
    template = EMERGENCY_ACCESS + "_trusted"
    title, body = notification_text(template, params, "ja")
    for person, channels in watchers:
        out.append(
            _write(
                session,
                recipient=trusted_ref(person),
                resident_id=resident_id,
                kind=EMERGENCY_ACCESS,
                title=title,
                body=body,
                data={"template": template, "params": params},
                channels=channels,
                dedupe_key=dedupe,
                now=now,
            )
        )
    session.flush()
    return out


def notify_emergency_accesses(
    session: Session, actor: Actor, purpose: Purpose, accesses: Sequence[Access]
) -> list[Notification]:
    """The reader's hook: after ``audit.record(session, actor, purpose, accesses)``, notify
    each resident whose record was read for emergency treatment (permitted reads only)."""
    if purpose is not Purpose.EMERGENCY or actor.kind in ("resident", "system"):
        return []
    types_by_resident: dict[str, list[str]] = {}
    for a in accesses:
        if a.outcome != "permit" or not a.resident_id:
            continue
        types = [t for t, _ in entry_refs(a)] or ([a.resource_type] if a.resource_type else [])
        types_by_resident.setdefault(a.resident_id, []).extend(types)
    out: list[Notification] = []
    for resident_id, types in types_by_resident.items():
        out += notify_emergency_access(
            session,
            resident_id=resident_id,
            actor=actor,
            purpose=purpose,
            what="" if types else "記録",
            resource_types=[t for t in types if t != "Patient"] or types,
        )
    return out


# --------------------------------------------------------------------------- watchers


def add_watcher(
    session: Session,
    *,
    resident_id: str,
    trusted_person_id: str,
    kinds: Sequence[str] = (EMERGENCY_ACCESS,),
    channels: Sequence[str] = ("mail",),
) -> NotificationWatcher:
    """The resident chooses a trusted person to be told of these kinds of events."""
    chans = _check_channels(channels)
    row = session.scalars(
        select(NotificationWatcher).where(
            NotificationWatcher.resident_id == resident_id,
            NotificationWatcher.trusted_person_id == trusted_person_id,
        )
    ).first()
    if row is None:
        row = NotificationWatcher(
            resident_id=resident_id, trusted_person_id=trusted_person_id, created_at=utcnow()
        )
        session.add(row)
    row.kinds = " ".join(dict.fromkeys(kinds))
    row.channels = " ".join(chans)
    session.flush()
    return row


def remove_watcher(session: Session, *, resident_id: str, trusted_person_id: str) -> bool:
    row = session.scalars(
        select(NotificationWatcher).where(
            NotificationWatcher.resident_id == resident_id,
            NotificationWatcher.trusted_person_id == trusted_person_id,
        )
    ).first()
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def watchers_for(session: Session, resident_id: str, kind: str) -> list[tuple[str, list[str]]]:
    """``(trusted person id, channels)`` of those who watch this kind of event."""
    rows = session.scalars(
        select(NotificationWatcher)
        .where(NotificationWatcher.resident_id == resident_id)
        .order_by(NotificationWatcher.pk)
    )
    return [(r.trusted_person_id, r.channels.split()) for r in rows if kind in r.kinds.split()]


# --------------------------------------------------------------------------- inbox


def render(n: Notification, lang: Lang) -> dict[str, Any]:
    """The API shape of a notification, worded in ``lang`` when it has a template."""
    title, body = n.title, n.body
    template = (n.data or {}).get("template")
    if isinstance(template, str):
        # An unknown template keeps the stored wording.
        with contextlib.suppress(KeyError, ValueError):
            title, body = notification_text(template, n.data.get("params") or {}, lang)
    return {
        "id": n.id,
        "kind": n.kind,
        "title": title,
        "body": body,
        "created_at": n.created_at.isoformat(timespec="seconds") + "Z",
        "read": n.read_at is not None,
        "read_at": n.read_at.isoformat(timespec="seconds") + "Z" if n.read_at else None,
        "resident_id": n.resident_id,
        "data": n.data or {},
    }


def list_notifications(
    session: Session,
    *,
    recipient: str,
    limit: int = 50,
    before: datetime | None = None,
    unread_only: bool = False,
) -> list[Notification]:
    """A person's inbox, newest first."""
    conds: list[ColumnElement[bool]] = [Notification.recipient == recipient]
    if before is not None:
        conds.append(Notification.created_at < before)
    if unread_only:
        conds.append(Notification.read_at.is_(None))
    return list(
        session.scalars(
            select(Notification)
            .where(*conds)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
    )


def mark_read(session: Session, *, recipient: str, notification_id: str) -> Notification:
    n = session.get(Notification, notification_id)
    if n is None or n.recipient != recipient:
        raise NotFound("notification not found")
    if n.read_at is None:
        n.read_at = utcnow()
        session.flush()
    return n


# --------------------------------------------------------------------------- outbox


@dataclass(frozen=True)
class OutgoingMessage:
    id: int
    notification_id: str
    channel: str
    recipient: str  # a reference: resident:<id> | trusted:<id>
    title: str
    body: str
    created_at: datetime


@runtime_checkable
class Outbox(Protocol):
    """Sends one message (mail, SMS, ...). Raise to have it retried later."""

    def deliver(self, message: OutgoingMessage) -> None: ...


class LoggingOutbox:
    """Appends messages as JSON lines to ``<data_dir>/outbox/spool.jsonl`` (mode 0600).

    The spool *is* the outbox of a deployment without a mail/SMS gateway; nothing of the
    message goes to the application log.
    """

    _lock = threading.Lock()

    def __init__(self, path: Path | None = None, settings: Settings | None = None) -> None:
        settings = settings or get_settings()
        self.path = path or settings.data_dir / "outbox" / "spool.jsonl"

    def deliver(self, message: OutgoingMessage) -> None:
        line = orjson.dumps(
            {
                "id": message.id,
                "notification_id": message.notification_id,
                "channel": message.channel,
                "recipient": message.recipient,
                "title": message.title,
                "body": message.body,
                "created_at": message.created_at.isoformat(timespec="seconds") + "Z",
                "delivered_at": utcnow().isoformat(timespec="seconds") + "Z",
            }
        )
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "ab") as fh:
                fh.write(line + b"\n")


def load_outbox(spec: str | None = None) -> Outbox:
    """The adapter named ``module:Class`` (``PHR_OUTBOX``; default :class:`LoggingOutbox`),
    constructed without arguments."""
    spec = spec or os.environ.get("PHR_OUTBOX") or DEFAULT_OUTBOX
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InvalidInput(f"outbox must be given as module:Class, not {spec!r}")
    adapter = getattr(importlib.import_module(module_name), attr)()
    if not isinstance(adapter, Outbox):
        raise InvalidInput(f"{spec} has no deliver(message) method")
    return adapter


@dataclass
class DeliveryResult:
    sent: int = 0
    retry: int = 0
    failed: int = 0


def deliver_outbox(
    session: Session,
    outbox: Outbox,
    *,
    limit: int = 100,
    max_attempts: int = 5,
) -> DeliveryResult:
    """Hand up to ``limit`` pending messages to ``outbox``, oldest first.

    Success marks a message sent; an exception counts an attempt, and after
    ``max_attempts`` the message is marked failed. Rows are locked with SKIP LOCKED on
    PostgreSQL, so several delivery jobs may run at once.
    """
    result = DeliveryResult()
    rows = session.execute(
        select(OutboxMessage, Notification.title, Notification.body)
        .join(Notification, Notification.id == OutboxMessage.notification_id)
        .where(OutboxMessage.status == "pending")
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(of=OutboxMessage, skip_locked=True)
    ).all()
    for row, title, body in rows:
        message = OutgoingMessage(
            id=row.id,
            notification_id=row.notification_id,
            channel=row.channel,
            recipient=row.recipient,
            title=title,
            body=body,
            created_at=row.created_at,
        )
        row.attempts += 1
        try:
            outbox.deliver(message)
        except Exception as exc:  # any adapter failure: retry later
            row.last_error = type(exc).__name__[:255]
            if row.attempts >= max_attempts:
                row.status = "failed"
                result.failed += 1
            else:
                result.retry += 1
            log.warning(
                "outbox message %s (%s) failed: %s", row.id, row.channel, type(exc).__name__
            )
            continue
        row.status = "sent"
        row.sent_at = utcnow()
        row.last_error = None
        result.sent += 1
    session.flush()
    return result
