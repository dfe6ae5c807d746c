"""HTTP routes of the access log and the inbox.

Residents (a resident access token) read their own access log in plain language
(``/api/me/access-log``) or as FHIR AuditEvents (``/api/me/access-log.fhir``), and their
notifications. The seal key and the seals are public, so that anyone holding a copy of a
seal can check the log was not rewritten since.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from consent import audit, notifications
from consent.actors import Actor
from consent.audit_labels import (
    JST,
    OUTCOMES,
    RESOURCE_TYPES_EN,
    RESOURCE_TYPES_JA,
    Lang,
    Who,
    basis_label,
    describe_entry,
    local_time,
    negotiate_language,
    purpose_label,
    role_label,
)
from consent.identity.oauth import current_actor
from consent.models import AuditEntry, AuditSeal, Organization
from phr.db import SessionDep
from phr.errors import Forbidden, InvalidInput
from phr.settings import get_settings
from phr.store.indexer import iso_instant

__all__ = ["entry_view", "router"]

router = APIRouter(tags=["access log"])

PRIVATE = {"Cache-Control": "no-store", "Vary": "Authorization, Accept-Language"}
FHIR_JSON = "application/fhir+json"


def resident_actor(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
    """The current actor, who must be a signed-in resident."""
    if actor.kind != "resident" or not actor.resident_id:
        raise Forbidden("only a resident can read their own access log and notifications")
    return actor


ResidentDep = Annotated[Actor, Depends(resident_actor)]


def language(
    request: Request, lang: Annotated[str | None, Query(description="ja or en")] = None
) -> Lang:
    return negotiate_language(lang, request.headers.get("accept-language"))


LangDep = Annotated[Lang, Depends(language)]


# --------------------------------------------------------------------------- the resident's log


def _type_label(rtype: str, n: int, lang: Lang) -> str:
    if lang == "ja":
        return RESOURCE_TYPES_JA.get(rtype, rtype)
    one, many = RESOURCE_TYPES_EN.get(rtype, (rtype, rtype))
    return one if n == 1 else many


def entry_view(e: AuditEntry, org: Organization | None, lang: Lang) -> dict[str, Any]:
    """One access-log entry as the resident app shows it."""
    what = audit.entry_what(e)
    who = Who(e.actor_kind, org.name if org else None, e.role, e.client_id)
    texts = {
        code: describe_entry(
            at=e.at,
            who=who,
            purpose=e.purpose,
            action=e.action,
            outcome=e.outcome,
            what=what,
            lang=code,
        )
        for code in ("ja", "en")
    }
    return {
        "id": e.pk,
        "seq": e.seq,
        "at": iso_instant(e.at),
        "local_time": local_time(e.at),
        "text": texts[lang],
        "texts": texts,
        "actor": {
            "kind": e.actor_kind,
            "label": who.text(lang),
            "organization": (
                {"id": e.organization_id, "name": org.name if org else None, "kind": org.kind}
                if org
                else (
                    {"id": e.organization_id, "name": None, "kind": None}
                    if e.organization_id
                    else None
                )
            ),
            "role": e.role,
            "role_label": role_label(e.role, lang),
            "service": e.service,
        },
        "purpose": e.purpose,
        "purpose_label": purpose_label(e.purpose, lang),
        "action": e.action,
        "outcome": e.outcome,
        "outcome_label": OUTCOMES[lang].get(e.outcome, e.outcome),
        "what": [
            {"resource_type": t, "label": _type_label(t, n, lang), "count": n} for t, n in what
        ],
        "count": e.count,
        "basis": e.consent_ref,
        "basis_label": basis_label(e.consent_ref, lang),
    }


@router.get("/api/me/access-log", summary="Who looked at my record, in plain language")
def my_access_log(
    session: SessionDep,
    actor: ResidentDep,
    lang: LangDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, description="entry id cursor (next_before)")] = None,
    include_own: Annotated[bool, Query(description="also my own reads")] = False,
) -> JSONResponse:
    assert actor.resident_id
    where = audit.LogFilter(resident_id=actor.resident_id, include_own=include_own)
    entries, orgs = audit.access_log(session, where, limit=limit, before=before)
    body = {
        "lang": lang,
        "entries": [entry_view(e, orgs.get(e.organization_id or ""), lang) for e in entries],
        "next_before": entries[-1].pk if len(entries) == limit else None,
    }
    return JSONResponse(body, headers={**PRIVATE, "Content-Language": lang})


_DATE_RE = re.compile(r"^(eq|ne|ge|gt|le|lt|sa|eb)?(\d{4}(-\d{2}(-\d{2})?)?)$")


def _parse_date(value: str) -> tuple[str, datetime, datetime]:
    """(prefix, start, end) in naive UTC of a FHIR date or dateTime search value.

    A date without a time means that day (month, year) in Japan time.
    """
    m = _DATE_RE.match(value)
    if m:
        prefix, text = m.group(1) or "eq", m.group(2)
        parts = [int(p) for p in text.split("-")]
        if len(parts) == 1:
            start = datetime(parts[0], 1, 1, tzinfo=JST)
            end = datetime(parts[0] + 1, 1, 1, tzinfo=JST)
        elif len(parts) == 2:
            start = datetime(parts[0], parts[1], 1, tzinfo=JST)
            y, mo = (parts[0] + 1, 1) if parts[1] == 12 else (parts[0], parts[1] + 1)
            end = datetime(y, mo, 1, tzinfo=JST)
        else:
            start = datetime(parts[0], parts[1], parts[2], tzinfo=JST)
            end = start + timedelta(days=1)
    else:
        prefix = value[:2] if value[:2] in ("eq", "ge", "gt", "le", "lt") else "eq"
        text = value[2:] if prefix != "eq" or value.startswith("eq") else value
        start = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if start.tzinfo is None:
            start = start.replace(tzinfo=JST)
        end = start
    if prefix not in ("eq", "ge", "gt", "le", "lt"):
        raise InvalidInput(f"date prefix {prefix!r} is not supported here")
    as_utc = [d.astimezone(UTC).replace(tzinfo=None) for d in (start, end)]
    return prefix, as_utc[0], as_utc[1]


def _date_filter(resident_id: str, values: list[str]) -> audit.LogFilter:
    lower: tuple[datetime, bool] | None = None  # (bound, strict)
    upper: tuple[datetime, bool] | None = None
    for value in values:
        try:
            prefix, start, end = _parse_date(value.strip())
        except ValueError:
            raise InvalidInput(f"invalid date {value!r}") from None
        instant = start == end
        lows: list[tuple[datetime, bool]] = []
        highs: list[tuple[datetime, bool]] = []
        if prefix in ("eq", "ge"):
            lows.append((start, False))
        if prefix == "gt":
            lows.append((end, instant))
        if prefix in ("eq", "le"):
            highs.append((end, not instant))
        if prefix == "lt":
            highs.append((start, True))
        for b in lows:
            if lower is None or b[0] > lower[0] or (b[0] == lower[0] and b[1]):
                lower = b
        for b in highs:
            if upper is None or b[0] < upper[0] or (b[0] == upper[0] and b[1]):
                upper = b
    return audit.LogFilter(
        resident_id=resident_id,
        include_own=True,
        since=lower[0] if lower else None,
        since_strict=lower[1] if lower else False,
        until=upper[0] if upper else None,
        until_strict=upper[1] if upper else False,
    )


@router.get(
    "/api/me/access-log.fhir",
    summary="My access log as FHIR AuditEvents (searchset Bundle)",
    response_class=JSONResponse,
)
def my_access_log_fhir(
    request: Request,
    session: SessionDep,
    actor: ResidentDep,
    date: Annotated[list[str] | None, Query(description="e.g. ge2026-11-01 (repeatable)")] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> JSONResponse:
    assert actor.resident_id
    where = _date_filter(actor.resident_id, date or [])
    entries, orgs = audit.access_log(session, where, limit=count, before=before)
    base = get_settings().base_url.rstrip("/")
    params: list[tuple[str, str | int]] = [("date", d) for d in date or []]
    params.append(("_count", count))
    self_url = f"{base}/api/me/access-log.fhir?" + urlencode(
        [*params, *([("before", before)] if before else [])]
    )
    next_url = (
        f"{base}/api/me/access-log.fhir?" + urlencode([*params, ("before", entries[-1].pk)])
        if len(entries) == count
        else None
    )
    bundle = audit.audit_event_bundle(
        entries,
        orgs,
        total=audit.access_log_total(session, where),
        self_url=self_url,
        next_url=next_url,
    )
    return JSONResponse(bundle, media_type=FHIR_JSON, headers=PRIVATE)


# --------------------------------------------------------------------------- inbox


@router.get("/api/me/notifications", summary="My notifications, newest first")
def my_notifications(
    session: SessionDep,
    actor: ResidentDep,
    lang: LangDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    unread: Annotated[bool, Query(description="only unread ones")] = False,
) -> JSONResponse:
    assert actor.resident_id
    rows = notifications.list_notifications(
        session,
        recipient=notifications.resident_ref(actor.resident_id),
        limit=limit,
        unread_only=unread,
    )
    body = {"lang": lang, "notifications": [notifications.render(n, lang) for n in rows]}
    return JSONResponse(body, headers={**PRIVATE, "Content-Language": lang})


@router.post("/api/me/notifications/{notification_id}/read", summary="Mark a notification read")
def read_notification(
    notification_id: str, session: SessionDep, actor: ResidentDep, lang: LangDep
) -> JSONResponse:
    assert actor.resident_id
    n = notifications.mark_read(
        session,
        recipient=notifications.resident_ref(actor.resident_id),
        notification_id=notification_id,
    )
    return JSONResponse(notifications.render(n, lang), headers=PRIVATE)


# --------------------------------------------------------------------------- public seals


@router.get("/api/audit/seal-key", summary="Public key that signs the access-log seals")
def seal_key() -> JSONResponse:
    current = audit.load_seal_key()
    keys = audit.seal_public_keys()
    body = {
        "algorithm": "Ed25519",
        "key_id": current.key_id,
        "public_key_pem": current.public_pem(),
        "jwk": current.public_jwk(),
        "keys": [k.public_jwk() for k in keys.values()],
    }
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})


@router.get("/api/audit/seals", summary="The newest seals of the access log")
def seals(session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSONResponse:
    rows = session.scalars(select(AuditSeal).order_by(AuditSeal.seq_to.desc()).limit(limit))
    body = {
        "seals": [
            {
                "seq_from": s.seq_from,
                "seq_to": s.seq_to,
                "head_hash": s.head_hash,
                "signed_at": iso_instant(s.signed_at),
                "key_id": s.key_id,
                "signature": s.signature,
                "message": audit.seal_message(
                    seq_from=s.seq_from,
                    seq_to=s.seq_to,
                    head_hash=s.head_hash,
                    signed_at=s.signed_at,
                    key_id=s.key_id,
                ).decode(),
            }
            for s in rows
        ]
    }
    return JSONResponse(body, headers={"Cache-Control": "no-cache"})
