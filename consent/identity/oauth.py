"""OAuth 2.0 client-credentials token endpoint, SMART discovery, and bearer-token checks.

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
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import parse_qsl

from authlib.common.security import is_secure_transport
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidClientError,
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
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.util import extract_basic_authorization
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
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from consent.actors import Actor, scope_allows
from consent.identity import keys
from consent.identity.clients import verify_secret
from consent.models import OAuthClient, Organization
from phr.db import SessionDep
from phr.errors import Forbidden, NotAuthenticated
from phr.settings import Settings, get_settings

__all__ = [
    "TOKEN_ENDPOINT_AUTH_METHODS",
    "ActorDep",
    "PHRAuthorizationServer",
    "PHRClient",
    "access_token_audience",
    "check_scope",
    "current_actor",
    "decode_access_token",
    "issue_access_token",
    "issuer",
    "require_scope",
    "router",
    "smart_configuration",
]

log = logging.getLogger(__name__)

TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
ACCESS_TOKEN_TYPE = "at+jwt"  # RFC 9068 §2.1
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
SCOPES_SUPPORTED = [
    "system/*.rs",
    "system/*.cruds",
    "system/Bundle.c",
    *(f"system/{t}.rs" for t in _COMMON_TYPES),
    *(f"system/{t}.cruds" for t in _COMMON_TYPES),
]
CAPABILITIES = ["client-confidential-symmetric", "permission-v2"]


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


class PHRAuthorizationServer(AuthorizationServer):
    """authlib's authorization server bound to one request's database session."""

    def __init__(self, session: Session, settings: Settings | None = None) -> None:
        super().__init__(scopes_supported=None)
        self.session = session
        self.settings = settings or get_settings()
        self.register_grant(_ClientCredentialsGrant)
        self.register_token_generator("default", self._generate_token)

    def query_client(self, client_id: str) -> PHRClient | None:
        row = self.session.get(OAuthClient, client_id)
        if row is None or not row.active:
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
        granted = client.get_allowed_scope(scope).split()
        return issue_access_token(client.row, client.organization, granted, settings=self.settings)

    def token_response(self, http: TokenHTTPRequest) -> Response:
        """Run the token endpoint; every OAuth error becomes an RFC 6749 JSON error."""
        try:
            response: Response = self.create_token_response(http)
        except OAuth2Error as error:  # raised while building the request (TLS)
            response = self.handle_error_response(None, error)
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


def _invalid_token(reason: str) -> NotAuthenticated:
    """401 with the RFC 6750 §3 challenge."""
    safe = "".join(c for c in reason if 0x20 <= ord(c) < 0x7F and c not in '"\\')
    challenge = f'Bearer realm="phr", error="invalid_token", error_description="{safe}"'
    return NotAuthenticated(reason, headers={"WWW-Authenticate": challenge})


def decode_access_token(session: Session, token: str, settings: Settings | None = None) -> Actor:
    """Verify an access token and return the organisation actor it stands for.

    Raises :class:`NotAuthenticated` with the reason when the token is malformed, signed by
    an unknown key or badly, expired, meant for another issuer or audience, or when its
    client or organisation is no longer active.
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

    registry = jwt.JWTClaimsRegistry(
        leeway=CLOCK_LEEWAY_SECONDS,
        iss={"essential": True, "value": issuer(settings)},
        aud={"essential": True, "value": access_token_audience(settings)},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        client_id={"essential": True},
        org={"essential": True},
    )
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
    summary="OAuth 2.0 token endpoint (client credentials)",
    response_class=JSONResponse,
)
async def token_endpoint(request: Request, session: SessionDep) -> Response:
    server = PHRAuthorizationServer(session)
    http = await _read_token_request(request)
    if isinstance(http, OAuth2Error):
        return server.handle_error_response(None, http)
    # Secret hashing (scrypt) and the database lookups are blocking: keep them off the loop.
    return await run_in_threadpool(server.token_response, http)


def smart_configuration(settings: Settings | None = None) -> dict[str, Any]:
    """SMART App Launch / Backend Services discovery document."""
    base = issuer(settings)
    return {
        "issuer": base,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "token_endpoint": f"{base}/oauth/token",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": list(TOKEN_ENDPOINT_AUTH_METHODS),
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
