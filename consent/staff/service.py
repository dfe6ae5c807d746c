"""Staff accounts: roles per organisation kind, password + TOTP sign-in, sessions, registry.

Services only ``flush``; the caller owns the transaction. One exception to "nothing
happens when the request fails": a failed sign-in is counted even though
:func:`authenticate_staff` raises, because the count is written again after the
rollback (:func:`phr.db.after_rollback`) — otherwise the lockout could never trigger.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.orm import Session, object_session

from consent.actors import Actor
from consent.identity.clients import register_client, register_organization
from consent.models import ORGANIZATION_KINDS, OAuthClient, Organization
from consent.staff import crypto, totp
from consent.staff import repository as repo
from consent.staff.models import StaffSession, StaffUser
from phr.db import after_rollback
from phr.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound
from phr.store.indexer import utcnow
from phr.store.repository import new_id

__all__ = [
    "LOCKOUT",
    "MAX_FAILED_ATTEMPTS",
    "PLATFORM_ORGANIZATION_ID",
    "ROLES",
    "ROLE_ORGANIZATION_KINDS",
    "SESSION_IDLE_TIMEOUT",
    "SESSION_MAX_AGE",
    "SIGN_IN_FAILED",
    "StaffCredentials",
    "authenticate_staff",
    "bootstrap_platform",
    "check_role",
    "configure_password_hasher",
    "create_organization",
    "create_staff",
    "deactivate_client",
    "end_session",
    "hash_password",
    "is_platform_administrator",
    "register_organization_client",
    "require_manages",
    "staff_actor",
    "staff_for_session",
    "staff_session",
    "start_session",
    "totp_secret_of",
    "update_organization",
    "update_staff",
    "verify_password",
]

log = logging.getLogger(__name__)

ROLES = (
    "doctor",
    "nurse",
    "pharmacist",
    "paramedic",
    "shelter_staff",
    "clerk",
    "analyst",
    "administrator",
)
_SERVING_KINDS = frozenset(ORGANIZATION_KINDS) - {"platform"}
# Which kinds of organisation employ each role. The platform organisation only has
# administrators; municipalities employ public-health nurses (保健師).
ROLE_ORGANIZATION_KINDS: dict[str, frozenset[str]] = {
    "doctor": frozenset({"hospital", "clinic"}),
    "nurse": frozenset({"hospital", "clinic", "nurse_station", "municipality"}),
    "pharmacist": frozenset({"pharmacy", "hospital"}),
    "paramedic": frozenset({"ems"}),
    "shelter_staff": frozenset({"shelter"}),  # 避難所の運営・保健担当 (docs/shelter.md)
    "clerk": _SERVING_KINDS,
    "analyst": frozenset({"municipality", "insurer"}),
    "administrator": frozenset(ORGANIZATION_KINDS),
}

MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_IDLE_TIMEOUT = timedelta(minutes=30)
SESSION_MAX_AGE = timedelta(hours=12)
# Writing last_seen_at on every request would make every page view a write.
_SESSION_TOUCH_INTERVAL = timedelta(seconds=60)
TOTP_ISSUER = "Tsukuba PHR"
PLATFORM_ORGANIZATION_ID = "platform"
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
_ORG_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# One message for every failure: which factor was wrong, whether the account exists, is
# locked or disabled, is never revealed.
SIGN_IN_FAILED = (
    "sign-in failed: the organisation, username, password or one-time code is not right, "
    "or the account cannot sign in now"
)


# --------------------------------------------------------------------------- secrets


# argon2-cffi's defaults are RFC 9106's second recommended profile (argon2id, t=3,
# m=64 MiB, p=4): about 0.1-0.2 s per hash on a server core, which is the point.
DEFAULT_PASSWORD_HASHER = PasswordHasher()
_password_hasher: PasswordHasher = DEFAULT_PASSWORD_HASHER
_dummy: str | None = None


def configure_password_hasher(hasher: PasswordHasher | None = None) -> None:
    """Use other argon2id parameters for new hashes (None: the default profile).

    Existing hashes keep verifying (the parameters travel in the hash) and are upgraded at
    the next sign-in. A deployment on small hardware may lower the cost; the test suite
    uses argon2's cheapest profile so that it does not spend minutes hashing.
    """
    global _password_hasher, _dummy
    _password_hasher = hasher or DEFAULT_PASSWORD_HASHER
    _dummy = None


def _hasher() -> PasswordHasher:
    return _password_hasher


def _dummy_hash() -> str:
    """A hash nobody knows the password of: unknown users cost as much as known ones."""
    global _dummy
    if _dummy is None:
        _dummy = _hasher().hash(secrets.token_urlsafe(32))
    return _dummy


def hash_password(password: str) -> str:
    """argon2id hash in PHC string format."""
    return _hasher().hash(password)


def verify_password(password: str, stored: str) -> bool:
    try:
        return bool(_hasher().verify(stored, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A random initial password (about 144 bits), shown once to whoever creates the account."""
    return secrets.token_urlsafe(18)


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidInput(
            f"a password must have between {MIN_PASSWORD_CHARS} and {MAX_PASSWORD_CHARS} characters"
        )


def _totp_aad(staff_id: str) -> bytes:
    return f"phr:staff-totp:{staff_id}".encode()


def _seal_totp(staff_id: str, secret: bytes) -> str:
    return crypto.seal(secret, aad=_totp_aad(staff_id), keys=crypto.totp_key_provider())


def totp_secret_of(user: StaffUser) -> bytes:
    """The account's TOTP shared secret, decrypted."""
    return crypto.open_sealed(
        user.totp_secret, aad=_totp_aad(user.id), keys=crypto.totp_key_provider()
    )


def _provisioning_uri(user: StaffUser, secret: bytes) -> str:
    return totp.provisioning_uri(
        secret, account=f"{user.username}@{user.organization_id}", issuer=TOTP_ISSUER
    )


@dataclass(frozen=True)
class StaffCredentials:
    """What is shown once when an account is created or reset, and never again.

    ``password`` is None when the caller chose the password; ``totp_uri`` is None when the
    TOTP secret was not changed.
    """

    password: str | None
    totp_uri: str | None


# --------------------------------------------------------------------------- roles


def normalise_username(username: str) -> str:
    return username.strip().lower()


def check_role(role: str, organization_kind: str) -> None:
    """Raise :class:`InvalidInput` unless an organisation of this kind employs the role."""
    kinds = ROLE_ORGANIZATION_KINDS.get(role)
    if kinds is None:
        raise InvalidInput(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if organization_kind not in kinds:
        raise InvalidInput(
            f"role {role!r} does not exist in an organisation of kind {organization_kind!r}"
        )


def _organization(session: Session, organization_id: str) -> Organization:
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound(f"no organization {organization_id!r}")
    return org


# --------------------------------------------------------------------------- accounts


def create_staff(
    session: Session,
    *,
    organization_id: str,
    username: str,
    display_name: str,
    role: str,
    password: str | None = None,
) -> tuple[StaffUser, StaffCredentials]:
    """Create an account with a new TOTP secret.

    Without ``password`` a random one is generated; the credentials returned (initial
    password, TOTP provisioning URI) are the only time either is available.
    """
    org = _organization(session, organization_id)
    check_role(role, org.kind)
    username = normalise_username(username)
    if not _USERNAME_RE.match(username):
        raise InvalidInput("a username is 1-64 characters: letters, digits and . _ @ - (not first)")
    display_name = display_name.strip()
    if not display_name or len(display_name) > 255:
        raise InvalidInput("a display name is 1-255 characters")
    if repo.get_staff_by_username(session, organization_id=org.id, username=username):
        raise Conflict(f"username {username!r} is already taken in {org.id!r}")
    generated = password is None
    if password is None:
        password = generate_password()
    _check_password(password)
    staff_id = new_id()
    secret = totp.generate_secret()
    user = StaffUser(
        id=staff_id,
        organization_id=org.id,
        username=username,
        display_name=display_name,
        role=role,
        password_hash=hash_password(password),
        totp_secret=_seal_totp(staff_id, secret),
        totp_last_step=None,
        active=True,
        failed_attempts=0,
        locked_until=None,
        created_at=utcnow(),
        last_login_at=None,
    )
    session.add(user)
    session.flush()
    log.info("staff account created id=%s org=%s role=%s", user.id, org.id, role)
    return user, StaffCredentials(
        password=password if generated else None, totp_uri=_provisioning_uri(user, secret)
    )


def update_staff(
    session: Session,
    user: StaffUser,
    *,
    role: str | None = None,
    active: bool | None = None,
    display_name: str | None = None,
    reset_totp: bool = False,
    reset_password: bool = False,
) -> StaffCredentials | None:
    """Change an account; returns the new credentials when something was reset.

    Disabling an account or resetting a factor ends its sessions. Reactivating it or
    resetting a factor also lifts a lockout. The last active administrator of an
    organisation cannot be disabled or given another role (nobody could manage the
    organisation any more).
    """
    org = _organization(session, user.organization_id)
    loses_admin = (
        user.active
        and user.role == "administrator"
        and (active is False or (role is not None and role != "administrator"))
    )
    if loses_admin and repo.count_active_administrators(session, org.id, excluding=user.id) == 0:
        raise Conflict(f"{user.username!r} is the last active administrator of {org.id!r}")
    role_changed = role is not None and role != user.role
    if role is not None and role_changed:
        check_role(role, org.kind)
        user.role = role
    if display_name is not None:
        display_name = display_name.strip()
        if not display_name or len(display_name) > 255:
            raise InvalidInput("a display name is 1-255 characters")
        user.display_name = display_name
    end_sessions = False
    if active is not None and active != user.active:
        user.active = active
        end_sessions = not active
    if active or reset_password or reset_totp:
        user.failed_attempts = 0
        user.locked_until = None
    password: str | None = None
    uri: str | None = None
    if reset_password:
        password = generate_password()
        user.password_hash = hash_password(password)
        end_sessions = True
    if reset_totp:
        secret = totp.generate_secret()
        user.totp_secret = _seal_totp(user.id, secret)
        user.totp_last_step = None
        uri = _provisioning_uri(user, secret)
        end_sessions = True
    if end_sessions:
        repo.delete_sessions_of(session, user.id)
    if end_sessions or role_changed:
        # Tokens that apps got through OpenID Connect carry the old role, or a person
        # who may no longer act: they stop with the sessions.
        _revoke_app_tokens(session, user.id, "staff_disabled" if end_sessions else "role_changed")
    session.flush()
    log.info("staff account updated id=%s org=%s", user.id, org.id)
    if password is None and uri is None:
        return None
    return StaffCredentials(password=password, totp_uri=uri)


def _revoke_app_tokens(session: Session, staff_id: str, reason: str) -> None:
    """Revoke the OpenID Connect token families of a staff member (when the provider has
    them)."""
    try:
        from consent.identity.oauth import revoke_subject_grants  # type: ignore[attr-defined]
    except ImportError:  # the OpenID Connect provider is not there (yet)
        return
    revoke_subject_grants(session, subject_kind="staff", subject_id=staff_id, reason=reason)


# --------------------------------------------------------------------------- sign-in


def _timestamp(at: datetime) -> float:
    return at.replace(tzinfo=UTC).timestamp()


def _count_failure(session: Session, user: StaffUser, now: datetime) -> None:
    staff_id, until = user.id, now + LOCKOUT

    def write(s: Session) -> None:
        repo.record_failed_attempt(
            s, staff_id, max_attempts=MAX_FAILED_ATTEMPTS, locked_until=until
        )

    write(session)
    session.expire(user, ["failed_attempts", "locked_until"])
    # The request that failed is rolled back; the count must survive it.
    after_rollback(session, write)


def authenticate_staff(
    session: Session,
    *,
    organization_id: str,
    username: str,
    password: str,
    totp_code: str,
    now: datetime | None = None,
) -> StaffUser:
    """The account these credentials open, or :class:`NotAuthenticated`.

    Every failure raises the same generic message (:data:`SIGN_IN_FAILED`) after the same
    work: an unknown user still costs a password verification (against a dummy hash), and
    the TOTP is checked whatever the password said. The fifth failure in a row locks the
    account for 15 minutes; while locked, even correct credentials fail (and do not extend
    the lock). A TOTP code accepted once is never accepted again.
    """
    now = now or utcnow()
    dummy = _dummy_hash()  # computed on the first call, whoever signs in
    username = normalise_username(username)
    user = None
    if (
        _ORG_ID_RE.match(organization_id)
        and _USERNAME_RE.match(username)
        and len(password) <= MAX_PASSWORD_CHARS
    ):
        user = repo.get_staff_by_username(
            session, organization_id=organization_id, username=username
        )
    if user is None:
        verify_password(password, dummy)
        shown = organization_id if _ORG_ID_RE.match(organization_id) else "<malformed>"
        log.info("staff sign-in failed: no such account (org=%s)", shown)
        raise NotAuthenticated(SIGN_IN_FAILED)

    password_ok = verify_password(password, user.password_hash)
    try:
        secret = totp_secret_of(user)
    except crypto.DecryptionError:
        log.error("staff account id=%s: TOTP secret does not decrypt", user.id)
        secret = b""
    step = (
        totp.verify(secret, totp_code, at=_timestamp(now), last_step=user.totp_last_step)
        if secret
        else None
    )
    org = session.get(Organization, user.organization_id)
    locked = user.locked_until is not None and user.locked_until > now
    usable = user.active and org is not None and org.active and not locked

    if password_ok and step is not None and usable:
        if repo.record_success(session, user.id, step=step, at=now):
            session.refresh(user)
            if _hasher().check_needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)
                session.flush()
            log.info("staff signed in id=%s org=%s", user.id, user.organization_id)
            return user
        step = None  # a concurrent request used this code first

    if not locked:
        _count_failure(session, user, now)
    log.info(
        "staff sign-in failed id=%s org=%s password=%s totp=%s usable=%s",
        user.id,
        user.organization_id,
        "ok" if password_ok else "bad",
        "ok" if step is not None else "bad",
        usable,
    )
    raise NotAuthenticated(SIGN_IN_FAILED)


# --------------------------------------------------------------------------- sessions


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def start_session(session: Session, user: StaffUser, *, now: datetime | None = None) -> str:
    """Open a web session; returns the random token for the cookie (stored only hashed)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            id_hash=_token_hash(token),
            staff_id=user.id,
            created_at=now,
            expires_at=now + SESSION_MAX_AGE,
            last_seen_at=now,
        )
    )
    session.flush()
    return token


def staff_session(
    session: Session, token: str | None, *, now: datetime | None = None
) -> tuple[StaffUser, StaffSession] | None:
    """The signed-in account of a session token and its session row, or None when the
    token is unknown, the session expired (12 h) or sat idle for over 30 minutes, or the
    account or its organisation is no longer active."""
    if not token or len(token) > 128:
        return None
    now = now or utcnow()
    row = repo.get_session_row(session, _token_hash(token))
    if row is None:
        return None
    if row.expires_at <= now or row.last_seen_at + SESSION_IDLE_TIMEOUT < now:
        session.delete(row)
        session.flush()
        return None
    user = repo.get_staff(session, row.staff_id)
    if user is None or not user.active:
        return None
    org = session.get(Organization, user.organization_id)
    if org is None or not org.active:
        return None
    if now - row.last_seen_at >= _SESSION_TOUCH_INTERVAL:
        row.last_seen_at = now
        session.flush()
    return user, row


def staff_for_session(
    session: Session, token: str | None, *, now: datetime | None = None
) -> StaffUser | None:
    """The signed-in account of a session token (see :func:`staff_session`), or None."""
    found = staff_session(session, token, now=now)
    return found[0] if found else None


def end_session(session: Session, token: str | None) -> None:
    if token and len(token) <= 128:
        repo.delete_session(session, _token_hash(token))


def purge_sessions(session: Session, *, now: datetime | None = None) -> int:
    """Delete expired and idle sessions (a periodic job); returns how many."""
    now = now or utcnow()
    return repo.delete_expired_sessions(session, now=now, idle_since=now - SESSION_IDLE_TIMEOUT)


# --------------------------------------------------------------------------- actors


def staff_actor(user: StaffUser, *, client_id: str | None, scopes: Iterable[str]) -> Actor:
    """The :class:`Actor` of a staff member using ``client_id`` with the granted ``scopes``.

    ``user`` must belong to a session (its organisation is looked up there).
    """
    session = object_session(user)
    if session is None:
        raise RuntimeError("staff_actor needs a StaffUser attached to a session")
    org = session.get(Organization, user.organization_id)
    return Actor(
        kind="staff",
        client_id=client_id,
        organization_id=user.organization_id,
        organization_kind=org.kind if org is not None else None,
        scopes=frozenset(scopes),
        user_id=user.id,
        role=user.role,
    )


# --------------------------------------------------------------------------- registry


def is_platform_administrator(session: Session, user: StaffUser) -> bool:
    if user.role != "administrator":
        return False
    org = session.get(Organization, user.organization_id)
    return org is not None and org.kind == "platform" and org.active


def require_manages(session: Session, admin: StaffUser, organization_id: str) -> Organization:
    """The organisation, provided ``admin`` may manage it (its own, or any for the platform).

    Raises :class:`Forbidden` for another organisation's administrator (whether or not the
    organisation exists) and :class:`NotFound` for the platform administrator.
    """
    if admin.role != "administrator":
        raise Forbidden("only administrators manage organisations")
    if admin.organization_id != organization_id and not is_platform_administrator(session, admin):
        raise Forbidden("administrators manage only their own organisation")
    return _organization(session, organization_id)


def create_organization(
    session: Session,
    *,
    id: str,
    name: str,
    kind: str,
    identifier_system: str | None = None,
    identifier_value: str | None = None,
) -> Organization:
    if not _ORG_ID_RE.match(id):
        raise InvalidInput("an organisation id is 1-64 characters: letters, digits and . _ -")
    if session.get(Organization, id) is not None:
        raise Conflict(f"organization {id!r} already exists")
    if not name.strip():
        raise InvalidInput("an organisation needs a name")
    return register_organization(
        session,
        id=id,
        name=name.strip(),
        kind=kind,
        identifier_system=identifier_system,
        identifier_value=identifier_value,
    )


def update_organization(
    session: Session, org: Organization, *, name: str | None = None, active: bool | None = None
) -> Organization:
    """Rename or (de)activate. A deactivated organisation's tokens and sessions stop working
    at once; the platform organisation itself cannot be deactivated."""
    if active is False and org.kind == "platform":
        raise Conflict("the platform organisation cannot be deactivated")
    if name is not None:
        if not name.strip():
            raise InvalidInput("an organisation needs a name")
        org.name = name.strip()
    if active is not None:
        org.active = active
    session.flush()
    log.info("organization updated id=%s active=%s", org.id, org.active)
    return org


def register_organization_client(
    session: Session,
    org: Organization,
    *,
    name: str,
    scopes: list[str],
    client_id: str | None = None,
) -> tuple[OAuthClient, str]:
    """A new client-credentials client of ``org``; the secret is returned only here."""
    if not name.strip():
        raise InvalidInput("a client needs a name")
    client, secret = register_client(
        session, organization_id=org.id, name=name.strip(), scopes=scopes, client_id=client_id
    )
    log.info("client registered id=%s org=%s", client.client_id, org.id)
    return client, secret


def deactivate_client(session: Session, org: Organization, client_id: str) -> OAuthClient:
    """Deactivate a client: its tokens stop working on the next request."""
    client = repo.get_client(session, org.id, client_id)
    if client is None:
        raise NotFound(f"no client {client_id!r} in {org.id!r}")
    client.active = False
    session.flush()
    log.info("client deactivated id=%s org=%s", client.client_id, org.id)
    return client


def bootstrap_platform(
    session: Session,
    *,
    username: str = "admin",
    display_name: str = "Platform administrator",
    password: str | None = None,
    organization_name: str = "Tsukuba PHR platform",
) -> tuple[StaffUser, StaffCredentials]:
    """Create the platform organisation (``platform``) and its first administrator.

    Refuses when the platform already has an active administrator: further ones are added
    by that administrator (or ``phr staff add platform ...``).
    """
    org = session.get(Organization, PLATFORM_ORGANIZATION_ID)
    if org is None:
        org = register_organization(
            session, id=PLATFORM_ORGANIZATION_ID, name=organization_name, kind="platform"
        )
    elif org.kind != "platform":
        raise Conflict(f"organization {org.id!r} exists and is not of kind 'platform'")
    if repo.count_active_administrators(session, org.id) > 0:
        raise Conflict("the platform already has an administrator")
    return create_staff(
        session,
        organization_id=org.id,
        username=username,
        display_name=display_name,
        role="administrator",
        password=password,
    )
