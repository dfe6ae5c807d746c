"""``phr drugs``: import the national drug master, screen the population."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["drugs"]


@click.group()
def drugs() -> None:
    """National drug master and polypharmacy screening (docs/polypharmacy.md)."""


@drugs.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_cmd(file: Path) -> None:
    """Import the MHLW drug price list (薬価基準収載品目リスト CSV) into the drug master."""
    from phr.db import transaction
    from phr.polypharmacy.master import import_drug_list

    with transaction() as session:
        report = import_drug_list(session, file)
    click.echo(json.dumps(report.as_dict(), ensure_ascii=False))


@drugs.command("screen")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the report (default: <data dir>/reports).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes for the checks (the reads stay in one consent-checked transaction).",
)
def screen_cmd(out_dir: Path | None, workers: int) -> None:
    """Screen every resident's current medicines; write a CSV report and a JSON summary.

    Runs as the platform's polypharmacy service under purpose MEDREVIEW (its privacy
    impact assessment must be approved); every resident read is in the access log.
    """
    from phr.db import transaction
    from phr.polypharmacy.screen import screen
    from phr.settings import get_settings

    target = out_dir or get_settings().data_dir / "reports"
    with transaction() as session:
        report = screen(session, target, workers=workers)
    click.echo(json.dumps({**report.as_dict(), "summary": report.summary_path}, ensure_ascii=False))
