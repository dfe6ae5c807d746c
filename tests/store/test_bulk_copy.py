"""put_many(copy=True) writes exactly the rows put_many writes with INSERT (COPY on
PostgreSQL, the INSERT path itself elsewhere)."""

from __future__ import annotations

import copy as copying
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from phr.store.models import INDEX_MODELS, Resource, ResourceVersion
from phr.store.repository import Put, put_many

NOW = datetime(2026, 11, 25, 1, 2, 3)
RESIDENT = "bulk-copy-resident"


def _resources() -> list[dict[str, Any]]:
    patient = {
        "resourceType": "Patient",
        "id": RESIDENT,
        "name": [{"family": "筑波", "given": ["花子"]}],
        "gender": "female",
        "birthDate": "1950-04-01",
    }
    out = [patient]
    for i in range(30):
        out.append(
            {
                "resourceType": "Observation",
                "id": f"bulk-copy-obs-{i}",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                "subject": {"reference": f"Patient/{RESIDENT}"},
                "effectiveDateTime": f"2025-0{1 + i % 9}-15T09:00:00+09:00",
                "valueQuantity": {"value": 5.0 + i / 10, "unit": "%", "code": "%"},
            }
        )
    return out


def _rows(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the write produced, with database keys replaced by (type, id)."""
    key = {
        r.pk: (r.resource_type, r.id)
        for r in session.execute(select(Resource.pk, Resource.resource_type, Resource.id))
    }
    out: dict[str, list[tuple[Any, ...]]] = {}
    for model in (Resource, ResourceVersion, *INDEX_MODELS):
        table: Any = model.__table__
        cols = [c for c in table.columns if c.name != "pk"]
        rows = []
        for row in session.execute(select(*cols)).all():
            d = dict(row._mapping)
            if "resource_pk" in d:
                d["resource_pk"] = key[d["resource_pk"]]
            rows.append(tuple(sorted((k, str(v)) for k, v in d.items())))
        out[table.name] = sorted(rows)
    return out


def test_copy_writes_the_same_rows_as_insert(session: Session) -> None:
    produced = []
    for use_copy in (False, True):
        nested = session.begin_nested()
        written = put_many(
            session,
            [Put(copying.deepcopy(r), RESIDENT) for r in _resources()],
            now=NOW,
            copy=use_copy,
        )
        assert [w.outcome for w in written] == ["created"] * 31
        assert len({w.pk for w in written}) == 31
        session.flush()
        produced.append(_rows(session))
        nested.rollback()
    by_insert, by_copy = produced
    assert by_insert["resource"] and by_insert["search_token"] and by_insert["search_date"]
    assert by_copy == by_insert


def test_copy_then_update_versions_the_resource(session: Session) -> None:
    obs = _resources()[1]
    put_many(session, [Put(copying.deepcopy(obs), RESIDENT)], now=NOW, copy=True)
    changed = copying.deepcopy(obs)
    changed["status"] = "amended"
    [w] = put_many(session, [Put(changed, RESIDENT)], copy=True)
    assert (w.outcome, w.version_id) == ("updated", 2)
    versions = session.scalars(
        select(ResourceVersion.version_id).where(ResourceVersion.id == obs["id"])
    ).all()
    assert sorted(versions) == [1, 2]
