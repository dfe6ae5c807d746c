"""Demo My Number cards: a demo certification authority and the cards it issues.

Outside production, when no real JPKI trust anchor is configured, a demo CA stands in for
J-LIS (地方公共団体情報システム機構): an RSA-2048 CA generated once into ``keys_dir``
(``jpki-demo-ca.key.pem`` mode 0600, ``jpki-demo-ca.cert.pem``) with its own certificate
revocation list (``jpki-demo-ca.crl.pem``), re-signed before it goes stale.

A demo card (``phr card issue``) is a key pair (RSA-2048 like JPKI's, or EC P-256) and a
user-authentication certificate from the demo CA — key usage digitalSignature, and a
``urn:phr:resident:<id>`` subjectAltName for people reading it — written as PEM files
(the key 0600), and linked to the resident in ``card_link``. Sign-in never trusts that
subjectAltName: it looks the card up by issuer and serial number like a real JPKI card.

:func:`sign_challenge` is what the card does: sign the nonce bytes. The demo-card picker
uses it with the stored key to run the real protocol on a resident's behalf.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.identity import jpki
from consent.identity.models import CardLink
from phr import filecache
from phr.errors import InvalidInput, NotFound
from phr.settings import ConfigurationError, Settings, get_settings
from phr.store.indexer import utcnow
from phr.store.models import Resident

__all__ = [
    "CardKey",
    "CertificateAuthority",
    "IssuedCard",
    "build_crl",
    "current_crl",
    "issue_card",
    "list_cards",
    "load_card_key",
    "load_demo_ca",
    "make_card_certificate",
    "new_ca",
    "new_card_key",
    "revoke_card",
    "sign_challenge",
]

CardKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
KeyType = Literal["rsa", "ec"]

DEMO_CA_KEY = "jpki-demo-ca.key.pem"
DEMO_CA_CERT = "jpki-demo-ca.cert.pem"
DEMO_CA_CRL = "jpki-demo-ca.crl.pem"
DEMO_CA_NAME = "Tsukuba PHR demo JPKI CA"
CA_VALIDITY = timedelta(days=3650)
CARD_VALIDITY = timedelta(days=5 * 365)
CRL_VALIDITY = timedelta(days=7)
# The demo CA re-signs its CRL when less than this is left before nextUpdate.
CRL_REFRESH_BEFORE = timedelta(days=1)
RSA_BITS = 2048
RESIDENT_URN = "urn:phr:resident:"


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA key and certificate; ``crl_path`` is where it keeps its CRL (demo CA)."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    crl_path: Path | None = None

    @property
    def fingerprint(self) -> str:
        return jpki.certificate_fingerprint(self.certificate)


@dataclass(frozen=True)
class IssuedCard:
    resident_id: str
    serial: str
    key_path: Path
    certificate_path: Path
    not_after: datetime
    revoked: bool


# --------------------------------------------------------------------------- building blocks


def _now_aware(now: datetime | None) -> datetime:
    return (now or utcnow()).replace(tzinfo=UTC)


def new_ca(
    name: str = DEMO_CA_NAME, *, now: datetime | None = None, validity: timedelta = CA_VALIDITY
) -> CertificateAuthority:
    """A fresh self-signed RSA-2048 CA (the demo CA, or a foreign one in tests)."""
    at = _now_aware(now)
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tsukuba PHR (demo)"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(at - timedelta(hours=1))
        .not_valid_after(at + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(key=key, certificate=certificate)


def new_card_key(key_type: KeyType = "rsa") -> CardKey:
    """A card's key pair: RSA-2048 like JPKI, or EC P-256."""
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)


def make_card_certificate(
    ca: CertificateAuthority,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    *,
    resident_id: str | None = None,
    serial: int | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    digital_signature: bool = True,
) -> x509.Certificate:
    """A user-authentication certificate signed by ``ca`` (times are naive or aware UTC)."""
    serial = serial or x509.random_serial_number()
    start = _now_aware(not_before) - (timedelta(hours=1) if not_before is None else timedelta())
    end = _now_aware(not_after) if not_after is not None else start + CARD_VALIDITY
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                    x509.NameAttribute(NameOID.COMMON_NAME, f"demo card {jpki.serial_hex(serial)}"),
                ]
            )
        )
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature,
                content_commitment=False,
                key_encipherment=not digital_signature,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if resident_id:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(RESIDENT_URN + resident_id)]
            ),
            critical=False,
        )
    return builder.sign(ca.key, hashes.SHA256())


def build_crl(
    ca: CertificateAuthority,
    revoked: list[tuple[int, datetime]],
    *,
    now: datetime | None = None,
    validity: timedelta = CRL_VALIDITY,
    number: int = 1,
) -> x509.CertificateRevocationList:
    """A CRL of ``ca`` listing ``(serial, revocation date)``; current from ``now``."""
    at = _now_aware(now)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(at - timedelta(minutes=1))
        .next_update(at + validity)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(when if when.tzinfo else when.replace(tzinfo=UTC))
            .build()
        )
    return builder.sign(ca.key, hashes.SHA256())


def sign_challenge(key: CardKey, nonce: str) -> str:
    """What the card does: sign the nonce's bytes; returns the base64 signature."""
    message = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode("ascii")


def load_card_key(path: Path) -> CardKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigurationError(f"{path} is not an RSA or EC card key")
    return key


# --------------------------------------------------------------------------- the demo CA


def _pem_key(key: CardKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write atomically (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


@contextlib.contextmanager
def _ca_lock(directory: Path) -> Iterator[None]:
    """Serialise CA generation and CRL updates between processes (POSIX)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(directory / ".jpki-demo-ca.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _demo_paths(settings: Settings) -> tuple[Path, Path, Path]:
    d = settings.keys_dir
    return d / DEMO_CA_KEY, d / DEMO_CA_CERT, d / DEMO_CA_CRL


def _read_demo_ca(settings: Settings) -> CertificateAuthority | None:
    key_path, cert_path, crl_path = _demo_paths(settings)
    if not (key_path.is_file() and cert_path.is_file()):
        return None

    def parse() -> CertificateAuthority:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError(f"{key_path} is not an RSA key")
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        return CertificateAuthority(key=key, certificate=certificate, crl_path=crl_path)

    # Parsing the RSA key costs ~20 ms: kept while the files stay as they are.
    return filecache.parsed((key_path, cert_path), parse, kind="demo-ca")


def load_demo_ca(settings: Settings | None = None) -> CertificateAuthority:
    """The demo CA of this installation, generated on first use (never in production)."""
    settings = settings or get_settings()
    if settings.env == "production":
        raise ConfigurationError("the demo JPKI CA is not available in production")
    found = _read_demo_ca(settings)
    if found is not None:
        return found
    settings.ensure_dirs()
    with _ca_lock(settings.keys_dir):
        found = _read_demo_ca(settings)  # another process may have made it meanwhile
        if found is not None:
            return found
        key_path, cert_path, crl_path = _demo_paths(settings)
        ca = new_ca()
        _write(key_path, _pem_key(ca.key), 0o600)
        _write(cert_path, ca.certificate.public_bytes(serialization.Encoding.PEM))
        _write(crl_path, build_crl(ca, []).public_bytes(serialization.Encoding.PEM))
        return CertificateAuthority(key=ca.key, certificate=ca.certificate, crl_path=crl_path)


def _entries(crl: x509.CertificateRevocationList) -> list[tuple[int, datetime]]:
    return [(r.serial_number, r.revocation_date_utc) for r in crl]


def _number(crl: x509.CertificateRevocationList) -> int:
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        return 0


def _read_crl(ca: CertificateAuthority) -> x509.CertificateRevocationList | None:
    if ca.crl_path is None or not ca.crl_path.is_file():
        return None
    path = ca.crl_path

    def parse() -> x509.CertificateRevocationList | None:
        try:
            return x509.load_pem_x509_crl(path.read_bytes())
        except ValueError:
            return None

    return filecache.parsed((path,), parse, kind="demo-crl")


def current_crl(
    ca: CertificateAuthority, *, now: datetime | None = None
) -> x509.CertificateRevocationList:
    """The demo CA's CRL, re-signed (same entries, next number) when close to going stale."""
    at = _now_aware(now)
    crl = _read_crl(ca)
    if crl is not None and crl.next_update_utc and crl.next_update_utc - at > CRL_REFRESH_BEFORE:
        return crl
    return _rewrite_crl(ca, add=None, now=at)


def _rewrite_crl(
    ca: CertificateAuthority, *, add: int | None, now: datetime
) -> x509.CertificateRevocationList:
    if ca.crl_path is None:
        raise ConfigurationError("this CA keeps no CRL file")
    with _ca_lock(ca.crl_path.parent):
        old = _read_crl(ca)
        entries = _entries(old) if old is not None else []
        if add is not None and all(serial != add for serial, _ in entries):
            entries.append((add, now))
        crl = build_crl(ca, entries, now=now, number=(_number(old) + 1) if old else 1)
        _write(ca.crl_path, crl.public_bytes(serialization.Encoding.PEM))
    return crl


# --------------------------------------------------------------------------- cards


def _require_demo_anchor(settings: Settings) -> None:
    if jpki.configured_path(settings, "jpki_ca_file") is not None:
        raise ConfigurationError(
            "a real JPKI trust anchor is configured (PHR_JPKI_CA_FILE): demo cards would not "
            "be accepted; cards are issued and revoked by their CA"
        )


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:64]


def issue_card(
    session: Session,
    resident_id: str,
    *,
    out_dir: Path | None = None,
    expired: bool = False,
    revoke: bool = False,
    key_type: KeyType = "rsa",
    settings: Settings | None = None,
    now: datetime | None = None,
) -> IssuedCard:
    """Issue a demo card to a resident: key + certificate files, and the card link.

    ``expired`` makes a card whose validity ended yesterday; ``revoke`` puts it on the
    demo CA's CRL at once (both to show how sign-in refuses them).
    """
    settings = settings or get_settings()
    _require_demo_anchor(settings)
    if session.get(Resident, resident_id) is None:
        raise NotFound(f"resident {resident_id!r} not found")
    at = now or utcnow()
    ca = load_demo_ca(settings)
    key = new_card_key(key_type)
    if expired:
        certificate = make_card_certificate(
            ca,
            key.public_key(),
            resident_id=resident_id,
            not_before=at - timedelta(days=2 * 365),
            not_after=at - timedelta(days=1),
        )
    else:
        certificate = make_card_certificate(ca, key.public_key(), resident_id=resident_id)
    serial = jpki.serial_hex(certificate.serial_number)
    out = out_dir or settings.data_dir / "cards"
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{_safe_name(resident_id)}-{serial}"
    key_path = out / f"{stem}.key.pem"
    cert_path = out / f"{stem}.cert.pem"
    _write(key_path, _pem_key(key), 0o600)
    _write(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    # Recorded without the sign-in checks: an expired demo card is issued on purpose.
    link = jpki.record_card_link(
        session,
        ca=ca.certificate,
        certificate=certificate,
        resident_id=resident_id,
        source="demo",
        demo_key_path=str(key_path.resolve()),
        now=at,
    )
    if revoke:
        revoke_card(session, serial, settings=settings, now=at)
    return IssuedCard(
        resident_id=resident_id,
        serial=serial,
        key_path=key_path,
        certificate_path=cert_path,
        not_after=link.not_after,
        revoked=revoke,
    )


def _parse_serial(text: str) -> int:
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    try:
        value = int(cleaned, 16)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a hexadecimal serial number") from None
    if value <= 0:
        raise InvalidInput("serial numbers are positive")
    return value


def revoke_card(
    session: Session,
    serial: str,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> list[CardLink]:
    """Put a demo card on the demo CA's CRL (hex serial); returns its card links."""
    settings = settings or get_settings()
    _require_demo_anchor(settings)
    number = _parse_serial(serial)
    at = now or utcnow()
    ca = load_demo_ca(settings)
    _rewrite_crl(ca, add=number, now=_now_aware(at))
    links = list(
        session.scalars(
            select(CardLink).where(
                CardLink.issuer_fingerprint == ca.fingerprint,
                CardLink.serial == jpki.serial_hex(number),
            )
        )
    )
    for link in links:
        link.revoked_at = link.revoked_at or at
    session.flush()
    return links


def list_cards(session: Session, *, resident_id: str | None = None) -> list[CardLink]:
    stmt = select(CardLink).order_by(CardLink.resident_id, CardLink.created_at)
    if resident_id is not None:
        stmt = stmt.where(CardLink.resident_id == resident_id)
    return list(session.scalars(stmt))
