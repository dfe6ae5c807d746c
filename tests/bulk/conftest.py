"""Bulk export tests: the worker thread is off (it would share the test's connection);
tests run queued jobs with :func:`phr.bulk.worker.run_pending`, as ``phr bulk run`` does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from phr.settings import reset_settings_cache

# The authorization-matrix world: a resident of clinic A and the organisations around.
from tests.consent.policy.conftest import world  # noqa: F401


@pytest.fixture(autouse=True)
def no_worker_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PHR_BULK_WORKERS", "0")
    reset_settings_cache()
    yield
    monkeypatch.delenv("PHR_BULK_WORKERS")
    reset_settings_cache()
