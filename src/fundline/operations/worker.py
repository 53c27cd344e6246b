"""The background worker: clock-driven lending work and housekeeping, on a fixed beat.

``fundline serve`` runs it inside the server process (the embedded default); production runs
``fundline worker`` processes beside stateless API processes. Several may run at once: on
PostgreSQL each beat takes a transaction-level advisory lock, so one worker does the work and the
others skip that beat; on SQLite transactions are serialized anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from sqlalchemy import text

from fundline.kit import idempotency
from fundline.kit.db import Database
from fundline.lending.policy import Policy

log = structlog.get_logger("fundline.worker")

# An arbitrary, fixed key for pg_try_advisory_xact_lock: "one beat at a time".
BEAT_LOCK_KEY = 7_311_004_211


async def beat(db: Database, policy: Policy, *, sandbox: bool = False) -> dict[str, Any]:
    """One round of work; returns what it did (empty when another worker holds the beat).

    In sandbox mode the clock is first read back from the database: another process may have
    moved it since the last beat.
    """
    from fundline.lending import servicing
    from fundline.sandbox.service import load_clock

    async with db.session() as session, session.begin():
        if sandbox:
            await load_clock(session)
        if db.is_postgres:
            got = await session.scalar(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": BEAT_LOCK_KEY}
            )
            if not got:
                return {}
        done: dict[str, Any] = dict(await servicing.tick(session, policy=policy))
    done["idempotency_keys_purged"] = await idempotency.purge_expired(db)
    return done


async def run(
    db: Database, policy: Policy, *, interval_seconds: float, sandbox: bool = False
) -> None:
    """Beat until cancelled. A failed beat is logged and retried on the next one."""
    while True:
        try:
            done = await beat(db, policy, sandbox=sandbox)
            if any(done.values()):
                log.info("worker_beat", **done)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # keep beating: one bad round must not stop servicing
            log.error("worker_beat_failed", exc_info=exc)
        await asyncio.sleep(interval_seconds)


@contextlib.asynccontextmanager
async def running(
    db: Database, policy: Policy, *, interval_seconds: float, sandbox: bool = False
) -> Any:
    """Run the worker as a task for the duration of the block (the server's lifespan)."""
    task = asyncio.create_task(run(db, policy, interval_seconds=interval_seconds, sandbox=sandbox))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
