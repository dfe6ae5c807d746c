"""The ``phr`` command: serve, migrate, load the demo city, import files, pull from clinics."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from phr.settings import get_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tsukuba-phr")
def main() -> None:
    """Tsukuba lifelong personal health record (PHR) platform.

    Settings come from PHR_* environment variables (see docs/operations.md):
    PHR_DATA_DIR (default var/), PHR_DATABASE_URL (default SQLite in the data dir),
    PHR_ENV (development | production), PHR_BASE_URL.
    """


# ---- server ------------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="TCP port.")
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the web app and the FHIR API with uvicorn."""
    import uvicorn

    get_settings().check_production()
    uvicorn.run(
        "phr.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )


# ---- database ----------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="heads", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (creates the SQLite file if needed)."""
    from phr.migrate import upgrade

    get_settings().ensure_dirs()
    upgrade(revision=revision)
    click.echo(f"database at {_safe_url()} is at {revision}")


def _safe_url() -> str:
    from sqlalchemy.engine import make_url

    return make_url(get_settings().resolved_database_url).render_as_string(hide_password=True)


# ---- organisations and clients -----------------------------------------------------------------


@main.group()
def org() -> None:
    """Organisations (clinics, EMS, municipalities, insurers, ...) and their OAuth2 clients."""


@org.command("add")
@click.argument("org_id")
@click.option("--name", required=True)
@click.option(
    "--kind",
    required=True,
    type=click.Choice(
        [
            "hospital",
            "clinic",
            "pharmacy",
            "ems",
            "nurse_station",
            "municipality",
            "insurer",
            "service_provider",
            "shelter",
        ]
    ),
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="Scopes of the OAuth2 client created with it (repeatable). "
    "Default: system/*.rs system/Bundle.c system/*.cu",
)
def org_add(org_id: str, name: str, kind: str, scopes: tuple[str, ...]) -> None:
    """Register an organisation and print its new OAuth2 client credentials (once)."""
    from consent.identity.clients import register_client, register_organization
    from phr.db import transaction

    with transaction() as session:
        register_organization(session, id=org_id, name=name, kind=kind)
        client, secret = register_client(
            session,
            organization_id=org_id,
            name=f"{name} client",
            scopes=list(scopes) or ["system/*.rs", "system/Bundle.c", "system/*.cu"],
        )
        click.echo(
            json.dumps(
                {
                    "organization": org_id,
                    "client_id": client.client_id,
                    "client_secret": secret,
                    "scopes": client.scopes.split(),
                },
                ensure_ascii=False,
                indent=2,
            )
        )


# ---- imports -----------------------------------------------------------------------------------

IMPORT_KINDS = [
    "vaccination",
    "checkup",
    "disability",
    "insurer-dispensing",
    "insurer-diagnosis",
    "insurer-checkup",
]


@main.command("import")
@click.argument("kind", type=click.Choice(IMPORT_KINDS))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--org", "org_id", required=True, help="Organisation id of the sender.")
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the good rows; write rejected rows to the reject file.",
)
@click.option(
    "--reject-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where rejected rows go (default: PATH.rejects.csv).",
)
def import_(
    kind: str, path: Path, org_id: str, skip_invalid: bool, reject_file: Path | None
) -> None:
    """Import a municipal or insurer CSV file (formats: docs/import-formats.md).

    The file lands whole or not at all: any bad row rejects the file with a row-level
    report, unless --skip-invalid. Exit status: 2 rejected, 3 the database is full,
    4 the database is unavailable (nothing imported in each case).
    """
    from sqlalchemy.exc import DBAPIError

    from fhir_gateway.sources import ImportRejected, import_file
    from phr.db import database_fault, transaction

    try:
        with transaction() as session:
            report = import_file(
                session,
                organization_id=org_id,
                kind=kind,
                path=path,
                skip_invalid=skip_invalid,
                reject_path=reject_file,
            )
    except ImportRejected as exc:
        click.echo(f"rejected: {path} — nothing was imported", err=True)
        for e in exc.errors:
            click.echo(f"  {e.file}:{e.row}: {e.column}: {e.reason}", err=True)
        sys.exit(2)
    except DBAPIError as exc:
        fault = database_fault(exc)
        if fault is None:
            raise
        full = fault.status_code == 507
        reason = "the database is full" if full else "the database is unavailable"
        click.echo(f"failed: {path} — {reason}; nothing was imported", err=True)
        sys.exit(3 if full else 4)
    click.echo(report.summary())


# ---- gateway pull ------------------------------------------------------------------------------


@main.group()
def gateway() -> None:
    """Exchanges with clinic FHIR servers."""


@gateway.command("pull")
@click.option("--org", "org_id", required=True, help="Organisation id of the clinic.")
@click.option("--url", "base_url", required=True, help="Base URL of the clinic's FHIR server.")
@click.option(
    "--type",
    "types",
    multiple=True,
    help="Resource types to pull (repeatable; default: the usual clinical types).",
)
@click.option("--since", help="Only resources changed since this instant (_lastUpdated=ge).")
@click.option("--token", envvar="PHR_PULL_TOKEN", help="Bearer token for the clinic server.")
def gateway_pull(
    org_id: str, base_url: str, types: tuple[str, ...], since: str | None, token: str | None
) -> None:
    """Pull records from a clinic's FHIR server, following next links, with retries."""
    from fhir_gateway.sources.pull import PullError, pull

    try:
        report = pull(
            organization_id=org_id,
            base_url=base_url,
            types=list(types) or None,
            since=since,
            token=token,
        )
    except PullError as exc:
        click.echo(exc.report.summary(), err=True)
        click.echo(f"pull stopped: {exc}", err=True)
        sys.exit(1)
    click.echo(report.summary())


# ---- master patient index ----------------------------------------------------------------------


@main.group()
def mpi() -> None:
    """Master patient index: the queue of weak or conflicting matches."""


@mpi.command("reviews")
def mpi_reviews() -> None:
    """List open match reviews."""
    from sqlalchemy import select

    from fhir_gateway.models import MatchReview
    from phr.db import transaction

    with transaction() as session:
        rows = session.scalars(
            select(MatchReview).where(MatchReview.status == "open").order_by(MatchReview.pk)
        ).all()
        for r in rows:
            click.echo(
                f"{r.pk}\t{r.reason}\tfiled-under={r.resident_id}\t"
                f"candidate={r.candidate_id}\t{r.detail}"
            )
        if not rows:
            click.echo("no open reviews")


@mpi.command("merge")
@click.argument("review_id", type=int)
@click.option("--reviewer", required=True, help="Who decided (staff id).")
def mpi_merge(review_id: int, reviewer: str) -> None:
    """Approve a review: merge the filed-under resident into the candidate."""
    from fhir_gateway.identity import merge
    from phr.db import transaction

    with transaction() as session:
        keep = merge(session, review_id, reviewer=reviewer)
    click.echo(f"merged into resident {keep}")


@mpi.command("reject")
@click.argument("review_id", type=int)
@click.option("--reviewer", required=True)
def mpi_reject(review_id: int, reviewer: str) -> None:
    """Reject a review: the two records are different people."""
    from fhir_gateway.identity import reject_review
    from phr.db import transaction

    with transaction() as session:
        reject_review(session, review_id, reviewer=reviewer)
    click.echo("rejected")


# ---- demo --------------------------------------------------------------------------------------


@main.group()
def demo() -> None:
    """The synthetic demo city."""


@demo.command("load")
@click.option("--residents", default=1000, show_default=True, type=int)
@click.option("--seed", default=20261124, show_default=True, type=int)
@click.option(
    "--synthea",
    "synthea_dir",
    type=click.Path(path_type=Path),
    help="Folder of Synthea bundles to load as one more clinic "
    "(default: ../shared/data/synthea-r4 when present).",
)
def demo_load(residents: int, seed: int, synthea_dir: Path | None) -> None:
    """Load a deterministic synthetic Tsukuba; write demo-credentials.json."""
    from phr.demo.loader import load

    path = load(residents=residents, seed=seed, synthea_dir=synthea_dir)
    click.echo(f"demo city loaded; credentials in {path}")


def _register_groups() -> None:
    """Command groups that live with their domains."""
    from consent.audit_cli import audit
    from consent.identity.cli import card, oidc
    from consent.pia.cli import pia
    from consent.staff.cli import staff
    from phr.biometrics.cli import biometrics
    from phr.bulk.cli import bulk
    from phr.homecare.cli import homecare
    from phr.polypharmacy.cli import drugs
    from phr.triage.cli import triage

    for group in (card, oidc, staff, pia, audit, triage, drugs, bulk, biometrics, homecare):
        main.add_command(group)


_register_groups()


if __name__ == "__main__":  # pragma: no cover
    main()
