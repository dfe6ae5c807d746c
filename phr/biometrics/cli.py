"""``phr biometrics``: maintenance of the face gallery.

phr biometrics refresh   copy sex, birth date and home postal code again from the golden
                         Patient of every enrollment whose Patient changed since (the gateway
                         does it as it ingests; this catches changes written elsewhere)
"""

from __future__ import annotations

import click

__all__ = ["biometrics"]


@click.group()
def biometrics() -> None:
    """The face gallery of paramedic identification."""


@biometrics.command("refresh")
def refresh() -> None:
    """Refresh the narrowing attributes of enrollments whose golden Patient changed."""
    from phr.biometrics.service import refresh_stale
    from phr.db import transaction

    with transaction() as session:
        n = refresh_stale(session)
    click.echo(f"{n} enrollment(s) refreshed")
