"""``phr staff ...``: accounts from the command line, credentials printed once."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy.orm import Session

from consent.identity.clients import register_organization
from consent.staff.cli import staff
from consent.staff.models import StaffUser
from consent.staff.service import totp_secret_of, verify_password


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(staff, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


class TestStaffCli:
    def test_bootstrap_creates_the_platform_administrator_and_prints_credentials_once(
        self, session: Session
    ) -> None:
        code, out, _ = run("bootstrap")
        assert code == 0, out
        printed = json.loads(out)
        assert printed["organization"] == "platform"
        assert printed["role"] == "administrator"
        user = session.get(StaffUser, printed["id"])
        assert user is not None
        assert verify_password(printed["initial_password"], user.password_hash)
        assert printed["totp_uri"].startswith("otpauth://totp/")
        code, _, err = run("bootstrap", "--username", "again")
        assert code == 1
        assert "already has an administrator" in err

    def test_add_with_password_stdin_prints_only_the_totp_uri(self, session: Session) -> None:
        register_organization(session, id="ems1", name="つくば消防", kind="ems")
        code, out, _ = run(
            "add",
            "ems1",
            "yamada",
            "--role",
            "paramedic",
            "--name",
            "山田 太郎",
            "--password-stdin",
            input="a long enough password\n",
        )
        assert code == 0, out
        printed = json.loads(out)
        assert "initial_password" not in printed
        user = session.get(StaffUser, printed["id"])
        assert user is not None
        assert verify_password("a long enough password", user.password_hash)
        assert printed["totp_uri"].endswith("period=30")
        assert totp_secret_of(user)

    def test_add_refuses_a_role_the_organisation_does_not_have(self, session: Session) -> None:
        register_organization(session, id="h1", name="H", kind="hospital")
        code, _, err = run("add", "h1", "yamada", "--role", "paramedic", "--name", "Y")
        assert code == 1
        assert "paramedic" in err

    def test_list_and_disable(self, session: Session) -> None:
        register_organization(session, id="h1", name="H", kind="hospital")
        assert run("add", "h1", "sato", "--role", "doctor", "--name", "佐藤")[0] == 0
        code, out, _ = run("list", "h1")
        assert code == 0
        assert "\tsato\tdoctor\tactive\t-\t佐藤" in out
        assert run("disable", "h1", "sato")[0] == 0
        assert "\tsato\tdoctor\tdisabled\t" in run("list", "h1")[1]
        assert run("disable", "h1", "nobody")[0] == 1

    def test_reset_prints_new_credentials_and_enable_lifts_a_disable(
        self, session: Session
    ) -> None:
        register_organization(session, id="h1", name="H", kind="hospital")
        run("add", "h1", "sato", "--role", "doctor", "--name", "佐藤")
        run("disable", "h1", "sato")
        code, out, _ = run("reset", "h1", "sato", "--password", "--totp")
        assert code == 0, out
        printed = json.loads(out)
        assert printed["initial_password"] and printed["totp_uri"]
        assert "\tsato\tdoctor\tdisabled\t" in run("list", "h1")[1]
        assert run("enable", "h1", "sato")[0] == 0
        assert "\tsato\tdoctor\tactive\t" in run("list", "h1")[1]
