"""Export files at rest: NDJSON sealed in chunks with the platform's envelope encryption.

A file is a sequence of lines, each one chunk of NDJSON (about 1 MB) sealed with
:func:`consent.staff.crypto.seal` (its own AES-GCM data key, wrapped by the bulk master
key) and bound to the job and file name, so a chunk copied into another file does not
open. Writing and reading hold one chunk in memory at a time.

The master key: ``PHR_BULK_ENCRYPTION_KEY`` (base64 of 32 bytes; required in production),
otherwise ``keys_dir/bulk-export.key`` generated on first use.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from consent.staff.crypto import StaticKeyProvider, open_sealed, seal
from phr.keyfile import master_key
from phr.settings import get_settings

__all__ = ["ChunkWriter", "job_dir", "key_provider", "read_chunks", "remove_job_dir"]

CHUNK_BYTES = 1 << 20
KEY_FILE = "bulk-export.key"


def key_provider() -> StaticKeyProvider:
    key = master_key(get_settings().bulk_encryption_key, KEY_FILE, "PHR_BULK_ENCRYPTION_KEY")
    return StaticKeyProvider(key)


def job_dir(job_id: str) -> Path:
    return get_settings().data_dir / "bulk" / job_id


def remove_job_dir(job_id: str) -> None:
    shutil.rmtree(job_dir(job_id), ignore_errors=True)


def _aad(job_id: str, name: str) -> bytes:
    return f"bulk|{job_id}|{name}".encode()


class ChunkWriter:
    """Appends NDJSON lines to one sealed file."""

    def __init__(self, job_id: str, name: str, keys: StaticKeyProvider) -> None:
        self.name = name
        self.count = 0
        self._aad = _aad(job_id, name)
        self._keys = keys
        self._buf: list[str] = []
        self._size = 0
        self._fh = (job_dir(job_id) / name).open("w", encoding="ascii")

    def write(self, line: str) -> None:
        self._buf.append(line)
        self._size += len(line) + 1
        self.count += 1
        if self._size >= CHUNK_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            plain = ("\n".join(self._buf) + "\n").encode("utf-8")
            self._fh.write(seal(plain, aad=self._aad, keys=self._keys) + "\n")
            self._buf, self._size = [], 0

    def close(self) -> None:
        self._flush()
        self._fh.close()

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_chunks(job_id: str, name: str) -> Iterator[bytes]:
    """The plain NDJSON of a file, chunk by chunk."""
    keys = key_provider()
    aad = _aad(job_id, name)
    with (job_dir(job_id) / name).open("r", encoding="ascii") as fh:
        for line in fh:
            if line.strip():
                yield open_sealed(line.strip(), aad=aad, keys=keys)
