"""Research extracts as the platform service ``research`` (its own PIA, purpose HRESCH).

Only residents whose consent covers research (a permit for ``HRESCH``: the platform
organisation contributes no records, so consent is the only way in) are read. First the
Patients alone, to build the generalised quasi-identifiers and the k-anonymity report;
an extract whose smallest equivalence class is below ``k`` (at least 10) is refused
before any other record is read. Then the requested types of those residents, through
the choke point, each resource pseudonymised (:mod:`phr.research.pseudonymise`). Every
resident read is logged (once per pass) with the requesting person's name.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy.orm import Session

from consent.actors import Purpose
from fhir_gateway.validation import known_type
from phr.analytics.service import service_actor
from phr.analytics.suppression import K_MIN
from phr.errors import InvalidInput, UnprocessableResource
from phr.research.pseudonymise import Pseudonymiser
from phr.store.indexer import utcnow
from phr.store.reader import RecordReader

__all__ = ["QUASI_IDENTIFIERS", "SERVICE", "extract", "k_report"]

SERVICE = "research"
QUASI_IDENTIFIERS = ("age_band", "sex", "district")


def k_report(subjects: list[dict[str, Any]], quasi: list[str], k: int) -> dict[str, Any]:
    """Re-identification risk: equivalence classes of the quasi-identifiers."""
    classes = Counter(tuple(s.get(q) for q in quasi) for s in subjects)
    smallest = min(classes.values()) if classes else 0
    below = {c: n for c, n in classes.items() if n < k}
    return {
        "subjects": len(subjects),
        "quasi_identifiers": quasi,
        "k_required": k,
        "k_achieved": smallest,
        "equivalence_classes": len(classes),
        "classes_below_k": len(below),
        "subjects_in_classes_below_k": sum(below.values()),
        # Prosecutor risk: the chance of re-identifying the most exposed person.
        "max_reidentification_risk": round(1 / smallest, 4) if smallest else None,
        "accepted": bool(classes) and smallest >= k,
    }


def extract(
    session: Session,
    *,
    project: str,
    types: list[str],
    requested_by: str,
    quasi: list[str] | None = None,
    k: int = K_MIN,
) -> dict[str, Any]:
    if k < K_MIN:
        raise InvalidInput(f"k must be at least {K_MIN}")
    quasi = list(quasi if quasi is not None else QUASI_IDENTIFIERS)
    bad = [q for q in quasi if q not in QUASI_IDENTIFIERS]
    if bad:
        raise InvalidInput(f"unknown quasi-identifiers {bad}; choose from {QUASI_IDENTIFIERS}")
    bad = [t for t in types if not known_type(t)]
    if bad:
        raise InvalidInput(f"unknown resource types {bad}")
    reader = RecordReader(session, service_actor(requested_by, SERVICE), Purpose.RESEARCH)
    pseudo = Pseudonymiser(project)
    today = (utcnow() + timedelta(hours=9)).date()
    subjects: dict[str, dict[str, Any]] = {}
    for _, resident, content in reader.export(
        types=["Patient"], shared=False, detail=f"research extract {project}: subjects"
    ):
        if resident:
            subjects[resident] = pseudo.subject(orjson.loads(content), today, quasi)
    report = k_report(list(subjects.values()), quasi, k)
    if not report["accepted"]:
        raise UnprocessableResource(
            f"extract refused: k-anonymity {report['k_achieved']} is below {k}; "
            "generalise further (fewer quasi-identifiers) or widen the cohort",
            issues=[
                {
                    "severity": "error",
                    "code": "too-costly",
                    "diagnostics": "k-anonymity",
                    "report": report,
                }
            ],
        )
    resources = []
    others = sorted(set(types) - {"Patient"})
    if others:
        for _, resident, content in reader.export(
            types=others,
            shared=False,
            residents=list(subjects),
            detail=f"research extract {project}: records",
        ):
            if resident in subjects:
                resources.append(pseudo.resource(orjson.loads(content), resident))
    return {
        "project": project,
        "generated": today.isoformat(),
        "report": report,
        "subjects": sorted(subjects.values(), key=lambda s: s["subject"]),
        "resources": resources,
    }
