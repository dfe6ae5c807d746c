"""Fixtures of the ACP tests: residents with real tokens, cheap argon2 for trusted
persons' passphrases, the platform PIAs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy.orm import Session

from consent.staff.service import configure_password_hasher
from tests.consent.audit.conftest import resident_token  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def cheap_argon2() -> Iterator[None]:
    configure_password_hasher(PasswordHasher.from_parameters(profiles.CHEAPEST))
    yield
    configure_password_hasher(None)


@pytest.fixture(autouse=True)
def pias(session: Session) -> None:
    from consent.pia.service import seed_platform_pias

    seed_platform_pias(session)
    session.commit()
