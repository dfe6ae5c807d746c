"""Staff accounts: argon2 passwords, roles per organisation kind, sign-in, lockout, sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import Type
from sqlalchemy.orm import Session

from consent.identity.clients import register_organization
from consent.models import Organization
from consent.staff import service, totp
from consent.staff.service import (
    DEFAULT_PASSWORD_HASHER,
    LOCKOUT,
    SIGN_IN_FAILED,
    authenticate_staff,
    check_role,
    hash_password,
    staff_actor,
    verify_password,
)
from phr.errors import Conflict, InvalidInput, NotAuthenticated
from phr.store.indexer import utcnow

from .conftest import Account, StaffFactory


def code_at(account: Account, now: datetime, steps_ahead: int = 0) -> str:
    return totp.totp(account.secret, now.replace(tzinfo=UTC).timestamp() + 30 * steps_ahead)


def sign_in(
    session: Session, account: Account, now: datetime, **overrides: str
) -> service.StaffUser:
    args = {
        "organization_id": account.organization_id,
        "username": account.username,
        "password": account.password,
        "totp_code": code_at(account, now),
    }
    args.update(overrides)
    return authenticate_staff(session, now=now, **args)


class TestPasswords:
    def test_the_production_profile_is_argon2id_with_rfc_9106_parameters(self) -> None:
        params = DEFAULT_PASSWORD_HASHER
        assert params.type is Type.ID
        assert (params.time_cost, params.memory_cost, params.parallelism) == (3, 65536, 4)
        stored = params.hash("s3cret-enough!")
        assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert verify_password("s3cret-enough!", stored)

    def test_passwords_are_hashed_with_argon2id_and_salted(self) -> None:
        first, second = hash_password("s3cret-enough!"), hash_password("s3cret-enough!")
        assert first.startswith("$argon2id$")
        assert first != second
        assert "s3cret" not in first

    def test_the_right_password_verifies_and_a_wrong_one_does_not(self) -> None:
        stored = hash_password("s3cret-enough!")
        assert verify_password("s3cret-enough!", stored)
        assert not verify_password("s3cret-enough?", stored)
        assert not verify_password("s3cret-enough!", "not a hash")


class TestRoles:
    @pytest.mark.parametrize(
        ("role", "kind"),
        [
            ("doctor", "hospital"),
            ("doctor", "clinic"),
            ("nurse", "nurse_station"),
            ("pharmacist", "pharmacy"),
            ("pharmacist", "hospital"),
            ("paramedic", "ems"),
            ("clerk", "insurer"),
            ("analyst", "municipality"),
            ("analyst", "insurer"),
            ("administrator", "platform"),
            ("administrator", "ems"),
        ],
    )
    def test_a_role_is_accepted_where_such_staff_work(self, role: str, kind: str) -> None:
        check_role(role, kind)

    @pytest.mark.parametrize(
        ("role", "kind"),
        [
            ("paramedic", "hospital"),
            ("pharmacist", "clinic"),
            ("doctor", "pharmacy"),
            ("analyst", "hospital"),
            ("doctor", "platform"),
            ("clerk", "platform"),
            ("surgeon", "hospital"),
        ],
    )
    def test_a_role_is_refused_where_such_staff_do_not_work(self, role: str, kind: str) -> None:
        with pytest.raises(InvalidInput):
            check_role(role, kind)

    def test_creating_a_paramedic_in_a_hospital_is_refused(self, session: Session) -> None:
        register_organization(session, id="h1", name="H", kind="hospital")
        with pytest.raises(InvalidInput, match="paramedic"):
            service.create_staff(
                session, organization_id="h1", username="p", display_name="P", role="paramedic"
            )


class TestAccounts:
    def test_a_new_account_gets_a_generated_password_and_an_encrypted_totp_secret(
        self, session: Session
    ) -> None:
        register_organization(session, id="h1", name="H", kind="hospital")
        user, credentials = service.create_staff(
            session, organization_id="h1", username="Sato", display_name="佐藤", role="doctor"
        )
        assert user.username == "sato"
        assert credentials.password and len(credentials.password) >= 20
        assert verify_password(credentials.password, user.password_hash)
        assert credentials.totp_uri and credentials.totp_uri.startswith("otpauth://totp/")
        b32 = totp.b32_secret(service.totp_secret_of(user))
        assert b32 in credentials.totp_uri
        assert b32 not in user.totp_secret
        assert user.totp_secret.startswith("v1.")

    def test_a_username_is_unique_within_its_organisation_only(
        self, make_staff: StaffFactory
    ) -> None:
        make_staff("h1", "sato", "doctor")
        make_staff("h2", "sato", "doctor")
        with pytest.raises(Conflict):
            make_staff("h1", "SATO", "nurse")

    def test_the_last_active_administrator_cannot_be_disabled(
        self, session: Session, make_staff: StaffFactory
    ) -> None:
        admin = make_staff("h1", "boss", "administrator")
        with pytest.raises(Conflict):
            service.update_staff(session, admin.user, active=False)
        make_staff("h1", "deputy", "administrator")
        service.update_staff(session, admin.user, active=False)
        assert not admin.user.active


class TestAuthenticate:
    def test_the_right_password_and_code_sign_in(
        self, session: Session, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        now = utcnow()
        user = sign_in(session, account, now)
        assert user.id == account.user.id
        assert user.last_login_at == now
        assert user.totp_last_step == totp.time_step(now.replace(tzinfo=UTC).timestamp())

    def test_a_code_used_once_cannot_sign_in_again(
        self, session: Session, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        now = utcnow()
        code = code_at(account, now)
        sign_in(session, account, now, totp_code=code)
        with pytest.raises(NotAuthenticated):
            sign_in(session, account, now + timedelta(seconds=10), totp_code=code)
        # The next code still works.
        sign_in(session, account, now, totp_code=code_at(account, now, steps_ahead=1))

    @pytest.mark.parametrize(
        "wrong",
        [
            {"password": "wrong horse battery staple"},
            {"totp_code": "000000"},
            {"username": "nobody"},
            {"organization_id": "elsewhere"},
        ],
        ids=["password", "totp", "username", "organization"],
    )
    def test_every_failure_says_the_same_generic_thing(
        self, session: Session, make_staff: StaffFactory, wrong: dict[str, str]
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        now = utcnow()
        if wrong.get("totp_code") == code_at(account, now):  # pragma: no cover - 1 in 10^6
            wrong = {"totp_code": "000001"}
        with pytest.raises(NotAuthenticated) as failed:
            sign_in(session, account, now, **wrong)
        assert failed.value.message == SIGN_IN_FAILED

    def test_five_failures_lock_the_account_for_fifteen_minutes(
        self, session: Session, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        now = utcnow()
        for i in range(5):
            with pytest.raises(NotAuthenticated):
                sign_in(session, account, now + timedelta(seconds=i), password="wrong password!")
        session.refresh(account.user)
        assert account.user.locked_until == now + timedelta(seconds=4) + LOCKOUT
        # Locked: even the right credentials fail, with the same message.
        with pytest.raises(NotAuthenticated) as failed:
            sign_in(session, account, now + timedelta(minutes=14))
        assert failed.value.message == SIGN_IN_FAILED
        # After the lock the account signs in again.
        user = sign_in(session, account, now + timedelta(minutes=16))
        assert user.failed_attempts == 0
        assert user.locked_until is None

    def test_a_success_resets_the_count_of_failures(
        self, session: Session, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        now = utcnow()
        for _ in range(4):
            with pytest.raises(NotAuthenticated):
                sign_in(session, account, now, password="wrong password!")
        assert sign_in(session, account, now).failed_attempts == 0

    def test_a_disabled_account_or_organisation_cannot_sign_in(
        self, session: Session, make_staff: StaffFactory
    ) -> None:
        disabled = make_staff("h1", "sato", "doctor")
        disabled.user.active = False
        other = make_staff("h2", "kato", "doctor")
        h2 = session.get(Organization, "h2")
        assert h2 is not None
        service.update_organization(session, h2, active=False)
        now = utcnow()
        for account in (disabled, other):
            with pytest.raises(NotAuthenticated):
                sign_in(session, account, now)


class TestSessions:
    def test_a_session_lasts_while_used_and_ends_after_thirty_idle_minutes(
        self, session: Session, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        now = utcnow()
        token = service.start_session(session, account.user, now=now)
        assert (
            service.staff_for_session(session, token, now=now + timedelta(minutes=29)) is not None
        )
        later = now + timedelta(minutes=29 + 29)
        assert service.staff_for_session(session, token, now=later) is not None
        assert service.staff_for_session(session, token, now=later + timedelta(minutes=31)) is None

    def test_a_session_ends_after_twelve_hours_however_busy(
        self, session: Session, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        now = utcnow()
        token = service.start_session(session, account.user, now=now)
        t = now
        while t + timedelta(minutes=20) < now + timedelta(hours=12):
            t += timedelta(minutes=20)
            assert service.staff_for_session(session, token, now=t) is not None
        assert service.staff_for_session(session, token, now=now + timedelta(hours=12)) is None

    def test_only_a_hash_of_the_session_token_is_stored(
        self, session: Session, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        token = service.start_session(session, account.user)
        assert session.get(service.StaffSession, token) is None
        assert service.staff_for_session(session, token) is not None
        assert service.staff_for_session(session, token + "x") is None

    def test_disabling_an_account_ends_its_sessions(
        self, session: Session, make_staff: StaffFactory
    ) -> None:
        account = make_staff("h1", "sato", "doctor")
        token = service.start_session(session, account.user)
        service.update_staff(session, account.user, active=False)
        service.update_staff(session, account.user, active=True)
        assert service.staff_for_session(session, token) is None


class TestStaffActor:
    def test_a_staff_actor_carries_the_person_role_organisation_and_scopes(
        self, make_staff: StaffFactory
    ) -> None:
        account = make_staff("ems1", "yamada", "paramedic", kind="ems")
        actor = staff_actor(account.user, client_id="ems-app", scopes=["user/*.rs"])
        assert actor.kind == "staff"
        assert actor.user_id == account.user.id
        assert actor.organization_id == "ems1"
        assert actor.organization_kind == "ems"
        assert actor.role == "paramedic"
        assert actor.client_id == "ems-app"
        assert actor.scopes == frozenset({"user/*.rs"})


class TestBootstrap:
    def test_bootstrap_creates_the_platform_and_its_first_administrator_once(
        self, session: Session
    ) -> None:
        user, credentials = service.bootstrap_platform(session)
        assert user.organization_id == "platform"
        assert user.role == "administrator"
        assert service.is_platform_administrator(session, user)
        assert credentials.password and credentials.totp_uri
        with pytest.raises(Conflict):
            service.bootstrap_platform(session, username="second")
