"""The photos of face identification on the tablet: the one the crew took, and the
candidates' reference photos, side by side for visual confirmation.

The taken photo is kept only while the incident is being identified: re-encoded as PNG
(which also drops whatever metadata the camera wrote, e.g. the location), sealed with the
platform's envelope encryption in ``incident_note`` (kind ``face_probe``), bound to its
incident, and wiped when a candidate is confirmed or the incident is closed. Both photos
are served only to the attending crew while the incident is open, with ``no-store``;
every fetch is in the access log (the reference photo by :mod:`phr.biometrics`).
"""

from __future__ import annotations

import base64
import io

from sqlalchemy.orm import Session

from consent import audit
from consent.actors import Actor, Purpose
from phr.acp import keys
from phr.emergency import flows, repository
from phr.emergency.models import Incident, IncidentNote
from phr.errors import InvalidInput, NotFound
from phr.store.indexer import utcnow

__all__ = [
    "PROBE_KIND",
    "candidate_photo",
    "forget_probe",
    "has_reference_photo",
    "keep_probe",
    "taken_photo",
]

PROBE_KIND = "face_probe"
PHOTO_ACTION = "incident-photo"
MAX_SIDE = 1024  # enough to compare faces on a tablet; smaller to keep and to send


def _context(incident_id: str, pk: int) -> str:
    return f"incident-face-probe:{incident_id}:{pk}"


def _as_png(image: bytes) -> bytes:
    """The photo as a plain PNG (no metadata), at most MAX_SIDE pixels a side."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image)) as img:
            img.thumbnail((MAX_SIDE, MAX_SIDE))
            out = io.BytesIO()
            img.convert("RGB" if img.mode not in ("L", "RGB") else img.mode).save(out, "PNG")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidInput("the image could not be read (send JPEG or PNG)") from exc
    return out.getvalue()


def forget_probe(session: Session, incident_id: str) -> int:
    """Wipe the taken photo(s) of the incident; returns how many were removed."""
    rows = repository.notes(session, incident_id, PROBE_KIND)
    for row in rows:
        session.delete(row)
    session.flush()
    return len(rows)


def keep_probe(session: Session, actor: Actor, incident_id: str, image: bytes) -> None:
    """Keep the photo the crew took (replacing an earlier one) for the side-by-side view."""
    forget_probe(session, incident_id)
    note = IncidentNote(
        incident_id=incident_id,
        kind=PROBE_KIND,
        created_at=utcnow(),
        author=actor.label[:80],
        resource_refs="",
    )
    session.add(note)
    session.flush()
    png = base64.b64encode(_as_png(image)).decode()
    note.sealed = keys.seal_json({"png": png}, context=_context(incident_id, note.pk))
    session.flush()


def _crew_incident(session: Session, actor: Actor, incident_id: str) -> Incident:
    """The incident, for its attending crew while it is being identified (else 404)."""
    row = repository.get_incident(session, incident_id)
    if (
        row is None
        or actor.organization_kind != "ems"
        or row.ems_organization_id != actor.organization_id
        or row.status != flows.OPEN
    ):
        raise NotFound("no such photo")
    return row


def taken_photo(session: Session, actor: Actor, incident_id: str) -> bytes:
    """The PNG the crew took for this incident (audited)."""
    incident = _crew_incident(session, actor, incident_id)
    rows = repository.notes(session, incident.id, PROBE_KIND)
    if not rows or not rows[-1].sealed:
        raise NotFound("no photo taken for this incident")
    data = keys.open_json(rows[-1].sealed, context=_context(incident.id, rows[-1].pk))
    assert isinstance(data, dict)
    audit.record(
        session,
        actor,
        Purpose.EMERGENCY,
        [audit.Access(PHOTO_ACTION, "permit", count=1, detail=f"incident {incident.id} taken")],
    )
    return base64.b64decode(str(data["png"]))


def _candidate_resident(session: Session, incident_id: str, candidate_id: int) -> str:
    for c in repository.candidates(session, incident_id):
        if c.pk == candidate_id and c.method == "face" and c.status == "candidate":
            return c.resident_id
    raise NotFound("no such candidate")


def has_reference_photo(session: Session, incident_id: str, candidate_id: int) -> bool:
    """Whether the face candidate agreed to show a reference photo (no photo is read)."""
    from phr.biometrics import repository as biometric_repo

    try:
        rid = _candidate_resident(session, incident_id, candidate_id)
    except NotFound:
        return False
    enrolled = biometric_repo.enrollment(session, rid)
    return bool(enrolled and enrolled.photo_consent) and (
        biometric_repo.photo(session, rid) is not None
    )


def candidate_photo(
    session: Session, actor: Actor, incident_id: str, candidate_id: int
) -> tuple[bytes, str]:
    """The reference photo of one face candidate of this incident, through
    :func:`phr.biometrics.service.reference_photo_with_type` (which checks that the crew's
    organisation got this resident from a search in the last 30 minutes and logs it)."""
    from phr.biometrics import service as biometrics

    incident = _crew_incident(session, actor, incident_id)
    rid = _candidate_resident(session, incident.id, candidate_id)
    got = biometrics.reference_photo_with_type(session, actor, rid)
    if got is None:
        raise NotFound("this candidate has no reference photo")
    return got
