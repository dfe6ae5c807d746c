"""``phr triage``: the receiving-hospital registry at the console (the operator is trusted).

    phr triage hospitals                                   the registry and availability
    phr triage hospital ORG_ID --name 名前 --lat 36.08 --lon 140.11 \\
        --capability ct --capability stroke --24h --beds 4   register or update one
    phr triage seed-demo                                   the demo hospitals
"""

from __future__ import annotations

import click

from phr.db import transaction
from phr.errors import NotFound
from phr.triage import repository
from phr.triage.schemas import CAPABILITIES

__all__ = ["triage"]


@click.group()
def triage() -> None:
    """Triage: the receiving-hospital registry."""


@triage.command("hospitals")
def hospitals() -> None:
    """List the registry with each hospital's current availability."""
    with transaction() as session:
        for h in repository.hospitals(session):
            state = "accepting" if h.accepting else "not accepting"
            down = f" down: {','.join(h.unavailable)}" if h.unavailable else ""
            click.echo(
                f"{h.organization_id}\t{h.name}\t{h.latitude:.4f},{h.longitude:.4f}\t"
                f"{','.join(h.capabilities)}\t{'24h' if h.accepts_24h else 'day'}\t"
                f"{state}, {h.free_beds} free{down}"
            )


@triage.command("hospital")
@click.argument("organization_id")
@click.option("--name", required=True)
@click.option("--lat", type=float, required=True)
@click.option("--lon", type=float, required=True)
@click.option("--capability", "capabilities", multiple=True, type=click.Choice(CAPABILITIES))
@click.option("--24h/--day-only", "accepts_24h", default=False)
@click.option("--beds", type=click.IntRange(0, 500), default=0, help="free beds to start with")
def hospital(
    organization_id: str,
    name: str,
    lat: float,
    lon: float,
    capabilities: tuple[str, ...],
    accepts_24h: bool,
    beds: int,
) -> None:
    """Register or update a hospital (an organisation of kind hospital: ``phr org add``)."""
    from consent.models import Organization

    with transaction() as session:
        org = session.get(Organization, organization_id)
        if org is None or org.kind != "hospital":
            raise click.ClickException(
                str(NotFound(f"no hospital organisation {organization_id}; phr org add first"))
            )
        repository.upsert_hospital(
            session,
            organization_id=organization_id,
            name=name,
            latitude=lat,
            longitude=lon,
            capabilities=list(capabilities),
            accepts_24h=accepts_24h,
            free_beds=beds,
        )
    click.echo(f"{organization_id}\t{name}\t{','.join(sorted(capabilities))}")


@triage.command("seed-demo")
def seed_demo() -> None:
    """Register the demo city's receiving hospitals (idempotent)."""
    from phr.triage.demo import seed_hospitals

    with transaction() as session:
        n = seed_hospitals(session)
    click.echo(f"{n} demo hospitals registered")
