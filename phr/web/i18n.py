"""Message catalogues: Japanese by default, English on request.

Catalogues are flat JSON files ``messages/<lang>.json`` mapping a dotted key to a text with
``str.format`` fields. Templates call ``t("key", name=...)``; a key missing from a
language falls back to Japanese, and a key missing everywhere is an error (tests render
every page in both languages, so a forgotten key fails a test rather than showing a key).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from consent.audit_labels import LANGUAGES, Lang

__all__ = [
    "DEFAULT",
    "LANGUAGES",
    "LANG_COOKIE",
    "Lang",
    "Translator",
    "add_catalogue",
    "catalogue",
    "pick",
]

DEFAULT: Lang = "ja"
LANG_COOKIE = "phr_lang"
_DIR = Path(__file__).parent / "messages"


# Other packages (platform modules) may bring catalogues of their own: add_catalogue().
_DIRS: list[Path] = [_DIR]


def add_catalogue(directory: Path) -> None:
    """Let another package keep its messages in its own ``<lang>.json`` files (keys under
    its own prefix; a key defined twice is an error)."""
    path = Path(directory)
    if path not in _DIRS:
        _DIRS.append(path)
        catalogue.cache_clear()


@lru_cache(maxsize=len(LANGUAGES))
def catalogue(lang: Lang) -> dict[str, str]:
    out: dict[str, str] = {}
    for directory in _DIRS:
        file = directory / f"{lang}.json"
        if directory != _DIR and not file.exists():
            continue
        data = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{file} must be an object")
        twice = sorted(set(out) & set(data))
        if twice:
            raise ValueError(f"{file}: messages defined twice: {twice[:5]}")
        out.update({str(k): str(v) for k, v in data.items()})
    return out


def pick(query: str | None, cookie: str | None) -> Lang:
    """``?lang=`` first, then the remembered choice (cookie), else Japanese.

    The browser's Accept-Language is not followed: the city's app is Japanese unless the
    resident switches, whatever language the phone happens to be set to.
    """
    for choice in (query, cookie):
        if choice in LANGUAGES:
            return "ja" if choice == "ja" else "en"
    return DEFAULT


class Translator:
    """``t(key, **fields)`` for one language."""

    def __init__(self, lang: Lang) -> None:
        self.lang = lang
        self._own = catalogue(lang)
        self._fallback = catalogue(DEFAULT)

    def __call__(self, key: str, **fields: Any) -> str:
        text = self._own.get(key)
        if text is None:
            text = self._fallback.get(key)
        if text is None:
            raise KeyError(f"message {key!r} is in no catalogue")
        return text.format(**fields) if fields else text

    def has(self, key: str) -> bool:
        return key in self._own or key in self._fallback
