"""Sign-in with the My Number card (公的個人認証, JPKI): challenge–response and verification.

The protocol::

    client                                   server
    POST /auth/card/challenge  ───────────►  32 random bytes, kept hashed for 2 minutes
                               ◄───────────  {"nonce": base64url}
    card signs the nonce bytes with its user-authentication key
    (RSA PKCS#1 v1.5 + SHA-256 like JPKI's 2048-bit key; ECDSA P-256 + SHA-256 accepted)
    POST /auth/card/verify     ───────────►  {nonce, signature (base64), certificate}
                               ◄───────────  resident session cookie, or a refusal reason

:func:`sign_in_with_card` checks, in this order, and refuses with a reason code:

1. the nonce was handed out (``unknown_nonce``), not used before (``replayed_nonce``) and
   is younger than two minutes (``expired_nonce``) — then it is consumed, whatever follows;
2. the certificate was issued by a configured trust anchor: issuer name and the CA's
   signature (``untrusted_issuer``);
3. its validity period (``not_yet_valid``, ``expired_certificate``);
4. its key usage allows digitalSignature (``wrong_key_usage``);
5. it is not on the CA's certificate revocation list; the CRL must be signed by that CA
   and current, or nothing is accepted (``revoked_certificate``, ``crl_unavailable``);
6. the signature over the nonce verifies with the certificate's key (``bad_signature``,
   ``unsupported_key``);
7. the card is linked to a resident (``unlinked_card``) — by issuer and serial number in
   ``card_link``: JPKI's user-authentication certificate carries no name and no platform
   id, so the link is made when a card is issued or registered (:func:`link_card`).

The trust anchor comes from ``PHR_JPKI_CA_FILE`` (one or more PEM CA certificates) and
``PHR_JPKI_CRL_FILE`` (one or more PEM CRLs). Without them (development, test, demo) the
demo CA of :mod:`consent.identity.cards`, generated once in ``keys_dir``, is the anchor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from consent.identity.models import CardChallenge, CardLink
from phr import filecache
from phr.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from phr.settings import ConfigurationError, Settings, get_settings
from phr.store.indexer import utcnow
from phr.store.models import Resident

__all__ = [
    "CHALLENGE_TTL",
    "REASONS",
    "CardRefused",
    "CardSignIn",
    "TrustAnchor",
    "certificate_fingerprint",
    "configured_path",
    "find_link",
    "issue_challenge",
    "link_card",
    "load_trust_anchor",
    "parse_certificate",
    "record_card_link",
    "serial_hex",
    "sign_in_with_card",
    "verify_certificate",
    "verify_signature",
]

log = logging.getLogger(__name__)

CHALLENGE_TTL = timedelta(minutes=2)
NONCE_BYTES = 32
# Expired challenges are deleted this long after they expire (a replay of one is then an
# unknown nonce: refused all the same).
CHALLENGE_RETENTION = timedelta(hours=1)
# Slack for the clocks of the CA and of this host when reading CRL dates.
CLOCK_SKEW = timedelta(minutes=5)
MAX_CERTIFICATE_CHARS = 16 * 1024
MAX_SIGNATURE_CHARS = 2048
MIN_RSA_BITS = 2048

REASONS = {
    "unknown_nonce": "this challenge was never issued",
    "replayed_nonce": "this challenge was already used",
    "expired_nonce": "this challenge has expired; ask for a new one",
    "untrusted_issuer": "the certificate was not issued by a trusted certification authority",
    "not_yet_valid": "the certificate is not valid yet",
    "expired_certificate": "the certificate has expired",
    "wrong_key_usage": "the certificate's key may not be used for digital signatures",
    "crl_unavailable": "no current revocation list of the issuing authority is available",
    "revoked_certificate": "the certificate has been revoked",
    "unsupported_key": "the certificate's key type is not supported",
    "bad_signature": "the signature over the challenge does not verify",
    "unlinked_card": "this card is not registered to any resident",
}


class CardRefused(NotAuthenticated):
    """A card sign-in refused; ``reason`` is one of :data:`REASONS` (also the ``error``)."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown refusal reason {reason!r}")
        super().__init__(message or REASONS[reason], headers={})
        self.reason = reason
        self.error = reason


@dataclass(frozen=True)
class TrustAnchor:
    """The CA certificates a card certificate must be issued by, and their CRLs."""

    certificates: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...]

    def issuer_of(self, cert: x509.Certificate) -> x509.Certificate | None:
        """The anchor whose name and signature the certificate carries, or None."""
        for ca in self.certificates:
            if ca.subject != cert.issuer:
                continue
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return ca
        return None

    def current_crl(self, ca: x509.Certificate, now: datetime) -> x509.CertificateRevocationList:
        """The newest CRL of ``ca`` that it signed and that is current at ``now``."""
        best: x509.CertificateRevocationList | None = None
        for crl in self.crls:
            if crl.issuer != ca.subject or not _crl_signed_by(crl, ca):
                continue
            next_update = crl.next_update_utc
            if crl.last_update_utc > now + CLOCK_SKEW or next_update is None:
                continue
            if next_update < now - CLOCK_SKEW:
                continue
            if best is None or crl.last_update_utc > best.last_update_utc:
                best = crl
        if best is None:
            raise CardRefused("crl_unavailable")
        return best


def _crl_signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    public_key = ca.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return False
    try:
        return crl.is_signature_valid(public_key)
    except (ValueError, TypeError):
        return False


@dataclass(frozen=True)
class CardSignIn:
    """A verified card: who it belongs to."""

    resident_id: str
    card_link_pk: int
    serial: str


# --------------------------------------------------------------------------- helpers


def _b64decode(text: str, *, what: str, limit: int) -> bytes:
    if not isinstance(text, str) or not text or len(text) > limit:
        raise InvalidInput(f"{what} is missing or too long")
    cleaned = re.sub(r"\s+", "", text)
    padded = cleaned + "=" * (-len(cleaned) % 4)
    try:
        if "-" in cleaned or "_" in cleaned:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{what} is not base64") from None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _aware(naive_utc: datetime) -> datetime:
    return naive_utc.replace(tzinfo=UTC)


def _naive(aware: datetime) -> datetime:
    return aware.astimezone(UTC).replace(tzinfo=None)


def serial_hex(serial: int) -> str:
    """How serial numbers are written in ``card_link`` and on the command line."""
    return format(serial, "x")


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 (hex) of the certificate's DER."""
    return cert.fingerprint(hashes.SHA256()).hex()


def parse_certificate(text: str) -> x509.Certificate:
    """A certificate sent as PEM or as base64 DER."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_CERTIFICATE_CHARS:
        raise InvalidInput("certificate is missing or too long")
    try:
        if "-----BEGIN CERTIFICATE-----" in text:
            return x509.load_pem_x509_certificate(text.encode("ascii"))
        return x509.load_der_x509_certificate(
            _b64decode(text, what="certificate", limit=MAX_CERTIFICATE_CHARS)
        )
    except (ValueError, UnicodeError):
        raise InvalidInput("certificate is not a PEM or base64 DER X.509 certificate") from None


# --------------------------------------------------------------------------- trust anchor


def configured_path(settings: Settings, name: str) -> Path | None:
    """``settings.<name>`` (e.g. ``jpki_ca_file``), or ``PHR_<NAME>`` from the environment."""
    # The environment is read as well while Settings does not declare the JPKI fields.
    value = getattr(settings, name, None) or os.environ.get(f"PHR_{name.upper()}")
    return Path(value) if value else None


def _split_pem(data: bytes, label: str) -> list[bytes]:
    begin, end = f"-----BEGIN {label}-----".encode(), f"-----END {label}-----".encode()
    blocks, start = [], data.find(begin)
    while start != -1:
        stop = data.find(end, start)
        if stop == -1:
            break
        blocks.append(data[start : stop + len(end)] + b"\n")
        start = data.find(begin, stop)
    return blocks


def load_crls(data: bytes) -> list[x509.CertificateRevocationList]:
    """Every CRL in a PEM file (several may be concatenated), or one DER CRL."""
    blocks = _split_pem(data, "X509 CRL")
    if not blocks:
        return [x509.load_der_x509_crl(data)]
    return [x509.load_pem_x509_crl(block) for block in blocks]


def load_trust_anchor(settings: Settings | None = None) -> TrustAnchor:
    """The configured CA certificates and CRLs (or the demo CA outside production).

    Parsed again whenever a file changes on disk (:mod:`phr.filecache`): a CRL replaced on
    disk takes effect at the next sign-in without a restart.
    """
    settings = settings or get_settings()
    ca_file = configured_path(settings, "jpki_ca_file")
    crl_file = configured_path(settings, "jpki_crl_file")
    if ca_file is None:
        if settings.env == "production":
            raise ConfigurationError(
                "PHR_JPKI_CA_FILE and PHR_JPKI_CRL_FILE are required in production"
            )
        from consent.identity import cards

        demo = cards.load_demo_ca(settings)
        return TrustAnchor(certificates=(demo.certificate,), crls=(cards.current_crl(demo),))
    if crl_file is None:
        raise ConfigurationError("PHR_JPKI_CRL_FILE is required with PHR_JPKI_CA_FILE")
    return filecache.parsed(
        (ca_file, crl_file), lambda: _parse_anchor(ca_file, crl_file), kind="jpki-anchor"
    )


def _parse_anchor(ca_file: Path, crl_file: Path) -> TrustAnchor:
    try:
        certificates = tuple(x509.load_pem_x509_certificates(ca_file.read_bytes()))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the JPKI CA certificates {ca_file}: {exc}") from exc
    try:
        crls = tuple(load_crls(crl_file.read_bytes()))
    except OSError as exc:
        raise ConfigurationError(f"cannot read the JPKI CRL file {crl_file}: {exc}") from exc
    except ValueError:
        # A damaged CRL must not stop the server; every sign-in is refused until fixed.
        log.error("the JPKI CRL file %s cannot be parsed; card sign-in refused", crl_file)
        crls = ()
    return TrustAnchor(certificates=certificates, crls=crls)


# --------------------------------------------------------------------------- verification


def verify_certificate(
    cert: x509.Certificate, anchor: TrustAnchor, now: datetime | None = None
) -> x509.Certificate:
    """Check issuer, validity, key usage and revocation; return the issuing CA certificate.

    Raises :class:`CardRefused` with the first reason that applies.
    """
    at = _aware(now or utcnow())
    ca = anchor.issuer_of(cert)
    if ca is None or not (ca.not_valid_before_utc <= at <= ca.not_valid_after_utc):
        raise CardRefused("untrusted_issuer")
    if at < cert.not_valid_before_utc:
        raise CardRefused("not_yet_valid")
    if at > cert.not_valid_after_utc:
        raise CardRefused("expired_certificate")
    try:
        key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise CardRefused("wrong_key_usage") from None
    if not key_usage.digital_signature:
        raise CardRefused("wrong_key_usage")
    if _is_ca(cert):
        raise CardRefused("wrong_key_usage", "a CA certificate cannot sign in")
    crl = anchor.current_crl(ca, at)
    if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
        raise CardRefused("revoked_certificate")
    return ca


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def verify_signature(cert: x509.Certificate, signature: bytes, message: bytes) -> None:
    """Verify the card's signature over ``message`` with the certificate's public key.

    RSA (at least 2048 bits): PKCS#1 v1.5 with SHA-256, as JPKI cards sign. EC P-256:
    ECDSA with SHA-256, DER-encoded or raw ``r || s`` (64 bytes, as WebCrypto returns).
    """
    public_key = cert.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            if public_key.key_size < MIN_RSA_BITS:
                raise CardRefused("unsupported_key", f"RSA keys need {MIN_RSA_BITS} bits")
            public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
            public_key.curve, ec.SECP256R1
        ):
            if len(signature) == 64:
                signature = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
            public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            raise CardRefused("unsupported_key")
    except (InvalidSignature, ValueError):
        raise CardRefused("bad_signature") from None


# --------------------------------------------------------------------------- challenges


def issue_challenge(session: Session, *, now: datetime | None = None) -> tuple[str, datetime]:
    """Hand out a one-time nonce (base64url of 32 random bytes) and its expiry (naive UTC)."""
    now = now or utcnow()
    nonce = secrets.token_bytes(NONCE_BYTES)
    expires_at = now + CHALLENGE_TTL
    session.execute(
        delete(CardChallenge).where(CardChallenge.expires_at < now - CHALLENGE_RETENTION)
    )
    session.add(
        CardChallenge(
            nonce_hash=_sha256_hex(nonce), created_at=now, expires_at=expires_at, used_at=None
        )
    )
    session.flush()
    return _b64url(nonce), expires_at


def _consume_challenge(session: Session, nonce_text: str, now: datetime) -> bytes:
    try:
        nonce = _b64decode(nonce_text, what="nonce", limit=128)
    except InvalidInput:
        raise CardRefused("unknown_nonce") from None
    digest = _sha256_hex(nonce)
    row = session.execute(
        select(CardChallenge.used_at, CardChallenge.expires_at).where(
            CardChallenge.nonce_hash == digest
        )
    ).one_or_none()
    if row is None:
        raise CardRefused("unknown_nonce")
    if row.used_at is not None:
        raise CardRefused("replayed_nonce")
    if row.expires_at <= now:
        raise CardRefused("expired_nonce")
    # Single use even against a concurrent request with the same nonce: only one UPDATE
    # finds it unused.
    consumed = session.execute(
        update(CardChallenge)
        .where(CardChallenge.nonce_hash == digest, CardChallenge.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(consumed, "rowcount", 0) != 1:
        raise CardRefused("replayed_nonce")
    return nonce


# --------------------------------------------------------------------------- card links


def find_link(session: Session, ca: x509.Certificate, cert: x509.Certificate) -> CardLink | None:
    return session.scalars(
        select(CardLink).where(
            CardLink.issuer_fingerprint == certificate_fingerprint(ca),
            CardLink.serial == serial_hex(cert.serial_number),
        )
    ).one_or_none()


def _active_resident(session: Session, resident_id: str) -> str | None:
    """The resident id, following merges to the surviving resident; None if unknown."""
    seen: set[str] = set()
    current: str | None = resident_id
    while current is not None and current not in seen:
        seen.add(current)
        row = session.get(Resident, current)
        if row is None:
            return None
        if row.status != "merged":
            return row.id
        current = row.merged_into
    return None


def link_card(
    session: Session,
    *,
    certificate: x509.Certificate,
    resident_id: str,
    anchor: TrustAnchor | None = None,
    source: str = "registered",
    demo_key_path: str | None = None,
    now: datetime | None = None,
) -> CardLink:
    """Record that a card certificate belongs to a resident (after checking the card).

    The certificate must pass :func:`verify_certificate` (an expired or revoked card is not
    registered); the caller is responsible for having established who the resident is
    (e.g. at the municipal counter, or with the card's signature certificate).
    """
    now = now or utcnow()
    anchor = anchor or load_trust_anchor()
    ca = verify_certificate(certificate, anchor, now)
    return record_card_link(
        session,
        ca=ca,
        certificate=certificate,
        resident_id=resident_id,
        source=source,
        demo_key_path=demo_key_path,
        now=now,
    )


def record_card_link(
    session: Session,
    *,
    ca: x509.Certificate,
    certificate: x509.Certificate,
    resident_id: str,
    source: str,
    demo_key_path: str | None,
    now: datetime,
) -> CardLink:
    """Record a card link without checking the certificate (use :func:`link_card`).

    Demo cards are recorded this way when issued, expired ones included.
    """
    if session.get(Resident, resident_id) is None:
        raise NotFound(f"resident {resident_id!r} not found")
    existing = find_link(session, ca, certificate)
    if existing is not None:
        if existing.resident_id != resident_id:
            raise Conflict("this card is already registered to another resident")
        return existing
    link = CardLink(
        issuer_fingerprint=certificate_fingerprint(ca),
        serial=serial_hex(certificate.serial_number),
        resident_id=resident_id,
        certificate_fingerprint=certificate_fingerprint(certificate),
        not_after=_naive(certificate.not_valid_after_utc),
        source=source,
        demo_key_path=demo_key_path,
        created_at=now,
        revoked_at=None,
    )
    session.add(link)
    session.flush()
    return link


# --------------------------------------------------------------------------- the protocol


def sign_in_with_card(
    session: Session,
    *,
    nonce: str,
    signature: str,
    certificate: str,
    anchor: TrustAnchor | None = None,
    now: datetime | None = None,
) -> CardSignIn:
    """Verify a card's answer to a challenge; return the resident it belongs to.

    Malformed input raises :class:`InvalidInput` before the nonce is touched. Every other
    failure raises :class:`CardRefused` *after* the nonce has been consumed: the caller
    must let the transaction commit (answer the refusal instead of raising it) so that
    the nonce stays used.
    """
    now = now or utcnow()
    cert = parse_certificate(certificate)
    signature_bytes = _b64decode(signature, what="signature", limit=MAX_SIGNATURE_CHARS)
    anchor = anchor or load_trust_anchor()
    message = _consume_challenge(session, nonce, now)
    ca = verify_certificate(cert, anchor, now)
    verify_signature(cert, signature_bytes, message)
    link = find_link(session, ca, cert)
    if link is None:
        raise CardRefused("unlinked_card")
    if link.revoked_at is not None:
        raise CardRefused("revoked_certificate")
    resident_id = _active_resident(session, link.resident_id)
    if resident_id is None:
        raise CardRefused("unlinked_card", "the resident of this card is no longer registered")
    return CardSignIn(resident_id=resident_id, card_link_pk=link.pk, serial=link.serial)
