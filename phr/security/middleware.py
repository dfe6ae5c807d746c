"""One ASGI middleware in front of every route.

- **Headers**: every answer (pages, JSON APIs, FHIR, errors) says ``nosniff``, may not be
  framed, sends no referrer to other sites and carries a Content-Security-Policy; routes
  that set their own (the web pages' stricter page policy, cacheable static files) keep
  theirs. Answers are ``Cache-Control: no-store`` unless the route says otherwise: almost
  everything here is personal data. ``Strict-Transport-Security`` when the site is served
  over https (``PHR_BASE_URL``), for ``PHR_HSTS_MAX_AGE`` seconds.
- **Size**: a body larger than ``PHR_MAX_REQUEST_BYTES`` (FHIR routes, which take
  transaction bundles) or ``PHR_MAX_API_REQUEST_BYTES`` (everything else) is refused with
  413 before it is read — from ``Content-Length`` when given, else while it streams in.
- **Depth**: a JSON body nested deeper than ``PHR_MAX_JSON_DEPTH`` is refused with 400
  before any parser sees it (deep nesting exhausts recursive parsers and validators).
- **NUL**: a NUL character in the query string or path, or ``\u0000`` in a JSON body, is
  refused with 400 (PostgreSQL cannot store it in text or JSONB).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from itertools import accumulate
from typing import Any

import orjson

from phr.errors import InvalidInput, PayloadTooLarge, PHRError
from phr.settings import get_settings

__all__ = ["SecurityMiddleware", "json_depth"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# For answers that set no policy of their own (JSON, FHIR, files, the staff sign-in
# form): nothing may run or load from them; a form may only post to this site.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
BASE_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", API_CSP.encode()),
    (b"cache-control", b"no-store"),
)
# NUL: never meaningful in a URL or a JSON string, and PostgreSQL refuses it in text and
# JSONB ("cannot contain NUL"), which would surface as a 500 deep in a query.
_NUL_IN_URL = re.compile(rb"%00|\x00")
_NUL_IN_JSON = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(body: bytes) -> int:
    """Deepest nesting of arrays/objects in a JSON text (strings skipped), without parsing
    it: C-speed passes, so that a 64 MB bundle costs milliseconds, and no recursion."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(accumulate(map(_STEP.__getitem__, brackets)))


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-type":
            media = value.split(b";")[0].strip().lower()
            return media.endswith(b"/json") or media.endswith(b"+json")
    return False


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class _Refused(Exception):
    def __init__(self, error: PHRError) -> None:
        self.error = error


class SecurityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        is_fhir = scope["path"].startswith("/fhir")
        limit = settings.max_request_bytes if is_fhir else settings.max_api_request_bytes
        extra = list(BASE_HEADERS)
        if settings.base_url.startswith("https://") and settings.hsts_max_age > 0:
            extra.append(
                (b"strict-transport-security", f"max-age={settings.hsts_max_age}".encode())
            )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in extra if n not in present]
                message["headers"] = headers
            await send(message)

        headers = scope.get("headers", [])
        declared = _content_length(headers)
        try:
            if _NUL_IN_URL.search(scope.get("query_string", b"")) or "\x00" in scope["path"]:
                raise _Refused(InvalidInput("NUL characters are not accepted"))
            if declared is not None and declared > limit:
                raise _Refused(PayloadTooLarge(f"request body exceeds {limit} bytes"))
            if scope["method"] in ("POST", "PUT", "PATCH") and _is_json(headers):
                body = await _read(receive, limit)
                if _NUL_IN_JSON.search(body):
                    raise _Refused(InvalidInput("NUL characters (\\u0000) are not accepted"))
                depth = json_depth(body)
                if depth > settings.max_json_depth:
                    raise _Refused(
                        InvalidInput(f"JSON nested {depth} deep; at most {settings.max_json_depth}")
                    )
                receive = _replay(body)
            else:
                receive = _counting(receive, limit)
            await self.app(scope, receive, send_with_headers)
        except _Refused as refused:
            await _answer(refused.error, is_fhir, send_with_headers)


async def _read(receive: Receive, limit: int) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body += message.get("body", b"")
        if len(body) > limit:
            raise _Refused(PayloadTooLarge(f"request body exceeds {limit} bytes"))
        if not message.get("more_body", False):
            break
    return bytes(body)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _Refused(PayloadTooLarge(f"request body exceeds {limit} bytes"))
        return message

    return counted


async def _answer(error: PHRError, is_fhir: bool, send: Send) -> None:
    if is_fhir:
        body, media = orjson.dumps(error.operation_outcome()), b"application/fhir+json"
    else:
        body, media = orjson.dumps(error.json_body()), b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [(b"content-type", media), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
