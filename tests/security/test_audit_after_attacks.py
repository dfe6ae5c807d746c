"""After the attacks, the access log: every attempt on the victim's record is in it
(denied reads too, though their requests failed), the hash chain over everything written
verifies (``phr audit verify``'s service function), and nothing the attacks sent was
turned into an entry that breaks it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consent.audit import chain_all, verify_chain
from consent.models import AuditEntry
from tests.security.test_injection import MUST_MATCH_NOTHING
from tests.security.test_tokens import forgeries


def test_the_access_log_is_complete_and_intact_after_the_attacks(
    client: TestClient, session: Session, world: dict[str, Any], attacker: dict[str, Any]
) -> None:
    p = world["patient"]
    hospital = world["orgs"]["hospital"]["headers"]

    def entries(**where: Any) -> int:
        session.expire_all()
        stmt = select(func.count()).select_from(AuditEntry)
        for column, value in where.items():
            stmt = stmt.where(getattr(AuditEntry, column) == value)
        return int(session.scalar(stmt) or 0)

    before = entries(resident_id=p, organization_id="hospital-b")
    attempts = [
        f"/fhir/Patient/{p}",
        f"/fhir/Condition/{world['diabetes']}",
        f"/fhir/Patient/{p}/$everything",
        f"/fhir/Patient/{p}/_history/1",
    ]
    for url in attempts:
        assert client.get(url, headers=hospital).status_code in (403, 404), url
    # Every denied attempt on the victim's record is logged, in the victim's name.
    assert entries(resident_id=p, organization_id="hospital-b") >= before + len(attempts)
    assert entries(resident_id=p, organization_id="hospital-b", outcome="permit") == 0

    for value in MUST_MATCH_NOTHING:
        client.get("/fhir/Patient", params={"name": value}, headers=hospital)
        client.get("/fhir/Observation", params={"patient": value}, headers=attacker["headers"])
    genuine = world["orgs"]["owner"]["headers"]["Authorization"].split()[1]
    owner_reads = entries(resident_id=p, organization_id="clinic-a")
    for token in forgeries(genuine).values():
        r = client.get(f"/fhir/Patient/{p}", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401

    assert chain_all(session) > 0
    session.commit()
    report = verify_chain(session)
    assert report.ok, report.problems
    assert report.checked == entries() and report.pending == 0
    # A forged (owner's) token is no actor: it left no entry in the owner's name.
    assert entries(resident_id=p, organization_id="clinic-a") == owner_reads
