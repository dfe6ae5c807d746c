"""``phr audit``: verify and seal the access log, deliver queued notifications.

Wire into ``phr/cli.py`` with ``main.add_command(audit)``.
"""

from __future__ import annotations

import sys

import click

__all__ = ["audit"]


@click.group()
def audit() -> None:
    """The tamper-evident access log and the notification outbox."""


@audit.command("verify")
@click.option(
    "--since-seal",
    is_flag=True,
    help="Check only what was appended after the newest seal that still holds.",
)
@click.option("--batch", default=10_000, show_default=True, type=click.IntRange(100, 1_000_000))
@click.option(
    "--no-chain",
    is_flag=True,
    help="Do not chain pending entries first (a read-only check of what is chained).",
)
def verify(since_seal: bool, batch: int, no_chain: bool) -> None:
    """Chain pending entries, then walk the hash chain and the seals; exit 1 at the first
    sign of tampering."""
    from consent.audit import verify_chain
    from consent.audit_chainer import chain_once
    from phr.db import transaction

    if not no_chain:
        chain_once()
    with transaction() as session:
        report = verify_chain(session, since_seal=since_seal, batch_size=batch)
    if report.head_seq >= report.start_seq:
        scope = f"seq {report.start_seq}-{report.head_seq}"
    else:
        scope = "nothing after the last seal" if report.head_seq else "empty log"
    if report.ok:
        pending = f", {report.pending} not chained yet" if report.pending else ""
        click.echo(
            f"access log intact: {report.checked} entries ({scope}), "
            f"{report.seals_checked} seal(s) checked{pending}"
        )
        return
    click.echo(
        f"access log FAILED verification ({report.checked} entries checked, {scope}); "
        f"first problem at seq {report.first_bad_seq}:",
        err=True,
    )
    for problem in report.problems:
        click.echo(f"  - {problem}", err=True)
    sys.exit(1)


@audit.command("chain")
def chain() -> None:
    """Append the entries written since the last round to the hash chain.

    Each server process does this every PHR_AUDIT_CHAIN_INTERVAL seconds; run it from
    cron only when that is set to 0.
    """
    from consent.audit_chainer import chain_once

    click.echo(f"chained {chain_once()} entries")


@audit.command("seal")
@click.option(
    "--no-verify", is_flag=True, help="Seal without verifying the entries since the last seal."
)
def seal(no_verify: bool) -> None:
    """Sign the chain head with the Ed25519 seal key (run it from cron, e.g. hourly)."""
    from consent.audit import seal as make_seal
    from phr.db import transaction
    from phr.errors import Conflict

    try:
        with transaction() as session:
            row = make_seal(session, verify=not no_verify)
            out = (
                f"sealed seq {row.seq_from}-{row.seq_to} head {row.head_hash[:16]}... "
                f"key {row.key_id[:16]}"
                if row is not None
                else "nothing to seal: no entries since the last seal"
            )
    except Conflict as exc:
        click.echo(f"not sealed: {exc.message}", err=True)
        sys.exit(1)
    click.echo(out)


@audit.command("seal-key")
def seal_key() -> None:
    """Print the public seal key (PEM) and its key id."""
    from consent.audit import load_seal_key

    key = load_seal_key()
    click.echo(f"key_id {key.key_id}")
    click.echo(key.public_pem(), nl=False)


@audit.command("deliver-outbox")
@click.option("--limit", default=500, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--max-attempts", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option(
    "--outbox",
    "spec",
    default=None,
    help="Delivery adapter module:Class (default PHR_OUTBOX or the spool-file LoggingOutbox).",
)
def deliver_outbox(limit: int, max_attempts: int, spec: str | None) -> None:
    """Send pending mail/SMS notifications through the outbox adapter."""
    from consent.notifications import deliver_outbox as deliver
    from consent.notifications import load_outbox
    from phr.db import transaction

    adapter = load_outbox(spec)
    with transaction() as session:
        result = deliver(session, adapter, limit=limit, max_attempts=max_attempts)
    click.echo(f"sent {result.sent}, to retry {result.retry}, failed {result.failed}")
