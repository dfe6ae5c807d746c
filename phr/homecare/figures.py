"""Figures for a station and for the city, per month: requests, referrals to 119, visits,
time from the request to the nurse's arrival (median, 90th percentile), and the share of
visits treated at home, transported, or left for follow-up. From the workflow tables only
(no record is read, nothing about a person leaves). Cells are counts of requests, so a
station's month with a handful of requests is shown as it is to the station itself; the
city view suppresses cells under ``SMALL_CELL`` like the municipal analytics do."""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from datetime import datetime

from sqlalchemy.orm import Session

from consent.actors import Actor
from phr.errors import Forbidden
from phr.homecare import flows, repository
from phr.homecare.schemas import FiguresRow

__all__ = ["SMALL_CELL", "as_csv", "figures"]

SMALL_CELL = 10
CITY = "city"


def _p90(values: list[float]) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def rows(
    data: list[tuple[str, datetime, datetime | None, str, str | None]], station: str
) -> list[FiguresRow]:
    months: dict[str, list[tuple[datetime, datetime | None, str, str | None]]] = defaultdict(list)
    for _, created, arrived, status, outcome in data:
        months[created.strftime("%Y-%m")].append((created, arrived, status, outcome))
    out = []
    for month in sorted(months):
        items = months[month]
        waits = [(a - c).total_seconds() / 60 for c, a, _, _ in items if a is not None]
        outcomes = [o for _, _, s, o in items if s == flows.CLOSED and o]
        n_out = len(outcomes)
        home = outcomes.count("treated_at_home")
        transported = outcomes.count("transported")
        out.append(
            FiguresRow(
                month=month,
                station_id=station,
                requests=len(items),
                referred_119=sum(1 for _, _, s, _ in items if s == flows.REFERRED),
                visits=len(waits),
                median_minutes_to_visit=round(statistics.median(waits), 1) if waits else None,
                p90_minutes_to_visit=round(_p90(waits), 1) if waits else None,
                treated_at_home=home,
                transported=transported,
                follow_up=outcomes.count("follow_up"),
                share_treated_at_home=round(home / n_out, 3) if n_out else None,
                share_transported=round(transported / n_out, 3) if n_out else None,
            )
        )
    return out


def _suppress(r: FiguresRow) -> FiguresRow:
    if r.requests >= SMALL_CELL:
        return r
    return FiguresRow(
        month=r.month,
        station_id=r.station_id,
        requests=0,
        referred_119=0,
        visits=0,
        median_minutes_to_visit=None,
        p90_minutes_to_visit=None,
        treated_at_home=0,
        transported=0,
        follow_up=0,
        share_treated_at_home=None,
        share_transported=None,
    )


def figures(*, session: Session, actor: Actor, scope: str) -> list[FiguresRow]:
    """``scope`` is ``station`` (the caller's own station, any of its staff) or ``city``
    (all stations: municipality staff, or any station's staff; small cells suppressed)."""
    if actor.kind != "staff" or not actor.organization_id:
        raise Forbidden("figures are for staff")
    if scope == "station":
        if actor.organization_kind != "nurse_station":
            raise Forbidden("station figures are for a visiting-nurse station's staff")
        return rows(repository.figures_rows(session, actor.organization_id), actor.organization_id)
    if actor.organization_kind not in ("nurse_station", "municipality"):
        raise Forbidden("city figures are for stations and the municipality")
    return [_suppress(r) for r in rows(repository.figures_rows(session, None), CITY)]


def as_csv(data: list[FiguresRow]) -> str:
    buf = io.StringIO()
    fields = list(FiguresRow.model_fields)
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in data:
        w.writerow({k: "" if v is None else v for k, v in r.model_dump().items()})
    return buf.getvalue()
