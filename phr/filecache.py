"""Parsed files kept in memory for as long as the files do not change on disk.

Key and certificate files are parsed on every card identification or sign-in; parsing an
RSA private key alone costs tens of milliseconds of CPU. :func:`parsed` keeps what a
parser made of some files under their ``stat`` signature (inode, size, modification
time), so a file replaced on disk (a new CRL, an atomic rewrite) is read again at the
next call, without a restart, as before.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["clear", "parsed"]

T = TypeVar("T")

_MAX_ENTRIES = 64
_cache: dict[tuple[str, ...], tuple[tuple[Any, ...], Any]] = {}
_lock = threading.Lock()


def _signature(paths: Sequence[Path]) -> tuple[Any, ...] | None:
    out: list[Any] = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            return None
        out.append((str(p), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)


def parsed(paths: Sequence[Path], parse: Callable[[], T], *, kind: str = "") -> T:
    """``parse()``, or what it returned before for these files as they are now.

    The signature is taken before parsing: a file replaced meanwhile is parsed again at
    the next call. A missing file is never cached (``parse`` decides what that means).
    ``kind`` tells apart two parsers of the same files.
    """
    sig = _signature(paths)
    if sig is None:
        return parse()
    key = (kind, *(str(p) for p in paths))
    found = _cache.get(key)
    if found is not None and found[0] == sig:
        return found[1]  # type: ignore[no-any-return]
    value = parse()
    with _lock:
        if len(_cache) >= _MAX_ENTRIES and key not in _cache:
            _cache.clear()
        _cache[key] = (sig, value)
    return value


def clear() -> None:
    with _lock:
        _cache.clear()
