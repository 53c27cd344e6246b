"""The real servers some tests need: PostgreSQL and Redis, where to find them, and what a test
does when one is down (skip on a developer machine; fail with ``FUNDLINE_REQUIRE_SERVICES=1``,
as ``.ci/run`` sets).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
import redis

POSTGRES_ADMIN_URL = os.environ.get(
    "FUNDLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("FUNDLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("FUNDLINE_REQUIRE_SERVICES") == "1"
# Creating and dropping databases waits on PostgreSQL's checkpoints, which take many seconds on
# a server the whole suite keeps busy: the admin connection is given that long.
ADMIN_TIMEOUT_SECONDS = 30


def service_missing(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable ({exc.__class__.__name__}: {exc})"
    if REQUIRE_SERVICES:
        pytest.fail(message + "; FUNDLINE_REQUIRE_SERVICES=1 makes this a failure")
    pytest.skip(message + "; skipped on this developer machine")


async def create_postgres_database() -> str:
    """Create a fresh database (one per test process); returns its SQLAlchemy URL."""
    name = f"fundline_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=ADMIN_TIMEOUT_SECONDS)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name


async def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=ADMIN_TIMEOUT_SECONDS)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class RedisProcess:
    """A Redis server of a test's own on ``port`` (``redis-server``, as the machine's Redis
    runs), for tests that stop and start it; nothing is saved to disk."""

    def __init__(self, port: int, folder: Path) -> None:
        self.port = port
        self.folder = folder
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("redis-server", FileNotFoundError("redis-server is not installed"))
        assert binary is not None
        self._process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with redis.Redis(port=self.port, socket_connect_timeout=0.2) as client:
                    if client.ping():
                        return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None
