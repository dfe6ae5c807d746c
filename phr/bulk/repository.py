"""SQL of bulk export jobs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from phr.bulk.models import BulkExportJob

__all__ = ["claim_next", "existing", "finished_before", "get", "running", "unfinished"]


def get(session: Session, job_id: str) -> BulkExportJob | None:
    return session.get(BulkExportJob, job_id)


def running(session: Session, job_id: str) -> bool:
    """Is a worker exporting this job now (it holds the row lock)? On PostgreSQL the row is
    locked here in turn, so that it cannot start while it is being deleted."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    stmt = (
        select(BulkExportJob.id).where(BulkExportJob.id == job_id).with_for_update(skip_locked=True)
    )
    return session.scalar(stmt) is None


def claim_next(session: Session) -> BulkExportJob | None:
    """The oldest accepted job, locked for this transaction (other workers skip it)."""
    stmt = (
        select(BulkExportJob)
        .where(BulkExportJob.status == "accepted")
        .order_by(BulkExportJob.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return session.scalars(stmt).first()


def unfinished(session: Session, ids: Sequence[str]) -> Sequence[BulkExportJob]:
    """Jobs among ``ids`` not finished and not locked by a running export."""
    stmt = (
        select(BulkExportJob)
        .where(
            BulkExportJob.id.in_(list(ids)), BulkExportJob.status.in_(("accepted", "in-progress"))
        )
        .with_for_update(skip_locked=True)
    )
    return session.scalars(stmt).all()


def finished_before(session: Session, cutoff: datetime) -> Sequence[BulkExportJob]:
    """Finished jobs (completed or failed) that finished before ``cutoff``, locked (a
    download in progress elsewhere does not hold the row; the files are removed after
    this transaction commits)."""
    stmt = (
        select(BulkExportJob)
        .where(
            BulkExportJob.status.in_(("completed", "failed")),
            BulkExportJob.finished_at < cutoff,
        )
        .with_for_update(skip_locked=True)
    )
    return session.scalars(stmt).all()


def existing(session: Session, ids: Sequence[str]) -> set[str]:
    return set(session.scalars(select(BulkExportJob.id).where(BulkExportJob.id.in_(list(ids)))))
