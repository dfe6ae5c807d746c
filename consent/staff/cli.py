"""``phr staff ...``: staff accounts from the command line (and the platform's first admin).

Nothing is prompted: a generated initial password and the TOTP provisioning URI are printed
once, as JSON, and never again (``--password-stdin`` reads the password instead, e.g. from
a secret manager).
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

from consent.staff.service import ROLES, StaffCredentials
from phr.errors import PHRError

__all__ = ["staff"]


def _read_password(password_stdin: bool) -> str | None:
    if not password_stdin:
        return None
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.UsageError("--password-stdin: nothing on standard input")
    return password


def _credentials(user: Any, credentials: StaffCredentials | None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": user.id,
        "organization": user.organization_id,
        "username": user.username,
        "role": user.role,
        **extra,
    }
    if credentials is not None and credentials.password is not None:
        out["initial_password"] = credentials.password
    if credentials is not None and credentials.totp_uri is not None:
        out["totp_uri"] = credentials.totp_uri
    return out


def _echo(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _fail(exc: PHRError) -> NoReturn:
    click.echo(f"error: {exc.message}", err=True)
    sys.exit(1)


@click.group()
def staff() -> None:
    """Staff accounts of organisations: password + TOTP, one role each."""


@staff.command("add")
@click.argument("org_id")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--name", "display_name", required=True, help="Display name.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (one line)."
)
def add(org_id: str, username: str, role: str, display_name: str, password_stdin: bool) -> None:
    """Create an account; print its initial password and TOTP provisioning URI (once)."""
    from consent.staff.service import create_staff
    from phr.db import transaction

    password = _read_password(password_stdin)
    try:
        with transaction() as session:
            user, credentials = create_staff(
                session,
                organization_id=org_id,
                username=username,
                display_name=display_name,
                role=role,
                password=password,
            )
            out = _credentials(user, credentials)
    except PHRError as exc:
        _fail(exc)
    _echo(out)  # only once committed


@staff.command("list")
@click.argument("org_id")
def list_(org_id: str) -> None:
    """List the accounts of an organisation (tab-separated)."""
    from consent.models import Organization
    from consent.staff.repository import list_staff
    from phr.db import transaction
    from phr.store.indexer import utcnow

    with transaction() as session:
        if session.get(Organization, org_id) is None:
            click.echo(f"error: no organization {org_id!r}", err=True)
            sys.exit(1)
        now = utcnow()
        rows = list_staff(session, org_id)
        for u in rows:
            state = "active" if u.active else "disabled"
            if u.locked_until is not None and u.locked_until > now:
                state += ",locked"
            last = u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "-"
            click.echo(f"{u.id}\t{u.username}\t{u.role}\t{state}\t{last}\t{u.display_name}")
        if not rows:
            click.echo("no staff accounts")


def _find(session: Any, org_id: str, username: str) -> Any:
    from consent.staff.repository import get_staff_by_username
    from consent.staff.service import normalise_username

    user = get_staff_by_username(
        session, organization_id=org_id, username=normalise_username(username)
    )
    if user is None:
        click.echo(f"error: no account {username!r} in {org_id!r}", err=True)
        sys.exit(1)
    return user


@staff.command("disable")
@click.argument("org_id")
@click.argument("username")
def disable(org_id: str, username: str) -> None:
    """Disable an account (its sessions end at once)."""
    from consent.staff.service import update_staff
    from phr.db import transaction

    try:
        with transaction() as session:
            update_staff(session, _find(session, org_id, username), active=False)
    except PHRError as exc:
        _fail(exc)
    click.echo(f"disabled {username} in {org_id}")


@staff.command("enable")
@click.argument("org_id")
@click.argument("username")
def enable(org_id: str, username: str) -> None:
    """Enable a disabled account again (also lifts a lockout)."""
    from consent.staff.service import update_staff
    from phr.db import transaction

    try:
        with transaction() as session:
            update_staff(session, _find(session, org_id, username), active=True)
    except PHRError as exc:
        _fail(exc)
    click.echo(f"enabled {username} in {org_id}")


@staff.command("reset")
@click.argument("org_id")
@click.argument("username")
@click.option("--password", "reset_password", is_flag=True, help="Issue a new password.")
@click.option("--totp", "reset_totp", is_flag=True, help="Issue a new TOTP secret.")
def reset(org_id: str, username: str, reset_password: bool, reset_totp: bool) -> None:
    """Reset a lost factor (and lift a lockout); print the new credentials once."""
    from consent.staff.service import update_staff
    from phr.db import transaction

    if not (reset_password or reset_totp):
        raise click.UsageError("say what to reset: --password and/or --totp")
    try:
        with transaction() as session:
            user = _find(session, org_id, username)
            credentials = update_staff(
                session, user, reset_password=reset_password, reset_totp=reset_totp
            )
            out = _credentials(user, credentials)
    except PHRError as exc:
        _fail(exc)
    _echo(out)  # only once committed


@staff.command("bootstrap")
@click.option("--username", default="admin", show_default=True)
@click.option("--name", "display_name", default="Platform administrator", show_default=True)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (one line)."
)
def bootstrap(username: str, display_name: str, password_stdin: bool) -> None:
    """Create the platform organisation and its first administrator (once)."""
    from consent.staff.service import bootstrap_platform
    from phr.db import transaction

    password = _read_password(password_stdin)
    try:
        with transaction() as session:
            user, credentials = bootstrap_platform(
                session, username=username, display_name=display_name, password=password
            )
            out = _credentials(user, credentials)
    except PHRError as exc:
        _fail(exc)
    _echo(out)  # only once committed
