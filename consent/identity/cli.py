"""``phr card`` (demo My Number cards, card registration) and ``phr oidc`` (apps).

Wired into the ``phr`` command by ``main.add_command(card)`` and ``main.add_command(oidc)``
in :mod:`phr.cli`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import click

__all__ = ["card", "oidc"]

DEFAULT_APP_SCOPES = ("openid", "fhirUser", "launch/patient", "patient/*.rs", "offline_access")


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Refusals and configuration problems as one-line messages, not tracebacks."""
    from phr.errors import PHRError
    from phr.settings import ConfigurationError

    try:
        yield
    except PHRError as exc:
        raise click.ClickException(exc.message) from exc
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@click.group()
def card() -> None:
    """My Number cards (JPKI): demo cards from the demo CA, and card registration."""


@card.command("issue")
@click.argument("resident_id")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the key and certificate PEM files [default: DATA_DIR/cards].",
)
@click.option("--expired", is_flag=True, help="A card whose validity ended yesterday.")
@click.option("--revoke", is_flag=True, help="Put the card on the demo CA's CRL at once.")
@click.option(
    "--key",
    "key_type",
    type=click.Choice(["rsa", "ec"]),
    default="rsa",
    show_default=True,
    help="RSA-2048 like JPKI cards, or EC P-256.",
)
def card_issue(
    resident_id: str, out_dir: Path | None, expired: bool, revoke: bool, key_type: str
) -> None:
    """Issue a demo card to RESIDENT_ID (key + certificate from the demo CA, linked)."""
    from consent.identity import cards
    from phr.db import transaction

    with _errors(), transaction() as session:
        issued = cards.issue_card(
            session,
            resident_id,
            out_dir=out_dir,
            expired=expired,
            revoke=revoke,
            key_type="ec" if key_type == "ec" else "rsa",
        )
    _echo_json(
        {
            "resident_id": issued.resident_id,
            "serial": issued.serial,
            "key": str(issued.key_path),
            "certificate": str(issued.certificate_path),
            "not_after": issued.not_after.isoformat() + "Z",
            "revoked": issued.revoked,
        }
    )


@card.command("revoke")
@click.argument("serial")
def card_revoke(serial: str) -> None:
    """Revoke the demo card with this hexadecimal SERIAL (adds it to the demo CA's CRL)."""
    from consent.identity import cards
    from phr.db import transaction

    with _errors(), transaction() as session:
        links = cards.revoke_card(session, serial)
    click.echo(
        f"serial {serial} is on the demo CA's revocation list"
        + (f" (card of {links[0].resident_id})" if links else " (no card link found)")
    )


@card.command("list")
@click.option("--resident", "resident_id", default=None, help="Only this resident's cards.")
def card_list(resident_id: str | None) -> None:
    """List card links: resident, serial, expiry, revocation, demo key."""
    from consent.identity import cards
    from phr.db import transaction

    with _errors(), transaction() as session:
        rows = cards.list_cards(session, resident_id=resident_id)
        _echo_json(
            [
                {
                    "resident_id": r.resident_id,
                    "serial": r.serial,
                    "issuer": r.issuer_fingerprint[:16],
                    "source": r.source,
                    "not_after": r.not_after.isoformat() + "Z",
                    "revoked_at": r.revoked_at.isoformat() + "Z" if r.revoked_at else None,
                    "demo_key": r.demo_key_path,
                }
                for r in rows
            ]
        )


@card.command("link")
@click.argument("certificate", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("resident_id")
def card_link(certificate: Path, resident_id: str) -> None:
    """Register a card CERTIFICATE (PEM/DER file) to RESIDENT_ID after checking it.

    Whoever runs this must have confirmed the person's identity (e.g. at the counter).
    """
    from consent.identity import jpki
    from phr.db import transaction

    data = certificate.read_bytes()
    text = data.decode("ascii", "replace")
    if "BEGIN CERTIFICATE" not in text:
        import base64

        text = base64.b64encode(data).decode("ascii")
    with _errors(), transaction() as session:
        link = jpki.link_card(
            session, certificate=jpki.parse_certificate(text), resident_id=resident_id
        )
        click.echo(f"card {link.serial} is registered to {link.resident_id}")


@click.group()
def oidc() -> None:
    """The OpenID Connect provider: apps that sign residents and staff in."""


@oidc.group("app")
def oidc_app() -> None:
    """Apps using the authorization-code flow (SMART App Launch)."""


@oidc_app.command("add")
@click.argument("name")
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    required=True,
    help="Exact redirect URI (repeatable).",
)
@click.option(
    "--public/--confidential",
    default=True,
    show_default=True,
    help="Public apps (browser, phone) have no secret and must use PKCE.",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="Scope the app may ask for (repeatable). Default: " + " ".join(DEFAULT_APP_SCOPES),
)
@click.option("--client-id", default=None, help="Choose the client id [default: generated].")
def oidc_app_add(
    name: str,
    redirect_uris: tuple[str, ...],
    public: bool,
    scopes: tuple[str, ...],
    client_id: str | None,
) -> None:
    """Register an app NAME; prints its client id (and secret, once, if confidential)."""
    from consent.identity.oidc import register_app_client
    from phr.db import transaction

    with _errors(), transaction() as session:
        row, secret = register_app_client(
            session,
            name=name,
            redirect_uris=list(redirect_uris),
            public=public,
            scopes=list(scopes) or list(DEFAULT_APP_SCOPES),
            client_id=client_id,
        )
        out = {
            "client_id": row.client_id,
            "public": row.public,
            "redirect_uris": row.redirect_uris.splitlines(),
            "scopes": row.scopes.split(),
        }
        if secret:
            out["client_secret"] = secret
        _echo_json(out)


@oidc_app.command("list")
def oidc_app_list() -> None:
    """List the registered apps."""
    from sqlalchemy import select

    from consent.identity.models import AppClient
    from phr.db import transaction

    with _errors(), transaction() as session:
        _echo_json(
            [
                {
                    "client_id": a.client_id,
                    "name": a.name,
                    "public": a.public,
                    "active": a.active,
                    "redirect_uris": a.redirect_uris.splitlines(),
                    "scopes": a.scopes.split(),
                }
                for a in session.scalars(select(AppClient).order_by(AppClient.created_at))
            ]
        )
