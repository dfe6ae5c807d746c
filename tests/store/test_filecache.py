"""Parsed files are kept only while the files stay as they are on disk."""

from __future__ import annotations

import os
from pathlib import Path

from phr import filecache


def test_parsed_again_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "a.pem"
    path.write_text("one")
    calls: list[str] = []

    def parse() -> str:
        calls.append(path.read_text())
        return path.read_text()

    assert filecache.parsed((path,), parse, kind="t") == "one"
    assert filecache.parsed((path,), parse, kind="t") == "one"
    assert calls == ["one"]  # the second call was served from memory
    # Replaced atomically, as the CRL is: a new file with the same size.
    tmp = tmp_path / "a.tmp"
    tmp.write_text("two")
    os.replace(tmp, path)
    assert filecache.parsed((path,), parse, kind="t") == "two"
    assert calls == ["one", "two"]


def test_a_missing_file_is_never_cached(tmp_path: Path) -> None:
    path = tmp_path / "missing.pem"
    calls = 0

    def parse() -> None:
        nonlocal calls
        calls += 1

    filecache.parsed((path,), parse)
    filecache.parsed((path,), parse)
    assert calls == 2


def test_kinds_are_kept_apart(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_text("x")
    assert filecache.parsed((path,), lambda: 1, kind="a") == 1
    assert filecache.parsed((path,), lambda: 2, kind="b") == 2
    assert filecache.parsed((path,), lambda: 3, kind="a") == 1
