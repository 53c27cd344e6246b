"""The background worker: one beat does the clock's work and the housekeeping."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import func, select

from fundline.kit import clock
from fundline.models import IdempotencyKey, SandboxClock
from fundline.operations import worker


async def _expired_key(app: FastAPI) -> None:
    now = clock.system_now()
    async with app.state.db.session() as session, session.begin():
        session.add(
            IdempotencyKey(
                id=uuid.uuid4(),
                scope="s" * 64,
                key="old",
                method="POST",
                path="/v1/entity_users",
                request_hash="0" * 64,
                locked_at=None,
                response_status=200,
                created_at=now - timedelta(days=2),
                expires_at=now - timedelta(days=1),
            )
        )


async def test_beat_purges_expired_idempotency_keys(app: FastAPI) -> None:
    await _expired_key(app)
    done = await worker.beat(app.state.db, app.state.lender)
    assert done["idempotency_keys_purged"] == 1
    async with app.state.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


async def test_concurrent_beats_on_postgres_do_the_work_once(
    postgres_only: None, app: FastAPI
) -> None:
    await _expired_key(app)
    results = await asyncio.gather(*(worker.beat(app.state.db, app.state.lender) for _ in range(5)))
    assert sum(r.get("idempotency_keys_purged", 0) for r in results) == 1


async def test_running_worker_stops_cleanly(app: FastAPI) -> None:
    """The beat runs inside ``running`` (here: purging an expired key), and leaving the block
    stops it and the delivery worker, leaving no task behind."""
    await _expired_key(app)
    settings = app.state.settings.model_copy(update={"worker_interval_seconds": 0.01})
    before = asyncio.all_tasks()
    async with worker.running(app.state.db, app.state.lender, settings):
        assert len(asyncio.all_tasks() - before) == 2  # the beat and the delivery worker
        for _ in range(200):
            async with app.state.db.session() as session:
                left = await session.scalar(select(func.count()).select_from(IdempotencyKey))
            if left == 0:
                break
            await asyncio.sleep(0.01)
    assert left == 0
    assert asyncio.all_tasks() - before == set()


async def test_sandbox_beat_reads_the_shared_clock(app: FastAPI) -> None:
    """Another process moved the sandbox clock: the next beat works at that time."""
    async with app.state.db.session() as session, session.begin():
        session.add(SandboxClock(id=1, offset_seconds=3 * 86_400))
    await worker.beat(app.state.db, app.state.lender, sandbox=True)
    assert clock.offset() == timedelta(days=3)
