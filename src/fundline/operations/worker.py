"""The background worker: clock-driven lending work and housekeeping on a fixed beat, and the
webhook delivery worker (``webhooks/worker.py``) beside it.

``fundline serve`` runs it inside the server process (the embedded default); production runs
``fundline worker`` processes beside stateless API processes. Several may run at once: on
PostgreSQL each beat takes a transaction-level advisory lock, so one worker does the work and the
others skip that beat (on SQLite transactions are serialized anyway), while webhook deliveries
are shared out between all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import AsyncIterator
from typing import Any

import structlog
from sqlalchemy import text

from fundline.config import Settings
from fundline.kit import idempotency
from fundline.kit.db import Database, unavailable
from fundline.lending.provider import LenderProvider
from fundline.webhooks import worker as webhooks

log = structlog.get_logger("fundline.worker")

# An arbitrary, fixed key for pg_try_advisory_xact_lock: "one beat at a time".
BEAT_LOCK_KEY = 7_311_004_211


async def beat(db: Database, lender: LenderProvider, *, sandbox: bool = False) -> dict[str, Any]:
    """One round of work; returns what it did (empty when another worker holds the beat).

    In sandbox mode the clock is first read back from the database: another process may have
    moved it since the last beat. The lender's tick runs under the beat's lock; its sync with
    a remote lender after it, in transactions of its own.
    """
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
        done: dict[str, Any] = dict(await lender.tick(session))
    done.update(await lender.sync(db.sessions))
    done["idempotency_keys_purged"] = await idempotency.purge_expired(db)
    return done


async def run(
    db: Database, lender: LenderProvider, *, interval_seconds: float, sandbox: bool = False
) -> None:
    """Beat until cancelled. A failed beat is logged and retried on the next one."""
    while True:
        try:
            done = await beat(db, lender, sandbox=sandbox)
            if any(done.values()):
                log.info("worker_beat", **done)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # keep beating: one bad round must not stop servicing
            if unavailable(exc):
                log.warning("worker_beat_database_unavailable", error=str(exc))
            else:
                log.error("worker_beat_failed", exc_info=exc)
        await asyncio.sleep(interval_seconds)


@contextlib.asynccontextmanager
async def running(db: Database, lender: LenderProvider, settings: Settings) -> AsyncIterator[None]:
    """The beat and the delivery worker, for the duration of the block (the server's lifespan,
    ``fundline worker``); at its end the delivery worker stops gracefully."""
    beats = asyncio.create_task(
        run(
            db,
            lender,
            interval_seconds=settings.worker_interval_seconds,
            sandbox=settings.is_sandbox,
        )
    )
    try:
        async with webhooks.running(db, settings, sync_clock=clock_sync(db, settings)):
            yield
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats


def clock_sync(db: Database, settings: Settings) -> webhooks.ClockSync | None:
    """In sandbox mode, how the delivery worker reads the shared clock back every round, as
    the API does on every sandbox call: retries made due by ``POST /sandbox/v1/clock/advance``
    go out at once, whichever process moved the clock."""
    from fundline.sandbox.service import restore_clock

    return functools.partial(restore_clock, db) if settings.is_sandbox else None


async def once(db: Database, lender: LenderProvider, settings: Settings) -> dict[str, Any]:
    """One beat, then the webhooks due sent (``fundline worker --once``); what was done."""
    done = await beat(db, lender, sandbox=settings.is_sandbox)
    sync = clock_sync(db, settings)
    done["webhook_attempts"] = await webhooks.deliver_due(db, settings, sync_clock=sync)
    return done


async def until_signalled(db: Database, lender: LenderProvider, settings: Settings) -> None:
    """``running`` until SIGTERM or SIGINT (``fundline worker``)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("worker_started")
    async with running(db, lender, settings):
        await stop.wait()
        log.info("worker_stopping")
    log.info("worker_stopped")
