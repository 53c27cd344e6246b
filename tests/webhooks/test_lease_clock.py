"""Claims and the sandbox clock: a lease runs on real time, so moving the business clock days
ahead (``POST /sandbox/v1/clock/advance``) frees no claim, and a delivery in flight is not
claimed and sent a second time at once; and a delivery worker in another process than the one
that moved the clock takes the move up at its next round, not at the next beat."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import update

from fundline.config import Settings
from fundline.kit import clock
from fundline.kit.db import Database
from fundline.models import SandboxClock, WebhookDelivery
from fundline.operations import worker as background
from fundline.sandbox.service import CLOCK_ROW
from fundline.webhooks import queue
from fundline.webhooks.worker import DeliveryWorker, deliver_due
from tests.support.factories import Tenant
from tests.support.processes import eventually
from tests.support.receiver import Reply, receiving
from tests.support.webhooks import deliveries_of, record_event, subscribe

LEASE = timedelta(seconds=60)


async def claim(db: Database, lease: timedelta = LEASE) -> list[queue.Claimed]:
    async with db.session() as session, session.begin():
        return await queue.claim(
            session, now=clock.now(), lease=lease, limit=10, busy={}, per_subscription=4
        )


async def test_moving_the_clock_frees_no_claim(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    await subscribe(client, tenant)
    await record_event(db, tenant)
    try:
        assert len(await claim(db)) == 1
        clock.set_offset(timedelta(days=1))
        assert await claim(db) == []  # still held: a minute of real time has not passed
    finally:
        clock.reset()


async def test_a_lease_still_runs_out(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    await subscribe(client, tenant)
    await record_event(db, tenant)
    [first] = await claim(db, lease=timedelta())
    [again] = await claim(db)  # the worker that held it is gone: another takes it
    assert again.id == first.id


async def test_a_delivery_in_flight_when_the_clock_moves_is_sent_once(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None, worker: DeliveryWorker
) -> None:
    async with receiving(lambda _: Reply(delay=0.6)) as receiver:
        await subscribe(client, tenant, url=receiver.url)
        event = await record_event(db, tenant)
        running = asyncio.create_task(worker.run())
        try:
            await eventually(lambda: bool(receiver.received), seconds=10, what="the attempt")
            clock.set_offset(timedelta(days=1))  # while the receiver holds the attempt
            await eventually(lambda: worker.attempts == 1, seconds=10, what="the answer")
        finally:
            worker.stop()
            await running
            clock.reset()
    assert receiver.event_ids() == [str(event.id)]


async def test_the_worker_takes_up_a_clock_moved_elsewhere(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None, database_url: str
) -> None:
    """Another process moved the clock a day (the row only: this process's clock is where it
    was); a retry due in an hour goes out at the worker's next round."""
    async with receiving() as receiver:
        await subscribe(client, tenant, url=receiver.url)
        event = await record_event(db, tenant)
        async with db.session() as session, session.begin():
            await session.execute(
                update(WebhookDelivery).values(next_attempt_at=clock.now() + timedelta(hours=1))
            )
            session.add(SandboxClock(id=CLOCK_ROW, offset_seconds=86_400))
        settings = Settings(
            database_url=database_url,
            webhook_allow_private="127.0.0.1",
            webhook_timeout_seconds=1,
        )
        try:
            sync = background.clock_sync(db, settings)
            assert await deliver_due(db, settings, sync_clock=sync) == 1
        finally:
            clock.reset()
    assert receiver.event_ids() == [str(event.id)]
    [delivery] = await deliveries_of(db, event.id)
    assert delivery.was_successful is True
