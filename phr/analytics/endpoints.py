"""Analytics for the city's analysts (staff session, role ``analyst`` at a municipality).

GET /api/analytics                       the indicators
GET /api/analytics/{name}                one indicator as JSON
    ?start=YYYY-MM-DD&end=YYYY-MM-DD     period (default: the last 365 days)
    &format=csv|parquet                  download instead (Parquet when pyarrow is there)
GET /analytics                           the staff page: every indicator, with bars
"""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response

from consent.pia.endpoints import StaffPrincipal, require_staff_role
from phr.analytics import indicators, population, service
from phr.db import SessionDep
from phr.errors import Forbidden

__all__ = ["router"]

router = APIRouter(tags=["analytics"])


def analyst(
    principal: Annotated[StaffPrincipal, Depends(require_staff_role("analyst"))],
) -> StaffPrincipal:
    if principal.organization_kind != "municipality":
        raise Forbidden("analytics are for analysts of the municipality")
    return principal


Analyst = Annotated[StaffPrincipal, Depends(analyst)]


def _period(start: date | None, end: date | None) -> population.Period:
    default = service.default_period()
    return population.Period(start or default.start, end or default.end)


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(k): (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in row.items()}
        for row in table.astype(object).to_dict(orient="records")
    ]


@router.get("/api/analytics")
def list_indicators(_: Analyst) -> list[dict[str, str]]:
    return [
        {"name": name, "description": (fn.__doc__ or "").strip()}
        for name, (fn, _by) in indicators.INDICATORS.items()
    ]


@router.get("/api/analytics/{name}", response_model=None)
def indicator(
    name: str,
    session: SessionDep,
    who: Analyst,
    start: date | None = None,
    end: date | None = None,
    format: Annotated[str, Query(pattern="^(json|csv|parquet)$")] = "json",
) -> Response | dict[str, Any]:
    period = _period(start, end)
    table = service.compute(session, [name], analyst=who.user_id, period=period)[name]
    filename = f"{name}_{period.start}_{period.end}"
    if format == "csv":
        return Response(
            service.to_csv(table),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
        )
    if format == "parquet":
        return Response(
            service.to_parquet(table),
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": f'attachment; filename="{filename}.parquet"'},
        )
    return {
        "indicator": name,
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "k": service.K_MIN,
        "cells": _records(table),
    }


@router.get("/analytics", response_class=HTMLResponse)
def page(
    session: SessionDep, who: Analyst, start: date | None = None, end: date | None = None
) -> str:
    period = _period(start, end)
    names = list(indicators.INDICATORS)
    tables = service.compute(session, names, analyst=who.user_id, period=period)
    parts = [
        "<!doctype html><html lang=ja><meta charset=utf-8><title>Analytics</title>",
        "<h1>健康指標 Population health indicators</h1>",
        f"<p>{period.start} – {period.end}. "
        f"Cells under {service.K_MIN} people are suppressed (—).</p>",
    ]
    for name, table in tables.items():
        parts.append(f"<h2>{escape(name)}</h2>")
        query = f"format=csv&start={period.start}&end={period.end}"
        parts.append(f"<p><a href='/api/analytics/{name}?{query}'>CSV</a></p>")
        parts.append(_html_table(table))
    return "".join(parts) + "</html>"


def _html_table(table: pd.DataFrame) -> str:
    if table.empty:
        return "<p>No data.</p>"
    dims = [c for c in table.columns if c not in ("numerator", "denominator", "rate", "suppressed")]
    head = "".join(f"<th>{escape(c)}</th>" for c in [*dims, "n", "count", "rate"])
    rows = []
    for r in _records(table):
        rate = r["rate"]
        bar = "—"
        if rate is not None:
            style = f"display:inline-block;background:#4a7;height:.8em;width:{rate * 200:.0f}px"
            bar = f"<span style='{style}'></span> {rate:.1%}"
        cells = "".join(f"<td>{escape(str(r[d]))}</td>" for d in dims)
        n = "—" if r["denominator"] is None else r["denominator"]
        c = "—" if r["numerator"] is None else r["numerator"]
        rows.append(f"<tr>{cells}<td>{n}</td><td>{c}</td><td>{bar}</td></tr>")
    return f"<table border=1><tr>{head}</tr>{''.join(rows)}</table>"
