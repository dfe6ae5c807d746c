"""Sign-in with the My Number card: challenge–response against the trust anchor (test CA)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request

from consent.identity import cards, jpki
from consent.identity.models import CardChallenge, CardLink, ResidentSession
from consent.identity.oidc import SESSION_COOKIE, current_resident_session
from phr.settings import get_settings, reset_settings_cache
from phr.store.indexer import utcnow

from .conftest import Card, challenge, loose_card, sign_in

Issue = Callable[..., Card]
MakeResident = Callable[..., str]


def refused(response: Any, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == reason
    assert SESSION_COOKIE not in response.cookies


class TestAGoodCard:
    def test_a_linked_card_signs_in_and_opens_a_resident_session(
        self, client: TestClient, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-hanako"))
        r = sign_in(client, card)
        assert r.status_code == 200, r.text
        assert r.json()["resident_id"] == "r-hanako"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # base URL is http in tests
        me = client.get("/auth/session")
        assert me.status_code == 200
        assert me.json() == {"kind": "resident", "sub": "r-hanako", "fhirUser": "Patient/r-hanako"}

    def test_the_session_id_is_stored_only_as_a_hash(
        self, client: TestClient, session: Session, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-hash"))
        token = sign_in(client, card).cookies[SESSION_COOKIE]
        rows = list(session.scalars(select(ResidentSession)))
        assert rows and all(token not in row.id_hash for row in rows)

    def test_an_ec_p256_card_signs_in_with_der_or_raw_signatures(
        self, client: TestClient, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-ec"), key_type="ec")
        assert sign_in(client, card).status_code == 200
        nonce = challenge(client)
        assert isinstance(card.key, ec.EllipticCurvePrivateKey)
        der = card.key.sign(base64.urlsafe_b64decode(nonce + "="), ec.ECDSA(hashes.SHA256()))
        r_, s_ = decode_dss_signature(der)
        raw = r_.to_bytes(32, "big") + s_.to_bytes(32, "big")
        answer = {
            "nonce": nonce,
            "signature": base64.b64encode(raw).decode(),
            "certificate": card.certificate_pem,
        }
        assert client.post("/auth/card/verify", json=answer).status_code == 200

    def test_the_certificate_may_be_sent_as_base64_der(
        self, client: TestClient, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-der"))
        der = x509.load_pem_x509_certificate(card.certificate_pem.encode()).public_bytes(
            serialization.Encoding.DER
        )
        answer = card.answer(challenge(client))
        answer["certificate"] = base64.b64encode(der).decode()
        assert client.post("/auth/card/verify", json=answer).status_code == 200


class TestTheNonce:
    def test_a_replayed_nonce_is_refused(
        self, client: TestClient, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-replay"))
        answer = card.answer(challenge(client))
        assert client.post("/auth/card/verify", json=answer).status_code == 200
        refused(client.post("/auth/card/verify", json=answer), "replayed_nonce")

    def test_a_nonce_the_server_never_issued_is_refused(
        self, client: TestClient, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-unknown"))
        invented = base64.urlsafe_b64encode(b"\x01" * 32).rstrip(b"=").decode()
        refused(client.post("/auth/card/verify", json=card.answer(invented)), "unknown_nonce")

    def test_a_nonce_older_than_two_minutes_is_refused(
        self, client: TestClient, session: Session, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-late"))
        nonce, _ = jpki.issue_challenge(session, now=utcnow() - timedelta(minutes=3))
        session.commit()
        refused(client.post("/auth/card/verify", json=card.answer(nonce)), "expired_nonce")

    def test_a_refused_answer_still_uses_up_its_nonce(
        self, client: TestClient, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-burn"))
        nonce = challenge(client)
        refused(
            client.post("/auth/card/verify", json=card.answer(nonce, tamper=True)),
            "bad_signature",
        )
        refused(client.post("/auth/card/verify", json=card.answer(nonce)), "replayed_nonce")

    def test_nonces_are_stored_hashed_with_a_two_minute_expiry(
        self, client: TestClient, session: Session
    ) -> None:
        nonce = challenge(client)
        raw = base64.urlsafe_b64decode(nonce + "=")
        assert len(raw) == 32
        rows = list(session.scalars(select(CardChallenge)))
        assert all(nonce not in r.nonce_hash for r in rows)
        newest = max(rows, key=lambda r: r.created_at)
        assert newest.expires_at - newest.created_at == timedelta(minutes=2)


class TestTheCertificate:
    def test_an_expired_certificate_is_refused(
        self, client: TestClient, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-expired"), expired=True)
        refused(sign_in(client, card), "expired_certificate")

    def test_a_certificate_not_yet_valid_is_refused(self, client: TestClient) -> None:
        card = loose_card(cards.load_demo_ca(), not_before=utcnow() + timedelta(days=1))
        refused(sign_in(client, card), "not_yet_valid")

    def test_a_revoked_certificate_is_refused_by_the_crl(
        self, client: TestClient, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-revoked"), revoke=True)
        refused(sign_in(client, card), "revoked_certificate")

    def test_revoking_a_card_later_refuses_its_next_sign_in(
        self, client: TestClient, session: Session, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-lost"))
        assert sign_in(client, card).status_code == 200
        serial = x509.load_pem_x509_certificate(card.certificate_pem.encode()).serial_number
        cards.revoke_card(session, format(serial, "x"))
        session.commit()
        refused(sign_in(client, card), "revoked_certificate")

    def test_a_certificate_from_a_foreign_ca_is_refused(self, client: TestClient) -> None:
        refused(sign_in(client, loose_card(cards.new_ca("Foreign CA"))), "untrusted_issuer")

    def test_a_foreign_ca_using_the_trusted_name_is_refused(self, client: TestClient) -> None:
        impostor = cards.new_ca(cards.DEMO_CA_NAME)
        refused(sign_in(client, loose_card(impostor)), "untrusted_issuer")

    def test_a_tampered_signature_is_refused(
        self, client: TestClient, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-tamper"))
        answer = card.answer(challenge(client), tamper=True)
        refused(client.post("/auth/card/verify", json=answer), "bad_signature")

    def test_a_signature_by_another_key_is_refused(
        self, client: TestClient, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-otherkey"))
        thief = Card(key=cards.new_card_key(), certificate_pem=card.certificate_pem)
        refused(sign_in(client, thief), "bad_signature")

    def test_a_certificate_without_digital_signature_usage_is_refused(
        self, client: TestClient
    ) -> None:
        card = loose_card(cards.load_demo_ca(), digital_signature=False)
        refused(sign_in(client, card), "wrong_key_usage")

    def test_a_valid_card_linked_to_nobody_is_refused(self, client: TestClient) -> None:
        refused(sign_in(client, loose_card(cards.load_demo_ca())), "unlinked_card")

    def test_garbage_instead_of_a_certificate_is_a_bad_request(self, client: TestClient) -> None:
        answer = {
            "nonce": challenge(client),
            "signature": "AAAA",
            "certificate": "bm90IGEgY2VydA==",
        }
        r = client.post("/auth/card/verify", json=answer)
        assert r.status_code == 400 and r.json()["error"] == "invalid_input"

    def test_the_answer_must_be_json(self, client: TestClient) -> None:
        r = client.post(
            "/auth/card/verify", content=b"nonce=x", headers={"content-type": "text/plain"}
        )
        assert r.status_code == 400


class TestTheTrustAnchor:
    def test_a_stale_crl_refuses_every_card(self) -> None:
        ca = cards.new_ca("Test CA")
        card = loose_card(ca)
        cert = x509.load_pem_x509_certificate(card.certificate_pem.encode())
        old = cards.build_crl(ca, [], now=utcnow() - timedelta(days=30))
        anchor = jpki.TrustAnchor(certificates=(ca.certificate,), crls=(old,))
        with pytest.raises(jpki.CardRefused) as caught:
            jpki.verify_certificate(cert, anchor)
        assert caught.value.reason == "crl_unavailable"
        fresh = cards.build_crl(ca, [])
        assert jpki.verify_certificate(cert, jpki.TrustAnchor((ca.certificate,), (old, fresh)))

    def test_a_crl_not_signed_by_the_ca_is_ignored(self) -> None:
        ca, forger = cards.new_ca("Test CA"), cards.new_ca("Test CA")
        card = loose_card(ca)
        cert = x509.load_pem_x509_certificate(card.certificate_pem.encode())
        forged = cards.build_crl(forger, [])  # same issuer name, other key
        with pytest.raises(jpki.CardRefused) as caught:
            jpki.verify_certificate(cert, jpki.TrustAnchor((ca.certificate,), (forged,)))
        assert caught.value.reason == "crl_unavailable"

    def test_the_configured_ca_and_crl_files_are_the_trust_anchor(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ca = cards.new_ca("Prefecture test CA")
        good, revoked = loose_card(ca), loose_card(ca)
        revoked_serial = x509.load_pem_x509_certificate(
            revoked.certificate_pem.encode()
        ).serial_number
        (tmp_path / "ca.pem").write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
        crl = cards.build_crl(ca, [(revoked_serial, utcnow())])
        (tmp_path / "ca.crl").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        monkeypatch.setenv("PHR_JPKI_CA_FILE", str(tmp_path / "ca.pem"))
        monkeypatch.setenv("PHR_JPKI_CRL_FILE", str(tmp_path / "ca.crl"))
        reset_settings_cache()
        try:
            anchor = jpki.load_trust_anchor()
            assert anchor.certificates == (ca.certificate,)
            jpki.verify_certificate(
                x509.load_pem_x509_certificate(good.certificate_pem.encode()), anchor
            )
            with pytest.raises(jpki.CardRefused) as caught:
                jpki.verify_certificate(
                    x509.load_pem_x509_certificate(revoked.certificate_pem.encode()), anchor
                )
            assert caught.value.reason == "revoked_certificate"
            demo = loose_card(cards.load_demo_ca())
            with pytest.raises(jpki.CardRefused) as caught:
                jpki.verify_certificate(
                    x509.load_pem_x509_certificate(demo.certificate_pem.encode()), anchor
                )
            assert caught.value.reason == "untrusted_issuer"
        finally:
            monkeypatch.delenv("PHR_JPKI_CA_FILE")
            monkeypatch.delenv("PHR_JPKI_CRL_FILE")
            reset_settings_cache()

    def test_a_registered_card_is_linked_by_issuer_and_serial_not_by_its_names(
        self, session: Session, resident: MakeResident
    ) -> None:
        rid = resident("r-register")
        demo = cards.load_demo_ca()
        card = loose_card(demo, resident_id="someone-else")
        cert = x509.load_pem_x509_certificate(card.certificate_pem.encode())
        link = jpki.link_card(session, certificate=cert, resident_id=rid)
        assert (link.serial, link.issuer_fingerprint) == (
            format(cert.serial_number, "x"),
            demo.certificate.fingerprint(hashes.SHA256()).hex(),
        )
        assert link.source == "registered" and link.resident_id == rid


class TestTheResidentSession:
    def _request(self, token: str) -> Request:
        cookie = f"{SESSION_COOKIE}={token}".encode()
        return Request({"type": "http", "headers": [(b"cookie", cookie)], "method": "GET"})

    def test_a_session_idle_for_thirty_minutes_is_over(
        self, session: Session, client: TestClient, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-idle"))
        token = sign_in(client, card).cookies[SESSION_COOKIE]
        assert current_resident_session(self._request(token), session) == "r-idle"
        row = session.scalars(
            select(ResidentSession).where(ResidentSession.resident_id == "r-idle")
        ).one()
        row.last_seen_at = utcnow() - timedelta(minutes=31)
        session.flush()
        assert current_resident_session(self._request(token), session) is None

    def test_signing_out_ends_the_session(
        self, client: TestClient, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-out"))
        assert sign_in(client, card).status_code == 200
        assert client.get("/auth/session").status_code == 200
        assert client.post("/auth/signout").status_code == 204
        assert client.get("/auth/session").status_code == 401

    def test_a_card_link_to_a_merged_resident_signs_in_the_surviving_one(
        self, client: TestClient, session: Session, resident: MakeResident, issue: Issue
    ) -> None:
        card = issue(resident("r-old"))
        resident("r-survivor")
        from phr.store.models import Resident

        old = session.get(Resident, "r-old")
        assert old is not None
        old.status, old.merged_into = "merged", "r-survivor"
        session.commit()
        r = sign_in(client, card)
        assert r.status_code == 200 and r.json()["resident_id"] == "r-survivor"
        assert session.scalars(select(CardLink)).first() is not None


def test_the_session_cookie_is_secure_when_the_site_is_https(
    client: TestClient, resident: MakeResident, issue: Issue, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = issue(resident("r-https"))
    original = get_settings().base_url
    monkeypatch.setenv("PHR_BASE_URL", "https://phr.tsukuba.example")
    reset_settings_cache()
    try:
        r = sign_in(client, card)
    finally:
        monkeypatch.setenv("PHR_BASE_URL", original)
        reset_settings_cache()
    assert r.status_code == 200
    assert "Secure" in r.headers["set-cookie"]
