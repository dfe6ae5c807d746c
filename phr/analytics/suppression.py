"""Small-cell suppression of aggregate tables (no one can be singled out).

Primary: a cell is suppressed when its population (denominator) is below ``k`` or its
count (numerator) is between 1 and ``k - 1``. Secondary: the overall total of every table
is published, so a table with exactly one suppressed cell would give that cell away by
subtraction; then the smallest other cell is suppressed too. Suppressed cells publish no
numbers at all (numerator, denominator and rate are empty).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["K_MIN", "suppress"]

K_MIN = 10


def suppress(table: pd.DataFrame, *, k: int = K_MIN, by: list[str] | None = None) -> pd.DataFrame:
    """``table`` has ``numerator`` and ``denominator``; ``by`` names columns that separate
    independent tables (e.g. one per vaccine). Returns a copy with ``rate`` and
    ``suppressed`` and the counts of suppressed cells blanked."""
    out = table.copy()
    num, den = out["numerator"], out["denominator"]
    out["suppressed"] = (den < k) | ((num > 0) & (num < k))
    groups = [part.index for _, part in out.groupby(by, sort=False)] if by else [out.index]
    for idx in groups:
        part = out.loc[idx]
        if int(part["suppressed"].sum()) == 1 and len(part) > 1:
            smallest = part.loc[~part["suppressed"], "denominator"].idxmin()
            out.loc[smallest, "suppressed"] = True
    out["rate"] = (out["numerator"] / out["denominator"]).round(4)
    mask = out["suppressed"]
    out["numerator"] = out["numerator"].astype("Int64").mask(mask)
    out["denominator"] = out["denominator"].astype("Int64").mask(mask)
    out["rate"] = out["rate"].mask(mask)
    return out
