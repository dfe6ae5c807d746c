"""``phr triage`` keeps the hospital registry from the console."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy.orm import Session

from consent.identity.clients import register_organization
from phr.triage import repository
from phr.triage.cli import triage


def test_a_hospital_is_registered_listed_and_refused_when_unknown(session: Session) -> None:
    register_organization(session, id="cli-hospital", name="CLI病院", kind="hospital")
    session.commit()
    r = CliRunner().invoke(
        triage,
        [
            "hospital",
            "cli-hospital",
            "--name",
            "CLI病院",
            "--lat",
            "36.1",
            "--lon",
            "140.1",
            "--capability",
            "ct",
            "--capability",
            "stroke",
            "--24h",
            "--beds",
            "3",
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    h = repository.get_hospital(session, "cli-hospital")
    assert h is not None and h.capabilities == ["ct", "stroke"] and h.free_beds == 3
    listed = CliRunner().invoke(triage, ["hospitals"], catch_exceptions=False).output
    assert "cli-hospital" in listed and "accepting, 3 free" in listed
    bad = CliRunner().invoke(
        triage, ["hospital", "nobody", "--name", "x", "--lat", "1", "--lon", "1"]
    )
    assert bad.exit_code == 1 and "phr org add first" in bad.output
