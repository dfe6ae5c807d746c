"""Demo cards for the demo city's example residents, so that ``make run`` can be tried in
the web app at once (sign-in page → demo cards). Idempotent: a resident who already has a
demo card gets no second one."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from consent.identity import cards
from consent.identity.models import CardLink
from phr.db import transaction

__all__ = ["issue_demo_cards"]


def issue_demo_cards(resident_ids: Sequence[str]) -> int:
    """Issue a demo card to each resident that has none; returns how many were issued."""
    issued = 0
    with transaction() as session:
        have = set(
            session.scalars(
                select(CardLink.resident_id).where(
                    CardLink.resident_id.in_(list(resident_ids)),
                    CardLink.demo_key_path.is_not(None),
                )
            )
        )
        for rid in resident_ids:
            if rid not in have:
                cards.issue_card(session, rid)
                issued += 1
    return issued
