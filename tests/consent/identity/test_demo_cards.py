"""Demo cards: ``phr card`` commands and the demo-card picker (demo mode only)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.identity import cards
from consent.identity.cli import card, oidc
from consent.identity.models import AppClient, CardLink
from consent.identity.oidc import SESSION_COOKIE
from consent.models import AuditEntry
from phr.settings import reset_settings_cache

from .conftest import Card, csrf_from

Issue = Callable[..., Card]
MakeResident = Callable[..., str]


class TestCardCommands:
    def test_issue_writes_a_key_and_certificate_and_links_the_card(
        self, session: Session, resident: MakeResident, tmp_path: Path
    ) -> None:
        rid = resident("r-cli")
        result = CliRunner().invoke(card, ["issue", rid, "--out", str(tmp_path)])
        assert result.exit_code == 0, result.output
        issued = json.loads(result.output)
        key, cert = Path(issued["key"]), Path(issued["certificate"])
        assert key.parent == tmp_path and key.stat().st_mode & 0o777 == 0o600
        certificate = x509.load_pem_x509_certificate(cert.read_bytes())
        assert format(certificate.serial_number, "x") == issued["serial"]
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
            f"urn:phr:resident:{rid}"
        ]
        assert certificate.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
        link = session.scalars(select(CardLink).where(CardLink.resident_id == rid)).one()
        assert link.serial == issued["serial"] and link.source == "demo"

        listed = json.loads(CliRunner().invoke(card, ["list", "--resident", rid]).output)
        assert [c["serial"] for c in listed] == [issued["serial"]]

    def test_revoke_puts_the_serial_on_the_demo_crl(
        self, session: Session, resident: MakeResident, tmp_path: Path
    ) -> None:
        rid = resident("r-cli-revoke")
        issued = json.loads(CliRunner().invoke(card, ["issue", rid, "--out", str(tmp_path)]).output)
        result = CliRunner().invoke(card, ["revoke", issued["serial"]])
        assert result.exit_code == 0, result.output
        crl = cards.current_crl(cards.load_demo_ca())
        assert crl.get_revoked_certificate_by_serial_number(int(issued["serial"], 16))
        link = session.scalars(select(CardLink).where(CardLink.resident_id == rid)).one()
        session.refresh(link)
        assert link.revoked_at is not None

    def test_a_card_for_an_unknown_resident_is_refused(self, tmp_path: Path) -> None:
        result = CliRunner().invoke(card, ["issue", "nobody", "--out", str(tmp_path)])
        assert result.exit_code != 0

    def test_the_demo_ca_is_generated_once_with_a_private_key_file(self) -> None:
        first = cards.load_demo_ca()
        again = cards.load_demo_ca()
        assert first.certificate == again.certificate
        key_file = Path(str(first.crl_path)).parent / cards.DEMO_CA_KEY
        assert key_file.stat().st_mode & 0o777 == 0o600

    def test_oidc_app_add_registers_a_public_app(self, session: Session) -> None:
        result = CliRunner().invoke(
            oidc, ["app", "add", "家族アプリ", "--redirect-uri", "https://family.example/cb"]
        )
        assert result.exit_code == 0, result.output
        out = json.loads(result.output)
        assert out["public"] is True and "client_secret" not in out
        row = session.get(AppClient, out["client_id"])
        assert row is not None and "patient/*.rs" in row.scopes.split()
        assert row.grant_types == "authorization_code refresh_token"


@pytest.fixture
def demo_off() -> Iterator[None]:
    import os

    os.environ["PHR_DEMO_MODE"] = "false"
    reset_settings_cache()
    try:
        yield
    finally:
        del os.environ["PHR_DEMO_MODE"]
        reset_settings_cache()


class TestTheDemoCardPicker:
    def test_the_picker_lists_residents_with_demo_cards_by_name(
        self, client: TestClient, session: Session, resident: MakeResident, issue: Issue
    ) -> None:
        issue(resident("r-pick", "筑波", "花子"))
        page = client.get("/auth/card/demo")
        assert page.status_code == 200
        assert "筑波 花子" in page.text and "/auth/card/demo/r-pick" in page.text
        # The names were read through the choke point, and the reads are in the access log.
        logged = session.scalars(
            select(AuditEntry).where(
                AuditEntry.resident_id == "r-pick", AuditEntry.client_id == "demo-card-picker"
            )
        ).all()
        assert logged and logged[0].purpose == "HOPERAT"

    def test_picking_a_card_runs_the_protocol_and_signs_the_resident_in(
        self, client: TestClient, resident: MakeResident, issue: Issue
    ) -> None:
        issue(resident("r-demo"))
        page = client.get("/auth/card/demo", params={"return_to": "/oauth/authorize?x=1"})
        r = client.post(
            "/auth/card/demo/r-demo",
            data={"csrf_token": csrf_from(page.text), "return_to": "/oauth/authorize?x=1"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/oauth/authorize?x=1"
        assert SESSION_COOKIE in r.cookies
        me = client.get("/auth/session").json()
        assert me["sub"] == "r-demo" and me["kind"] == "resident"

    def test_a_demo_card_that_expired_is_refused_with_its_reason(
        self, client: TestClient, resident: MakeResident, issue: Issue
    ) -> None:
        issue(resident("r-demo-old"), expired=True)
        page = client.get("/auth/card/demo")
        assert "期限切れ" in page.text
        r = client.post(
            "/auth/card/demo/r-demo-old",
            data={"csrf_token": csrf_from(page.text)},
            follow_redirects=False,
        )
        assert r.status_code == 401 and "expired_certificate" in r.text
        assert client.get("/auth/session").status_code == 401

    def test_the_picker_form_needs_its_csrf_token(
        self, client: TestClient, resident: MakeResident, issue: Issue
    ) -> None:
        issue(resident("r-demo-csrf"))
        r = client.post("/auth/card/demo/r-demo-csrf", data={}, follow_redirects=False)
        assert r.status_code == 403

    def test_the_picker_does_not_exist_outside_demo_mode(
        self, client: TestClient, resident: MakeResident, issue: Issue, demo_off: None
    ) -> None:
        issue(resident("r-prod"))
        assert client.get("/auth/card/demo").status_code == 404
        assert client.post("/auth/card/demo/r-prod", data={}).status_code == 404
        assert "demo" not in client.get("/auth/card").text.split("For card apps")[1]
