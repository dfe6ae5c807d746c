"""The access log: every read of a resident's data, permitted or denied — tamper-evident.

Writing
    :func:`record` is the one way in (the choke point, :mod:`phr.store.reader`, calls it).
    It inserts the entries in the caller's transaction at once — one insert per call, with
    the chain columns (``seq``, ``prev_hash``, ``entry_hash``) empty. No lock is taken:
    audited requests do not take turns (ADR 0004). The entries commit or roll back with
    the read they record (the reader re-records a denial after a rollback with
    :func:`phr.db.after_rollback`).

Hash chain
    :func:`chain_pending` — run every second by the chainer thread of each server process
    (:mod:`consent.audit_chainer`), by ``phr audit chain``, and before every seal and
    verification from the CLI — appends the committed entries not chained yet in ``pk``
    order. Each entry gets ``seq`` (1, 2, 3, ... without gaps), ``prev_hash`` (the previous
    entry's hash; 64 zeros for the first) and ``entry_hash`` = SHA-256 of its canonical
    form: the JSON object of :data:`HASHED_FIELDS` with sorted keys, no whitespace, UTF-8,
    non-ASCII characters unescaped, datetimes as ISO 8601 with microseconds (naive UTC).
    Chainers take turns on the single row of ``audit_chain_head`` (``SELECT ... FOR UPDATE
    SKIP LOCKED`` on PostgreSQL, so a second chainer simply skips a round; on SQLite the
    database's writer lock). Until it is chained (normally under a second), an entry is
    in the log and in the resident's view but not yet protected by the chain.

Seals
    :func:`seal` signs the head hash with an Ed25519 key (``PHR_AUDIT_SEAL_KEY_FILE``;
    in development ``audit-seal-ed25519.pem`` in ``keys_dir``, generated on first use).
    The public key is published at ``GET /api/audit/seal-key``; a seal's ``key_id`` is
    the SHA-256 of the raw public key. After a key change, keep the old public key in
    ``keys_dir`` as ``audit-seal-<anything>.pub.pem`` so that older seals still verify.

Verification
    :func:`verify_chain` walks the chain in ``seq`` order in batches (constant memory)
    and reports edited, removed, inserted and reordered entries, seals whose signature
    fails or whose head hash no longer matches, and entries removed from the end.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import ColumnElement, Table, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from consent.actors import PURPOSE_SYSTEM, Actor, Purpose
from consent.models import AuditChainHead, AuditEntry, AuditSeal, Organization
from phr.errors import Conflict
from phr.settings import ConfigurationError, Settings, get_settings
from phr.store.indexer import iso_instant, utcnow

__all__ = [
    "GENESIS_HASH",
    "HASHED_FIELDS",
    "Access",
    "LogFilter",
    "SealKey",
    "VerifyReport",
    "access_log",
    "access_log_total",
    "audit_event_bundle",
    "canonical_bytes",
    "chain_all",
    "chain_pending",
    "compute_entry_hash",
    "entry_refs",
    "entry_what",
    "key_fingerprint",
    "load_seal_key",
    "pending_count",
    "record",
    "seal",
    "seal_message",
    "seal_public_keys",
    "to_audit_event",
    "verify_chain",
    "verify_seal_signature",
]

GENESIS_HASH = "0" * 64
HEAD_ID = 1
# Order does not matter (keys are sorted); the set is the format. Changing it breaks the
# verification of every existing entry.
HASHED_FIELDS = (
    "seq",
    "prev_hash",
    "at",
    "actor_kind",
    "client_id",
    "organization_id",
    "user_id",
    "role",
    "service",
    "purpose",
    "action",
    "resource_type",
    "resource_id",
    "resident_id",
    "outcome",
    "count",
    "detail",
    "consent_ref",
)
MAX_DETAIL = 4000
_entries = cast(Table, AuditEntry.__table__)
_head = cast(Table, AuditChainHead.__table__)


@dataclass
class Access:
    action: str
    outcome: str
    resource_type: str | None = None
    resource_id: str | None = None
    resident_id: str | None = None
    count: int = 0
    detail: str = ""
    consent_ref: str | None = None


# --------------------------------------------------------------------------- hashing


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return value


def canonical_bytes(row: Mapping[Any, Any]) -> bytes:
    """The canonical serialisation of one entry (the input of its hash).

    Byte for byte ``json.dumps(doc, sort_keys=True, ensure_ascii=False,
    separators=(",", ":")).encode()``; orjson makes it ten times faster.
    """
    doc = {name: _plain(row[name]) for name in HASHED_FIELDS}
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def compute_entry_hash(row: Mapping[Any, Any]) -> str:
    return hashlib.sha256(canonical_bytes(row)).hexdigest()


def _naive_utc(at: datetime) -> datetime:
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at


# --------------------------------------------------------------------------- writing


def record(
    session: Session,
    actor: Actor,
    purpose: Purpose,
    accesses: Iterable[Access],
    *,
    at: datetime | None = None,
) -> None:
    """Log the accesses in the caller's transaction (so no read goes unlogged): one
    insert, no lock; the chainer appends them to the hash chain after the commit.
    """
    at = _naive_utc(at or utcnow())
    rows = [
        {
            "at": at,
            "actor_kind": actor.kind,
            "client_id": actor.client_id,
            "organization_id": actor.organization_id,
            "user_id": actor.user_id,
            "role": actor.role,
            "service": actor.service,
            "purpose": purpose.value,
            "action": a.action,
            "resource_type": a.resource_type,
            "resource_id": a.resource_id,
            "resident_id": a.resident_id,
            "outcome": a.outcome,
            "count": int(a.count or 0),
            "detail": (a.detail or "")[:MAX_DETAIL],
            "consent_ref": a.consent_ref,
        }
        for a in accesses
    ]
    if rows:
        session.execute(_entries.insert(), rows)


def chain_pending(session: Session, *, limit: int = 5_000) -> int:
    """Append entries not chained yet to the hash chain, in insertion (``pk``) order;
    returns how many (0 also when another chainer holds the head right now).

    Runs in the caller's transaction and holds the chain-head row until it ends, so
    chainers take turns and ``seq`` stays gap-free. Only committed entries are seen
    (and on SQLite, this transaction's own).
    """
    head = _lock_head(session)
    if head is None:
        return 0
    seq, prev = head
    columns = [_entries.c.pk, *(_entries.c[name] for name in HASHED_FIELDS if name not in _CHAIN)]
    rows = session.execute(
        select(*columns).where(_entries.c.seq.is_(None)).order_by(_entries.c.pk).limit(limit)
    ).all()
    if not rows:
        return 0
    updates = []
    for r in rows:
        row = dict(r._mapping)
        seq += 1
        row["seq"] = seq
        row["prev_hash"] = prev
        prev = compute_entry_hash(row)
        updates.append(
            {"b_pk": row["pk"], "b_seq": seq, "b_prev": row["prev_hash"], "b_hash": prev}
        )
    session.execute(
        _entries.update()
        .where(_entries.c.pk == bindparam("b_pk"))
        .values(
            seq=bindparam("b_seq"), prev_hash=bindparam("b_prev"), entry_hash=bindparam("b_hash")
        ),
        updates,
        execution_options={"synchronize_session": False},
    )
    session.execute(_head.update().where(_head.c.id == HEAD_ID).values(seq=seq, hash=prev))
    return len(rows)


def chain_all(session: Session, *, batch: int = 5_000) -> int:
    """Chain everything pending (in batches, one transaction); returns how many."""
    total = 0
    while True:
        n = chain_pending(session, limit=batch)
        total += n
        if n < batch:
            return total


def pending_count(session: Session) -> int:
    """Entries written but not chained yet."""
    return int(
        session.scalar(select(func.count()).select_from(_entries).where(_entries.c.seq.is_(None)))
        or 0
    )


_CHAIN = ("seq", "prev_hash")


def _lock_head(session: Session) -> tuple[int, str] | None:
    """Lock the chain head row and return (seq, hash); None if another chainer has it."""
    dialect = session.get_bind().dialect.name
    query = select(_head.c.seq, _head.c.hash).where(_head.c.id == HEAD_ID)
    if dialect == "postgresql":
        got = session.execute(query.with_for_update(skip_locked=True)).first()
        if got is None:
            exists = session.scalar(select(func.count()).select_from(_head))
            if exists:
                return None  # locked by another chainer
            _create_head(session)
            got = session.execute(query.with_for_update()).first()
    else:
        # SQLite: the UPDATE takes the database's writer lock for the rest of the transaction.
        got = session.execute(
            _head.update()
            .where(_head.c.id == HEAD_ID)
            .values(seq=_head.c.seq)
            .returning(_head.c.seq, _head.c.hash)
        ).first()
        if got is None:
            _create_head(session)
            got = session.execute(query).first()
    assert got is not None
    return int(got[0]), str(got[1])


def _create_head(session: Session) -> None:
    """The head row, for a database whose tables were not made by the migration."""
    last = session.execute(
        select(_entries.c.seq, _entries.c.entry_hash)
        .where(_entries.c.seq.is_not(None))
        .order_by(_entries.c.seq.desc())
        .limit(1)
    ).first()
    values = {
        "id": HEAD_ID,
        "seq": int(last[0]) if last else 0,
        "hash": str(last[1]) if last else GENESIS_HASH,
    }
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(_head).values(values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(_head).values(values).on_conflict_do_nothing()
    else:  # pragma: no cover - PostgreSQL and SQLite only
        stmt = _head.insert().values(values)
    session.execute(stmt)


# --------------------------------------------------------------------------- seal keys


@dataclass(frozen=True)
class SealKey:
    key_id: str
    public: Ed25519PublicKey
    private: Ed25519PrivateKey | None = None
    path: Path | None = None

    def public_pem(self) -> str:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def public_jwk(self) -> dict[str, str]:
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.key_id, "alg": "EdDSA"}


SEAL_KEY_FILE = "audit-seal-ed25519.pem"
SEAL_KEY_ENV = "PHR_AUDIT_SEAL_KEY_FILE"
_RETIRED_RE = re.compile(r"^audit-seal-.+\.pub\.pem$")
_key_lock = threading.Lock()
_key_cache: dict[tuple[str, float], SealKey] = {}


def key_fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _seal_key_path(settings: Settings) -> Path:
    configured = getattr(settings, "audit_seal_key_file", None) or os.environ.get(SEAL_KEY_ENV)
    if configured:
        return Path(configured)
    if settings.env == "production":
        raise ConfigurationError(f"{SEAL_KEY_ENV} is required in production")
    return settings.keys_dir / SEAL_KEY_FILE


def _generate_seal_key(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def load_seal_key(settings: Settings | None = None) -> SealKey:
    """The Ed25519 key that signs seals (generated in development on first use)."""
    settings = settings or get_settings()
    path = _seal_key_path(settings)
    with _key_lock:
        if not path.exists():
            if settings.env == "production" or path.name != SEAL_KEY_FILE:
                raise ConfigurationError(f"audit seal key {path} does not exist")
            settings.ensure_dirs()
            _generate_seal_key(path)
        cache_key = (str(path.resolve()), path.stat().st_mtime)
        if cache_key not in _key_cache:
            try:
                private = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (OSError, ValueError, TypeError) as exc:
                raise ConfigurationError(f"cannot read audit seal key {path}: {exc}") from exc
            if not isinstance(private, Ed25519PrivateKey):
                raise ConfigurationError(f"{path} must hold an Ed25519 private key")
            public = private.public_key()
            _key_cache.clear()
            _key_cache[cache_key] = SealKey(key_fingerprint(public), public, private, path)
        return _key_cache[cache_key]


def seal_public_keys(settings: Settings | None = None) -> dict[str, SealKey]:
    """Every key a seal may have been signed with: the current one and retired ones."""
    settings = settings or get_settings()
    current = load_seal_key(settings)
    keys = {current.key_id: SealKey(current.key_id, current.public, path=current.path)}
    if settings.keys_dir.is_dir():
        for path in sorted(settings.keys_dir.iterdir()):
            if not _RETIRED_RE.match(path.name):
                continue
            with contextlib.suppress(OSError, ValueError, TypeError):
                public = serialization.load_pem_public_key(path.read_bytes())
                if isinstance(public, Ed25519PublicKey):
                    kid = key_fingerprint(public)
                    keys.setdefault(kid, SealKey(kid, public, path=path))
    return keys


# --------------------------------------------------------------------------- seals


def seal_message(
    *, seq_from: int, seq_to: int, head_hash: str, signed_at: datetime, key_id: str
) -> bytes:
    """The bytes a seal signs (domain-separated canonical JSON)."""
    doc = {
        "head_hash": head_hash,
        "key_id": key_id,
        "seq_from": seq_from,
        "seq_to": seq_to,
        "signed_at": _plain(signed_at),
    }
    return b"phr-audit-seal-v1\n" + json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def verify_seal_signature(row: AuditSeal | Any, keys: Mapping[str, SealKey]) -> str | None:
    """None when the seal's signature verifies with a published key, else the reason."""
    key = keys.get(row.key_id)
    if key is None:
        return f"signed by an unknown key {row.key_id[:16]}"
    message = seal_message(
        seq_from=row.seq_from,
        seq_to=row.seq_to,
        head_hash=row.head_hash,
        signed_at=row.signed_at,
        key_id=row.key_id,
    )
    try:
        key.public.verify(base64.b64decode(row.signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return "signature does not verify"
    return None


def seal(
    session: Session,
    *,
    settings: Settings | None = None,
    verify: bool = True,
    now: datetime | None = None,
) -> AuditSeal | None:
    """Sign the chain's current head; None when nothing was appended since the last seal.

    Entries still pending are chained first. The chain since the last good seal is
    verified (``verify``): a seal must never vouch for a tampered chain. Raises
    :class:`Conflict` with the problems if it is. Requests running meanwhile are not
    blocked (they never take the chain head).
    """
    key = load_seal_key(settings)
    if key.private is None:  # pragma: no cover - load_seal_key always has it
        raise ConfigurationError("the audit seal key has no private half")
    chain_all(session)
    last = session.execute(
        select(_entries.c.seq, _entries.c.entry_hash)
        .where(_entries.c.seq.is_not(None))
        .order_by(_entries.c.seq.desc())
        .limit(1)
    ).first()
    if last is None:
        return None
    seq_to, head_hash = int(last[0]), str(last[1])
    previous = session.scalar(select(func.max(AuditSeal.seq_to)))
    seq_from = int(previous or 0) + 1
    if seq_from > seq_to:
        return None
    if verify:
        report = verify_chain(session, since_seal=True, upto=seq_to, settings=settings)
        if not report.ok:
            raise Conflict("the access log failed verification: " + "; ".join(report.problems))
    signed_at = _naive_utc(now or utcnow())
    message = seal_message(
        seq_from=seq_from,
        seq_to=seq_to,
        head_hash=head_hash,
        signed_at=signed_at,
        key_id=key.key_id,
    )
    row = AuditSeal(
        seq_from=seq_from,
        seq_to=seq_to,
        head_hash=head_hash,
        signed_at=signed_at,
        key_id=key.key_id,
        signature=base64.b64encode(key.private.sign(message)).decode(),
    )
    session.add(row)
    session.flush()
    return row


# --------------------------------------------------------------------------- verification


@dataclass
class VerifyReport:
    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)
    first_bad_seq: int | None = None
    seals_checked: int = 0
    start_seq: int = 1
    head_seq: int = 0
    # Entries written but not chained yet (not covered by this verification).
    pending: int = 0


class _Problems:
    def __init__(self, limit: int) -> None:
        self.items: list[str] = []
        self.first_seq: int | None = None
        self.limit = limit

    def add(self, message: str, seq: int | None = None) -> None:
        if seq is not None and (self.first_seq is None or seq < self.first_seq):
            self.first_seq = seq
        if len(self.items) < self.limit:
            self.items.append(message)
        elif len(self.items) == self.limit:
            self.items.append("... more problems not listed")

    @property
    def full(self) -> bool:
        return len(self.items) > self.limit


_SEAL_COLUMNS = (
    AuditSeal.id,
    AuditSeal.seq_from,
    AuditSeal.seq_to,
    AuditSeal.head_hash,
    AuditSeal.signed_at,
    AuditSeal.key_id,
    AuditSeal.signature,
)
# When an entry's hash fails, look this far around for the seq it was written with.
_REORDER_WINDOW = 64


def _written_as(row: Mapping[Any, Any]) -> int | None:
    """The seq this entry's content hashes correctly with, if near its stored one."""
    stored = int(row["seq"])
    trial = dict(row)
    for delta in range(1, _REORDER_WINDOW + 1):
        for candidate in (stored - delta, stored + delta):
            if candidate < 1:
                continue
            trial["seq"] = candidate
            if compute_entry_hash(trial) == row["entry_hash"]:
                return candidate
    return None


def _seal_label(s: Any) -> str:
    return f"seal {s.id} (seq {s.seq_from}-{s.seq_to})"


def verify_chain(
    session: Session,
    *,
    since_seal: bool = False,
    batch_size: int = 10_000,
    max_problems: int = 100,
    upto: int | None = None,
    settings: Settings | None = None,
) -> VerifyReport:
    """Walk the chain and report every inconsistency found (at most ``max_problems``;
    ``first_bad_seq`` is the lowest seq involved).

    ``since_seal`` starts after the newest seal that still holds (its signature verifies
    and its head hash is the stored hash at its ``seq_to``); newer broken seals are
    reported. ``upto`` stops at that seq (default: the chain head when the walk starts, so
    entries appended meanwhile are left for the next run).
    """
    problems = _Problems(max_problems)
    keys = seal_public_keys(settings)
    head = session.execute(select(_head.c.seq, _head.c.hash).where(_head.c.id == HEAD_ID)).first()
    max_seq = session.scalar(select(func.max(_entries.c.seq)))
    if upto is None:
        if head is None:
            if max_seq is not None:
                problems.add("the chain head row (audit_chain_head) is missing")
            upto = int(max_seq or 0)
        else:
            upto = int(head[0])
            if max_seq is not None and int(max_seq) > upto:
                problems.add(
                    f"entries after seq {upto} exist but the chain head says {upto}: "
                    "the head was rewound or entries were inserted",
                    upto + 1,
                )

    seals = list(session.execute(select(*_SEAL_COLUMNS).order_by(AuditSeal.seq_from)).all())
    bad_signature: dict[int, str] = {}
    for s in seals:
        reason = verify_seal_signature(s, keys)
        if reason:
            bad_signature[s.id] = reason

    start, prev_hash, seals_checked = 1, GENESIS_HASH, 0
    to_check = seals
    if since_seal:
        for s in reversed(seals):
            stored = session.scalar(select(_entries.c.entry_hash).where(_entries.c.seq == s.seq_to))
            if s.id not in bad_signature and stored == s.head_hash and s.seq_to <= upto:
                start, prev_hash = s.seq_to + 1, s.head_hash
                seals_checked += 1
                break
        to_check = [s for s in seals if s.seq_to >= start]

    # Seals: signatures, contiguity, and which seq each one pins.
    pinned: dict[int, list[Any]] = {}
    expected_from = start
    for s in to_check:
        seals_checked += 1
        if s.id in bad_signature:
            problems.add(f"{_seal_label(s)}: {bad_signature[s.id]}", s.seq_to)
        if s.seq_from != expected_from:
            problems.add(
                f"{_seal_label(s)} should start at seq {expected_from}: a seal was removed "
                "or altered"
            )
        expected_from = s.seq_to + 1
        if s.seq_to > upto:
            problems.add(
                f"{_seal_label(s)} covers entries up to seq {s.seq_to} but the chain ends at "
                f"seq {upto}: entries were removed",
                upto + 1,
            )
        else:
            pinned.setdefault(s.seq_to, []).append(s)

    columns = [_entries.c[name] for name in (*HASHED_FIELDS, "entry_hash")]
    expected, checked, last = start, 0, start - 1
    previous_flagged = False
    while not problems.full:
        rows = session.execute(
            select(*columns)
            .where(_entries.c.seq > last, _entries.c.seq <= upto)
            .order_by(_entries.c.seq)
            .limit(batch_size)
        ).all()
        if not rows:
            break
        for r in rows:
            if problems.full:
                break
            row = r._mapping
            seq = int(row["seq"])
            gap = seq != expected
            if gap:
                missing = str(expected) if seq == expected + 1 else f"{expected}-{seq - 1}"
                problems.add(f"seq {missing}: missing (entry removed)", expected)
            flagged = False
            if compute_entry_hash(row) != row["entry_hash"]:
                flagged = True
                moved = _written_as(row)
                if moved is not None:
                    problems.add(
                        f"seq {seq}: holds the entry written as seq {moved} "
                        "(entries reordered or renumbered)",
                        seq,
                    )
                else:
                    problems.add(f"seq {seq}: edited (its content does not match its hash)", seq)
            if row["prev_hash"] != prev_hash and not (gap or flagged or previous_flagged):
                problems.add(
                    f"seq {seq}: does not follow seq {seq - 1} (prev_hash mismatch): seq "
                    f"{seq - 1} was rewritten, or an entry was removed or inserted",
                    seq,
                )
            for s in pinned.get(seq, ()):
                if row["entry_hash"] != s.head_hash:
                    problems.add(
                        f"{_seal_label(s)}: head hash no longer matches seq {seq} "
                        "(entries up to it were rewritten)",
                        seq,
                    )
            prev_hash, expected, previous_flagged = row["entry_hash"], seq + 1, flagged
            checked += 1
        last = int(rows[-1]._mapping["seq"])

    if not problems.full and last < upto:
        missing = str(upto) if last + 1 == upto else f"{last + 1}-{upto}"
        problems.add(f"seq {missing}: missing at the end of the chain (entries removed)", last + 1)
    at_head = head is not None and last == upto == int(head[0]) and last > 0
    if at_head and head is not None and prev_hash != head[1] and not problems.full:
        problems.add(f"the chain head hash does not match the entry at seq {last}", last)

    return VerifyReport(
        ok=not problems.items,
        checked=checked,
        problems=problems.items,
        first_bad_seq=problems.first_seq,
        seals_checked=seals_checked,
        start_seq=start,
        head_seq=upto,
        pending=pending_count(session),
    )


# --------------------------------------------------------------------------- reading the log

_REF_RE = re.compile(r"^([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})$")
# Accesses that returned a resident's whole record (or a digest of it).
COMPARTMENT_ACTIONS = frozenset({"everything", "summary", "export"})


def entry_refs(entry: AuditEntry | Access) -> list[tuple[str, str]]:
    """Resource references the reader wrote in ``detail`` (at most 50 per entry)."""
    tokens = entry.detail.split()
    if entry.action in ("search", "history") and tokens and "/" in tokens[0]:
        # The reader puts the request first ("Observation?code=..." or "Observation/1").
        first = tokens[0]
        if "?" in first or entry.action == "history":
            tokens = tokens[1:]
    refs = []
    for token in tokens:
        m = _REF_RE.match(token)
        if m:
            refs.append((m.group(1), m.group(2)))
    return refs


def entry_what(entry: AuditEntry) -> list[tuple[str, int]]:
    """What an entry touched: ``[(resource type, count), ...]``, largest first.

    ``count`` is the authority on how many; the references in ``detail`` (a sample of
    up to 50) give the types.
    """
    if entry.action in COMPARTMENT_ACTIONS:
        return [("*", entry.count)]
    counts = Counter(t for t, _ in entry_refs(entry))
    if not counts and entry.resource_type:
        counts[entry.resource_type] = max(entry.count, 1) if entry.outcome == "permit" else 0
    total = sum(counts.values())
    if entry.outcome == "permit" and entry.count and total != entry.count:
        if len(counts) == 1:
            (only,) = counts
            counts[only] = entry.count
        elif entry.count > total:
            counts["*"] = entry.count - total
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass(frozen=True)
class LogFilter:
    """Which entries of a resident's log: ``since``/``until`` bound ``at`` (inclusive
    unless ``*_strict``); the resident's own reads only with ``include_own``."""

    resident_id: str
    include_own: bool = False
    since: datetime | None = None
    since_strict: bool = False
    until: datetime | None = None
    until_strict: bool = False

    def conditions(self) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = [AuditEntry.resident_id == self.resident_id]
        if not self.include_own:
            conds.append(AuditEntry.actor_kind != "resident")
        if self.since is not None:
            conds.append(
                AuditEntry.at > self.since if self.since_strict else AuditEntry.at >= self.since
            )
        if self.until is not None:
            conds.append(
                AuditEntry.at < self.until if self.until_strict else AuditEntry.at <= self.until
            )
        return conds


def access_log(
    session: Session, where: LogFilter, *, limit: int = 50, before: int | None = None
) -> tuple[list[AuditEntry], dict[str, Organization]]:
    """A resident's log, newest first, paged by ``pk`` (entries with pk < ``before``),
    with the organisations of the actors. Entries not chained yet are included."""
    conds = where.conditions()
    if before is not None:
        conds.append(AuditEntry.pk < before)
    entries = list(
        session.scalars(
            select(AuditEntry).where(*conds).order_by(AuditEntry.pk.desc()).limit(limit)
        )
    )
    org_ids = {e.organization_id for e in entries if e.organization_id}
    orgs = (
        {o.id: o for o in session.scalars(select(Organization).where(Organization.id.in_(org_ids)))}
        if org_ids
        else {}
    )
    return entries, orgs


def access_log_total(session: Session, where: LogFilter) -> int:
    return int(
        session.scalar(select(func.count()).select_from(AuditEntry).where(*where.conditions())) or 0
    )


# --------------------------------------------------------------------------- FHIR AuditEvent

AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
PHR_PURPOSE_SYSTEM = "urn:phr:purpose-of-use"
PHR_ROLE_SYSTEM = "urn:phr:role"
# Purposes of our own (not in HL7 v3 ActReason).
_OWN_PURPOSES = frozenset({"HOMECARE", "TRIAGE", "MEDREVIEW"})
_READS = {"read": "read", "vread": "vread", "search": "search-type"}
_OUTCOMES = {"permit": "0", "deny": "4", "not-found": "4", "error": "8"}
_OUTCOME_TEXT = {
    "permit": "permitted",
    "deny": "denied: no consent or rule allows it",
    "not-found": "not found",
    "error": "failed",
}


def _subtype(entry: AuditEntry) -> tuple[str, str]:
    """(restful-interaction code, AuditEvent.action) of an entry."""
    if entry.action in _READS:
        return _READS[entry.action], "R"
    if entry.action == "history":
        return ("history-instance" if entry.resource_id else "history-type"), "R"
    return "operation", "E"


def _agents(entry: AuditEntry, organization: Organization | None) -> list[dict[str, Any]]:
    org_ref: dict[str, Any] | None = None
    if entry.organization_id:
        org_ref = {"reference": f"Organization/{entry.organization_id}"}
        if organization is not None:
            org_ref["display"] = organization.name
    role = (
        [{"coding": [{"system": PHR_ROLE_SYSTEM, "code": entry.role}], "text": entry.role}]
        if entry.role
        else None
    )
    policy = [entry.consent_ref] if entry.consent_ref else None
    person: dict[str, Any] | None = None
    if entry.actor_kind == "resident" and entry.resident_id:
        person = {"reference": f"Patient/{entry.resident_id}"}
    elif entry.actor_kind in ("staff", "trusted_person") and entry.user_id:
        system = "urn:phr:staff" if entry.actor_kind == "staff" else "urn:phr:trusted-person"
        person = {"identifier": {"system": system, "value": entry.user_id}}
    elif entry.actor_kind == "system":
        person = {"display": f"Tsukuba PHR platform ({entry.client_id or 'system'})"}

    def agent(who: dict[str, Any], requestor: bool, human: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": {
                "coding": [
                    {
                        "system": PARTICIPATION_TYPE,
                        "code": "humanuser" if human else "dataprocessor",
                    }
                ]
            },
            "who": who,
            "requestor": requestor,
        }
        if requestor:
            if entry.client_id:
                out["altId"] = entry.client_id
            if role:
                out["role"] = role
            if policy:
                out["policy"] = policy
        return out

    agents = []
    if person is not None:
        agents.append(agent(person, True, entry.actor_kind != "system"))
    if org_ref is not None:
        agents.append(agent(org_ref, person is None, False))
    if not agents:
        agents.append(agent({"display": entry.client_id or entry.actor_kind}, True, False))
    return agents


def to_audit_event(
    entry: AuditEntry,
    *,
    organization: Organization | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The FHIR R4 AuditEvent of one access-log entry (validates with fhir.resources)."""
    settings = settings or get_settings()
    subtype, action = _subtype(entry)
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(entry.pk),
        "type": {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": RESTFUL_INTERACTION, "code": subtype}],
        "action": action,
        "recorded": iso_instant(entry.at),
        "outcome": _OUTCOMES.get(entry.outcome, "8"),
        "outcomeDesc": _OUTCOME_TEXT.get(entry.outcome, entry.outcome),
        "purposeOfEvent": [
            {
                "coding": [
                    {
                        "system": (
                            PHR_PURPOSE_SYSTEM if entry.purpose in _OWN_PURPOSES else PURPOSE_SYSTEM
                        ),
                        "code": entry.purpose,
                    }
                ]
            }
        ],
        "agent": _agents(entry, organization),
        "source": {
            "site": "Tsukuba PHR",
            "observer": {
                "display": "Tsukuba PHR platform",
                "identifier": {"system": "urn:ietf:rfc:3986", "value": settings.base_url},
            },
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
    }
    if entry.action not in _READS and entry.action != "history":
        event["subtype"].append({"system": "urn:phr:operation", "code": entry.action})
    entities: list[dict[str, Any]] = []
    if entry.resident_id:
        entities.append(
            {
                "what": {"reference": f"Patient/{entry.resident_id}"},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
                "detail": [{"type": "count", "valueString": str(entry.count)}],
            }
        )
    refs = entry_refs(entry)
    if not refs and entry.resource_type and entry.resource_id:
        refs = [(entry.resource_type, entry.resource_id)]
    for rtype, rid in dict.fromkeys(refs):
        if rtype == "Patient" and rid == entry.resident_id:
            continue
        entities.append(
            {
                "what": {"reference": f"{rtype}/{rid}"},
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            }
        )
    query = entry.detail.split()[0] if entry.action == "search" and entry.detail else ""
    if "?" in query:
        entities.append(
            {
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
                "query": base64.b64encode(query.encode()).decode(),
            }
        )
    if entities:
        event["entity"] = entities
    return event


def audit_event_bundle(
    entries: Sequence[AuditEntry],
    organizations: Mapping[str, Organization],
    *,
    total: int | None = None,
    self_url: str,
    next_url: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """A FHIR searchset Bundle of AuditEvents."""
    settings = settings or get_settings()
    base = settings.base_url.rstrip("/")
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": iso_instant(utcnow()),
        "link": [{"relation": "self", "url": self_url}],
        "entry": [
            {
                "fullUrl": f"{base}/fhir/AuditEvent/{e.pk}",
                "resource": to_audit_event(
                    e,
                    organization=organizations.get(e.organization_id or ""),
                    settings=settings,
                ),
                "search": {"mode": "match"},
            }
            for e in entries
        ],
    }
    if total is not None:
        bundle["total"] = total
    if next_url:
        bundle["link"].append({"relation": "next", "url": next_url})
    return bundle
