"""``phr bulk``: run bulk export jobs without the web worker thread.

phr bulk run        run every queued $export job now (when PHR_BULK_WORKERS=0, e.g. cron)
phr bulk recover    mark jobs a stopped server had started as failed
phr bulk purge      delete finished jobs older than PHR_BULK_RETENTION_HOURS (cron)
"""

from __future__ import annotations

import click

__all__ = ["bulk"]


@click.group()
def bulk() -> None:
    """FHIR Bulk Data export jobs."""


@bulk.command("run")
def run() -> None:
    from phr.bulk.worker import run_pending

    click.echo(f"{run_pending()} export job(s) run")


@bulk.command("recover")
def recover() -> None:
    from phr.bulk.worker import recover as do_recover

    failed, queued = do_recover()
    click.echo(f"{failed} interrupted job(s) marked failed, {queued} still queued")


@bulk.command("purge")
def purge() -> None:
    """Delete finished export jobs (and their files) past PHR_BULK_RETENTION_HOURS."""
    from phr.bulk.worker import purge_expired

    click.echo(f"{purge_expired()} expired export job(s) deleted")
