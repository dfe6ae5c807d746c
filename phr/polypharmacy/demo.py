"""Demo city: the national drug master, so that every demo medicine is recognised.

The list is read from ``../shared/data/jp-drugs/`` (outside data, never copied); the import
takes about half a second for its 12,434 products (measured: docs/polypharmacy.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["load_drug_master"]


def load_drug_master(progress: Callable[[str], None], path: Path | None = None) -> None:
    from phr.db import transaction
    from phr.demo.drugs import default_drug_list
    from phr.polypharmacy.master import import_drug_list

    path = path or default_drug_list()
    if not path.is_file():
        progress(f"drug master: {path} not found, skipped")
        return
    t0 = time.perf_counter()
    with transaction() as session:
        report = import_drug_list(session, path)
    progress(
        f"drug master: {report.products} products ({report.created} new) "
        f"in {time.perf_counter() - t0:.1f}s"
    )
