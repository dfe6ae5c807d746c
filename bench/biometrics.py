"""1:N face search over a city's gallery: enrollment in bulk, index load, search latency.

Enrolls ``--templates`` synthetic residents (default 260,000, Tsukuba's population), one
random unit vector each, sealed exactly as the service seals them, with random sex, birth
date (1925-2024) and home postal code (one of 40), in bulk on PostgreSQL. Then:

* load: the whole gallery read, every template decrypted, into the in-memory index
  (time, index memory, process RSS growth);
* search: the exact matcher alone (``TemplateIndex.search``), and the whole service call
  (``service.identify`` in its own transaction: generation check, rate-limit counter,
  search, access-log append and candidate notification, commit), p50/p90/p99 over
  ``--searches`` probes each, without and with narrowing. Probes are enrolled templates
  moved to cosine 0.97 (a genuine-looking probe: found, with the ranking path taken);
* a deletion: withdraw one resident, then the next search (which applies the tombstone).

    python bench/biometrics.py --database-url postgresql+psycopg://USER:PASS@HOST/DB

The database's public schema is DROPPED and re-migrated (``--reuse`` keeps a loaded one).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import common  # bench/common.py
import numpy as np

POSTAL_CODES = [f"305{n:04d}" for n in range(0, 80, 2)]  # 40 districts
ACTOR_KWARGS = {
    "kind": "staff",
    "user_id": "bench-medic",
    "client_id": "bench-tablet",
    "organization_id": "bench-ems",
    "organization_kind": "ems",
    "role": "paramedic",
}


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def enroll_bulk(url: str, n: int, seed: int, batch: int = 10_000) -> dict[str, Any]:
    """Residents, enrollments and sealed templates, ``batch`` rows per statement."""
    from sqlalchemy import insert

    from consent.identity.clients import register_organization
    from phr.biometrics import repository as repo
    from phr.biometrics import service
    from phr.biometrics.extractor import TEMPLATE_DIM
    from phr.biometrics.models import BiometricEnrollment
    from phr.db import make_engine, set_engine, transaction
    from phr.store.indexer import utcnow
    from phr.store.models import Resident

    engine = make_engine(url=url)
    set_engine(engine)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    sealing = 0.0
    with transaction() as s:
        register_organization(s, id="bench-ems", name="bench EMS", kind="ems")
        generation = repo.next_generation(s)
        now = utcnow()
        born_from = date(1925, 1, 1).toordinal()
        for start in range(0, n, batch):
            size = min(batch, n - start)
            vectors = rng.standard_normal((size, TEMPLATE_DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            sexes = rng.choice(["male", "female"], size)
            births = rng.integers(born_from, date(2024, 12, 31).toordinal(), size)
            districts = rng.choice(POSTAL_CODES, size)
            ids = [f"bench-{start + i:07d}" for i in range(size)]
            s.execute(
                insert(Resident),
                [{"id": rid, "created_at": now, "status": "active"} for rid in ids],
            )
            s.execute(
                insert(BiometricEnrollment),
                [
                    {
                        "resident_id": rid,
                        "status": "active",
                        "consent_version": service.CONSENT_VERSION,
                        "photo_consent": False,
                        "consented_at": now,
                        "sex": str(sexes[i]),
                        "birth_date": date.fromordinal(int(births[i])),
                        "district": str(districts[i]),
                        "updated_at": now,
                    }
                    for i, rid in enumerate(ids)
                ],
            )
            t_seal = time.perf_counter()
            rows = []
            for i, rid in enumerate(ids):
                tid = str(uuid.UUID(bytes=rng.bytes(16), version=4))
                rows.append(
                    {
                        "id": tid,
                        "resident_id": rid,
                        "generation": generation,
                        "dim": TEMPLATE_DIM,
                        "sealed": service.seal_template(tid, rid, vectors[i]),
                        "source": "vector",
                        "extractor": None,
                        "created_at": now,
                    }
                )
            sealing += time.perf_counter() - t_seal
            repo.add_templates(s, rows)
    seconds = time.perf_counter() - t0
    set_engine(None)
    engine.dispose()
    return {"templates": n, "seconds": round(seconds, 1), "sealing_seconds": round(sealing, 1)}


def probes(index: Any, count: int, seed: int) -> list[np.ndarray]:
    """Enrolled templates moved to cosine 0.97: what a new photo of an enrolled face is."""
    rng = np.random.default_rng(seed + 1)
    rows = rng.integers(0, len(index), count)
    out = []
    for r in rows:
        base = index._vec[int(r)].astype(np.float64)
        noise = rng.standard_normal(base.shape[0])
        noise -= noise.dot(base) * base
        noise /= np.linalg.norm(noise)
        out.append((0.97 * base + np.sqrt(1 - 0.97**2) * noise).astype(np.float32))
    return out


NARROWINGS: dict[str, dict[str, Any]] = {
    "none": {},
    "sex": {"sex": "female"},
    "sex + age 70-79": {"sex": "female", "age_min": 70, "age_max": 79},
    "sex + age 70-79 + district": {
        "sex": "female",
        "age_min": 70,
        "age_max": 79,
        "district": POSTAL_CODES[3],
    },
}


def summarize(name: str, kind: str, ms: list[float], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "what": kind,
        "narrowing": name,
        "searches": len(ms),
        **extra,
        "p50_ms": round(common.percentile(ms, 50), 2),
        "p90_ms": round(common.percentile(ms, 90), 2),
        "p99_ms": round(common.percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
    }


def measure(url: str, searches: int, seed: int) -> dict[str, Any]:
    from consent.actors import Actor
    from phr.biometrics import service
    from phr.db import make_engine, set_engine, transaction
    from phr.settings import get_settings

    engine = make_engine(url=url)
    set_engine(engine)
    get_settings().biometric_searches_per_minute = 10**9  # the bench is one busy paramedic
    actor = Actor(**ACTOR_KWARGS)  # type: ignore[arg-type]
    service.reset_index()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    with transaction() as s:
        index = service.gallery_index(s)
    load_s = time.perf_counter() - t0
    load = {
        "templates": len(index),
        "seconds": round(load_s, 2),
        "index_mib": round(index.memory_bytes / 2**20, 1),
        "rss_growth_mib": round((rss_bytes() - rss0) / 2**20, 1),
    }
    probe_list = probes(index, searches, seed)
    threshold = get_settings().biometric_match_threshold
    results = []
    for name, kw in NARROWINGS.items():
        narrow = service.narrowing(**kw)
        for p in probe_list[:10]:  # warm-up
            index.search(p, threshold=threshold, limit=3, narrowing=narrow)
        ms, compared = [], 0
        for p in probe_list:
            t = time.perf_counter()
            _, compared = index.search(p, threshold=threshold, limit=3, narrowing=narrow)
            ms.append((time.perf_counter() - t) * 1000)
        results.append(summarize(name, "matcher", ms, {"compared": compared}))
        ms = []
        found = 0
        for p in probe_list:
            t = time.perf_counter()
            with transaction() as s:
                got = service.identify(s, actor, p.tolist(), **kw)
            ms.append((time.perf_counter() - t) * 1000)
            found += bool(got)
        results.append(
            summarize(name, "identify() + commit", ms, {"compared": compared, "found": found})
        )
    # A deletion, then the next search in this process applies its tombstone.
    victim = Actor(kind="resident", resident_id="bench-0000000", client_id="bench")
    with transaction() as s:
        service.withdraw(s, victim)
    t = time.perf_counter()
    with transaction() as s:
        service.identify(s, actor, probe_list[0].tolist())
    after_delete_ms = (time.perf_counter() - t) * 1000
    set_engine(None)
    engine.dispose()
    return {
        "load": load,
        "search": results,
        "first_search_after_a_deletion_ms": round(after_delete_ms, 2),
        "threshold": threshold,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--database-url",
        default=os.environ.get(
            "PHR_BENCH_DATABASE_URL", "postgresql+psycopg://phr:phr@127.0.0.1/phr_bench"
        ),
        help="PostgreSQL database; its public schema is DROPPED (default: %(default)s)",
    )
    p.add_argument("--templates", type=int, default=260_000)
    p.add_argument("--searches", type=int, default=500, help="probes per scenario")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--reuse", action="store_true", help="keep the loaded gallery")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    os.environ.setdefault("PHR_DATA_DIR", str(common.ROOT / "var" / "bench-biometrics"))

    info = common.machine(args.database_url)
    print(common.machine_table(info), "\n")
    enrolled: dict[str, Any] = {"templates": "reused"}
    if not args.reuse:
        common.reset_database(args.database_url)
        enrolled = enroll_bulk(args.database_url, args.templates, args.seed)
        common.vacuum_analyze(args.database_url)
        print(
            f"enrolled {args.templates:,} templates in {enrolled['seconds']} s "
            f"(sealing {enrolled['sealing_seconds']} s)\n"
        )
    r = measure(args.database_url, args.searches, args.seed)
    load = r["load"]
    print(
        f"index load: {load['templates']:,} templates in {load['seconds']} s; index "
        f"{load['index_mib']} MiB, process RSS +{load['rss_growth_mib']} MiB\n"
    )
    print(common.markdown_table(r["search"]))
    print(f"\nfirst search after a deletion: {r['first_search_after_a_deletion_ms']} ms")
    common.write_json(args.json, {"machine": info, "enrolled": enrolled, **r})


if __name__ == "__main__":
    main()
