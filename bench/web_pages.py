"""Resident web app benchmark: server time of each page for a resident with years of records.

1. A fresh database (a SQLite file in a temporary folder, or the PostgreSQL database of
   ``--database-url``, whose ``public`` schema is dropped and re-migrated) gets one
   resident with ``--years`` years of records from two clinics and the city
   (``tests/web/story.py``: ``--visits`` visits a year, each with blood pressure, HbA1c,
   LDL, eGFR, weight, BMI and prescriptions — 2,000+ resources with the defaults), plus
   ``--others`` residents with two years each, all through the gateway's ingest.
2. The resident signs in with a demo card through the app (the real sign-in), then each
   page is requested ``--rounds`` times in this process through the ASGI app
   (``fastapi.testclient``), after ``--warmup`` unmeasured rounds. The time is from the
   request to the last byte of the response inside the process: the server's time, with
   no network.

    python bench/web_pages.py                      # SQLite
    python bench/web_pages.py --database-url postgresql+psycopg://phr:phr@127.0.0.1/phr_bench

Prints Markdown tables: the data size, then p50 / p95 / max milliseconds per page against
the goal (300 ms).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import common  # bench/common.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_MS = 300.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", default=None, help="PostgreSQL URL (default: SQLite)")
    p.add_argument("--years", type=int, default=10)
    p.add_argument("--visits", type=int, default=24, help="visits a year")
    p.add_argument("--others", type=int, default=20, help="other residents in the database")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="phr-web-bench-"))
    os.environ["PHR_DATA_DIR"] = str(tmp)
    os.environ["PHR_ENV"] = "test"
    os.environ["PHR_BASE_URL"] = "http://testserver"
    url = args.database_url or f"sqlite:///{(tmp / 'phr.db').as_posix()}"
    os.environ["PHR_DATABASE_URL"] = url

    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from consent.identity import cards
    from phr.app import create_app
    from phr.db import make_engine, set_engine, transaction
    from phr.migrate import upgrade
    from phr.settings import reset_settings_cache
    from phr.store.models import Resource
    from tests.web import story
    from tests.web.conftest import sign_in
    from tests.web.test_security import PAGES as HTML_PAGES

    pages = (*HTML_PAGES, "/me/download/record.json", "/me/download/summary.json")

    reset_settings_cache()
    if url.startswith("postgresql"):
        common.reset_database(url)
        engine = make_engine(url=url)
    else:
        engine = make_engine(url=url)
        upgrade(engine)
    set_engine(engine)

    t0 = time.perf_counter()
    today = date.today()
    with transaction() as session:
        rid = story.ingest_story(
            session, story.HANAKO, years=args.years, per_year=args.visits, today=today
        )
        for i in range(args.others):
            other = story.Person(
                "住民", f"{i:03d}", "1960-01-01", "male", story.mynumber(f"5{i:010d}")
            )
            story.ingest_story(session, other, years=2, per_year=4, today=today)
        cards.issue_card(session, rid, out_dir=tmp / "cards")
    load_s = time.perf_counter() - t0
    if url.startswith("postgresql"):
        common.vacuum_analyze(url)
    with transaction() as session:
        mine = dict(
            session.execute(
                select(Resource.resource_type, func.count())
                .where(Resource.resident_id == rid)
                .group_by(Resource.resource_type)
            ).all()
        )
        total = int(session.scalar(select(func.count()).select_from(Resource)) or 0)

    size = [
        {"": "resident's resources", "value": sum(mine.values())},
        *({"": f"  {t}", "value": n} for t, n in sorted(mine.items(), key=lambda kv: -kv[1])),
        {"": "resources in the database", "value": total},
        {"": "load time (s)", "value": round(load_s, 1)},
    ]

    rows: list[dict[str, Any]] = []
    with TestClient(create_app()) as client:
        sign_in(client, rid)
        for path in pages:
            for _ in range(args.warmup):
                assert client.get(path).status_code == 200, path
            times = []
            size_kb = 0.0
            for _ in range(args.rounds):
                t = time.perf_counter()
                r = client.get(path)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, path
                size_kb = len(r.content) / 1024
            times.sort()
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            rows.append(
                {
                    "page": path,
                    "p50 ms": statistics.median(times),
                    "p95 ms": p95,
                    "max ms": times[-1],
                    "KiB": size_kb,
                    "goal 300 ms": "met" if p95 < GOAL_MS else "MISSED",
                }
            )
    db = re.sub(r"//[^@]*@", "//", url) if url.startswith("postgresql") else "SQLite (file)"
    print(f"\n## Resident web app: server time per page ({db})\n")
    print(common.markdown_table(size))
    print()
    print(common.markdown_table(rows))
    print()
    print(common.machine_table(common.machine(url if url.startswith("postgresql") else None)))
    common.write_json(args.json, {"database": db, "size": size, "pages": rows})
    set_engine(None)
    engine.dispose()


if __name__ == "__main__":
    main()
