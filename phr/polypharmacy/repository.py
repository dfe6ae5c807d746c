"""All SQL of the polypharmacy service (drug master and finding workflow state)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from phr.polypharmacy.models import DrugProduct, FindingState
from phr.store.models import Resident

__all__ = [
    "existing_codes",
    "finding",
    "insert_products",
    "product_count",
    "product_rows",
    "products_by_codes",
    "resident_keys",
    "update_products",
    "upsert_findings",
    "worklist",
]

_CHUNK = 500


def existing_codes(session: Session) -> set[str]:
    return set(session.scalars(select(DrugProduct.code)))


def insert_products(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    for i in range(0, len(rows), 2000):
        session.execute(insert(DrugProduct), list(rows[i : i + 2000]))


def update_products(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    for i in range(0, len(rows), 2000):
        session.execute(update(DrugProduct), list(rows[i : i + 2000]))


def product_rows(session: Session) -> list[tuple[str, str, str, str, str, str, str, str]]:
    """Every product as (code, name, ingredient, route, category, form, brand, strength)."""
    return [
        tuple(r)  # type: ignore[misc]
        for r in session.execute(
            select(
                DrugProduct.code,
                DrugProduct.name,
                DrugProduct.ingredient,
                DrugProduct.route,
                DrugProduct.category,
                DrugProduct.form,
                DrugProduct.brand,
                DrugProduct.strength,
            )
        )
    ]


def product_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(DrugProduct)) or 0)


def products_by_codes(session: Session, codes: Iterable[str]) -> dict[str, DrugProduct]:
    wanted = sorted(set(codes))
    out: dict[str, DrugProduct] = {}
    for i in range(0, len(wanted), _CHUNK):
        for p in session.scalars(
            select(DrugProduct).where(DrugProduct.code.in_(wanted[i : i + _CHUNK]))
        ):
            out[p.code] = p
    return out


def resident_keys(session: Session, *, after: str, limit: int) -> list[str]:
    """The next ``limit`` active resident keys after ``after`` (keyset paging).

    Keys only — the roster a population job walks; everything about a resident is then
    read through the consent-checked reader. (A Patient search paged by offset was measured
    at ~0.45 s a page of 500 on a 100,000-resident store: it sorts the whole table.)
    """
    return list(
        session.scalars(
            select(Resident.id)
            .where(Resident.status == "active", Resident.id > after)
            .order_by(Resident.id)
            .limit(limit)
        )
    )


def upsert_findings(
    session: Session, owner: str, rows: Sequence[dict[str, Any]], now: datetime
) -> int:
    """Record findings on the owner's worklist: new ones open (one bulk insert), seen ones
    touched (``last_seen``). Returns how many were new."""
    residents = sorted({r["resident_id"] for r in rows})
    known: set[tuple[str, str]] = set()
    for i in range(0, len(residents), _CHUNK):
        known.update(
            (resident, fingerprint)
            for resident, fingerprint in session.execute(
                select(FindingState.resident_id, FindingState.fingerprint).where(
                    FindingState.owner == owner,
                    FindingState.resident_id.in_(residents[i : i + _CHUNK]),
                )
            )
        )
    new: dict[tuple[str, str], dict[str, Any]] = {}
    seen: list[tuple[str, str]] = []
    for r in rows:
        key = (r["resident_id"], r["fingerprint"])
        if key in known:
            seen.append(key)
        elif key not in new:
            new[key] = {
                **r,
                "owner": owner,
                "state": "open",
                "first_seen": now,
                "last_seen": now,
                "acted_by": None,
                "acted_at": None,
                "note": None,
            }
    if new:
        session.execute(insert(FindingState), list(new.values()))
    for i in range(0, len(seen), _CHUNK):
        part = seen[i : i + _CHUNK]
        session.execute(
            update(FindingState)
            .where(
                FindingState.owner == owner,
                tuple_(FindingState.resident_id, FindingState.fingerprint).in_(part),
            )
            .values(last_seen=now)
        )
    return len(new)


def worklist(
    session: Session, owner: str, states: Sequence[str], limit: int, offset: int
) -> list[FindingState]:
    return list(
        session.scalars(
            select(FindingState)
            .where(FindingState.owner == owner, FindingState.state.in_(list(states)))
            .order_by(FindingState.last_seen.desc(), FindingState.id)
            .limit(limit)
            .offset(offset)
        )
    )


def finding(session: Session, owner: str, finding_id: str) -> FindingState | None:
    return session.scalar(
        select(FindingState).where(FindingState.id == finding_id, FindingState.owner == owner)
    )
