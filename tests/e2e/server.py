"""A real server process for end-to-end tests: uvicorn on a free loopback port, the ``phr``
command with the server's environment, and a clean stop."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

__all__ = [
    "ROOT",
    "STARTUP_SECONDS",
    "LiveServer",
    "free_port",
    "fresh_postgres",
    "phr",
    "stop",
    "wait_healthy",
]

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 45  # generous: a busy CI machine imports slowly


@dataclass
class LiveServer:
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


def phr(env: dict[str, str], *args: str) -> str:
    """Run the ``phr`` command in a subprocess with the server's environment."""
    done = subprocess.run(
        [sys.executable, "-m", "phr.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        pytest.fail(f"phr {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def wait_healthy(proc: subprocess.Popen[bytes], server: LiveServer) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"server not healthy after {STARTUP_SECONDS} s:\n{server.log()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
