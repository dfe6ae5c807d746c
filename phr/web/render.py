"""Rendering pages: one Jinja2 environment, the language of the request, static files.

A page is ``page(request, "name.html", **context)``; every template gets ``t`` (the
translator), ``lang``, ``csrf_token`` and ``static(name)`` (a URL with a content hash, so
files can be cached for a long time and still change on upgrade).
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from phr.web import i18n
from phr.web.security import csrf_token

__all__ = [
    "NavItem",
    "StaticFile",
    "add_template_dir",
    "error_page",
    "language",
    "page",
    "static_file",
]

_HERE = Path(__file__).parent
_loader = FileSystemLoader(_HERE / "templates")
_env = Environment(
    loader=_loader,
    autoescape=select_autoescape(["html", "svg"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def add_template_dir(directory: Path) -> None:
    """Let another package keep its page templates in its own folder; they extend
    ``_layout.html`` like the app's own (searched after the app's folder)."""
    path = str(directory)
    if path not in _loader.searchpath:
        _loader.searchpath.append(path)


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str


@lru_cache(maxsize=1)
def _static() -> dict[str, StaticFile]:
    out = {}
    for path in sorted((_HERE / "static").iterdir()):
        if path.is_file():
            body = path.read_bytes()
            media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if media.startswith("text/") or media.endswith("javascript"):
                media += "; charset=utf-8"
            out[path.name] = StaticFile(body, media, hashlib.sha256(body).hexdigest()[:16])
    return out


def static_file(name: str) -> StaticFile | None:
    return _static().get(name)


def static_url(name: str) -> str:
    f = _static()[name]
    return f"/static/web/{name}?v={f.etag}"


@dataclass(frozen=True)
class NavItem:
    """One entry of the main menu: the path and the message key of its label."""

    path: str
    label: str


# The main menu. A new page adds one line here (see docs/web.md).
NAV: list[NavItem] = [
    NavItem("/me", "nav.home"),
    NavItem("/me/record", "nav.record"),
    NavItem("/me/medicines", "nav.medicines"),
    NavItem("/me/results", "nav.results"),
    NavItem("/me/visits", "nav.visits"),
    NavItem("/me/download", "nav.download"),
    NavItem("/me/sharing", "nav.sharing"),
    NavItem("/me/acp", "nav.acp"),
    NavItem("/me/homecare", "nav.homecare"),
    NavItem("/triage", "nav.triage"),
    NavItem("/me/access-log", "nav.access_log"),
    NavItem("/me/notifications", "nav.notifications"),
]


def language(request: Request) -> i18n.Lang:
    return i18n.pick(request.query_params.get("lang"), request.cookies.get(i18n.LANG_COOKIE))


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    lang = context.pop("lang", None) or language(request)
    t = i18n.Translator(lang)
    html = _env.get_template(template).render(
        t=t,
        lang=lang,
        other_lang="en" if lang == "ja" else "ja",
        csrf_token=csrf_token(request),
        static=static_url,
        nav=NAV,
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers={"Content-Language": lang})


def error_page(request: Request, message_key: str, *, status: int) -> HTMLResponse:
    return page(request, "error.html", status=status, message_key=message_key, resident=None)
