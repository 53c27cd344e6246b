"""Workers writing down their attempts side by side on PostgreSQL: each write-down locks the
subscriptions of its attempts (their failure streak), and every worker takes those locks in
the same order, so two batches that cross subscriptions wait for each other instead of
deadlocking (PostgreSQL would abort one, and the attempts would wait for a later round)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from fundline.kit import clock
from fundline.kit.db import Database
from fundline.models import WebhookDelivery
from fundline.models.webhook import WebhookDeliveryStatus
from fundline.webhooks import fanout, outbox, queue
from fundline.webhooks.sender import Answer, Sender
from fundline.webhooks.worker import DeliveryWorker
from tests.support.factories import Tenant
from tests.support.webhooks import record_event, subscribe

pytestmark = pytest.mark.usefixtures("postgres_only")


async def test_crossing_write_downs_do_not_deadlock(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await subscribe(client, tenant)
    second = await subscribe(client, tenant)
    for _ in range(4):
        await record_event(db, tenant)
    async with db.session() as session, session.begin():
        claims = await queue.claim(
            session,
            now=clock.now(),
            lease=timedelta(minutes=5),
            limit=100,
            busy={},
            per_subscription=100,
        )
    assert len(claims) == 8
    ours = [c for c in claims if str(c.subscription_id) == first["id"]]
    theirs = [c for c in claims if str(c.subscription_id) == second["id"]]
    ok = Answer(200, "ok")
    record = queue.record

    async def interleaved(*args: Any, **kwargs: Any) -> queue.Outcome:
        """Record, then let the other worker record one too (their statements alternate)."""
        outcome = await record(*args, **kwargs)
        await asyncio.sleep(0.1)
        return outcome

    monkeypatch.setattr(queue, "record", interleaved)
    async with Sender(allow=()) as sender:
        one, other = DeliveryWorker(db, sender), DeliveryWorker(db, sender)
        # What each would have after its attempts: one batch first then second subscription,
        # the other the other way round (the finished attempts a round writes down).
        one._done = [(c, ok) for c in (ours[0], theirs[0], ours[1], theirs[1])]
        other._done = [(c, ok) for c in (theirs[2], ours[2], theirs[3], ours[3])]
        async with asyncio.timeout(20):
            written = await asyncio.gather(one._write_down(), other._write_down())
    assert list(written) == [4, 4]
    async with db.session() as session:
        statuses = list(await session.scalars(select(WebhookDelivery.status)))
    assert statuses == [WebhookDeliveryStatus.SUCCEEDED] * 8


async def test_a_fan_out_in_progress_does_not_hold_up_a_write_down(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    """A fan-out's new deliveries reference their subscription (a key-share lock on its row
    until the fan-out commits); writing down an attempt of that subscription changes only its
    failure streak, so it goes ahead meanwhile (and cannot close a circle of locks with it)."""
    await subscribe(client, tenant)
    await record_event(db, tenant)
    async with db.session() as session, session.begin():
        [claimed] = await queue.claim(
            session,
            now=clock.now(),
            lease=timedelta(minutes=5),
            limit=10,
            busy={},
            per_subscription=10,
        )
    async with Sender(allow=()) as sender:
        worker = DeliveryWorker(db, sender)
        worker._done = [(claimed, Answer(200, "ok"))]
        async with db.session() as fanning, fanning.begin():
            await outbox.record(
                fanning,
                partner_id=tenant.partner_id,
                entity_id=uuid.UUID(tenant.entity_id),
                object_type="receivable",
                object_id=uuid.uuid4(),
                action="created",
            )
            assert await fanout.fan_out(fanning) == 1  # its delivery written, not committed
            async with asyncio.timeout(5):
                assert await worker._write_down() == 1
