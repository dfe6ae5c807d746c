"""``phr pia``: run the PIA register without the web (the operator at the console is trusted).

Wire it with ``main.add_command(pia)`` in phr/cli.py.

    phr pia questionnaire > answers.json     the 22 items / 64 questions
    phr pia new acp --name "…" --org platform --by alice
    phr pia answer ID answers.json           answers, or a document of fields to replace
    phr pia submit ID --by alice
    phr pia approve ID --by bob [--review-due 2027-12-31]
    phr pia publish ID --by bob
    phr pia return ID --by bob --reason "…"   /   phr pia withdraw ID --by bob --reason "…"
    phr pia list [--service acp] [--status published]
    phr pia show ID
    phr pia seed                             the platform's own services, approved and published
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from phr.errors import PHRError

__all__ = ["pia"]


def _fail(exc: Exception) -> None:
    if isinstance(exc, PHRError):
        lines = [exc.message] + [f"  - {i.get('diagnostics')}" for i in exc.issues]
        raise click.ClickException("\n".join(lines))
    if isinstance(exc, ValidationError):
        lines = [f"  - {'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()[:20]]
        raise click.ClickException("invalid input\n" + "\n".join(lines))
    raise exc


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@click.group()
def pia() -> None:
    """Privacy impact assessments (つくばPIA): draft, submit, approve, publish."""


@pia.command("questionnaire")
def pia_questionnaire() -> None:
    """Print the questionnaire (22 items, 64 questions) as JSON."""
    from consent.pia.endpoints import questionnaire_json

    _echo_json(questionnaire_json())


@pia.command("new")
@click.argument("service_id")
@click.option("--name", required=True, help="Service name (Japanese).")
@click.option("--name-en", default=None, help="Service name (English).")
@click.option("--org", "organization_id", default=None, help="Operator organisation id.")
@click.option("--by", "by", required=True, help="Who drafts it (staff id).")
@click.option(
    "--from",
    "from_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSON document of fields (purposes, risks, answers, ...).",
)
@click.option("--fresh", is_flag=True, help="Do not copy the previous version's content.")
def pia_new(
    service_id: str,
    name: str,
    name_en: str | None,
    organization_id: str | None,
    by: str,
    from_file: Path | None,
    fresh: bool,
) -> None:
    """Start a draft for SERVICE_ID (a new version if it was assessed before)."""
    from consent.pia import service
    from consent.pia.schemas import PiaCreate
    from phr.db import transaction

    doc: dict[str, Any] = json.loads(from_file.read_text("utf-8")) if from_file else {}
    doc.update({"service_id": service_id, "service_name": name, "copy_previous": not fresh})
    if name_en is not None:
        doc["service_name_en"] = name_en
    if organization_id is not None:
        doc["organization_id"] = organization_id
    try:
        with transaction() as session:
            pia_row = service.create_draft(session, data=PiaCreate.model_validate(doc), by=by)
            click.echo(f"{pia_row.id}\t{pia_row.service_id}\tversion {pia_row.version}\tdraft")
    except (PHRError, ValidationError) as exc:
        _fail(exc)


@pia.command("answer")
@click.argument("pia_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", "by", default="cli", show_default=True)
def pia_answer(pia_id: str, file: Path, by: str) -> None:
    """Fill a draft from FILE: answers ({"I01.1": "yes", ...}) or a document of fields."""
    from consent.pia import questionnaire, service
    from consent.pia.schemas import PiaUpdate
    from phr.db import transaction

    doc = json.loads(file.read_text("utf-8"))
    if not isinstance(doc, dict):
        raise click.ClickException("FILE must hold a JSON object")
    if doc and all(key in questionnaire.QUESTIONS for key in doc):
        doc = {"answers": doc}
    try:
        with transaction() as session:
            current = service.get(session, pia_id)
            if "answers" in doc:
                # Answers given in parts add up; a field document replaces the rest.
                doc["answers"] = {**(current.answers or {}), **doc["answers"]}
            pia_row = service.update_draft(
                session, pia_id=pia_id, data=PiaUpdate.model_validate(doc), by=by
            )
            missing = questionnaire.unanswered(pia_row.answers or {})
            click.echo(
                f"{pia_row.id}: {len(questionnaire.QUESTIONS) - len(missing)}/"
                f"{len(questionnaire.QUESTIONS)} answered, {len(pia_row.risks or [])} risks"
            )
    except (PHRError, ValidationError) as exc:
        _fail(exc)


def _transition(action: str, pia_id: str, by: str, **kw: Any) -> None:
    from consent.pia import service
    from consent.pia.models import PiaAssessment
    from phr.db import transaction

    actions: dict[str, Callable[..., PiaAssessment]] = {
        "submit": service.submit,
        "approve": service.approve,
        "publish": service.publish,
        "withdraw": service.withdraw,
        "return": service.return_to_draft,
    }
    fn = actions[action]
    try:
        with transaction() as session:
            pia_row = fn(session, pia_id=pia_id, by=by, **kw)
            click.echo(
                f"{pia_row.id}\t{pia_row.service_id}\tversion {pia_row.version}\t{pia_row.status}"
            )
    except PHRError as exc:
        _fail(exc)


@pia.command("submit")
@click.argument("pia_id")
@click.option("--by", "by", required=True)
def pia_submit(pia_id: str, by: str) -> None:
    """Submit a complete draft for approval."""
    _transition("submit", pia_id, by)


@pia.command("approve")
@click.argument("pia_id")
@click.option("--by", "by", required=True)
@click.option("--review-due", type=click.DateTime(formats=["%Y-%m-%d"]), default=None)
def pia_approve(pia_id: str, by: str, review_due: Any) -> None:
    """Approve a submitted assessment (supersedes the version in force)."""
    due: date | None = review_due.date() if review_due is not None else None
    _transition("approve", pia_id, by, review_due=due)


@pia.command("publish")
@click.argument("pia_id")
@click.option("--by", "by", required=True)
def pia_publish(pia_id: str, by: str) -> None:
    """Publish an approved assessment's summary at /pia."""
    _transition("publish", pia_id, by)


@pia.command("return")
@click.argument("pia_id")
@click.option("--by", "by", required=True)
@click.option("--reason", required=True)
def pia_return(pia_id: str, by: str, reason: str) -> None:
    """Send a submitted assessment back to draft."""
    _transition("return", pia_id, by, reason=reason)


@pia.command("withdraw")
@click.argument("pia_id")
@click.option("--by", "by", required=True)
@click.option("--reason", required=True)
def pia_withdraw(pia_id: str, by: str, reason: str) -> None:
    """Withdraw an assessment; if it was in force, the service gets nothing from now on."""
    _transition("withdraw", pia_id, by, reason=reason)


@pia.command("list")
@click.option("--service", "service_id", default=None)
@click.option("--status", default=None)
def pia_list(service_id: str | None, status: str | None) -> None:
    """List assessments: id, service, version, status, overall rating, review due."""
    from consent.pia import rating, repository
    from phr.db import transaction

    with transaction() as session:
        for p in repository.list_all(session, service_id=service_id, status=status):
            level = rating.level(p.overall_level).label if p.overall_level else "-"
            due = p.review_due.isoformat() if p.review_due else "-"
            click.echo(f"{p.id}\t{p.service_id}\tv{p.version}\t{p.status}\t{level}\t{due}")


@pia.command("show")
@click.argument("pia_id")
def pia_show(pia_id: str) -> None:
    """Print one assessment as JSON, with its rated risks."""
    from consent.pia import service
    from phr.db import transaction

    try:
        with transaction() as session:
            _echo_json(service.read(session, service.get(session, pia_id)).model_dump(mode="json"))
    except PHRError as exc:
        _fail(exc)


@pia.command("seed")
@click.option("--org", "organization_id", default="platform", show_default=True)
def pia_seed(organization_id: str) -> None:
    """Approved and published PIAs for the platform's own services (idempotent)."""
    from consent.pia import service
    from phr.db import transaction

    with transaction() as session:
        created = service.seed_platform_pias(session, organization_id=organization_id)
        for p in created:
            click.echo(f"{p.id}\t{p.service_id}\tv{p.version}\t{p.status}")
        click.echo(f"{len(created)} assessments created")
