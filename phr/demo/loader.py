"""``phr demo load``: a deterministic synthetic Tsukuba, loaded through the real ingest paths.

1. Residents and their health stories are generated from the seed (:mod:`phr.demo.people`,
   :mod:`phr.demo.clinical`); medicine codes come from the national drug list.
2. The organisations are registered, each with its own OAuth2 client
   (:mod:`phr.demo.orgs`); the secrets go to ``<data_dir>/demo-credentials.json``.
3. The cities' and insurers' CSV files are written under ``<data_dir>/demo/`` and imported
   with :func:`fhir_gateway.sources.import_file`, as an operator would with ``phr import``.
4. Each clinic sends one FHIR transaction Bundle per patient through
   :func:`fhir_gateway.ingest.process_bundle`; the Synthea bundles, when present, arrive
   the same way from one more hospital.

Order matters for the master patient index: the My Number files first (cities, then
insurers, older insurer first so that a change of insurer is recorded in the right
direction), then the clinics, whose patients carry the insurance identifier.

Everything is idempotent: a second run re-sends the same records, which the gateway
recognises as unchanged, and keeps the existing clients and credentials file.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from consent.actors import Actor
from fhir_gateway.identity import MYNUMBER_SYSTEM, hash_mynumber
from fhir_gateway.ingest import process_bundle
from fhir_gateway.models import IdentityLink
from phr.db import transaction
from phr.demo import bundles, clinical, files, orgs
from phr.demo.clinical import Health, health_of
from phr.demo.drugs import Catalogue
from phr.demo.people import INSURER_NUMBERS, KOKUHO, KYOKAI, generate_residents
from phr.settings import get_settings
from phr.web.demo import issue_demo_cards

__all__ = ["CREDENTIALS_FILE", "default_synthea_dir", "load"]

CREDENTIALS_FILE = "demo-credentials.json"
# Import order of the files: (organisation, kind).
FILE_ORDER: tuple[tuple[str, str], ...] = (
    ("tsuchiura-city", "vaccination"),
    ("tsuchiura-city", "checkup"),
    ("tsukuba-city", "vaccination"),
    ("tsukuba-city", "checkup"),
    ("tsukuba-city", "disability"),
    (KYOKAI, "insurer-diagnosis"),
    (KYOKAI, "insurer-dispensing"),
    (KYOKAI, "insurer-checkup"),
    (KOKUHO, "insurer-diagnosis"),
    (KOKUHO, "insurer-dispensing"),
)


def default_synthea_dir() -> Path:
    """``<repo>/../shared/data/synthea-r4`` (outside data, never copied into the repo)."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "synthea-r4"


class _Progress:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[demo {time.monotonic() - self.t0:6.1f}s] {message}", file=sys.stderr, flush=True)


def _actor(org: orgs.DemoOrg) -> Actor:
    return Actor(
        kind="organization",
        organization_id=org.id,
        client_id=org.client_id,
        organization_kind=org.kind,
        scopes=frozenset(org.scopes),
    )


def load(residents: int = 1000, seed: int = 20261124, synthea_dir: Path | None = None) -> Path:
    """Load the demo city; return the path of the credentials file."""
    from fhir_gateway.sources import import_file

    if residents < 1:
        raise ValueError("residents must be at least 1")
    progress = _Progress()
    settings = get_settings()
    settings.ensure_dirs()
    creds_path = settings.data_dir / CREDENTIALS_FILE
    synthea = Path(synthea_dir) if synthea_dir is not None else default_synthea_dir()
    synthea_files = sorted(synthea.glob("*.json")) if synthea.is_dir() else []

    # ---- 1. the people and what happened to them ------------------------------------------
    catalogue = Catalogue.load()
    people = generate_residents(seed, residents)
    stories = [health_of(r, seed, catalogue) for r in people]
    progress(f"generated {len(people)} residents (seed {seed})")

    # ---- 2. organisations and clients ------------------------------------------------------
    demo_orgs = (
        orgs.ORGANIZATIONS
        if synthea_files
        else tuple(o for o in orgs.ORGANIZATIONS if o.id != orgs.SYNTHEA.id)
    )
    old = orgs.read_credentials(creds_path)
    with transaction() as session:
        clients, changed = orgs.ensure_clients(session, demo_orgs, old)
        # The platform's own services start only with an approved, published PIA.
        from consent.pia.service import seed_platform_pias

        seed_platform_pias(session)
        from phr.triage.demo import seed_hospitals

        seed_hospitals(session)
        from phr.analytics.demo import seed_population_pias

        seed_population_pias(session)
    creds: dict[str, Any] = {
        "clients": clients,
        "token_endpoint": settings.base_url.rstrip("/") + "/oauth/token",
        "fhir_base": settings.base_url.rstrip("/") + "/fhir",
        "residents": residents,
        "seed": seed,
        "example_patients": (old or {}).get("example_patients", []) if not changed else [],
    }
    if changed or creds != old:
        orgs.write_credentials(creds_path, creds)
    progress(
        f"{len(clients)} organisations and clients ready"
        f"{' (new secrets written)' if changed else ''}"
    )

    from phr.polypharmacy.demo import load_drug_master

    load_drug_master(progress)

    # ---- 3. municipal and insurer files ----------------------------------------------------
    root = settings.data_dir / "demo"
    by_key = {(f.organization, f.kind): f for f in files.build_files(stories)}
    for org_id, kind in FILE_ORDER:
        f = by_key.get((org_id, kind))
        if f is None or not f.rows:
            continue
        path = files.write_file(f, root)
        with transaction() as session:
            report = import_file(session, organization_id=org_id, kind=kind, path=path)
        progress(
            f"{org_id} {kind}: {report.rows} rows, {report.persons} persons, "
            f"{report.created} created, {report.merged} merged, {report.unchanged} unchanged"
        )

    # ---- 4. clinic bundles -----------------------------------------------------------------
    for i, org in enumerate(orgs.CLINICS):
        counts = _send_bundles(org, i, stories)
        progress(f"{org.id}: {counts[0]} patients, {counts[1]} entries, {counts[2]} created")

    # ---- 5. Synthea ------------------------------------------------------------------------
    if synthea_files:
        actor = _actor(orgs.SYNTHEA)
        entries = created = 0
        with transaction() as session:
            for p in synthea_files:
                bundle = orjson.loads(p.read_bytes())
                if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
                    continue
                entries += len(bundle.get("entry") or [])
                created += _created(process_bundle(session, bundle, actor=actor))
        progress(
            f"{orgs.SYNTHEA.id}: {len(synthea_files)} Synthea bundles, {entries} entries, "
            f"{created} created"
        )

    # ---- 6. the credentials file with a few residents worth looking at --------------------
    creds["example_patients"] = _examples(stories)
    issue_demo_cards([p["id"] for p in creds["example_patients"]])  # web app sign-in
    from phr.acp.demo import seed as seed_acp

    seed_acp([p["id"] for p in creds["example_patients"]])
    from phr_modules.shelter.demo import seed as seed_shelter

    seed_shelter([p["id"] for p in creds["example_patients"]])

    from phr.homecare.demo import seed as seed_homecare

    seed_homecare([p["id"] for p in creds["example_patients"][:2]])
    if creds != orgs.read_credentials(creds_path):
        orgs.write_credentials(creds_path, creds)
    progress(f"done; credentials in {creds_path}")
    return creds_path


def _send_bundles(org: orgs.DemoOrg, index: int, stories: Sequence[Health]) -> tuple[int, int, int]:
    actor = _actor(org)
    facility = org.identifier_value or ""
    patients = entries = created = 0
    with transaction() as session:
        for h in stories:
            bundle = bundles.clinic_bundle(h, org.id, index, org.name, facility)
            if bundle is None:
                continue
            patients += 1
            entries += len(bundle["entry"])
            response = process_bundle(session, bundle, actor=actor)
            created += _created(response)
    return patients, entries, created


def _created(response: dict[str, Any]) -> int:
    return sum(
        1
        for e in response.get("entry", [])
        if str(e.get("response", {}).get("status", "")).startswith("201")
    )


# ---- example patients ------------------------------------------------------------------------


def _resident_ids(mynumbers: list[str]) -> dict[str, str]:
    hashes = {hash_mynumber(m): m for m in mynumbers}
    out: dict[str, str] = {}
    with transaction() as session:
        rows = session.execute(
            select(IdentityLink.value, IdentityLink.resident_id).where(
                IdentityLink.kind == "mynumber",
                IdentityLink.system == MYNUMBER_SYSTEM,
                IdentityLink.value.in_(list(hashes)),
            )
        ).all()
    for value, resident in rows:
        out[hashes[value]] = resident
    return out


def _note(h: Health) -> str:
    r = h.resident
    parts: list[str] = [f"{r.age} years, {r.district}"]
    if r.tsuchiura is not None:
        parts.append(
            f"moved in from Tsuchiura on {r.tsuchiura.moved_in.isoformat()}: older "
            "vaccinations/checkups come from 土浦市, newer from つくば市"
        )
    if r.changed_insurer:
        change = next(c.start for c in r.coverages if c.insurer == KOKUHO)
        parts.append(
            f"changed insurer on {change.isoformat()}: 協会けんぽ "
            f"({INSURER_NUMBERS[KYOKAI]}) → つくば市国保 ({INSURER_NUMBERS[KOKUHO]})"
        )
    chronic = [d.disease.display for d in h.diagnoses if d.disease.chronic]
    if chronic:
        parts.append("conditions: " + "、".join(chronic))
    meds = h.current_medicines
    prescribers = {v.clinic for v in h.visits for p in v.prescriptions if p.active}
    if meds:
        parts.append(f"{len(meds)} current medicines from {len(prescribers)} prescriber(s)")
    if h.allergies:
        parts.append("allergy: " + "、".join(a.kind.text for a in h.allergies))
    if h.disabilities:
        parts.append("disability certificate: " + "、".join(d.disability for d in h.disabilities))
    if r.age < 15:
        parts.append(f"{len(h.vaccinations)} childhood vaccinations")
    return "; ".join(parts)


def _examples(stories: Sequence[Health]) -> list[dict[str, Any]]:
    picks: list[Health] = []

    def pick(candidates: list[Health], key: Any = None) -> None:
        pool = [h for h in candidates if h not in picks]
        if key is not None:
            pool.sort(key=key)
        if pool:
            picks.append(pool[0])

    moved = [h for h in stories if h.resident.tsuchiura is not None]
    changed = [h for h in stories if h.resident.changed_insurer]
    pick([h for h in moved if h.resident.changed_insurer])
    pick(moved)
    pick(changed)
    pick(list(stories), key=lambda h: (-len(h.current_medicines), h.resident.index))
    pick([h for h in stories if h.allergies and any(d.disease is clinical.AF for d in h.diagnoses)])
    pick([h for h in stories if h.allergies])
    pick([h for h in stories if h.disabilities])
    pick([h for h in stories if h.resident.age < 12], key=lambda h: -len(h.vaccinations))
    ids = _resident_ids([h.resident.mynumber for h in picks])
    out = []
    for h in picks:
        rid = ids.get(h.resident.mynumber)
        if rid is None:
            continue
        out.append(
            {
                "id": rid,
                "name": f"{h.resident.name}（{h.resident.kana}）",
                "birth_date": h.resident.birth_date.isoformat(),
                "note": _note(h),
            }
        )
    return out
