"""Research extracts (staff session; role ``analyst`` at the municipality, which runs the
city's research data service).

    POST /api/research/extracts   {"project", "types", "quasi_identifiers"?, "k"?}
        200: {"report", "subjects", "resources"} — or 422 with the k-anonymity report
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from phr.analytics.endpoints import Analyst
from phr.db import SessionDep
from phr.research import service
from phr.research.schemas import ExtractRequest

__all__ = ["router"]

router = APIRouter(tags=["research"])


@router.post("/api/research/extracts")
def create_extract(body: ExtractRequest, session: SessionDep, who: Analyst) -> dict[str, Any]:
    return service.extract(
        session,
        project=body.project,
        types=body.types,
        quasi=body.quasi_identifiers,
        k=body.k,
        requested_by=who.user_id,
    )
