"""Identification at the scene: opt-in enrollment, exact 1:N search, reference photos.

Face matching alone cannot name one person among a whole city (expected false candidates
per search ≈ gallery size × false-match rate), so a search returns a *shortlist*: at most
three residents whose best template scores at least the calibrated threshold
(``PHR_BIOMETRIC_MATCH_THRESHOLD``, docs/biometrics.md), best first, ids and scores only.
The paramedic confirms one (reference photo, date of birth from a bystander, the card);
only a confirmed candidate unlocks the emergency summary, which is not this module's
business. An empty list means "not identified".

Who may do what:

* the resident enrolls (their consent recorded with its text version), lists and deletes
  their templates and photo; deletion is real — rows gone, tombstones hold only template
  ids, every process's index drops them before its next search;
* an EMS organisation's client, or a paramedic of an EMS organisation, searches (purpose
  emergency treatment), rate-limited per actor across processes, and fetches the
  reference photo of a resident its organisation got as a candidate in the last 30
  minutes.

Every search (permitted or refused) and every photo fetch is in the access log; each
candidate's log shows the search, and candidates are notified like any emergency access.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import orjson
from sqlalchemy import event
from sqlalchemy.orm import Session

from consent import audit
from consent.actors import Actor, Purpose
from consent.notifications import notify_emergency_accesses
from fhir_gateway import hooks
from phr.biometrics import repository as repo
from phr.biometrics.extractor import TEMPLATE_DIM, Extractor
from phr.biometrics.index import SEX_CODES, Narrowing, TemplateIndex, TemplateRow, unit_vector
from phr.biometrics.keys import biometric_keys, open_sealed, seal
from phr.biometrics.models import BiometricEnrollment, BiometricPhoto
from phr.biometrics.schemas import EnrollmentRead, TemplateRead
from phr.db import after_rollback
from phr.errors import Forbidden, InvalidInput, NotFound, PHRError
from phr.security import limiter
from phr.settings import get_settings
from phr.store.indexer import utcnow
from phr.store.reader import RecordReader

__all__ = [
    "CONSENT_TEXT",
    "CONSENT_VERSION",
    "Candidate",
    "RateLimited",
    "decode_base64",
    "delete_photo",
    "delete_template",
    "enroll",
    "gallery_index",
    "identify",
    "identify_image",
    "match_threshold",
    "my_enrollment",
    "reference_photo",
    "reference_photo_with_type",
    "reset_index",
    "seal_template",
    "warm_up",
    "withdraw",
]

log = logging.getLogger(__name__)

CONSENT_VERSION = "biometric-2026-11-v1"
CONSENT_TEXT = (
    "救急隊が意識のない私を顔で本人確認できるよう、顔の特徴量（と、同意した場合は確認用の写真）"
    "を登録します。いつでも削除できます。 / I agree that paramedics may identify me by my face "
    "when I cannot tell them who I am; my face templates (and, if I agree, one photo for "
    "visual confirmation) are kept encrypted and I can delete them at any time."
)
MAX_TEMPLATES = 10
MAX_PHOTO_BYTES = 2 * 1024 * 1024
PHOTO_WINDOW = timedelta(minutes=30)
SEARCH_ACTION = "biometric-search"
PHOTO_ACTION = "biometric-photo"
ENROLL_ACTION = "biometric-enroll"
DELETE_ACTION = "biometric-delete"
CONSENT_REF = f"biometric-enrollment:{CONSENT_VERSION}"


@dataclass(frozen=True)
class Candidate:
    resident_id: str
    score: float  # similarity, higher = more alike


class RateLimited(PHRError):
    status_code = 429
    code = "throttled"
    error = "rate_limited"


# --------------------------------------------------------------------------- the index

_index: TemplateIndex | None = None
_index_lock = threading.Lock()
_sync_lock = threading.Lock()


def _process_index() -> TemplateIndex:
    global _index
    with _index_lock:
        if _index is None:
            _single_threaded_blas()
            _index = TemplateIndex(TEMPLATE_DIM)
        return _index


def _single_threaded_blas() -> None:
    """A search is one memory-bound matrix-vector product: BLAS threads do not make it
    faster, and on a busy machine (several server workers on few cores) they make it
    wait for each other — p50 of a narrowed search 16 ms with two threads, 0.3 ms with
    one (bench/biometrics.py). Parallelism comes from the server's workers instead."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def reset_index() -> None:
    """Forget the process's index (tests whose database was rolled back under it)."""
    global _index
    with _index_lock:
        _index = None


def _aad(template_id: str, resident_id: str) -> bytes:
    return f"biometric-template|{template_id}|{resident_id}".encode()


def seal_template(template_id: str, resident_id: str, vector: np.ndarray) -> str:
    """A unit float32 template sealed for its row (bound to template and resident)."""
    data = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
    return seal(data, aad=_aad(template_id, resident_id), keys=biometric_keys())


def _photo_aad(resident_id: str) -> bytes:
    return f"biometric-photo|{resident_id}".encode()


def _rows(session: Session, *, after: int | None, upto: int) -> list[TemplateRow]:
    keys = biometric_keys()
    out = []
    with contextlib.closing(repo.gallery_rows(session, after=after, upto=upto)) as rows:
        for tid, rid, sealed, sex, birth, district in rows:
            plain = open_sealed(sealed, aad=_aad(tid, rid), keys=keys)
            out.append(
                TemplateRow(tid, rid, np.frombuffer(plain, np.float32), sex, birth, district)
            )
    return out


def gallery_index(session: Session) -> TemplateIndex:
    """The process's index, brought up to the database's current generation.

    One primary-key read when nothing changed; otherwise the changes since the index's
    generation (new templates, tombstones), or the whole gallery when the index is new,
    older than the pruned tombstones, or ahead of the database (a rolled-back change).
    """
    index = _process_index()
    generation, pruned = repo.state(session)
    if index.generation == generation:
        return index
    with _sync_lock:
        have = index.generation
        if have == generation:
            return index
        if have < 0 or have > generation or have < pruned:
            index.replace_all(_rows(session, after=None, upto=generation), generation)
        else:
            rows = _rows(session, after=have, upto=generation)
            removed = repo.tombstones(session, after=have, upto=generation)
            index.apply(rows, removed, generation)
    return index


def warm_up() -> int:
    """Load the gallery into this process now (server start-up); returns its size."""
    from phr.db import transaction

    with transaction() as session:
        index = gallery_index(session)
    log.info("biometric gallery loaded: %d templates", len(index))
    return len(index)


def _changed_gallery(session: Session) -> int:
    """Take a generation for this transaction's change; if the transaction rolls back
    after this process's index absorbed it, the index reloads."""
    generation = repo.next_generation(session)

    def forget(_session: Session) -> None:
        index = _index
        if index is not None and index.generation >= generation:
            index.invalidate()

    event.listen(session, "after_rollback", forget, once=True)
    return generation


# --------------------------------------------------------------------------- enrollment


def _require_resident(actor: Actor) -> str:
    if actor.kind != "resident" or not actor.resident_id:
        raise Forbidden("only the resident enrolls or deletes their own face templates")
    return actor.resident_id


def decode_base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{what} must be base64") from None


def _photo_type(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    raise InvalidInput("the reference photo must be a JPEG or PNG image")


def _narrowing_attributes(
    session: Session, actor: Actor, resident_id: str, purpose: Purpose = Purpose.PATIENT_ACCESS
) -> tuple[str | None, date | None, str | None]:
    """Sex, birth date and home postal code from the resident's golden Patient (read by the
    resident — or by the platform's refresh job — through the choke point)."""
    reader = RecordReader(session, actor, purpose)
    if not reader.resident_exists(resident_id):
        return None, None, None
    patient: dict[str, Any] = orjson.loads(reader.read("Patient", resident_id).content)
    sex = patient.get("gender") if patient.get("gender") in SEX_CODES else None
    birth: date | None = None
    text = str(patient.get("birthDate") or "")
    try:
        if len(text) == 10:
            birth = date.fromisoformat(text)
        elif len(text) >= 4:  # year or year-month only: the middle of the period
            birth = date(int(text[:4]), int(text[5:7]) if len(text) >= 7 else 7, 1)
    except ValueError:
        birth = None
    district = None
    for addr in patient.get("address") or []:
        if addr.get("use") in (None, "home") and addr.get("postalCode"):
            district = normalise_district(str(addr["postalCode"]))
            break
    return sex, birth, district


REFRESH_ACTOR = Actor.system("biometrics-refresh")


def refresh_resident(session: Session, resident_id: str) -> bool:
    """Copy the narrowing attributes again from the golden Patient (after a move, say), so
    that a search narrowed by the new district still finds the resident. True if changed.
    Runs as the platform (purpose HOPERAT, in the resident's access log)."""
    row = repo.enrollment(session, resident_id)
    if row is None or row.status != "active":
        return False
    try:
        attrs = _narrowing_attributes(session, REFRESH_ACTOR, resident_id, Purpose.OPERATIONS)
    except InvalidInput:  # a postal code that is not one: narrow by nothing rather than wrong
        attrs = (row.sex, row.birth_date, None)
    row.updated_at = utcnow()
    if attrs == (row.sex, row.birth_date, row.district):
        return False
    row.sex, row.birth_date, row.district = attrs
    session.flush()
    repo.restamp_templates(session, resident_id, _changed_gallery(session))
    return True


def refresh_stale(session: Session) -> int:
    """Refresh every enrollment whose golden Patient changed since it was stamped (the
    catch-up for changes made where the gateway hook did not run); the number changed."""
    return sum(refresh_resident(session, rid) for rid in repo.stale_enrollments(session))


hooks.on_golden_patient_updated(refresh_resident)


def normalise_district(text: str) -> str:
    """A district is a postal code (〒305-0031 → 3050031)."""
    digits = "".join(c for c in text if c.isdigit())
    if not digits or len(digits) > 16:
        raise InvalidInput("district must be a postal code, e.g. 305-0031")
    return digits


def _log(session: Session, actor: Actor, purpose: Purpose, entries: list[audit.Access]) -> None:
    audit.record(session, actor, purpose, entries)


def enroll(
    session: Session,
    actor: Actor,
    *,
    consent: bool,
    vectors: Sequence[Sequence[float]] = (),
    images: Sequence[bytes] = (),
    photo: bytes | None = None,
    photo_consent: bool = False,
    extractor: Extractor | None = None,
) -> EnrollmentRead:
    """Opt in, or add templates (at most :data:`MAX_TEMPLATES` per resident) and replace
    the reference photo. The narrowing attributes are refreshed from the golden Patient."""
    resident_id = _require_resident(actor)
    if not consent:
        raise InvalidInput("enrollment needs the resident's consent (consent: true)")
    if not vectors and not images and photo is None:
        raise InvalidInput("send at least one face template (vector or image)")
    if photo is not None and not photo_consent:
        raise InvalidInput("a reference photo needs photo_consent: true")
    if photo is not None and len(photo) > MAX_PHOTO_BYTES:
        raise InvalidInput(f"the reference photo is larger than {MAX_PHOTO_BYTES} bytes")
    photo_type = _photo_type(photo) if photo is not None else None
    new: list[tuple[np.ndarray, str, str | None]] = []
    for v in vectors:
        try:
            new.append((unit_vector(v, TEMPLATE_DIM), "vector", None))
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    if images:
        if extractor is None:
            from phr.biometrics.extractor import default_extractor

            extractor = default_extractor()
        for img in images:
            new.append((unit_vector(extractor.extract(img), TEMPLATE_DIM), "image", extractor.name))

    now = utcnow()
    row = repo.enrollment(session, resident_id)
    if row is None or row.status != "active":
        if not new:
            raise InvalidInput("enrollment needs at least one face template")
    elif repo.count_templates(session, resident_id) + len(new) > MAX_TEMPLATES:
        raise InvalidInput(f"at most {MAX_TEMPLATES} templates per resident; delete some first")
    sex, birth, district = _narrowing_attributes(session, actor, resident_id)

    generation = _changed_gallery(session)
    if row is None:
        row = BiometricEnrollment(resident_id=resident_id)
        session.add(row)
    row.status = "active"
    row.consent_version = CONSENT_VERSION
    row.consented_at = now
    row.withdrawn_at = None
    row.photo_consent = photo_consent or (bool(row.photo_consent) and photo is None)
    row.sex, row.birth_date, row.district = sex, birth, district
    row.updated_at = now
    session.flush()
    # Existing templates pick up the refreshed narrowing attributes in every index.
    repo.restamp_templates(session, resident_id, generation)
    keys = biometric_keys()
    rows = []
    for vec, source, extractor_name in new:
        tid = str(uuid.uuid4())
        rows.append(
            {
                "id": tid,
                "resident_id": resident_id,
                "generation": generation,
                "dim": TEMPLATE_DIM,
                "sealed": seal_template(tid, resident_id, vec),
                "source": source,
                "extractor": extractor_name,
                "created_at": now,
            }
        )
    repo.add_templates(session, rows)
    if photo is not None:
        assert photo_type is not None
        sealed = seal(photo, aad=_photo_aad(resident_id), keys=keys)
        existing = repo.photo(session, resident_id)
        if existing is None:
            session.add(
                BiometricPhoto(
                    resident_id=resident_id,
                    content_type=photo_type,
                    sealed=sealed,
                    created_at=now,
                )
            )
        else:
            existing.content_type, existing.sealed, existing.created_at = photo_type, sealed, now
    session.flush()
    _log(
        session,
        actor,
        Purpose.PATIENT_ACCESS,
        [
            audit.Access(
                ENROLL_ACTION,
                "permit",
                resident_id=resident_id,
                count=len(rows),
                detail=f"templates+{len(rows)}" + (" photo" if photo is not None else ""),
                consent_ref=CONSENT_REF,
            )
        ],
    )
    return _read(session, row)


def _read(session: Session, row: BiometricEnrollment) -> EnrollmentRead:
    return EnrollmentRead(
        resident_id=row.resident_id,
        status=row.status,
        consent_version=row.consent_version,
        consented_at=row.consented_at,
        withdrawn_at=row.withdrawn_at,
        photo_consent=row.photo_consent,
        has_photo=repo.photo(session, row.resident_id) is not None,
        templates=[
            TemplateRead.model_validate(t, from_attributes=True)
            for t in repo.templates_of(session, row.resident_id)
        ],
    )


def my_enrollment(session: Session, actor: Actor) -> EnrollmentRead:
    resident_id = _require_resident(actor)
    row = repo.enrollment(session, resident_id)
    if row is None:
        raise NotFound("not enrolled")
    return _read(session, row)


def withdraw(session: Session, actor: Actor) -> EnrollmentRead:
    """Delete every template and the photo, and record the withdrawal of consent."""
    resident_id = _require_resident(actor)
    row = repo.enrollment(session, resident_id)
    if row is None:
        raise NotFound("not enrolled")
    generation = _changed_gallery(session)
    removed = repo.delete_templates(session, resident_id, generation)
    had_photo = repo.delete_photo(session, resident_id)
    row.status, row.withdrawn_at, row.updated_at = "withdrawn", utcnow(), utcnow()
    row.photo_consent = False
    row.sex = row.birth_date = row.district = None
    session.flush()
    _log_deletion(session, actor, resident_id, len(removed), had_photo, "withdrawn")
    return _read(session, row)


def delete_template(session: Session, actor: Actor, template_id: str) -> EnrollmentRead:
    resident_id = _require_resident(actor)
    row = repo.enrollment(session, resident_id)
    if row is None:
        raise NotFound("not enrolled")
    generation = _changed_gallery(session)
    if not repo.delete_templates(session, resident_id, generation, template_id):
        raise NotFound("no such template")
    _log_deletion(session, actor, resident_id, 1, False, "template")
    return _read(session, row)


def delete_photo(session: Session, actor: Actor) -> EnrollmentRead:
    resident_id = _require_resident(actor)
    row = repo.enrollment(session, resident_id)
    if row is None or not repo.delete_photo(session, resident_id):
        raise NotFound("no reference photo")
    row.photo_consent, row.updated_at = False, utcnow()
    session.flush()
    _log_deletion(session, actor, resident_id, 0, True, "photo")
    return _read(session, row)


def _log_deletion(
    session: Session, actor: Actor, resident_id: str, templates: int, photo: bool, what: str
) -> None:
    _log(
        session,
        actor,
        Purpose.PATIENT_ACCESS,
        [
            audit.Access(
                DELETE_ACTION,
                "permit",
                resident_id=resident_id,
                count=templates,
                detail=f"{what} templates-{templates}" + (" photo" if photo else ""),
            )
        ],
    )


# --------------------------------------------------------------------------- search


def _require_ems(actor: Actor) -> str:
    if actor.kind not in ("organization", "staff") or actor.organization_kind != "ems":
        raise Forbidden("only EMS organisations identify residents by face")
    if actor.kind == "staff" and actor.role != "paramedic":
        raise Forbidden("only paramedics identify residents by face")
    assert actor.organization_id
    return actor.organization_id


def _refused(session: Session, actor: Actor, entry: audit.Access) -> None:
    """Log a refused search or photo fetch, also when the request's transaction is undone."""
    _log(session, actor, Purpose.EMERGENCY, [entry])
    after_rollback(session, lambda s: _log(s, actor, Purpose.EMERGENCY, [entry]))


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def narrowing(
    *,
    sex: str | None = None,
    age_min: int | None = None,
    age_max: int | None = None,
    district: str | None = None,
    today: date | None = None,
) -> Narrowing:
    """What the paramedic sees as a mask over the gallery: apparent age becomes a range
    of birth dates (age_min <= age <= age_max on ``today``)."""
    if sex is not None and sex not in SEX_CODES:
        raise InvalidInput(f"sex must be one of {', '.join(SEX_CODES)}")
    for v in (age_min, age_max):
        if v is not None and not 0 <= v <= 130:
            raise InvalidInput("ages must be between 0 and 130")
    if age_min is not None and age_max is not None and age_min > age_max:
        raise InvalidInput("age_min is greater than age_max")
    today = today or utcnow().date()
    return Narrowing(
        sex=sex,
        born_after=_years_before(today, age_max + 1) if age_max is not None else None,
        born_on_or_before=_years_before(today, age_min) if age_min is not None else None,
        district=normalise_district(district) if district is not None else None,
    )


def _rate_limit(session: Session, actor: Actor) -> None:
    per_minute = get_settings().biometric_searches_per_minute
    try:
        limiter.count_lookup(
            session, limiter.Counter("face-search", limiter.actor_key(actor), per_minute, 60)
        )
    except limiter.TooManyAttempts as exc:
        _refused(session, actor, audit.Access(SEARCH_ACTION, "deny", detail="rate limit"))
        raise RateLimited(
            f"at most {per_minute} face searches per minute; {exc.message}", headers=exc.headers
        ) from None


def identify(
    session: Session,
    actor: Actor,
    embedding: Sequence[float],
    *,
    sex: str | None = None,
    age_min: int | None = None,
    age_max: int | None = None,
    district: str | None = None,
    limit: int = 3,
) -> list[Candidate]:
    """At most three candidates above the calibrated threshold, best first; [] = not
    identified. Audited (one entry per candidate, or one for "not identified");
    rate-limited per actor."""
    try:
        _require_ems(actor)
    except Forbidden as exc:
        _refused(session, actor, audit.Access(SEARCH_ACTION, "deny", detail=exc.message))
        raise
    try:
        probe = unit_vector(embedding, TEMPLATE_DIM)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    narrow = narrowing(sex=sex, age_min=age_min, age_max=age_max, district=district)
    limit = max(1, min(int(limit), 3))
    _rate_limit(session, actor)
    threshold = get_settings().biometric_match_threshold
    hits, compared = gallery_index(session).search(
        probe, threshold=threshold, limit=limit, narrowing=narrow
    )
    filters = " ".join(
        f"{k}={v}"
        for k, v in (("sex", sex), ("age", _age_text(age_min, age_max)), ("district", district))
        if v
    )
    entries = [
        audit.Access(
            SEARCH_ACTION,
            "permit",
            "Patient",
            h.resident_id,
            h.resident_id,
            count=1,
            detail=f"candidate {rank}/{len(hits)} score={h.score:.3f} {filters}".strip(),
            consent_ref=CONSENT_REF,
        )
        for rank, h in enumerate(hits, 1)
    ] or [
        audit.Access(
            SEARCH_ACTION,
            "permit",
            count=0,
            detail=f"not identified compared={compared} {filters}".strip(),
        )
    ]
    _log(session, actor, Purpose.EMERGENCY, entries)
    notify_emergency_accesses(session, actor, Purpose.EMERGENCY, entries)
    return [Candidate(h.resident_id, round(h.score, 4)) for h in hits]


def identify_image(
    session: Session,
    actor: Actor,
    image: bytes,
    *,
    extractor: Extractor | None = None,
    **narrowing_: Any,
) -> list[Candidate]:
    """:func:`identify` with a photo taken at the scene (needs the ``face`` extra)."""
    try:
        _require_ems(actor)
    except Forbidden as exc:
        _refused(session, actor, audit.Access(SEARCH_ACTION, "deny", detail=exc.message))
        raise
    if extractor is None:
        from phr.biometrics.extractor import default_extractor

        extractor = default_extractor()
    return identify(session, actor, extractor.extract(image).tolist(), **narrowing_)


def match_threshold() -> float:
    return get_settings().biometric_match_threshold


def _age_text(age_min: int | None, age_max: int | None) -> str:
    if age_min is None and age_max is None:
        return ""
    return f"{'' if age_min is None else age_min}-{'' if age_max is None else age_max}"


def reference_photo_with_type(
    session: Session, actor: Actor, resident_id: str
) -> tuple[bytes, str] | None:
    """The candidate's reference photo and its media type, for visual confirmation.

    Only for a resident that a search of the actor's organisation returned in the last
    30 minutes; None when that resident has no photo (or withdrew consent to show it).
    """
    try:
        org = _require_ems(actor)
    except Forbidden as exc:
        _refused(session, actor, audit.Access(PHOTO_ACTION, "deny", detail=exc.message))
        raise
    since = utcnow() - PHOTO_WINDOW
    if not repo.was_candidate(
        session, organization_id=org, resident_id=resident_id, since=since, action=SEARCH_ACTION
    ):
        _refused(
            session, actor, audit.Access(PHOTO_ACTION, "deny", "Patient", resident_id, resident_id)
        )
        raise NotFound("not a candidate of a recent search by your organisation")
    row = repo.photo(session, resident_id)
    enrolled = repo.enrollment(session, resident_id)
    shown = row is not None and enrolled is not None and enrolled.photo_consent
    entry = audit.Access(
        PHOTO_ACTION,
        "permit" if shown else "not-found",
        "Patient",
        resident_id,
        resident_id,
        count=1 if shown else 0,
        detail="reference photo" if shown else "no reference photo",
        consent_ref=CONSENT_REF if shown else None,
    )
    _log(session, actor, Purpose.EMERGENCY, [entry])
    if not shown or row is None:
        return None
    notify_emergency_accesses(session, actor, Purpose.EMERGENCY, [entry])
    data = open_sealed(row.sealed, aad=_photo_aad(resident_id), keys=biometric_keys())
    return data, row.content_type


def reference_photo(session: Session, actor: Actor, resident_id: str) -> bytes | None:
    got = reference_photo_with_type(session, actor, resident_id)
    return got[0] if got else None
