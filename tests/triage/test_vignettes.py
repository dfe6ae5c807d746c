"""The vignette set (tests/triage/vignettes.yaml) through the anonymous triage service.

A red vignette triaged below red fails. Overall agreement is printed in the run's summary
and must stay at or above 85 %. The vignettes were written from the same guidelines the
protocols cite, by the same team: agreement here checks the engine and the data files
against their sources, it is not an independent validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from phr.triage import schemas, service
from phr.triage.protocols import RANK

REPORT: list[str] = []
VIGNETTES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).with_name("vignettes.yaml")).read_text(encoding="utf-8")
)


def triage(v: dict[str, Any]) -> str:
    body = schemas.EvaluateIn(
        complaint=v["complaint"],
        answers=v.get("answers") or {},
        age=v.get("age"),
        risk_factors=v.get("risk_factors") or [],
    )
    return service.evaluate(None, None, body).urgency  # type: ignore[arg-type]


def test_the_set_is_large_and_covers_every_protocol() -> None:
    assert len(VIGNETTES) >= 60
    assert len({v["id"] for v in VIGNETTES}) == len(VIGNETTES)
    from phr.triage.protocols import all_protocols

    assert {v["complaint"] for v in VIGNETTES} == set(all_protocols())
    assert {v["expected"] for v in VIGNETTES} == {"red", "orange", "yellow", "green", "white"}


@pytest.mark.parametrize(
    "v", [v for v in VIGNETTES if v["expected"] == "red"], ids=lambda v: v["id"]
)
def test_no_red_case_is_under_triaged(v: dict[str, Any]) -> None:
    assert triage(v) == "red", v["basis"]


def test_overall_agreement() -> None:
    results = [(v, triage(v)) for v in VIGNETTES]
    agree = sum(1 for v, got in results if got == v["expected"])
    under = [(v["id"], v["expected"], got) for v, got in results if RANK[got] < RANK[v["expected"]]]
    over = [(v["id"], v["expected"], got) for v, got in results if RANK[got] > RANK[v["expected"]]]
    reds = [v for v, _ in results if v["expected"] == "red"]
    summary = (
        f"vignettes: {len(results)}, agreement {agree}/{len(results)} "
        f"({agree / len(results):.1%}); red cases {len(reds)}, all red; "
        f"under-triaged {len(under)} {under}; over-triaged {len(over)} {over}"
    )
    print("\n" + summary)
    REPORT.append(summary)  # shown at the end of the run (tests/triage/conftest.py)
    assert agree / len(results) >= 0.85
