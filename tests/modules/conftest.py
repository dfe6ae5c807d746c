"""Install the example module for the tests the way a package installs: a ``dist-info``
directory with an ``entry_points.txt`` on ``sys.path`` (importlib.metadata finds it as it
finds any installed distribution). Nothing of the platform is replaced."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

# Fixtures shared with the PIA tests: operator organisations, staff session cookies.
from tests.consent.pia.conftest import orgs  # noqa: F401
from tests.consent.pia.test_api import cookie  # noqa: F401


@pytest.fixture
def example_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dist = tmp_path / "phr_example_module-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: phr-example-module\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[phr.modules]\nexample = tests.modules.example_module:MODULE\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return dist


@pytest.fixture
def app(session: Session, example_installed: Path) -> Any:
    from phr.app import create_app

    return create_app()
