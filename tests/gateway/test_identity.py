"""The master patient index: insurance history and My Number linking."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_gateway.identity import (
    SourceIdentity,
    insurance_system,
    links_of,
    resolve,
    valid_mynumber,
)
from fhir_gateway.models import IdentityLink
from phr.errors import InvalidInput

MYNUMBER = "123456789018"  # synthetic; the check digit is right


def ident(*ids: tuple[str, str, str], start: date | None = None) -> SourceIdentity:
    return SourceIdentity(organization_id="org", identifiers=list(ids), insurance_from=start)


def insurance(session: Session, resident: str) -> list[tuple[str, date | None, date | None]]:
    rows = session.scalars(
        select(IdentityLink)
        .where(IdentityLink.resident_id == resident, IdentityLink.kind == "insurance")
        .order_by(IdentityLink.valid_from)
    )
    return [(r.value, r.valid_from, r.valid_to) for r in rows]


class TestMyNumber:
    def test_the_check_digit_is_verified(self) -> None:
        assert valid_mynumber(MYNUMBER)
        assert not valid_mynumber("123456789012")

    def test_an_invalid_number_is_refused(self, session: Session) -> None:
        with pytest.raises(InvalidInput):
            resolve(session, ident(("mynumber", "", "123456789012")))

    def test_the_same_number_from_two_sources_is_one_resident(self, session: Session) -> None:
        a = resolve(session, ident(("mynumber", "", MYNUMBER)))
        b = resolve(
            session,
            ident(
                ("mynumber", "", MYNUMBER), ("insurance", insurance_system("01080016"), "1-2-00")
            ),
        )
        assert a.resident_id == b.resident_id and b.matched_by == "mynumber"
        assert all(MYNUMBER not in link.value for link in links_of(session, a.resident_id))


class TestInsuranceHistory:
    def test_a_new_insurer_ends_the_previous_one(self, session: Session) -> None:
        r = resolve(
            session,
            ident(
                ("mynumber", "", MYNUMBER),
                ("insurance", insurance_system("A"), "old"),
                start=date(2020, 4, 1),
            ),
        ).resident_id
        resolve(
            session,
            ident(
                ("mynumber", "", MYNUMBER),
                ("insurance", insurance_system("B"), "new"),
                start=date(2024, 4, 1),
            ),
        )
        assert insurance(session, r) == [
            ("old", date(2020, 4, 1), date(2024, 4, 1)),
            ("new", date(2024, 4, 1), None),
        ]

    def test_an_older_number_learned_late_does_not_end_the_current_one(
        self, session: Session
    ) -> None:
        r = resolve(
            session,
            ident(
                ("mynumber", "", MYNUMBER),
                ("insurance", insurance_system("B"), "new"),
                start=date(2024, 4, 1),
            ),
        ).resident_id
        resolve(
            session,
            ident(
                ("mynumber", "", MYNUMBER),
                ("insurance", insurance_system("A"), "old"),
                start=date(2020, 4, 1),
            ),
        )
        assert insurance(session, r) == [
            ("old", date(2020, 4, 1), date(2024, 4, 1)),
            ("new", date(2024, 4, 1), None),
        ]
