"""The delivery worker as a whole: one object's events in order, slots per worker and per
subscription, leases that run out, disabled and deleted subscriptions, and the graceful
shutdown."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import httpx
import pytest

from fundline.kit import clock
from fundline.kit.db import Database
from fundline.models.webhook import WebhookDeliveryStatus
from fundline.webhooks import queue
from fundline.webhooks.queue import Claimed, Outcome
from fundline.webhooks.sender import Answer
from fundline.webhooks.worker import DeliveryWorker
from tests.support.factories import Tenant
from tests.support.receiver import Received, Reply, receiving
from tests.support.webhooks import (
    FakeClock,
    a_worker,
    deliveries_counted,
    deliveries_of,
    delivery_of,
    eventually,
    record_event,
    running,
    subscribe,
)

RETRY = timedelta(seconds=5)
LEASE = timedelta(seconds=30)
PENDING = WebhookDeliveryStatus.PENDING


async def claim(db: Database, at: datetime | None = None) -> list[Claimed]:
    """What a worker would claim ``at`` (real time, by default now), with a lease of
    ``LEASE``; what is due now is due then."""
    async with db.session() as session, session.begin():
        return await queue.claim(
            session,
            now=clock.now(),
            real_now=at or clock.system_now(),
            lease=LEASE,
            limit=10,
            busy={},
            per_subscription=4,
        )


async def test_one_objects_events_wait_for_the_one_before(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    loopback: None,
    fake_clock: FakeClock,
    timed_worker: DeliveryWorker,
) -> None:
    """While an object's event is being retried its next event is not sent (however long it
    has been due); it follows once the first succeeds. Another object's event goes at once."""
    fail_once: set[str] = set()

    def answer(request: Received) -> Reply:
        if request.event_id in fail_once:
            fail_once.discard(request.event_id)
            return Reply(500)
        return Reply(200)

    object_id = uuid.uuid4()
    async with receiving(answer) as receiver:
        await subscribe(client, tenant, url=receiver.url)
        first = await record_event(db, tenant, object_id=object_id)
        second = await record_event(db, tenant, object_id=object_id, action="updated")
        other = await record_event(db, tenant)
        fail_once.add(str(first.id))
        await timed_worker.run_until_idle()
        assert sorted(receiver.event_ids()) == sorted([str(first.id), str(other.id)])
        held = await delivery_of(db, second.id)
        assert (held.status, held.requests_made_count) == (WebhookDeliveryStatus.PENDING, 0)
        assert held.next_attempt_at <= fake_clock.now()  # due, and held back

        fake_clock.advance(RETRY - timedelta(microseconds=1))
        await timed_worker.run_until_idle()
        assert len(receiver.received) == 2

        fake_clock.advance(timedelta(microseconds=1))
        await timed_worker.run_until_idle()
    assert receiver.event_ids()[2:] == [str(first.id), str(second.id)]
    for event in (first, second, other):
        assert (await delivery_of(db, event.id)).status is WebhookDeliveryStatus.SUCCEEDED


async def test_one_objects_events_go_one_at_a_time_in_order(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None, worker: DeliveryWorker
) -> None:
    """An object's events are sent one after another, in the order they happened."""
    object_id = uuid.uuid4()
    async with receiving(lambda _: Reply(delay=0.02)) as receiver:
        await subscribe(client, tenant, url=receiver.url)
        events = [
            await record_event(db, tenant, object_id=object_id, action=action)
            for action in ("created", "updated", "status_changed", "deleted")
        ]
        await worker.run_until_idle()
    assert receiver.event_ids() == [str(e.id) for e in events]
    assert receiver.most_in_flight == 1


async def test_a_slow_subscription_does_not_hold_up_another(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None
) -> None:
    """A receiver that hangs holds its subscription's slots (``per_subscription``) and no
    more: another subscription's deliveries go out meanwhile."""
    gate = asyncio.Event()
    async with (
        receiving(lambda _: Reply(gate=gate)) as slow,
        receiving() as fast,
        a_worker(db, concurrency=8, per_subscription=1) as worker,
    ):
        await subscribe(client, tenant, url=slow.url)
        await subscribe(client, tenant, url=fast.url)
        for _ in range(3):
            await record_event(db, tenant)
        async with running(worker):
            try:
                await eventually(lambda: len(fast.received) == 3, seconds=3)
                assert (len(slow.received), slow.in_flight) == (1, 1)
            finally:
                gate.set()
            await eventually(lambda: worker.attempts == 6, seconds=3)
    assert len(slow.received) == 3
    assert slow.most_in_flight == 1


@pytest.mark.parametrize(("concurrency", "per_subscription", "most"), [(2, 10, 2), (10, 3, 3)])
async def test_attempts_at_once_are_bounded(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    loopback: None,
    concurrency: int,
    per_subscription: int,
    most: int,
) -> None:
    """At most ``concurrency`` attempts at once per worker, and ``per_subscription`` for one
    subscription: counted at the receiver, which holds its answers until the limit is
    reached (and a moment more, for an attempt over the limit to show)."""
    gate = asyncio.Event()
    async with (
        receiving(lambda _: Reply(gate=gate)) as receiver,
        a_worker(db, concurrency=concurrency, per_subscription=per_subscription) as worker,
    ):
        await subscribe(client, tenant, url=receiver.url)
        for _ in range(7):
            await record_event(db, tenant)
        sending = asyncio.create_task(worker.run_until_idle())
        try:
            await eventually(lambda: receiver.in_flight == most)
            await asyncio.sleep(0.1)
            assert receiver.in_flight == most
        finally:
            gate.set()
        await asyncio.wait_for(sending, 5)
    assert len(receiver.received) == 7
    assert receiver.most_in_flight == most


async def test_stopping_lets_an_attempt_in_flight_finish_and_writes_it_down(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None
) -> None:
    """stop() during an attempt: the worker waits for its answer and writes it down."""
    gate = asyncio.Event()
    async with (
        receiving(lambda _: Reply(gate=gate)) as receiver,
        a_worker(db, grace_seconds=5.0) as worker,
    ):
        await subscribe(client, tenant, url=receiver.url)
        event = await record_event(db, tenant)
        task = asyncio.create_task(worker.run())
        try:
            await eventually(lambda: len(receiver.received) == 1)
            worker.stop()
            # Time for the worker to reach its shutdown, which must wait for the answer.
            await asyncio.sleep(0.3)
            assert not task.done()
        finally:
            gate.set()
        await asyncio.wait_for(task, 5)
    delivery = await delivery_of(db, event.id)
    assert (delivery.status, delivery.requests_made_count) == (WebhookDeliveryStatus.SUCCEEDED, 1)
    assert delivery.lease_until is None


async def test_stopping_releases_an_attempt_that_outlasts_the_grace_period(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None
) -> None:
    """An attempt still waiting when the grace period ends is given up and its delivery
    released (no lease left, no attempt counted): the next worker sends it at once, as the
    same event."""
    gate = asyncio.Event()
    async with receiving(lambda _: Reply(gate=gate)) as receiver:
        await subscribe(client, tenant, url=receiver.url)
        event = await record_event(db, tenant)
        try:
            async with a_worker(db, grace_seconds=0.05) as worker:
                task = asyncio.create_task(worker.run())
                await eventually(lambda: len(receiver.received) == 1)
                worker.stop()
                await asyncio.wait_for(task, 2)
            released = await delivery_of(db, event.id)
            assert released.status is WebhookDeliveryStatus.PENDING
            assert (released.lease_until, released.requests_made_count) == (None, 0)
            assert released.was_successful is None
        finally:
            gate.set()
        async with a_worker(db) as next_worker:
            await next_worker.run_until_idle()
    assert receiver.event_ids() == [str(event.id)] * 2
    assert (await delivery_of(db, event.id)).status is WebhookDeliveryStatus.SUCCEEDED


async def test_a_claim_holds_a_delivery_until_its_lease_runs_out(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    """A claimed delivery cannot be claimed again until its lease runs out, to the microsecond."""
    await subscribe(client, tenant)
    event = await record_event(db, tenant)
    claimed_at = clock.system_now()
    (held,) = await claim(db, claimed_at)
    assert held.event_id == event.id
    assert await claim(db, claimed_at + LEASE - timedelta(microseconds=1)) == []
    (again,) = await claim(db, claimed_at + LEASE)
    assert again == held  # the same delivery, body and secret: the same webhook again


async def test_a_killed_workers_claim_is_sent_once_its_lease_runs_out(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None
) -> None:
    """A worker that claimed and vanished holds the delivery until the lease runs out; then
    another sends it, and the vanished one's late result changes nothing (``DROPPED``)."""
    real = [clock.system_now()]
    async with receiving() as receiver, a_worker(db, real_now=lambda: real[0]) as worker:
        await subscribe(client, tenant, url=receiver.url)
        event = await record_event(db, tenant)
        (held,) = await claim(db, real[0])  # the worker that will be killed
        await worker.run_until_idle()
        assert receiver.received == []
        real[0] += LEASE + timedelta(seconds=1)
        await worker.run_until_idle()
    assert receiver.event_ids() == [str(event.id)]
    async with db.session() as session, session.begin():
        late = await queue.record(
            session, held, Answer(500), now=clock.now(), real_now=clock.system_now()
        )
    assert late is Outcome.DROPPED
    delivery = await delivery_of(db, event.id)
    assert (delivery.status, delivery.requests_made_count) == (WebhookDeliveryStatus.SUCCEEDED, 1)


async def test_a_disabled_subscriptions_deliveries_wait(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None, worker: DeliveryWorker
) -> None:
    """Deliveries pending for a subscription are not claimed while it is disabled; enabled
    again, it gets them."""
    async with receiving() as receiver:
        subscription = await subscribe(client, tenant, url=receiver.url)
        one = f"/v1/webhook_subscriptions/{subscription['id']}"
        event = await record_event(db, tenant)
        assert (await client.post(f"{one}/disable", headers=tenant.auth)).status_code == 200
        assert await claim(db) == []
        await worker.run_until_idle()
        assert receiver.received == []
        delivery = await delivery_of(db, event.id)
        assert (delivery.status, delivery.requests_made_count) == (PENDING, 0)
        assert (await client.post(f"{one}/enable", headers=tenant.auth)).status_code == 200
        await worker.run_until_idle()
    assert receiver.event_ids() == [str(event.id)]


async def test_deleting_a_subscription_during_an_attempt_breaks_nothing(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None
) -> None:
    """The subscription (and its deliveries) deleted while an attempt is in flight: the
    attempt's result is dropped, and the worker carries on with the others."""
    gate = asyncio.Event()
    async with (
        receiving(lambda _: Reply(gate=gate)) as receiver,
        a_worker(db, poll_seconds=0.02) as worker,
    ):
        subscription = await subscribe(client, tenant, url=receiver.url)
        event = await record_event(db, tenant)
        before = await deliveries_counted(client)
        async with running(worker):
            try:
                await eventually(lambda: len(receiver.received) == 1)
                deleted = await client.delete(
                    f"/v1/webhook_subscriptions/{subscription['id']}", headers=tenant.auth
                )
                assert deleted.status_code == 204
            finally:
                gate.set()
            await eventually(lambda: worker.attempts == 1)
            await subscribe(client, tenant, url=receiver.url)
            later = await record_event(db, tenant)
            await eventually(lambda: worker.attempts == 2)
        after = await deliveries_counted(client)
    assert await deliveries_of(db, event.id) == []
    assert (await delivery_of(db, later.id)).status is WebhookDeliveryStatus.SUCCEEDED
    assert after["dropped"] - before.get("dropped", 0) == 1
    assert after["succeeded"] - before.get("succeeded", 0) == 1
