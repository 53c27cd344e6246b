"""Helpers for tests that run `fundline serve` as a real process on a free local port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support import secrets_in_logs

FUNDLINE = str(Path(sys.executable).with_name("fundline"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, server: subprocess.Popen[bytes], *, seconds: float = 60) -> None:
    """Poll /health until the server answers (startup runs the migrations first)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"fundline serve exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"fundline serve did not come up within {seconds:.0f} s")


@contextmanager
def serving(env: dict[str, str], *, log: Path, args: Sequence[str] = ()) -> Iterator[str]:
    """``fundline serve [args]`` on a free local port with ``env``, its output in ``log``;
    yields its URL once it answers, and stops it after."""
    port = free_port()
    secrets_in_logs.LOG_FILES.append(log)
    with log.open("wb") as out:
        server = subprocess.Popen(
            [FUNDLINE, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(url, server)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
