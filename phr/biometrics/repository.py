"""All SQL of biometric enrollment and the gallery's change log."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, delete, exists, func, select, update
from sqlalchemy.orm import Session

from consent.models import AuditEntry
from phr.biometrics.models import (
    BiometricEnrollment,
    BiometricPhoto,
    BiometricState,
    BiometricTemplate,
    BiometricTombstone,
)

STATE_ID = 1
# template id, resident id, sealed vector, sex, birth date, district
GalleryRow = tuple[str, str, str, str | None, date | None, str | None]
_state = cast(Table, BiometricState.__table__)
_templates = cast(Table, BiometricTemplate.__table__)


# --------------------------------------------------------------------------- generation


def next_generation(session: Session) -> int:
    """Take the next gallery generation. The state row stays locked until commit, so
    generations become visible in the order they were taken."""
    take = (
        _state.update()
        .where(_state.c.id == STATE_ID)
        .values(generation=_state.c.generation + 1)
        .returning(_state.c.generation)
    )
    got = session.execute(take).scalar()
    if got is None:
        session.add(BiometricState(id=STATE_ID, generation=0, pruned_through=0))
        session.flush()
        got = session.execute(take).scalar()
    return int(got or 0)


def state(session: Session) -> tuple[int, int]:
    """(current generation, tombstones pruned through)."""
    row = session.execute(
        select(_state.c.generation, _state.c.pruned_through).where(_state.c.id == STATE_ID)
    ).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


# --------------------------------------------------------------------------- enrollment


def enrollment(session: Session, resident_id: str) -> BiometricEnrollment | None:
    return session.get(BiometricEnrollment, resident_id)


def templates_of(session: Session, resident_id: str) -> list[BiometricTemplate]:
    return list(
        session.scalars(
            select(BiometricTemplate)
            .where(BiometricTemplate.resident_id == resident_id)
            .order_by(BiometricTemplate.created_at, BiometricTemplate.id)
        )
    )


def count_templates(session: Session, resident_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(BiometricTemplate)
            .where(BiometricTemplate.resident_id == resident_id)
        )
        or 0
    )


def add_templates(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk insert (one statement per batch)."""
    for i in range(0, len(rows), 5000):
        session.execute(_templates.insert(), list(rows[i : i + 5000]))


def restamp_templates(session: Session, resident_id: str, generation: int) -> None:
    """The resident's narrowing attributes changed: their templates are reloaded."""
    session.execute(
        update(BiometricTemplate)
        .where(BiometricTemplate.resident_id == resident_id)
        .values(generation=generation)
    )


def delete_templates(
    session: Session, resident_id: str, generation: int, template_id: str | None = None
) -> list[str]:
    """Delete the resident's templates (or one of them); leave tombstones. Returns ids."""
    conds = [BiometricTemplate.resident_id == resident_id]
    if template_id is not None:
        conds.append(BiometricTemplate.id == template_id)
    ids = list(session.scalars(select(BiometricTemplate.id).where(*conds)))
    if not ids:
        return []
    session.execute(delete(BiometricTemplate).where(BiometricTemplate.id.in_(ids)))
    session.add_all([BiometricTombstone(template_id=t, generation=generation) for t in ids])
    session.flush()
    return ids


def gallery_rows(
    session: Session, *, after: int | None, upto: int
) -> Generator[GalleryRow, None, None]:
    """Templates with their narrowing attributes, changed in (after, upto] (all if after
    is None), streamed."""
    e = BiometricEnrollment
    stmt = (
        select(
            _templates.c.id,
            _templates.c.resident_id,
            _templates.c.sealed,
            e.sex,
            e.birth_date,
            e.district,
        )
        .join(e, e.resident_id == _templates.c.resident_id)
        .where(_templates.c.generation <= upto, e.status == "active")
    )
    if after is not None:
        stmt = stmt.where(_templates.c.generation > after)
    result = session.execute(stmt.execution_options(yield_per=10_000))
    try:
        for row in result:
            yield cast(GalleryRow, tuple(row))
    finally:
        result.close()  # also when the caller stops early (a template that does not open)


def tombstones(session: Session, *, after: int, upto: int) -> list[str]:
    return list(
        session.scalars(
            select(BiometricTombstone.template_id).where(
                BiometricTombstone.generation > after, BiometricTombstone.generation <= upto
            )
        )
    )


# --------------------------------------------------------------------------- photo


def photo(session: Session, resident_id: str) -> BiometricPhoto | None:
    return session.get(BiometricPhoto, resident_id)


def delete_photo(session: Session, resident_id: str) -> bool:
    result = session.execute(
        delete(BiometricPhoto).where(BiometricPhoto.resident_id == resident_id)
    )
    return bool(getattr(result, "rowcount", 0))


# --------------------------------------------------------------------------- searches


def was_candidate(
    session: Session, *, organization_id: str, resident_id: str, since: datetime, action: str
) -> bool:
    """Did a search of this organisation name the resident as a candidate lately? (from
    the access log, the record of what each search returned)."""
    return (
        session.scalar(
            select(AuditEntry.pk)
            .where(
                AuditEntry.resident_id == resident_id,
                AuditEntry.organization_id == organization_id,
                AuditEntry.action == action,
                AuditEntry.outcome == "permit",
                AuditEntry.at >= since,
            )
            .limit(1)
        )
        is not None
    )


def stale_enrollments(session: Session) -> list[str]:
    """Active enrollments whose golden Patient changed after they were last stamped."""
    from phr.store.models import Resource

    stmt = select(BiometricEnrollment.resident_id).where(
        BiometricEnrollment.status == "active",
        exists().where(
            Resource.resource_type == "Patient",
            Resource.id == BiometricEnrollment.resident_id,
            Resource.last_updated > BiometricEnrollment.updated_at,
        ),
    )
    return list(session.scalars(stmt))
