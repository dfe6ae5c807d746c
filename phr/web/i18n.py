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

__all__ = ["DEFAULT", "LANGUAGES", "LANG_COOKIE", "Lang", "Translator", "catalogue", "pick"]

DEFAULT: Lang = "ja"
LANG_COOKIE = "phr_lang"
_DIR = Path(__file__).parent / "messages"


@lru_cache(maxsize=len(LANGUAGES))
def catalogue(lang: Lang) -> dict[str, str]:
    data = json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{lang}.json must be an object")
    return {str(k): str(v) for k, v in data.items()}


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
