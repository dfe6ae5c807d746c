"""The export worker: a daemon thread per server process that runs accepted jobs.

Woken by each kick-off (and polling every ``POLL_SECONDS``), it claims the oldest accepted
job (``FOR UPDATE SKIP LOCKED``: several processes never run the same job) and runs it in
one transaction. ``PHR_BULK_WORKERS=0`` turns the thread off; ``phr bulk run`` (or
:func:`run_pending`) then runs queued jobs.

At start-up (:meth:`BulkWorker.start_up`) jobs that a killed server had started are marked
failed and their partial files removed: a job's directory holds a ``started`` marker while
it runs and ``done`` once its transaction ended, so this check reads the file system only
and costs nothing when no export was interrupted.
"""

from __future__ import annotations

import logging
import threading

from phr.bulk import files, repository, service
from phr.db import transaction
from phr.errors import PHRError
from phr.settings import get_settings
from phr.store.indexer import utcnow

__all__ = ["WORKER", "BulkWorker", "purge_expired", "recover", "run_pending"]

log = logging.getLogger("phr.bulk")
POLL_SECONDS = 30.0


def run_one() -> bool:
    """Claim and run one accepted job; False when there is none."""
    job_id = None
    try:
        with transaction() as session:
            job = repository.claim_next(session)
            if job is None:
                return False
            job_id = job.id
            service.run(session, job)
    except Exception as exc:
        if job_id is None:
            raise
        reason = str(exc) if isinstance(exc, PHRError) else f"export failed ({type(exc).__name__})"
        log.warning("bulk export %s failed: %s", job_id, type(exc).__name__)
        files.remove_job_dir(job_id)
        _mark_failed(job_id, reason)
        return True
    _mark_done(job_id)
    return True


def run_pending() -> int:
    """Run every accepted job now (CLI, tests); the number run."""
    n = 0
    while run_one():
        n += 1
    return n


def purge_expired() -> int:
    """Delete finished jobs past their retention (rows first, then files once that has
    committed), and the directories of finished jobs whose row is gone (a purge or a
    DELETE interrupted between the two). The number of jobs deleted."""
    with transaction() as session:
        jobs = repository.finished_before(session, utcnow() - service.retention())
        ids = [j.id for j in jobs]
        for job in jobs:
            session.delete(job)
    for job_id in ids:
        files.remove_job_dir(job_id)
    root = get_settings().data_dir / "bulk"
    if root.is_dir():
        done = [d.name for d in root.iterdir() if d.is_dir() and (d / service.DONE).exists()]
        if done:
            with transaction() as session:
                alive = repository.existing(session, done)
            for name in set(done) - alive:
                files.remove_job_dir(name)
    return len(ids)


def _mark_done(job_id: str) -> None:
    d = files.job_dir(job_id)
    if d.exists():
        (d / service.DONE).write_text(utcnow().isoformat())


def _mark_failed(job_id: str, reason: str) -> None:
    with transaction() as session:
        job = repository.get(session, job_id)
        if job is not None and job.status != "completed":
            job.status = "failed"
            job.error = reason
            job.finished_at = utcnow()
    files.job_dir(job_id).mkdir(parents=True, exist_ok=True)
    _mark_done(job_id)


def recover() -> tuple[int, int]:
    """Fail the jobs a stopped server left started; (failed, still queued)."""
    root = get_settings().data_dir / "bulk"
    if not root.is_dir():
        return 0, 0
    open_dirs = [d for d in root.iterdir() if d.is_dir() and not (d / service.DONE).exists()]
    if not open_dirs:
        return 0, 0
    failed = queued = 0
    with transaction() as session:
        jobs = {j.id: j for j in repository.unfinished(session, [d.name for d in open_dirs])}
        for d in open_dirs:
            job = jobs.get(d.name)
            if job is None:
                if repository.get(session, d.name) is None:  # kick-off rolled back
                    files.remove_job_dir(d.name)
                continue
            if (d / service.STARTED).exists():
                job.status = "failed"
                job.error = "the server stopped during the export; kick it off again"
                job.finished_at = utcnow()
                for f in d.iterdir():
                    f.unlink()
                (d / service.DONE).write_text(utcnow().isoformat())
                failed += 1
            else:
                queued += 1
    return failed, queued


class BulkWorker:
    def __init__(self) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start_up(self) -> None:
        if get_settings().bulk_workers <= 0:
            return
        _, queued = recover()
        if queued:
            self.wake()
        try:
            purge_expired()
        except Exception as exc:
            log.warning("bulk purge at start-up failed: %s", type(exc).__name__)

    def wake(self) -> None:
        if get_settings().bulk_workers <= 0:
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="bulk-export", daemon=True)
                self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                run_pending()
                purge_expired()
            except Exception as exc:
                log.warning("bulk worker round failed: %s", type(exc).__name__)
            self._wake.wait(POLL_SECONDS)


WORKER = BulkWorker()
