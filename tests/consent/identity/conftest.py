"""Residents with a golden Patient, demo cards, and the card side of the sign-in protocol."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.identity import cards
from phr.store.indexer import utcnow
from phr.store.models import Resident
from phr.store.repository import Put, put_many

REDIRECT_URI = "https://app.example.jp/callback"


@dataclass
class Card:
    """A card in the resident's hand: its key and certificate."""

    key: cards.CardKey
    certificate_pem: str

    def answer(self, nonce: str, *, tamper: bool = False) -> dict[str, str]:
        signature = cards.sign_challenge(self.key, nonce)
        if tamper:
            raw = bytearray(base64.b64decode(signature))
            raw[len(raw) // 2] ^= 0x01
            signature = base64.b64encode(bytes(raw)).decode()
        return {"nonce": nonce, "signature": signature, "certificate": self.certificate_pem}


def make_resident(session: Session, rid: str, family: str = "筑波", given: str = "花子") -> str:
    session.add(Resident(id=rid, created_at=utcnow(), status="active"))
    session.flush()
    put_many(
        session,
        [
            Put(
                {
                    "resourceType": "Patient",
                    "id": rid,
                    "name": [{"family": family, "given": [given]}],
                    "gender": "female",
                    "birthDate": "1950-04-01",
                },
                rid,
            )
        ],
    )
    session.commit()
    return rid


@pytest.fixture
def resident(session: Session) -> Callable[..., str]:
    def make(rid: str, family: str = "筑波", given: str = "花子") -> str:
        return make_resident(session, rid, family, given)

    return make


@pytest.fixture
def issue(session: Session, tmp_path: Path) -> Callable[..., Card]:
    """Issue a demo card to a resident (``phr card issue``) and hand it over."""

    def make(rid: str, **options: Any) -> Card:
        issued = cards.issue_card(session, rid, out_dir=tmp_path / "cards", **options)
        session.commit()
        return Card(
            key=cards.load_card_key(issued.key_path),
            certificate_pem=issued.certificate_path.read_text(),
        )

    return make


def loose_card(ca: cards.CertificateAuthority, key_type: str = "rsa", **options: Any) -> Card:
    """A card certificate from ``ca`` that is linked to nobody (options: validity, usage)."""
    key = cards.new_card_key("ec" if key_type == "ec" else "rsa")
    cert = cards.make_card_certificate(ca, key.public_key(), **options)
    return Card(key=key, certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode())


def challenge(client: TestClient) -> str:
    r = client.post("/auth/card/challenge")
    assert r.status_code == 200, r.text
    nonce: str = r.json()["nonce"]
    return nonce


def sign_in(client: TestClient, card: Card) -> Any:
    return client.post("/auth/card/verify", json=card.answer(challenge(client)))


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_from(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def hidden_fields(html: str) -> list[tuple[str, str]]:
    import html as html_lib

    return [
        (html_lib.unescape(n), html_lib.unescape(v))
        for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)
    ]
