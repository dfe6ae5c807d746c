"""Ways in at the scene that do not need the face index: the digital-ID card and a
restricted demographic search. Both only *propose* a candidate (see ``flows``).

The identification lookups are made by the ``emergency`` platform service (its PIA must
be approved) through the choke point, so every lookup is in the access log with the
paramedic's organisation and user on it; what they return to the crew is a candidate key
and nothing of the record.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import date
from typing import Any

from consent.actors import Actor
from consent.identity import jpki
from phr.emergency import schemas
from phr.errors import InvalidInput, NotFound
from phr.store import repository as repo
from phr.store import search as fsearch
from phr.store.reader import RecordReader

SERVICE = "emergency"
# A search narrower than this many Patient rows cannot be exact anyway; more rows mean
# the birth date and sex are shared by many, and the name decides.
MAX_ROWS = 200


def lookup_actor(actor: Actor) -> Actor:
    """The emergency service acting for the crew member (for identification only)."""
    return Actor(
        kind="system",
        client_id=f"{SERVICE}-identify",
        organization_id=actor.organization_id,
        organization_kind=actor.organization_kind,
        user_id=actor.user_id,
        role=actor.role,
        service=SERVICE,
    )


def _norm(text: str | None) -> str:
    """NFKC, no spaces, hiragana folded to katakana: 「つくば はなこ」 == 「ツクバハナコ」."""
    folded = unicodedata.normalize("NFKC", text or "")
    out = []
    for ch in folded:
        if ch.isspace():
            continue
        code = ord(ch)
        out.append(chr(code + 0x60) if 0x3041 <= code <= 0x3096 else ch)
    return "".join(out).casefold()


def _names(patient: dict[str, Any]) -> Iterable[tuple[str, str]]:
    for n in patient.get("name") or []:
        given = " ".join(n.get("given") or [])
        yield _norm(n.get("family")), _norm(given)


def matches(patient: dict[str, Any], q: schemas.DemographicQuery) -> bool:
    if patient.get("birthDate") != q.birth_date.isoformat() or patient.get("gender") != q.sex:
        return False
    names = set(_names(patient))
    for family, given in ((q.family, q.given), (q.family_kana, q.given_kana)):
        if family is None and given is None:
            continue
        if not any(
            (family is None or f == _norm(family)) and (given is None or g == _norm(given))
            for f, g in names
        ):
            return False
    return True


def demographic(reader: RecordReader, q: schemas.DemographicQuery) -> str | None:
    """The one resident matching exactly, or None (no match, or more than one)."""
    if not (q.family or q.given or q.family_kana or q.given_kana):
        raise InvalidInput("give the name or its kana reading with the birth date and sex")
    req = fsearch.parse(
        "Patient",
        [
            ("birthdate", q.birth_date.isoformat()),
            ("gender", q.sex),
            ("_count", str(MAX_ROWS)),
            ("_total", "none"),  # the matches are counted here, after the exact check
        ],
    )
    found = reader.search(req, query_text="emergency demographic lookup")
    residents = {
        row.resident_id
        for row in found.matches
        if row.resident_id and matches(repo.load_json(row.content), q)
    }
    return residents.pop() if len(residents) == 1 else None


def card(session: Any, certificate: str) -> str:
    """The resident the card's certificate is linked to, after the same checks as card
    sign-in (issuer, validity, key usage, revocation list). At the scene nobody can enter
    the PIN, so possession of a valid, linked, unrevoked card is what it proves — a
    candidate, not an identification."""
    cert = jpki.parse_certificate(certificate)
    anchor = jpki.load_trust_anchor()
    ca = jpki.verify_certificate(cert, anchor)
    link = jpki.find_link(session, ca, cert)
    if link is None or link.revoked_at is not None:
        raise jpki.CardRefused("unlinked_card")
    return link.resident_id


def birth_date_of(reader: RecordReader, resident_id: str) -> date | None:
    try:
        row = reader.read("Patient", resident_id)
    except NotFound:
        return None
    text = repo.load_json(row.content).get("birthDate")
    return date.fromisoformat(text) if isinstance(text, str) and len(text) == 10 else None
