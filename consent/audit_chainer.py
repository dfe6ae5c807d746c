"""The access-log chainer: a daemon thread in each server process that appends the
entries written by requests to the hash chain (ADR 0004).

Requests only insert their entries; this thread, every ``PHR_AUDIT_CHAIN_INTERVAL``
seconds, chains whatever has been committed since, in one short transaction per batch.
Several processes may run it: on PostgreSQL a round that finds the chain head locked by
another process skips (``SKIP LOCKED``); on SQLite they take turns on the writer lock.
A round that fails (database down) is logged and retried at the next tick; nothing is
lost, because the entries are already committed — only their chaining waits.
"""

from __future__ import annotations

import logging
import threading

from consent import audit
from phr.db import transaction

__all__ = ["AuditChainer", "chain_once"]

log = logging.getLogger("phr.audit")


def chain_once(batch: int = 5_000) -> int:
    """Chain everything pending now, one transaction per batch; returns how many."""
    total = 0
    while True:
        with transaction() as session:
            n = audit.chain_pending(session, limit=batch)
        total += n
        if n < batch:
            return total


class AuditChainer:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="audit-chainer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after a last round, so that a clean shutdown leaves nothing pending."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=30)
        self._thread = None

    def _round(self) -> None:
        try:
            chain_once()
        except Exception as exc:  # keep the thread alive; the next tick retries
            log.warning("audit chaining failed (will retry): %s", type(exc).__name__)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._round()
        self._round()
