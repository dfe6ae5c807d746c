"""The master patient index: every source identifier linked to one resident.

Matching rules (deterministic, conservative):

1. Strong identifiers — the My Number (as an HMAC), an insurer's insured-person number,
   a clinic's patient number already linked — that point to exactly one resident link
   the incoming record to that resident, unless the demographics the source sends
   contradict the resident's (birth date or sex differ): then the record is filed under
   a new resident and a review is queued.
2. Identifiers that point to different residents are a conflict: the record is filed
   under the resident of the strongest identifier (My Number > insurance > clinic
   number), the other identifiers are not linked, and a review is queued.
3. No identifier known: if a resident with the same birth date, sex and name exists, the
   record still gets a new resident (never merged automatically) and a review is queued;
   otherwise a new resident is created.

A person approves or rejects each review (``phr mpi``); approval merges the two.
The golden Patient resource of a resident has ``id == resident id``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_gateway.models import IdentityLink, MatchReview
from phr.errors import InvalidInput, NotFound
from phr.settings import get_settings
from phr.store import repository as repo
from phr.store.indexer import utcnow
from phr.store.models import Resident, Resource, ResourceSource, SearchDate, SearchString

MYNUMBER_SYSTEM = "urn:phr:mynumber-hmac"
STRENGTH = {"mynumber": 3, "insurance": 2, "mrn": 1}

__all__ = [
    "Demographics",
    "Resolution",
    "SourceIdentity",
    "hash_mynumber",
    "insurance_system",
    "merge",
    "reject_review",
    "resolve",
]


def insurance_system(insurer_number: str) -> str:
    """Identifier system for insured-person numbers of one insurer (保険者番号).

    National Health Insurance numbers have 6 digits and are written with "00" in front
    where 8 are expected (as in the 被保険者個人識別子); both forms name one insurer.
    """
    n = unicodedata.normalize("NFKC", insurer_number).strip()
    if len(n) == 8 and n.startswith("00"):
        n = n[2:]
    return f"urn:phr:insurer:{n}"


def mrn_system(organization_id: str) -> str:
    return f"urn:phr:organization:{organization_id}:patient"


_MYNUMBER_RE = re.compile(r"^\d{12}$")


def valid_mynumber(number: str) -> bool:
    """12 digits with the check digit of the 個人番号 (総務省令 第五条)."""
    if not _MYNUMBER_RE.match(number):
        return False
    digits = [int(c) for c in number]
    body, check = digits[:11], digits[11]
    total = 0
    for n in range(1, 12):
        p = body[11 - n]
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    rem = total % 11
    expected = 0 if rem <= 1 else 11 - rem
    return expected == check


def hash_mynumber(number: str) -> str:
    """Keyed hash used for linking; the number itself is never stored."""
    number = unicodedata.normalize("NFKC", number).replace("-", "").replace(" ", "")
    if not valid_mynumber(number):
        raise InvalidInput("not a valid My Number (12 digits with check digit)")
    return hmac.new(get_settings().mynumber_key(), number.encode(), hashlib.sha256).hexdigest()


@dataclass
class Demographics:
    family: str | None = None
    given: str | None = None
    family_kana: str | None = None
    given_kana: str | None = None
    birth_date: str | None = None  # YYYY-MM-DD
    gender: str | None = None  # male | female | other | unknown
    postal_code: str | None = None
    address: str | None = None
    city: str | None = None
    telecom: str | None = None


@dataclass
class SourceIdentity:
    organization_id: str
    # (kind, system, value); a "mynumber" value may be given in the clear and is hashed here
    identifiers: list[tuple[str, str, str]] = field(default_factory=list)
    demographics: Demographics | None = None
    insurance_from: date | None = None


@dataclass
class Resolution:
    resident_id: str
    created: bool
    matched_by: str | None  # mynumber | insurance | mrn | None
    review_id: int | None = None
    # What happened to the golden Patient (set by fhir_gateway.ingest.upsert_person).
    patient_outcome: Any = None


def _norm(s: str | None) -> str:
    return unicodedata.normalize("NFKC", s or "").replace(" ", "").replace("　", "").lower()


def _live(session: Session, resident_id: str) -> str:
    """Follow merges to the surviving resident."""
    for _ in range(10):
        r = session.get(Resident, resident_id)
        if r is None or r.status != "merged" or not r.merged_into:
            return resident_id
        resident_id = r.merged_into
    return resident_id


def _golden_demographics(session: Session, resident_id: str) -> dict[str, Any] | None:
    row = session.execute(
        select(Resource.content).where(
            Resource.resource_type == "Patient", Resource.id == resident_id
        )
    ).scalar_one_or_none()
    return orjson.loads(row) if row else None


def _contradicts(patient: dict[str, Any] | None, demo: Demographics | None) -> str | None:
    if not patient or not demo:
        return None
    if demo.birth_date and patient.get("birthDate") and demo.birth_date != patient["birthDate"]:
        return "birth date differs"
    g = patient.get("gender")
    if (
        demo.gender
        and g
        and g not in ("unknown", "other")
        and demo.gender not in ("unknown", "other")
        and demo.gender != g
    ):
        return "sex differs"
    return None


def _new_resident(session: Session) -> str:
    rid = repo.new_id()
    session.add(Resident(id=rid, created_at=utcnow(), status="active"))
    session.flush()
    return rid


def _normalise_ids(ident: SourceIdentity) -> list[tuple[str, str, str]]:
    out = []
    for kind, system, value in ident.identifiers:
        if kind == "mynumber":
            out.append((kind, MYNUMBER_SYSTEM, hash_mynumber(value)))
        else:
            if not value:
                continue
            out.append((kind, system, unicodedata.normalize("NFKC", value).strip()))
    return out


def resolve(session: Session, ident: SourceIdentity) -> Resolution:
    """Find or create the resident for a source's record of a person; link identifiers."""
    review: int | None
    ids = _normalise_ids(ident)
    if not ids:
        raise InvalidInput("a record of a person needs at least one identifier")
    links = session.scalars(
        select(IdentityLink).where(
            IdentityLink.kind.in_({k for k, _, _ in ids}),
            IdentityLink.value.in_({v for _, _, v in ids}),
        )
    ).all()
    found: dict[tuple[str, str, str], set[str]] = {}
    for link in links:
        key = (link.kind, link.system, link.value)
        if key in ids:
            found.setdefault(key, set()).add(_live(session, link.resident_id))

    residents = {r for rs in found.values() for r in rs}
    now = utcnow()
    if len(residents) == 1:
        resident_id = next(iter(residents))
        strongest = max(found, key=lambda k: STRENGTH.get(k[0], 0))[0]
        why = _contradicts(_golden_demographics(session, resident_id), ident.demographics)
        if why:
            new = _new_resident(session)
            _link_all(session, new, ids, ident, skip=set(found))
            review = _queue(
                session,
                new,
                resident_id,
                "conflicting-demographics",
                f"{strongest} identifier matches but {why}",
                ident.organization_id,
            )
            return Resolution(new, True, None, review)
        _link_all(session, resident_id, ids, ident, skip=set(found))
        return Resolution(resident_id, False, strongest)

    if len(residents) > 1:
        ranked = sorted(found.items(), key=lambda kv: -STRENGTH.get(kv[0][0], 0))
        resident_id = sorted(ranked[0][1])[0]
        others = sorted(residents - {resident_id})
        review = None
        for other in others:
            review = _queue(
                session,
                resident_id,
                other,
                "conflicting-identifiers",
                "source identifiers point to different residents",
                ident.organization_id,
            )
        _link_all(session, resident_id, ids, ident, skip=set(found))
        return Resolution(resident_id, False, ranked[0][0][0], review)

    # No identifier known yet.
    candidate = _demographic_candidate(session, ident.demographics)
    resident_id = _new_resident(session)
    _link_all(session, resident_id, ids, ident, skip=set())
    review = None
    if candidate:
        review = _queue(
            session,
            resident_id,
            candidate,
            "possible-duplicate",
            "same name, birth date and sex; no shared identifier",
            ident.organization_id,
        )
    del now
    return Resolution(resident_id, True, None, review)


def _link_all(
    session: Session,
    resident_id: str,
    ids: list[tuple[str, str, str]],
    ident: SourceIdentity,
    *,
    skip: set[tuple[str, str, str]],
) -> None:
    now = utcnow()
    for kind, system, value in ids:
        if (kind, system, value) in skip:
            continue
        valid_to = None
        start = ident.insurance_from if kind == "insurance" else None
        if kind == "insurance" and (start is not None or _is_insurer(session, ident)):
            # Only the insurer (or a file stating the start date) moves the history on: a
            # clinic's old card number must not end the resident's current insurance.
            valid_to = _close_insurance(session, resident_id, system, value, start or now.date())
        session.add(
            IdentityLink(
                resident_id=resident_id,
                kind=kind,
                system=system,
                value=value,
                organization_id=ident.organization_id,
                valid_from=start,
                valid_to=valid_to,
                created_at=now,
            )
        )
    session.flush()


def _is_insurer(session: Session, ident: SourceIdentity) -> bool:
    from consent.models import Organization

    org = session.get(Organization, ident.organization_id)
    return org is not None and org.kind == "insurer"


def _close_insurance(
    session: Session, resident_id: str, system: str, value: str, start: date
) -> date | None:
    """Keep the insurance history (資格異動) in order when a new number arrives.

    A number starting on ``start`` ends the open numbers that began before it. A number
    learned late (a backfill from an older file) ends where the next known one begins,
    and does not end the current one. Returns the new number's end, if any.
    """
    later: list[date] = []
    for prev in session.scalars(
        select(IdentityLink).where(
            IdentityLink.resident_id == resident_id, IdentityLink.kind == "insurance"
        )
    ):
        if (prev.system, prev.value) == (system, value):
            continue
        if prev.valid_from is not None and prev.valid_from > start:
            later.append(prev.valid_from)
        elif prev.valid_to is None or prev.valid_to > start:
            prev.valid_to = start
    return min(later) if later else None


def _demographic_candidate(session: Session, demo: Demographics | None) -> str | None:
    if not demo or not demo.birth_date or not (demo.family or demo.family_kana):
        return None
    from phr.store.indexer import date_range

    rng = date_range(demo.birth_date)
    if not rng:
        return None
    family = _norm(demo.family or demo.family_kana)
    given = _norm(demo.given or demo.given_kana)
    born = select(SearchDate.resource_pk).where(
        SearchDate.resource_type == "Patient",
        SearchDate.param == "birthdate",
        SearchDate.low == rng[0],
    )
    rows = session.execute(
        select(Resource.id, Resource.content)
        .where(
            Resource.resource_type == "Patient",
            Resource.deleted.is_(False),
            Resource.pk.in_(born),
            Resource.pk.in_(
                select(SearchString.resource_pk).where(
                    SearchString.resource_type == "Patient",
                    SearchString.param == "family",
                    SearchString.value == family,
                )
            ),
        )
        .limit(20)
    ).all()
    for rid, content in rows:
        p = orjson.loads(content)
        if demo.gender and p.get("gender") and p["gender"] != demo.gender:
            continue
        names = [_norm(" ".join(n.get("given", []))) for n in p.get("name", [])]
        if not given or given in names or any(given in n for n in names):
            return str(rid)
    return None


def _queue(
    session: Session, resident_id: str, candidate: str, reason: str, detail: str, org: str | None
) -> int:
    existing = session.scalar(
        select(MatchReview.pk).where(
            MatchReview.resident_id == resident_id,
            MatchReview.candidate_id == candidate,
            MatchReview.status == "open",
        )
    )
    if existing:
        return int(existing)
    review = MatchReview(
        resident_id=resident_id,
        candidate_id=candidate,
        reason=reason,
        detail=detail,
        organization_id=org,
        status="open",
        created_at=utcnow(),
    )
    session.add(review)
    session.flush()
    return review.pk


def merge(session: Session, review_id: int, *, reviewer: str) -> str:
    """Approve a review: the filed-under resident is merged into the candidate."""
    review = session.get(MatchReview, review_id)
    if review is None or review.status != "open":
        raise NotFound(f"no open review {review_id}")
    keep, absorb = _live(session, review.candidate_id), _live(session, review.resident_id)
    if keep != absorb:
        repo.reassign_resident(session, absorb, keep)
        for link in session.scalars(select(IdentityLink).where(IdentityLink.resident_id == absorb)):
            link.resident_id = keep
        for src in session.scalars(
            select(ResourceSource).where(ResourceSource.resident_id == absorb)
        ):
            src.resident_id = keep
        resident = session.get(Resident, absorb)
        if resident:
            resident.status, resident.merged_into = "merged", keep
        # The absorbed golden Patient stays readable, marked as replaced by the survivor.
        row = session.execute(
            select(Resource).where(Resource.resource_type == "Patient", Resource.id == absorb)
        ).scalar_one_or_none()
        if row is not None:
            patient = orjson.loads(row.content)
            patient["active"] = False
            patient["link"] = [{"other": {"reference": f"Patient/{keep}"}, "type": "replaced-by"}]
            repo.put_many(session, [repo.Put(patient, keep)])
            survivor = _golden_demographics(session, keep)
            if survivor is not None:
                links = [
                    x
                    for x in survivor.get("link", [])
                    if x.get("other", {}).get("reference") != f"Patient/{absorb}"
                ]
                links.append({"other": {"reference": f"Patient/{absorb}"}, "type": "replaces"})
                survivor["link"] = links
                repo.put_many(session, [repo.Put(survivor, keep)])
    review.status, review.resolved_at, review.resolved_by = "merged", utcnow(), reviewer
    session.flush()
    return keep


def reject_review(session: Session, review_id: int, *, reviewer: str) -> None:
    review = session.get(MatchReview, review_id)
    if review is None or review.status != "open":
        raise NotFound(f"no open review {review_id}")
    review.status, review.resolved_at, review.resolved_by = "rejected", utcnow(), reviewer
    session.flush()


def links_of(session: Session, resident_id: str) -> list[IdentityLink]:
    return list(
        session.scalars(
            select(IdentityLink)
            .where(IdentityLink.resident_id == resident_id)
            .order_by(IdentityLink.pk)
        )
    )
