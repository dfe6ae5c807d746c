"""Staff accounts for the tests: real argon2 hashes, real TOTP secrets, real sessions."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.identity.clients import register_organization
from consent.staff import totp
from consent.staff.models import StaffUser
from consent.staff.service import (
    configure_password_hasher,
    create_staff,
    start_session,
    totp_secret_of,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def cheap_argon2() -> Iterator[None]:
    """Still argon2id, with the cheapest parameters: the suite would otherwise spend minutes
    hashing. ``TestPasswords`` checks the production profile itself."""
    configure_password_hasher(PasswordHasher.from_parameters(profiles.CHEAPEST))
    yield
    configure_password_hasher(None)


@dataclass
class Account:
    user: StaffUser
    organization_id: str
    username: str
    password: str
    secret: bytes

    def code(self, steps_ahead: int = 0) -> str:
        """The authenticator's code now (or ``steps_ahead`` 30-second steps later)."""
        return totp.totp(self.secret, time.time() + totp.PERIOD * steps_ahead)

    def login_body(self, **overrides: str) -> dict[str, str]:
        body = {
            "organization_id": self.organization_id,
            "username": self.username,
            "password": self.password,
            "totp": self.code(),
        }
        body.update(overrides)
        return body


StaffFactory = Callable[..., Account]


@pytest.fixture
def make_staff(session: Session) -> StaffFactory:
    """An account in ``org_id`` (created with ``kind`` when it does not exist)."""

    def make(org_id: str, username: str, role: str, *, kind: str = "hospital") -> Account:
        register_organization(session, id=org_id, name=f"{org_id} ({kind})", kind=kind)
        user, _ = create_staff(
            session,
            organization_id=org_id,
            username=username,
            display_name=f"{username} ({role})",
            role=role,
            password=PASSWORD,
        )
        return Account(user, org_id, username, PASSWORD, totp_secret_of(user))

    return make


BrowserFactory = Callable[[Account | None], TestClient]


@pytest.fixture
def browser(app: Any, session: Session) -> Iterator[BrowserFactory]:
    """A separate cookie jar per person: signed in (a real session row) or anonymous."""
    opened: list[TestClient] = []

    def open_(account: Account | None = None) -> TestClient:
        c = TestClient(app)
        opened.append(c)
        if account is not None:
            c.cookies.set("phr_staff", start_session(session, account.user))
        return c

    yield open_
    for c in opened:
        c.close()
