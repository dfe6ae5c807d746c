"""Municipal analytics as a platform service: aggregates leave it, records never do.

Analysts (staff role ``analyst``) read no one's record (``consent.engine.ROLE_PURPOSES``).
The indicators are computed by the platform service ``analytics``: an actor of the
platform organisation with ``service="analytics"`` (no approved PIA under that name, no
data) reading for public health (``PUBHLTH``) through the choke point. The platform
organisation contributes no records, so what it sees is exactly what residents shared for
public health and statistics (a consent naming that purpose for any recipient or for the
platform). Each computation is logged once per resident whose data was used, with the
analyst's name. Only suppressed aggregates (k ≥ 10) are returned.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import pandas as pd
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from consent.pia.service import PLATFORM_ORG
from consent.policy.service import emergency_consent_holders
from phr.analytics import indicators, population
from phr.analytics.suppression import K_MIN, suppress
from phr.errors import InvalidInput, NotFound
from phr.store.indexer import utcnow
from phr.store.reader import RecordReader

__all__ = ["K_MIN", "SERVICE", "compute", "default_period", "service_actor", "to_csv", "to_parquet"]

SERVICE = "analytics"


def service_actor(user: str, service: str = SERVICE) -> Actor:
    """A platform service acting for a staff member: the platform organisation (which
    contributes no records, so only residents' consents open anything), the service's name
    (its PIA gates it) and the person who asked (in the access log)."""
    return Actor(
        kind="organization",
        client_id=service,
        organization_id=PLATFORM_ORG[0],
        organization_kind="platform",
        user_id=user,
        service=service,
    )


def default_period(today: date | None = None) -> population.Period:
    end = today or (utcnow() + timedelta(hours=9)).date()  # JST
    return population.Period(end - timedelta(days=365), end)


def compute(
    session: Session,
    names: list[str],
    *,
    analyst: str,
    period: population.Period | None = None,
    k: int = K_MIN,
) -> dict[str, pd.DataFrame]:
    """The requested indicators over one pass of the consented records."""
    unknown = [n for n in names if n not in indicators.INDICATORS]
    if unknown:
        raise NotFound(f"no indicator {', '.join(unknown)}")
    if k < K_MIN:
        raise InvalidInput(f"cells are suppressed below k = {K_MIN} at least")
    period = period or default_period()
    if period.start > period.end:
        raise InvalidInput("the period starts after it ends")
    reader = RecordReader(session, service_actor(analyst), Purpose.PUBLIC_HEALTH)
    frame = population.resident_frame(
        reader,
        period,
        period.end,
        indicators.observation_codes(),
        detail=f"analytics {','.join(names)} {period.start}..{period.end}",
    )
    if "emergency-consent" in names:
        # The pre-consent is a privacy consent no reader sees: the consent registry says
        # which of these residents (already here for public health) hold one, and only
        # the suppressed counts leave (ADR 0007).
        holders = emergency_consent_holders(session, frame["resident"].tolist())
        frame["emergency"] = frame["resident"].isin(holders)
    out = {}
    for name in names:
        fn, by = indicators.INDICATORS[name]
        cells = fn(frame)
        total = (
            pd.DataFrame(
                [
                    {
                        "numerator": int(cells["numerator"].sum()),
                        "denominator": int(cells["denominator"].sum()),
                    }
                ]
            )
            if by is None
            else None
        )
        table = (
            suppress(cells, k=k, by=by) if not cells.empty else cells.assign(rate=[], suppressed=[])
        )
        if total is not None and not cells.empty:
            t = suppress(total, k=k)
            t.insert(0, "age_band", "total")
            table = pd.concat([table, t], ignore_index=True)
        out[name] = table
    return out


def to_csv(table: pd.DataFrame) -> str:
    return str(table.to_csv(index=False))


def to_parquet(table: pd.DataFrame) -> bytes:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise InvalidInput("Parquet needs pyarrow, which is not installed; use CSV") from None
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    return buf.getvalue()
