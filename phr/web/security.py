"""Who is signed in, CSRF, and the security headers of every page.

- The session is the trust service's resident web session (cookie ``phr_session``:
  HttpOnly, SameSite=Lax, Secure under https; 30 minutes idle, 12 hours at most —
  :mod:`consent.identity.oidc`). The app reads it with
  :func:`~consent.identity.oidc.current_resident_session`.
- CSRF: every POST carries a form field equal to the ``phr_web_csrf`` cookie (double
  submit; the cookie is HttpOnly and SameSite=Strict, so another site can neither read
  nor send it) and, when the browser sends ``Origin``, it must be this site.
- Headers: a strict Content-Security-Policy (no inline script or style, nothing from
  other origins, no framing, forms only to this site), no caching of pages, no referrer.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute

from phr.settings import get_settings

__all__ = [
    "CSP",
    "CSRF_COOKIE",
    "CsrfRefused",
    "SignInRequired",
    "WebRoute",
    "check_csrf",
    "csrf_token",
    "safe_path",
    "secure_cookies",
    "security_headers",
]

CSRF_COOKIE = "phr_web_csrf"
CSRF_FIELD = "csrf_token"
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def security_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",  # no-referrer would make Chromium send "Origin: null"
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }


def secure_cookies() -> bool:
    return get_settings().base_url.startswith("https://")


class SignInRequired(Exception):
    """The page needs a signed-in resident (or, with ``signin`` the staff sign-in page, a
    staff member); ``expired`` when a session cookie was there."""

    def __init__(self, return_to: str, *, expired: bool, signin: str = "/me/signin") -> None:
        super().__init__("sign-in required")
        self.return_to = return_to
        self.expired = expired
        self.signin = signin


class CsrfRefused(Exception):
    """A POST without the page's token, or from another site."""


def csrf_token(request: Request) -> str:
    """The browser's token (a new one if it has none); templates put it in every form."""
    token = getattr(request.state, "csrf_token", None)
    if token is None:
        existing = request.cookies.get(CSRF_COOKIE, "")
        token = existing if _TOKEN_RE.fullmatch(existing) else secrets.token_urlsafe(32)
        request.state.csrf_token = token
    return str(token)


def _same_origin(request: Request, origin: str) -> bool:
    own = {get_settings().base_url.rstrip("/"), str(request.base_url).rstrip("/")}
    return origin.rstrip("/") in own


def check_csrf(request: Request, submitted: object) -> None:
    origin = request.headers.get("origin")
    if origin is not None and not _same_origin(request, origin):
        raise CsrfRefused()
    cookie = request.cookies.get(CSRF_COOKIE)
    if (
        not cookie
        or not isinstance(submitted, str)
        or not secrets.compare_digest(cookie.encode(), submitted.encode())
    ):
        raise CsrfRefused()


def safe_path(value: str | None, default: str = "/me") -> str:
    """A same-site path to go back to (never another site)."""
    if not value or len(value) > 2048:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value:
        return default
    return value


def _finish(request: Request, response: Response) -> Response:
    for name, value in security_headers().items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    token = getattr(request.state, "csrf_token", None)
    if token is not None and request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            secure=secure_cookies(),
            samesite="strict",
            path="/",
        )
    return response


class WebRoute(APIRoute):
    """Route class of the web app: security headers on every answer, and the two
    exceptions of the app turned into pages (sign-in redirect, CSRF refusal)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired as exc:
                target = exc.signin + "?return_to=" + quote(exc.return_to, safe="/")
                if exc.expired:
                    target += "&expired=1"
                response = RedirectResponse(target, status_code=303)
            except CsrfRefused:
                from phr.web.render import error_page

                response = error_page(request, "error.csrf", status=403)
            return _finish(request, response)

        return route
