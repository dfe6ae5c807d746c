"""OAuth 2.0 token endpoint (client credentials, authorization code, refresh), revocation,
SMART discovery, and bearer-token checks.

Organisations' systems (hospitals, pharmacies, the EMS, ...) authenticate with their
client id and secret (``client_secret_basic`` or ``client_secret_post``, RFC 6749 §2.3.1)
and get a short-lived JWT access token (RFC 9068 shape, ES256, ``typ: at+jwt``) carrying
the granted SMART scopes and the organisation. The token endpoint is authlib's
framework-agnostic :class:`~authlib.oauth2.rfc6749.AuthorizationServer` bound to FastAPI
here; JWTs are signed and verified with joserfc (authlib's own ``authlib.jose`` is
deprecated) using the keys of :mod:`consent.identity.keys`.

Every API request then goes through :func:`current_actor` (``ActorDep``): the token's
signature, issuer, audience and expiry are checked, and the client and its organisation
must still be active, so deactivating a client cuts it off at once rather than when its
last token expires.

People (residents signed in with their card, staff) reach the API through apps using the
authorization-code grant with PKCE (S256) — SMART App Launch, standalone — registered in
``oauth_app_client`` (public or confidential). The authorization endpoint and the consent
screen live in :mod:`consent.identity.oidc`; this module holds the grants:

* ``authorization_code`` — codes are single use and live 60 s; presenting one again
  revokes what it was exchanged for. The token response of a resident carries the SMART
  launch context ``patient``; with ``openid`` an ID token (ES256, signed by the same keys).
* ``refresh_token`` — issued with ``offline_access``; rotated at every use, stored hashed.
  Presenting a rotated refresh token again revokes its whole family.
* revocation (RFC 7009, ``POST /oauth/revoke``) — revoking a refresh or access token
  revokes its family: every token issued from that approval stops working at once,
  access tokens included (they carry the family as ``sid``, checked on every request).

User access tokens carry ``sub`` (resident or staff id), ``fhirUser`` (``Patient/<id>`` or
``Practitioner/<id>``), ``sid`` and, for staff, ``org`` and ``role``;
:func:`decode_access_token` turns them into a resident or staff :class:`Actor`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from authlib.common.security import is_secure_transport
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    JsonPayload,
    JsonRequest,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    list_to_scope,
    scope_to_list,
)
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from consent.actors import Actor, scope_allows
from consent.identity import keys
from consent.identity.clients import verify_secret
from consent.identity.models import AppClient, AuthorizationCode, RefreshToken, TokenFamily
from consent.models import OAuthClient, Organization
from phr.db import SessionDep
from phr.errors import Forbidden, NotAuthenticated
from phr.security import limiter
from phr.settings import Settings, get_settings
from phr.store.indexer import utcnow
from phr.store.models import Resident

__all__ = [
    "APP_AUTH_METHODS",
    "AUTHORIZATION_CODE_TTL",
    "REFRESH_TOKEN_TTL",
    "TOKEN_ENDPOINT_AUTH_METHODS",
    "USER_SCOPES",
    "ActorDep",
    "PHRAppClient",
    "PHRAuthorizationServer",
    "PHRClient",
    "SignedInUser",
    "TokenHTTPRequest",
    "access_token_audience",
    "check_scope",
    "current_actor",
    "decode_access_token",
    "issue_access_token",
    "issue_user_tokens",
    "issuer",
    "require_scope",
    "revoke_subject_grants",
    "revoke_token_family",
    "router",
    "scopes_for_user",
    "smart_configuration",
    "user_claims",
]

log = logging.getLogger(__name__)

TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
# Apps: public clients authenticate with nothing but their client_id (and PKCE).
APP_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"]
ACCESS_TOKEN_TYPE = "at+jwt"  # RFC 9068 §2.1
AUTHORIZATION_CODE_TTL = timedelta(seconds=60)
REFRESH_TOKEN_TTL = timedelta(days=30)
# A little slack for clocks of several hosts; our own tokens are checked by our clock.
CLOCK_LEEWAY_SECONDS = 5
MAX_TOKEN_REQUEST_BYTES = 16 * 1024
MAX_ACCESS_TOKEN_CHARS = 8 * 1024

# Advertised in the SMART configuration; a client may be registered with any valid
# SMART scope (see consent.identity.clients.SCOPE_RE).
_COMMON_TYPES = (
    "Patient",
    "Observation",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "MedicationDispense",
    "MedicationStatement",
    "Immunization",
    "Encounter",
    "Procedure",
    "DiagnosticReport",
    "DocumentReference",
    "CarePlan",
    "Consent",
    "Organization",
    "Practitioner",
)
# Scopes of apps acting for a signed-in person (besides patient/ and user/ data scopes).
USER_SCOPES = ("openid", "fhirUser", "profile", "launch/patient", "offline_access")
SCOPES_SUPPORTED = [
    *USER_SCOPES,
    "patient/*.rs",
    *(f"patient/{t}.rs" for t in _COMMON_TYPES),
    "user/*.rs",
    "system/*.rs",
    "system/*.cruds",
    "system/Bundle.c",
    *(f"system/{t}.rs" for t in _COMMON_TYPES),
    *(f"system/{t}.cruds" for t in _COMMON_TYPES),
]
CAPABILITIES = [
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "context-standalone-patient",
    "permission-patient",
    "permission-user",
    "permission-offline",
    "permission-v2",
    "sso-openid-connect",
]


def issuer(settings: Settings | None = None) -> str:
    return (settings or get_settings()).base_url.rstrip("/")


def access_token_audience(settings: Settings | None = None) -> str:
    return issuer(settings) + "/fhir"


# --------------------------------------------------------------------------- authlib glue


class PHRClient(ClientMixin):
    """authlib's view of an :class:`OAuthClient` row (with its organisation)."""

    def __init__(self, row: OAuthClient, organization: Organization) -> None:
        self.row = row
        self.organization = organization

    @property
    def scopes(self) -> list[str]:
        return self.row.scopes.split()

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The requested scopes this client holds; all of them when none was asked."""
        requested = scope_to_list(scope)
        if not requested:
            return str(list_to_scope(self.scopes))
        registered = set(self.scopes)
        return str(list_to_scope([s for s in dict.fromkeys(requested) if s in registered]))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return verify_secret(client_secret, self.row.client_secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # Both secret methods carry the same secret: accept either for every client.
        return endpoint == "token" and method in TOKEN_ENDPOINT_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types.split()


@dataclass(frozen=True)
class SignedInUser:
    """Who is signed in at the authorization endpoint, and later the subject of tokens.

    ``kind`` resident: ``id`` == ``resident_id``. ``kind`` staff: ``id`` is the staff
    member's id, acting for ``organization_id`` in ``role``. ``auth_time`` is when they
    signed in (naive UTC).
    """

    kind: Literal["resident", "staff"]
    id: str
    resident_id: str | None = None
    organization_id: str | None = None
    role: str | None = None
    auth_time: datetime | None = None

    def __post_init__(self) -> None:
        if self.kind == "resident" and self.resident_id != self.id:
            raise ValueError("a resident's id is their resident_id")
        if self.kind == "staff" and not (self.organization_id and self.role):
            raise ValueError("staff act for an organization in a role")
        if self.kind not in ("resident", "staff"):
            raise ValueError(f"unknown kind of user {self.kind!r}")


def user_claims(user: SignedInUser) -> dict[str, str]:
    """The claims that say who the user is, in ID tokens, access tokens and userinfo."""
    if user.kind == "resident":
        assert user.resident_id is not None
        return {"sub": user.id, "fhirUser": f"Patient/{user.resident_id}"}
    assert user.organization_id is not None and user.role is not None
    return {
        "sub": user.id,
        "fhirUser": f"Practitioner/{user.id}",
        "org": user.organization_id,
        "role": user.role,
    }


def scopes_for_user(scopes: list[str], user: SignedInUser) -> list[str]:
    """Drop what makes no sense for this kind of user.

    A staff member has no patient context in a standalone launch: ``patient/`` scopes and
    ``launch/patient`` are not granted to them (they use ``user/`` scopes, filtered by
    consent at the choke point).
    """
    if user.kind == "staff":
        return [s for s in scopes if not s.startswith("patient/") and s != "launch/patient"]
    return list(scopes)


class PHRAppClient(ClientMixin):
    """authlib's view of an :class:`AppClient` (authorization-code apps)."""

    def __init__(self, row: AppClient) -> None:
        self.row = row

    @property
    def scopes(self) -> list[str]:
        return self.row.scopes.split()

    @property
    def redirect_uris(self) -> list[str]:
        return [u for u in self.row.redirect_uris.splitlines() if u]

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        # redirect_uri is required in every authorization request (SMART App Launch).
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scopes this app was registered for; None (invalid) if none asked."""
        requested = scope_to_list(scope)
        if not requested:
            return None
        registered = set(self.scopes)
        return str(list_to_scope([s for s in dict.fromkeys(requested) if s in registered]))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string match: no prefix, no normalisation.
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.row.client_secret_hash
        return bool(stored) and not self.row.public and verify_secret(client_secret, stored or "")

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint not in ("token", "revocation"):
            return False
        if self.row.public:
            return method == "none"
        return method in TOKEN_ENDPOINT_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types.split()


@dataclass(frozen=True)
class TokenHTTPRequest:
    """What the token endpoint needs of the HTTP request, read before leaving the loop."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: dict[str, str] = field(default_factory=dict)
    form: list[tuple[str, str]] = field(default_factory=list)
    json: Any = None


class _FormPayload(OAuth2Payload):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._data: dict[str, str] = {}
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._datalist[key].append(value)
            self._data.setdefault(key, value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class _OAuth2Request(OAuth2Request):
    def __init__(self, http: TokenHTTPRequest, uri: str, *, enforce_tls: bool) -> None:
        if enforce_tls or is_secure_transport(uri):
            # authlib refuses non-TLS URIs (other than loopback) here.
            super().__init__(http.method, uri, headers=http.headers)
        else:
            # Development behind plain HTTP on a LAN name: authlib only looks at the URI
            # for that check, so give it a loopback one and keep the real URI.
            super().__init__(http.method, "http://127.0.0.1/", headers=http.headers)
            self.uri = uri
        self.payload = _FormPayload(http.form)
        self._query = http.query

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return dict(self.payload.data)


class _JsonPayload(JsonPayload):
    def __init__(self, data: Any) -> None:
        self._data = data

    @property
    def data(self) -> Any:
        return self._data


class _ClientCredentialsGrant(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_ENDPOINT_AUTH_METHODS

    def validate_token_request(self) -> None:
        datalist = self.request.payload.datalist
        for name in ("grant_type", "scope", "client_id", "client_secret"):
            if len(datalist.get(name, [])) > 1:
                raise InvalidRequestError(f"parameter '{name}' is repeated")
        basic_id, _ = extract_basic_authorization(self.request.headers)
        if basic_id and "client_secret" in self.request.payload.data:
            raise InvalidRequestError("use only one client authentication method")
        super().validate_token_request()
        form_id = self.request.payload.client_id
        if form_id and form_id != self.request.client.get_client_id():
            raise InvalidClientError(
                status_code=401, description="client_id does not match the credentials"
            )

    def validate_requested_scope(self) -> None:
        """Requested scopes must be a subset of the client's registered scopes."""
        requested = scope_to_list(self.request.payload.scope) or []
        registered = set(self.request.client.scopes)
        if any(s not in registered for s in requested):
            raise InvalidScopeError(
                "the requested scope exceeds the scopes registered for this client"
            )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _epoch(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)).total_seconds())


def _reject_repeated(request: OAuth2Request, names: tuple[str, ...]) -> None:
    datalist = request.payload.datalist
    for name in names:
        if len(datalist.get(name, [])) > 1:
            raise InvalidRequestError(f"parameter '{name}' is repeated")
    basic_id, _ = extract_basic_authorization(request.headers)
    if basic_id and "client_secret" in request.payload.data:
        raise InvalidRequestError("use only one client authentication method")


def _check_form_client_id(request: OAuth2Request) -> None:
    form_id = request.payload.client_id
    if form_id and request.client is not None and form_id != request.client.get_client_id():
        raise InvalidClientError(
            status_code=401, description="client_id does not match the credentials"
        )


class _CodeView:
    """authlib's view of a stored authorization code."""

    def __init__(self, row: AuthorizationCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method
        self.family_id: str | None = None

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return _epoch(self.row.auth_time)

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str] | None:
        return None


class _FamilyView:
    """A refresh token (or access token) as authlib's token object: its family decides."""

    def __init__(self, family: TokenFamily, refresh: RefreshToken | None = None) -> None:
        self.family = family
        self.refresh = refresh

    def check_client(self, client: ClientMixin) -> bool:
        return bool(self.family.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return self.family.scope

    def is_revoked(self) -> bool:
        return self.family.revoked_at is not None


def _user_of(session: Session, row: AuthorizationCode | TokenFamily) -> SignedInUser | None:
    """The subject of a code or family, if still valid (a resident must still be active)."""
    if row.subject_kind == "resident":
        resident = session.get(Resident, row.subject_id)
        if resident is None or resident.status != "active":
            return None
        return SignedInUser(
            kind="resident",
            id=row.subject_id,
            resident_id=row.subject_id,
            auth_time=row.auth_time,
        )
    if row.subject_kind == "staff":
        org = session.get(Organization, row.organization_id) if row.organization_id else None
        if org is None or not org.active:
            return None
        return SignedInUser(
            kind="staff",
            id=row.subject_id,
            organization_id=row.organization_id,
            role=row.role,
            auth_time=row.auth_time,
        )
    return None


def revoke_token_family(
    session: Session, family_id: str, reason: str = "revoked", *, now: datetime | None = None
) -> bool:
    """Revoke every token of a family; True if it was active."""
    result = session.execute(
        update(TokenFamily)
        .where(TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
        .values(revoked_at=now or utcnow(), revoked_reason=reason[:32])
        .execution_options(synchronize_session="fetch")
    )
    if getattr(result, "rowcount", 0):
        log.info("token family revoked: %s (%s)", family_id, reason)
        return True
    return False


def revoke_subject_grants(
    session: Session,
    *,
    subject_kind: str,
    subject_id: str,
    reason: str = "subject_revoked",
    client_id: str | None = None,
    now: datetime | None = None,
) -> int:
    """Revoke every token family of a person (e.g. staff deactivated, resident's request).

    Returns how many families were revoked.
    """
    stmt = (
        update(TokenFamily)
        .where(
            TokenFamily.subject_kind == subject_kind,
            TokenFamily.subject_id == subject_id,
            TokenFamily.revoked_at.is_(None),
        )
        .values(revoked_at=now or utcnow(), revoked_reason=reason[:32])
        .execution_options(synchronize_session="fetch")
    )
    if client_id is not None:
        stmt = stmt.where(TokenFamily.client_id == client_id)
    return int(getattr(session.execute(stmt), "rowcount", 0) or 0)


class _PKCE(CodeChallenge):
    """PKCE with S256 only, required of every app (SMART App Launch 2)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 - authlib's attribute

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge (S256)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class _OpenIDCode(OpenIDCode):
    """ID tokens: ES256 with the platform's signing keys, ``aud`` = the app."""

    def __init__(self, server: PHRAuthorizationServer) -> None:
        super().__init__(require_nonce=False)
        self.server = server

    def resolve_client_private_key(self, client: Any) -> Any:
        return keys.signing_key(self.server.settings).key

    def get_client_algorithm(self, client: Any) -> str:
        return keys.ALGORITHM

    def get_encode_header(self, client: Any) -> dict[str, str]:
        kid = keys.signing_key(self.server.settings).kid
        return {"alg": keys.ALGORITHM, "kid": kid, "typ": "JWT"}

    def get_client_claims(self, client: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": issuer(self.server.settings),
            "aud": client.get_client_id(),
            "iat": now,
            "exp": now + self.server.settings.access_token_ttl_seconds,
        }

    def get_authorization_code_claims(self, authorization_code: Any) -> dict[str, Any]:
        claims: dict[str, Any] = dict(super().get_authorization_code_claims(authorization_code))
        if authorization_code.family_id:
            claims["sid"] = authorization_code.family_id
        return claims

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return bool(
            self.server.session.scalar(
                select(
                    exists().where(
                        AuthorizationCode.client_id == request.payload.client_id,
                        AuthorizationCode.nonce == nonce,
                    )
                )
            )
        )

    def generate_user_info(self, user: SignedInUser, scope: str) -> dict[str, Any]:
        return dict(user_claims(user))


class _AuthorizationCodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = APP_AUTH_METHODS
    server: PHRAuthorizationServer

    # -- authorization endpoint

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        # SMART: the app names the FHIR server it wants a token for.
        aud = self.request.payload.data.get("aud")
        if aud is not None and aud.rstrip("/") != access_token_audience(self.server.settings):
            raise InvalidRequestError(
                "aud is not this server's FHIR base URL",
                redirect_uri=redirect_uri,
                state=self.request.payload.state,
            )
        return redirect_uri

    def validate_requested_scope(self) -> None:
        requested = scope_to_list(self.request.payload.scope) or []
        registered = set(self.request.client.scopes)
        if any(s not in registered for s in requested):
            raise InvalidScopeError(
                "the requested scope exceeds the scopes registered for this app"
            )

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        user: SignedInUser = request.user
        now = utcnow()
        data = request.payload.data
        scope = list_to_scope(scopes_for_user(scope_to_list(request.scope) or [], user))
        self.server.session.add(
            AuthorizationCode(
                code_hash=_hash(code),
                client_id=request.client.get_client_id(),
                redirect_uri=request.payload.redirect_uri,
                scope=str(scope or ""),
                subject_kind=user.kind,
                subject_id=user.id,
                resident_id=user.resident_id,
                organization_id=user.organization_id,
                role=user.role,
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                auth_time=user.auth_time or now,
                created_at=now,
                expires_at=now + AUTHORIZATION_CODE_TTL,
                used_at=None,
                family_id=None,
            )
        )
        self.server.session.flush()

    # -- token endpoint

    def validate_token_request(self) -> None:
        _reject_repeated(
            self.request,
            ("grant_type", "code", "redirect_uri", "client_id", "client_secret", "code_verifier"),
        )
        super().validate_token_request()
        _check_form_client_id(self.request)

    def query_authorization_code(self, code: str, client: ClientMixin) -> _CodeView | None:
        session = self.server.session
        row = session.get(AuthorizationCode, _hash(code), populate_existing=True)
        if row is None or row.client_id != client.get_client_id():
            return None
        now = utcnow()
        if row.used_at is not None:
            # RFC 6749 §4.1.2: a code used twice revokes what it was exchanged for.
            if row.family_id:
                revoke_token_family(session, row.family_id, "code_reuse", now=now)
            return None
        if row.expires_at <= now:
            return None
        # Consume now, atomically: of two concurrent exchanges only one finds it unused.
        consumed = session.execute(
            update(AuthorizationCode)
            .where(
                AuthorizationCode.code_hash == row.code_hash,
                AuthorizationCode.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session="fetch")
        )
        if getattr(consumed, "rowcount", 0) != 1:
            return None
        return _CodeView(row)

    def delete_authorization_code(self, authorization_code: _CodeView) -> None:
        """Already consumed in :meth:`query_authorization_code` (kept to detect reuse)."""

    def authenticate_user(self, authorization_code: _CodeView) -> SignedInUser | None:
        return _user_of(self.server.session, authorization_code.row)

    def generate_token(
        self,
        user: SignedInUser | None = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        assert user is not None
        view: _CodeView = self.request.authorization_code
        session = self.server.session
        now = utcnow()
        family = TokenFamily(
            id=secrets.token_urlsafe(24),
            client_id=self.request.client.get_client_id(),
            scope=scope or "",
            subject_kind=user.kind,
            subject_id=user.id,
            resident_id=user.resident_id,
            organization_id=user.organization_id,
            role=user.role,
            auth_time=view.row.auth_time,
            created_at=now,
            revoked_at=None,
            revoked_reason=None,
        )
        session.add(family)
        session.flush()
        view.row.family_id = family.id
        view.family_id = family.id
        return issue_user_tokens(
            session,
            family=family,
            user=user,
            scope=family.scope,
            include_refresh=include_refresh_token,
            settings=self.server.settings,
        )


class _RefreshTokenGrant(RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = APP_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation
    server: PHRAuthorizationServer

    def validate_token_request(self) -> None:
        _reject_repeated(
            self.request, ("grant_type", "refresh_token", "scope", "client_id", "client_secret")
        )
        super().validate_token_request()
        _check_form_client_id(self.request)

    def authenticate_refresh_token(self, refresh_token: str) -> _FamilyView | None:
        session = self.server.session
        row = session.get(RefreshToken, _hash(refresh_token), populate_existing=True)
        if row is None:
            return None
        family = session.get(TokenFamily, row.family_id, populate_existing=True)
        if family is None or family.revoked_at is not None:
            return None
        now = utcnow()
        if row.used_at is not None:
            # A rotated token came back: it leaked, or the app is confused. Kill the family.
            revoke_token_family(session, family.id, "refresh_token_reuse", now=now)
            return None
        if row.expires_at <= now:
            return None
        return _FamilyView(family, row)

    def authenticate_user(self, refresh_token: _FamilyView) -> SignedInUser | None:
        return _user_of(self.server.session, refresh_token.family)

    def issue_token(self, user: SignedInUser, refresh_token: _FamilyView) -> dict[str, Any]:
        session = self.server.session
        assert refresh_token.refresh is not None
        now = utcnow()
        consumed = session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == refresh_token.refresh.token_hash,
                RefreshToken.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session="fetch")
        )
        if getattr(consumed, "rowcount", 0) != 1:
            revoke_token_family(session, refresh_token.family.id, "refresh_token_reuse", now=now)
            raise InvalidGrantError("refresh token already used")
        scope = self.request.payload.scope or refresh_token.family.scope
        return issue_user_tokens(
            session,
            family=refresh_token.family,
            user=user,
            scope=scope,
            include_refresh=True,
            settings=self.server.settings,
        )

    def revoke_old_credential(self, refresh_token: _FamilyView) -> None:
        """Already marked used in :meth:`issue_token`."""


class _RevocationEndpoint(RevocationEndpoint):
    """RFC 7009: revoking a refresh or access token revokes its whole family."""

    CLIENT_AUTH_METHODS = APP_AUTH_METHODS
    server: PHRAuthorizationServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> _FamilyView | None:
        session = self.server.session
        if token_type_hint != "access_token":
            row = session.get(RefreshToken, _hash(token_string), populate_existing=True)
            if row is not None:
                family = session.get(TokenFamily, row.family_id, populate_existing=True)
                return _FamilyView(family, row) if family is not None else None
        if token_type_hint != "refresh_token" and len(token_string) <= MAX_ACCESS_TOKEN_CHARS:
            family_id = _family_of_access_token(token_string, self.server.settings)
            if family_id:
                family = session.get(TokenFamily, family_id, populate_existing=True)
                return _FamilyView(family) if family is not None else None
        return None

    def revoke_token(self, token: _FamilyView, request: OAuth2Request) -> None:
        revoke_token_family(self.server.session, token.family.id, "revoked")


def _family_of_access_token(token: str, settings: Settings) -> str | None:
    """The ``sid`` of one of our access tokens (signature checked, expiry not)."""
    try:
        header = jws.extract_compact(token.encode("ascii")).headers()
        kid = header.get("kid")
        published = keys.verification_key(kid, settings) if isinstance(kid, str) else None
        if published is None or header.get("alg") != keys.ALGORITHM:
            return None
        claims = jwt.decode(token, published.key, algorithms=[keys.ALGORITHM]).claims
    except (JoseError, ValueError, TypeError, UnicodeError):
        return None
    sid = claims.get("sid")
    return sid if isinstance(sid, str) else None


class PHRAuthorizationServer(AuthorizationServer):
    """authlib's authorization server bound to one request's database session."""

    def __init__(self, session: Session, settings: Settings | None = None) -> None:
        super().__init__(scopes_supported=None)
        self.session = session
        self.settings = settings or get_settings()
        self.register_grant(_ClientCredentialsGrant)
        self.register_grant(_AuthorizationCodeGrant, [_PKCE(required=True), _OpenIDCode(self)])
        self.register_grant(_RefreshTokenGrant)
        self.register_endpoint(_RevocationEndpoint)
        self.register_token_generator("default", self._generate_token)

    def query_client(self, client_id: str) -> PHRClient | PHRAppClient | None:
        if not isinstance(client_id, str) or len(client_id) > 64:
            return None
        row = self.session.get(OAuthClient, client_id)
        if row is None:
            app = self.session.get(AppClient, client_id)
            return PHRAppClient(app) if app is not None and app.active else None
        if not row.active:
            return None
        org = self.session.get(Organization, row.organization_id)
        if org is None or not org.active:
            return None
        return PHRClient(row, org)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """JWT access tokens are self-contained: nothing to store."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        if name == "after_authenticate_client":
            client = kwargs.get("client")
            log.debug("client authenticated: %s", client and client.get_client_id())

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        assert isinstance(request, TokenHTTPRequest)
        uri = issuer(self.settings) + request.path
        return _OAuth2Request(request, uri, enforce_tls=self.settings.env == "production")

    def create_json_request(self, request: Any) -> JsonRequest:
        assert isinstance(request, TokenHTTPRequest)
        json_request = JsonRequest(
            request.method, issuer(self.settings) + request.path, request.headers
        )
        json_request.payload = _JsonPayload(request.json)
        return json_request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]] | None
    ) -> Response:
        out = {k: v for k, v in (headers or []) if k.lower() != "content-type"}
        if isinstance(body, str):
            # Redirects of the authorization endpoint (body "") and form_post pages.
            media_type = next((v for k, v in (headers or []) if k.lower() == "content-type"), None)
            return Response(body or None, status_code=status, headers=out, media_type=media_type)
        return JSONResponse(body, status_code=status, headers=out)

    def _generate_token(
        self,
        grant_type: str,
        client: PHRClient,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        # Client credentials only: the user grants generate their tokens themselves.
        assert isinstance(client, PHRClient), grant_type
        granted = client.get_allowed_scope(scope).split()
        return issue_access_token(client.row, client.organization, granted, settings=self.settings)

    def token_response(self, http: TokenHTTPRequest) -> Response:
        """Run the token endpoint; every OAuth error becomes an RFC 6749 JSON error."""
        try:
            response: Response = self.create_token_response(http)
        except OAuth2Error as error:  # raised while building the request (TLS)
            response = self.handle_error_response(None, error)
        return response

    def revocation_response(self, http: TokenHTTPRequest) -> Response:
        """RFC 7009 revocation; unknown tokens are answered 200 like revoked ones."""
        try:
            response: Response | None = self.create_endpoint_response("revocation", http)
        except OAuth2Error as error:
            response = self.handle_error_response(None, error)
        assert response is not None
        return response


# --------------------------------------------------------------------------- tokens


def issue_access_token(
    client: OAuthClient,
    organization: Organization,
    scopes: list[str],
    *,
    settings: Settings | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """Sign an access token for ``client``; returns the RFC 6749 §5.1 token response."""
    settings = settings or get_settings()
    iat = int(time.time()) if now is None else now
    ttl = settings.access_token_ttl_seconds
    scope = " ".join(scopes)
    claims = {
        "iss": issuer(settings),
        "sub": client.client_id,
        "aud": access_token_audience(settings),
        "client_id": client.client_id,
        "scope": scope,
        "jti": secrets.token_urlsafe(16),
        "iat": iat,
        "exp": iat + ttl,
        "org": organization.id,
        "org_kind": organization.kind,
    }
    key = keys.signing_key(settings)
    header = {"alg": keys.ALGORITHM, "kid": key.kid, "typ": ACCESS_TOKEN_TYPE}
    token = jwt.encode(header, claims, key.key, algorithms=[keys.ALGORITHM])
    log.info(
        "issued access token jti=%s client=%s scope=%s", claims["jti"], client.client_id, scope
    )
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": scope}


def issue_user_tokens(
    session: Session,
    *,
    family: TokenFamily,
    user: SignedInUser,
    scope: str,
    include_refresh: bool,
    settings: Settings | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """Sign an access token for a person using an app; the RFC 6749 §5.1 token response.

    A refresh token (stored hashed) is added when the app may refresh and the scope holds
    ``offline_access``. A resident's response carries the SMART launch context ``patient``.
    """
    settings = settings or get_settings()
    iat = int(time.time()) if now is None else now
    ttl = settings.access_token_ttl_seconds
    claims: dict[str, Any] = {
        "iss": issuer(settings),
        "aud": access_token_audience(settings),
        "client_id": family.client_id,
        "scope": scope,
        "jti": secrets.token_urlsafe(16),
        "iat": iat,
        "exp": iat + ttl,
        "sid": family.id,
        **user_claims(user),
    }
    if user.kind == "resident":
        claims["patient"] = user.resident_id
    key = keys.signing_key(settings)
    header = {"alg": keys.ALGORITHM, "kid": key.kid, "typ": ACCESS_TOKEN_TYPE}
    response: dict[str, Any] = {
        "access_token": jwt.encode(header, claims, key.key, algorithms=[keys.ALGORITHM]),
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scope,
    }
    if user.kind == "resident":
        response["patient"] = user.resident_id
    if include_refresh and "offline_access" in scope.split():
        refresh = secrets.token_urlsafe(32)
        created = utcnow()
        session.add(
            RefreshToken(
                token_hash=_hash(refresh),
                family_id=family.id,
                created_at=created,
                expires_at=created + REFRESH_TOKEN_TTL,
                used_at=None,
            )
        )
        session.flush()
        response["refresh_token"] = refresh
    log.info("issued user access token jti=%s client=%s", claims["jti"], family.client_id)
    return response


def _invalid_token(reason: str) -> NotAuthenticated:
    """401 with the RFC 6750 §3 challenge."""
    safe = "".join(c for c in reason if 0x20 <= ord(c) < 0x7F and c not in '"\\')
    challenge = f'Bearer realm="phr", error="invalid_token", error_description="{safe}"'
    return NotAuthenticated(reason, headers={"WWW-Authenticate": challenge})


def decode_access_token(session: Session, token: str, settings: Settings | None = None) -> Actor:
    """Verify an access token and return the actor it stands for.

    Client-credentials tokens stand for an organisation; user tokens (with ``fhirUser``)
    for a resident or a staff member using an app. Raises :class:`NotAuthenticated` with
    the reason when the token is malformed, signed by an unknown key or badly, expired,
    meant for another issuer or audience, revoked (its family), or when its client,
    organisation or resident is no longer active.
    """
    settings = settings or get_settings()
    if len(token) > MAX_ACCESS_TOKEN_CHARS:
        raise _invalid_token("access token too long")
    try:
        header = jws.extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise _invalid_token("malformed access token") from None
    if header.get("alg") != keys.ALGORITHM:
        raise _invalid_token(f"access tokens must be signed with {keys.ALGORITHM}")
    if str(header.get("typ", "")).lower() not in (ACCESS_TOKEN_TYPE, "application/at+jwt"):
        raise _invalid_token("not an access token (typ must be at+jwt)")
    kid = header.get("kid")
    published = keys.verification_key(kid, settings) if isinstance(kid, str) else None
    if published is None:
        raise _invalid_token("access token signed by an unknown key")
    try:
        claims = jwt.decode(token, published.key, algorithms=[keys.ALGORITHM]).claims
    except BadSignatureError:
        raise _invalid_token("access token signature is invalid") from None
    except (JoseError, ValueError, TypeError):
        raise _invalid_token("malformed access token") from None

    essential: dict[str, Any] = {
        "iss": {"essential": True, "value": issuer(settings)},
        "aud": {"essential": True, "value": access_token_audience(settings)},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "sub": {"essential": True},
        "client_id": {"essential": True},
    }
    user_token = "fhirUser" in claims
    if user_token:
        essential["sid"] = {"essential": True}
    else:
        essential["org"] = {"essential": True}
    registry = jwt.JWTClaimsRegistry(leeway=CLOCK_LEEWAY_SECONDS, **essential)
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise _invalid_token("access token expired") from None
    except MissingClaimError as exc:
        raise _invalid_token(f"access token lacks claim {exc.claim}") from None
    except InvalidClaimError as exc:
        reason = {
            "iss": "access token was issued by another issuer",
            "aud": "access token is not meant for this server (audience)",
        }.get(exc.claim, f"access token has an invalid {exc.claim} claim")
        raise _invalid_token(reason) from None
    except JoseError:
        raise _invalid_token("access token claims are invalid") from None

    if user_token:
        return _user_actor(session, claims)
    client_id, scope, org_id = claims.get("client_id"), claims.get("scope", ""), claims["org"]
    if not isinstance(client_id, str) or claims["sub"] != client_id or not isinstance(scope, str):
        raise _invalid_token("access token claims are inconsistent")
    row = session.get(OAuthClient, client_id)
    if row is None or not row.active:
        raise _invalid_token("the client of this access token is no longer active")
    org = session.get(Organization, row.organization_id)
    if org is None or not org.active:
        raise _invalid_token("the organization of this access token is no longer active")
    if org_id != org.id:
        raise _invalid_token("access token organization does not match its client")
    # Scopes withdrawn from the client since the token was issued no longer count.
    granted = frozenset(scope.split()) & frozenset(row.scopes.split())
    return Actor(
        kind="organization",
        client_id=client_id,
        organization_id=org.id,
        organization_kind=org.kind,
        scopes=granted,
    )


def _user_actor(session: Session, claims: dict[str, Any]) -> Actor:
    """The resident or staff actor of a user access token (claims already validated)."""
    client_id, scope, sub = claims.get("client_id"), claims.get("scope", ""), claims["sub"]
    fhir_user, sid = claims.get("fhirUser"), claims.get("sid")
    if not (
        isinstance(client_id, str)
        and isinstance(scope, str)
        and isinstance(sub, str)
        and isinstance(fhir_user, str)
        and isinstance(sid, str)
    ):
        raise _invalid_token("access token claims are inconsistent")
    app = session.get(AppClient, client_id)
    if app is None or not app.active:
        raise _invalid_token("the client of this access token is no longer active")
    family = session.get(TokenFamily, sid, populate_existing=True)
    if family is None or family.client_id != client_id or family.subject_id != sub:
        raise _invalid_token("access token claims are inconsistent")
    if family.revoked_at is not None:
        raise _invalid_token("access token was revoked")
    # Scopes withdrawn from the app since the token was issued no longer count.
    granted = frozenset(scope.split()) & frozenset(app.scopes.split())
    kind, _, user_id = fhir_user.partition("/")
    if kind == "Patient" and family.subject_kind == "resident" and user_id == sub:
        resident = session.get(Resident, sub)
        if resident is None or resident.status != "active":
            raise _invalid_token("the resident of this access token is no longer active")
        return Actor(kind="resident", resident_id=sub, client_id=client_id, scopes=granted)
    if kind == "Practitioner" and family.subject_kind == "staff" and user_id == sub:
        org_id = claims.get("org")
        org = session.get(Organization, org_id) if isinstance(org_id, str) else None
        if org is None or not org.active or org.id != family.organization_id:
            raise _invalid_token("the organization of this access token is no longer active")
        return Actor(
            kind="staff",
            user_id=sub,
            client_id=client_id,
            organization_id=org.id,
            organization_kind=org.kind,
            role=family.role,
            scopes=granted,
        )
    raise _invalid_token("access token claims are inconsistent")


# --------------------------------------------------------------------------- dependencies


def current_actor(request: Request, session: SessionDep) -> Actor:
    """FastAPI dependency: the actor of the request's ``Authorization: Bearer`` token."""
    authorization = request.headers.get("authorization")
    if not authorization:
        raise NotAuthenticated("missing bearer token (Authorization: Bearer ...)")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("the Authorization header must carry a Bearer token")
    actor = decode_access_token(session, token)
    request.state.actor = actor
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]

_INTERACTIONS = frozenset("cruds")


def check_scope(actor: Actor, resource_type: str | None, interaction: str) -> None:
    """Raise :class:`Forbidden` unless the actor's scopes allow ``interaction``.

    ``interaction`` is one of ``c r u d s``; ``resource_type`` None means every resource
    type (e.g. a search across types), which needs a ``system/*`` scope.
    """
    if interaction not in _INTERACTIONS or len(interaction) != 1:
        raise ValueError(f"interaction must be one of c r u d s, not {interaction!r}")
    target = resource_type or "*"
    if not scope_allows(actor.scopes, target, interaction):
        raise Forbidden(f"scope does not allow {interaction} on {target}")


def require_scope(resource_type: str | None, interaction: str) -> Callable[..., Actor]:
    """A dependency: the current actor, provided its scopes allow the interaction.

    ``@router.get("/x", dependencies=[Depends(require_scope("Patient", "r"))])`` or
    ``actor: Annotated[Actor, Depends(require_scope("Patient", "r"))]``.
    """
    if interaction not in _INTERACTIONS or len(interaction) != 1:
        raise ValueError(f"interaction must be one of c r u d s, not {interaction!r}")

    def dependency(actor: ActorDep) -> Actor:
        check_scope(actor, resource_type, interaction)
        return actor

    return dependency


# --------------------------------------------------------------------------- routes

router = APIRouter(tags=["oauth"])


async def _read_token_request(request: Request) -> TokenHTTPRequest | OAuth2Error:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return InvalidRequestError("the body must be application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_TOKEN_REQUEST_BYTES:
            return InvalidRequestError("request body too large")
    try:
        form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return InvalidRequestError("the body is not valid form data")
    return TokenHTTPRequest(
        method=request.method,
        path=request.url.path,
        headers=request.headers,
        query=dict(request.query_params),
        form=form,
    )


@router.post(
    "/oauth/token",
    summary="OAuth 2.0 token endpoint (client credentials, authorization code, refresh token)",
    response_class=JSONResponse,
)
async def token_endpoint(request: Request, session: SessionDep) -> Response:
    server = PHRAuthorizationServer(session)
    http = await _read_token_request(request)
    if isinstance(http, OAuth2Error):
        return server.handle_error_response(None, http)
    counters = limiter.sign_in_counters(
        "oauth-token", account=_named_client(http), address=limiter.client_address(request)
    )
    limiter.refuse_if_locked(session, counters)
    # Secret hashing (scrypt) and the database lookups are blocking: keep them off the loop.
    response = await run_in_threadpool(server.token_response, http)
    if response.status_code == 401:  # invalid_client: a wrong secret or unknown client
        limiter.record_failure(session, counters)
    return response


def _named_client(http: TokenHTTPRequest) -> str | None:
    """The client id the request claims (Basic auth or the form), for counting failures."""
    basic_id, _ = extract_basic_authorization(http.headers)
    if basic_id:
        return str(basic_id)[:200]
    for name, value in http.form:
        if name == "client_id" and value:
            return value[:200]
    return None


@router.post(
    "/oauth/revoke",
    summary="OAuth 2.0 token revocation (RFC 7009): revokes the token's whole family",
    response_class=JSONResponse,
)
async def revocation_endpoint(request: Request, session: SessionDep) -> Response:
    server = PHRAuthorizationServer(session)
    http = await _read_token_request(request)
    if isinstance(http, OAuth2Error):
        return server.handle_error_response(None, http)
    return await run_in_threadpool(server.revocation_response, http)


def smart_configuration(settings: Settings | None = None) -> dict[str, Any]:
    """SMART App Launch / Backend Services discovery document."""
    base = issuer(settings)
    return {
        "issuer": base,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": list(APP_AUTH_METHODS),
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": list(SCOPES_SUPPORTED),
        "capabilities": list(CAPABILITIES),
    }


@router.get("/.well-known/smart-configuration", summary="SMART configuration")
@router.get(
    "/fhir/.well-known/smart-configuration",
    summary="SMART configuration (relative to the FHIR base URL)",
)
def smart_configuration_endpoint() -> JSONResponse:
    return JSONResponse(smart_configuration(), headers={"Cache-Control": "public, max-age=3600"})


@router.get("/.well-known/jwks.json", summary="Public keys that sign access tokens")
def jwks_endpoint() -> JSONResponse:
    return JSONResponse(keys.jwks(), headers={"Cache-Control": "public, max-age=300"})
