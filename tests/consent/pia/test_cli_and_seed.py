"""``phr pia`` runs the register without the web; the seed gives the platform's services PIAs."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy.orm import Session

from consent.pia import repository, service
from consent.pia.cli import pia
from consent.pia.seed import PLATFORM_SERVICES

from .conftest import all_yes, complete


def _run(*args: str) -> str:
    result = CliRunner().invoke(pia, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_cli_takes_an_assessment_from_draft_to_published(
    session: Session, orgs: dict[str, str], tmp_path: Path
) -> None:
    out = _run("new", "shelter", "--name", "避難所", "--org", "tsukuba-care-co", "--by", "alice")
    pia_id = out.split("\t")[0]
    doc = {k: v for k, v in complete().items() if k not in ("service_id", "organization_id")}
    doc.pop("answers")
    (tmp_path / "doc.json").write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    (tmp_path / "answers.json").write_text(json.dumps(all_yes()), "utf-8")
    assert "0/64 answered, 1 risks" in _run("answer", pia_id, str(tmp_path / "doc.json"))
    assert "64/64 answered" in _run("answer", pia_id, str(tmp_path / "answers.json"))
    assert "submitted" in _run("submit", pia_id, "--by", "alice")
    assert "approved" in _run("approve", pia_id, "--by", "bob", "--review-due", "2099-01-31")
    assert "published" in _run("publish", pia_id, "--by", "bob")
    listing = _run("list", "--service", "shelter")
    assert "published" in listing and "低 (low)" in listing and "2099-01-31" in listing
    shown = json.loads(_run("show", pia_id))
    assert shown["approved_by"] == "bob" and shown["submitted_by"] == "alice"
    assert service.pia_approved(session, "shelter")


def test_the_cli_reports_errors_without_a_traceback(session: Session, orgs: dict[str, str]) -> None:
    out = _run("new", "shelter", "--name", "避難所", "--org", "tsukuba-care-co", "--by", "alice")
    pia_id = out.split("\t")[0]
    result = CliRunner().invoke(pia, ["submit", pia_id, "--by", "alice"])
    assert result.exit_code == 1
    assert "not complete" in result.output and "64 questions unanswered" in result.output
    result = CliRunner().invoke(pia, ["publish", pia_id, "--by", "bob"])
    assert result.exit_code == 1 and "cannot publish" in result.output


def test_the_questionnaire_command_prints_64_questions() -> None:
    body = json.loads(_run("questionnaire"))
    assert sum(len(i["questions"]) for i in body["items"]) == 64


def test_seed_publishes_a_pia_for_each_built_in_service_and_is_idempotent(
    session: Session,
) -> None:
    created = service.seed_platform_pias(session)
    ids = {"fhir-api", "acp", "emergency", "triage", "polypharmacy", "homecare"}
    assert {p.service_id for p in created} == ids
    assert all(p.status == "published" and p.overall_level for p in created)
    assert all(p.organization_id == "platform" for p in created)
    for sid in ids:
        assert service.pia_approved(session, sid)
    assert service.seed_platform_pias(session) == []
    assert len(repository.list_all(session)) == 6


def test_seed_assessments_are_complete_and_bilingual() -> None:
    for spec in PLATFORM_SERVICES:
        assert spec["service_name_en"] and spec["risks"]
        assert len(spec["answers"]) == 64
        for r in spec["risks"]:
            assert r["description_en"] and r["mitigation_en"]
