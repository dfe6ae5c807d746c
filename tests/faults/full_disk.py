"""Run the ``phr`` command (``import``, ``serve`` ...) on a SQLite database that can grow by
only ``PHR_FAULT_FREE_PAGES`` more pages: ``PRAGMA max_page_count`` on every connection,
so that a write beyond it fails in SQLite's own disk-full path (SQLITE_FULL), as it does
when the disk is full.

    PHR_FAULT_FREE_PAGES=10 python tests/faults/full_disk.py import vaccination f.csv --org x
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import event

from phr import db
from phr.cli import main


def limited_engine() -> Any:
    engine = db.make_engine()
    free = int(os.environ["PHR_FAULT_FREE_PAGES"])
    limit: list[int] = []

    def cap(dbapi_connection: Any, _record: Any) -> None:
        cur = dbapi_connection.cursor()
        if not limit:  # the size when the process starts, plus the free pages
            limit.append(cur.execute("PRAGMA page_count").fetchone()[0] + free)
        cur.execute(f"PRAGMA max_page_count = {limit[0]}")
        cur.close()

    event.listen(engine, "connect", cap)
    return engine


if __name__ == "__main__":
    db.set_engine(limited_engine())
    main()
