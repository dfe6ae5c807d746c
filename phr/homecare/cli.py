"""``phr homecare``: set up home-care patients for a demo or a pilot."""

from __future__ import annotations

import json

import click

from phr.homecare import demo


@click.group()
def homecare() -> None:
    """Online home-care support (オンライン在宅療養支援)."""


@homecare.command("demo")
@click.argument("resident_ids", nargs=-1, required=True)
@click.option("--station", default=demo.STATION, show_default=True)
@click.option("--clinic", default=demo.CLINIC, show_default=True)
@click.option("--pharmacy", default=demo.PHARMACY, show_default=True)
def demo_command(resident_ids: tuple[str, ...], station: str, clinic: str, pharmacy: str) -> None:
    """Enrol demo residents (their home-care consent, care team, deposited stock with one
    expired lot) and make the demo staff; prints the new accounts' credentials as JSON."""
    made = demo.seed(resident_ids, station=station, clinic=clinic, pharmacy=pharmacy)
    click.echo(json.dumps(made, ensure_ascii=False))
