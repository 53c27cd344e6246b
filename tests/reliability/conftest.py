"""The reliability tests' ground: a fresh PostgreSQL database of each test's own, migrated
(dropped after); one such test at a time; a seed for the load's choices,
printed, and taken from ``RELIABILITY_SEED`` to replay a run."""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from fundline.operations.migrations import upgrade
from tests.support.load import emit
from tests.support.services import (
    create_postgres_database,
    drop_postgres_database,
    service_missing,
)

LOCK = Path(tempfile.gettempdir()) / "fundline-reliability-tests.lock"


@pytest.fixture
async def fresh_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database of the test's own, migrated; dropped after (in the test's
    own event loop: a task left for a later loop never runs)."""
    try:
        url = await create_postgres_database()
    except (OSError, asyncpg.PostgresError) as exc:
        service_missing("PostgreSQL", exc)
    await upgrade(url)
    yield url
    await drop_postgres_database(url)


@pytest.fixture(autouse=True)
def one_at_a_time() -> Iterator[None]:
    """One reliability test at a time on this machine, whatever the xdist workers: each holds
    tens of PostgreSQL connections, and two at once beside the rest of the suite would come
    close to a 100-connection server's limit."""
    with LOCK.open("a") as lock:
        deadline = time.monotonic() + 600
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another reliability test held {LOCK} for 10 minutes")
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def seed() -> int:
    chosen = int(os.environ.get("RELIABILITY_SEED") or time.time_ns() % 1_000_000)
    emit(f"load seed {chosen} (RELIABILITY_SEED={chosen} replays the same choices)")
    return chosen
