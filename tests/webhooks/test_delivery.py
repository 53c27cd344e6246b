"""The delivery worker against a real receiver on loopback: what is sent, and what each answer
leads to (success, a retry, the end of the delivery, a disabled subscription)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx

from fundline.kit.db import Database
from fundline.models import WebhookDelivery
from fundline.models.webhook import WebhookDeliveryStatus, WebhookSubscriptionStatus
from fundline.webhooks.queue import FAILING_REASON, GONE_REASON
from fundline.webhooks.worker import DeliveryWorker
from tests.support.factories import Tenant
from tests.support.receiver import (
    Receiver,
    Reply,
    always,
    always_reply,
    by_path,
    in_turn,
    receiving,
)
from tests.support.webhooks import (
    FakeClock,
    a_worker,
    deliveries_counted,
    deliveries_of,
    delivery_of,
    record_event,
    subscribe,
    subscription_row,
)

RETRY = timedelta(seconds=5)  # the first retry's wait
ENABLED = WebhookSubscriptionStatus.ENABLED
DISABLED = WebhookSubscriptionStatus.DISABLED


async def test_an_event_is_delivered(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None, worker: DeliveryWorker
) -> None:
    """One event, one subscription: the receiver gets the event's body, the log a success."""
    async with receiving() as receiver:
        subscription = await subscribe(client, tenant, url=receiver.url)
        event = await record_event(db, tenant)
        await worker.run_until_idle()
    assert receiver.event_ids() == [str(event.id)]
    body = receiver.received[0].json
    assert body["id"] == str(event.id)
    assert body["webhook_subscription_id"] == subscription["id"]
    (delivery,) = await deliveries_of(db, event.id)
    assert delivery.status is WebhookDeliveryStatus.SUCCEEDED
    assert delivery.requests_made_count == 1
    assert delivery.last_response_status_code == 200


async def subscribed_at(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, paths: list[str]
) -> None:
    """A subscription for each path of ``receiver`` (a ``by_path`` receiver)."""
    for path in paths:
        await subscribe(client, tenant, url=receiver.url_at(path))


async def by_url(db: Database, event_id: uuid.UUID) -> dict[str, WebhookDelivery]:
    return {d.url.rsplit("/", 1)[1]: d for d in await deliveries_of(db, event_id)}


async def test_any_2xx_is_a_success(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None, worker: DeliveryWorker
) -> None:
    """201 and 204 are successes as 200 is; the log keeps the status and the body."""
    replies = {"201": Reply(201, body=b"created"), "204": Reply(204, body=b"")}
    answers = {f"/{path}": always_reply(reply) for path, reply in replies.items()}
    async with receiving(by_path(answers)) as receiver:
        await subscribed_at(client, tenant, receiver, list(replies))
        event = await record_event(db, tenant)
        await worker.run_until_idle()
    assert len(receiver.received) == 2
    deliveries = await by_url(db, event.id)
    for path, shown in (("201", "created"), ("204", None)):
        delivery = deliveries[path]
        assert delivery.status is WebhookDeliveryStatus.SUCCEEDED, path
        assert delivery.was_successful is True
        assert (delivery.last_response_status_code, delivery.last_response) == (int(path), shown)


async def test_an_error_status_is_retried(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    loopback: None,
    fake_clock: FakeClock,
    timed_worker: DeliveryWorker,
) -> None:
    """A 4xx or 5xx (but 410) is a failed attempt: the answer is logged and a retry is due
    5 s later, when it is sent."""
    statuses = ["400", "404", "500"]
    answers = {f"/{s}": in_turn(Reply(int(s), body=b"nope"), 200) for s in statuses}
    async with receiving(by_path(answers)) as receiver:
        await subscribed_at(client, tenant, receiver, statuses)
        event = await record_event(db, tenant)
        await timed_worker.run_until_idle()
        for status, delivery in (await by_url(db, event.id)).items():
            assert delivery.status is WebhookDeliveryStatus.PENDING, status
            assert (delivery.last_response_status_code, delivery.last_response) == (
                int(status),
                "nope",
            )
            assert delivery.was_successful is False
            assert delivery.next_attempt_at == fake_clock.now() + RETRY
        fake_clock.advance(RETRY)
        await timed_worker.run_until_idle()
    assert len(receiver.received) == 6
    for status, delivery in (await by_url(db, event.id)).items():
        assert delivery.status is WebhookDeliveryStatus.SUCCEEDED, status
        assert delivery.requests_made_count == 2


async def test_a_redirect_is_not_followed(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    loopback: None,
    fake_clock: FakeClock,
    timed_worker: DeliveryWorker,
) -> None:
    """A redirect is a failed attempt: the receiver behind ``Location`` gets nothing (it
    could be anywhere, and was never checked), and the delivery is retried."""
    statuses = ["301", "302", "307"]
    async with receiving() as elsewhere:
        answers = {
            f"/{s}": always_reply(Reply(int(s), {"Location": elsewhere.url}, body=b""))
            for s in statuses
        }
        async with receiving(by_path(answers)) as receiver:
            await subscribed_at(client, tenant, receiver, statuses)
            event = await record_event(db, tenant)
            await timed_worker.run_until_idle()
            fake_clock.advance(RETRY)
            await timed_worker.run_until_idle()
    assert elsewhere.received == []
    assert len(receiver.received) == 6
    for status, delivery in (await by_url(db, event.id)).items():
        assert delivery.status is WebhookDeliveryStatus.PENDING, status
        assert delivery.last_response_status_code == int(status)
        assert (delivery.requests_made_count, delivery.was_successful) == (2, False)
        assert delivery.next_attempt_at == fake_clock.now() + timedelta(minutes=5)


async def test_no_answer_in_time_is_a_failed_attempt(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None, fake_clock: FakeClock
) -> None:
    """A receiver slower than the sender's timeout: the attempt is logged as failed, saying
    why, and a retry is scheduled."""
    gate = asyncio.Event()  # never opened while the worker waits
    async with (
        a_worker(db, timeout_seconds=0.5, now=fake_clock.now) as worker,
        receiving(lambda _: Reply(gate=gate)) as receiver,
    ):
        await subscribe(client, tenant, url=receiver.url)
        event = await record_event(db, tenant)
        try:
            await worker.run_until_idle()
        finally:
            gate.set()
    assert len(receiver.received) == 1
    delivery = await delivery_of(db, event.id)
    assert delivery.status is WebhookDeliveryStatus.PENDING
    assert (delivery.requests_made_count, delivery.was_successful) == (1, False)
    assert delivery.last_response_status_code is None
    assert delivery.last_response == "no answer within 0.5 s"
    assert delivery.next_attempt_at == fake_clock.now() + RETRY
    shown = (await client.get("/v1/webhook_deliveries", headers=tenant.headers)).json()["data"]
    assert (shown[0]["response"], shown[0]["response_status_code"]) == (
        "no answer within 0.5 s",
        None,
    )


async def test_an_answer_with_a_nul_byte_is_logged(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None, worker: DeliveryWorker
) -> None:
    """PostgreSQL's text cannot hold NUL: the log keeps a replacement character instead (the
    write-down used to fail, for this attempt and every other written down with it)."""
    async with receiving(lambda _: Reply(200, body=b"ok\x00done")) as receiver:
        await subscribe(client, tenant, url=receiver.url)
        event = await record_event(db, tenant)
        await worker.run_until_idle()
    assert len(receiver.received) == 1
    delivery = await delivery_of(db, event.id)
    assert delivery.status is WebhookDeliveryStatus.SUCCEEDED
    assert delivery.last_response == "ok\ufffddone"


async def test_410_disables_the_subscription_until_it_is_enabled(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None, worker: DeliveryWorker
) -> None:
    """410 Gone: the delivery is failed, the subscription disabled with an event saying so,
    and nothing more goes out to it (neither what was pending nor new events) until it is
    enabled; then what was pending is sent."""
    object_id = uuid.uuid4()
    async with receiving(in_turn(410, 200)) as receiver:
        subscription = await subscribe(client, tenant, url=receiver.url)
        one = f"/v1/webhook_subscriptions/{subscription['id']}"
        gone = await record_event(db, tenant, object_id=object_id)
        # The same object's next event waits behind the first (per-object order), so it is
        # still pending when the subscription is disabled.
        waiting = await record_event(db, tenant, object_id=object_id, action="updated")
        await worker.run_until_idle()
        assert receiver.event_ids() == [str(gone.id)]
        delivery = await delivery_of(db, gone.id)
        assert delivery.status is WebhookDeliveryStatus.FAILED
        assert (delivery.last_response_status_code, delivery.was_successful) == (410, False)

        shown = await client.get(one, headers=tenant.auth)
        assert shown.json()["status"] == "disabled"
        assert (await subscription_row(db, subscription["id"])).disabled_reason == GONE_REASON
        events = await client.get(
            "/v1/events?object_type=webhook_subscription", headers=tenant.headers
        )
        assert events.status_code == 200
        (disabled,) = events.json()["data"]
        assert disabled["action"] == "webhook_subscription.disabled"
        assert disabled["entity_id"] == tenant.entity_id
        assert disabled["object"]["id"] == subscription["id"]
        assert disabled["object"]["reason"] == GONE_REASON

        later = await record_event(db, tenant)
        await worker.run_until_idle()
        assert receiver.event_ids() == [str(gone.id)]
        assert await deliveries_of(db, later.id) == []  # not queued for a disabled one

        enabled = await client.post(f"{one}/enable", headers=tenant.auth)
        assert enabled.json()["status"] == "enabled"
        await worker.run_until_idle()
    assert receiver.event_ids() == [str(gone.id), str(waiting.id)]
    assert (await delivery_of(db, waiting.id)).status is WebhookDeliveryStatus.SUCCEEDED


async def test_five_days_of_failures_disable_the_subscription(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    loopback: None,
    fake_clock: FakeClock,
    timed_worker: DeliveryWorker,
) -> None:
    """A failure starts the subscription's failure streak, a success ends it; a failure 5
    days (not a second less) into a streak disables the subscription, with the event."""
    answer = {"status": 500}
    async with receiving(lambda _: Reply(answer["status"])) as receiver:
        subscription = await subscribe(client, tenant, url=receiver.url)
        sub_id = subscription["id"]

        await record_event(db, tenant)
        await timed_worker.run_until_idle()
        assert (await subscription_row(db, sub_id)).failing_since == fake_clock.now()

        answer["status"] = 200
        fake_clock.advance(RETRY)
        await timed_worker.run_until_idle()
        assert (await subscription_row(db, sub_id)).failing_since is None

        answer["status"] = 500
        streak_from = fake_clock.advance(timedelta(minutes=1))
        await record_event(db, tenant)
        await timed_worker.run_until_idle()
        assert (await subscription_row(db, sub_id)).failing_since == streak_from

        # The retry of that event, a second short of 5 days into the streak.
        fake_clock.at = streak_from + timedelta(days=5) - timedelta(seconds=1)
        await timed_worker.run_until_idle()
        row = await subscription_row(db, sub_id)
        assert (row.status, row.failing_since) == (ENABLED, streak_from)

        fake_clock.at = streak_from + timedelta(days=5)
        last = await record_event(db, tenant)
        await timed_worker.run_until_idle()
    assert len(receiver.received) == 5
    row = await subscription_row(db, sub_id)
    assert (row.status, row.disabled_reason) == (DISABLED, FAILING_REASON)
    shown = await client.get(f"/v1/webhook_subscriptions/{sub_id}", headers=tenant.auth)
    assert shown.json()["status"] == "disabled"
    events = await client.get("/v1/events?object_type=webhook_subscription", headers=tenant.headers)
    (disabled,) = events.json()["data"]
    assert disabled["action"] == "webhook_subscription.disabled"
    assert disabled["object"]["reason"] == FAILING_REASON
    # The attempt that settled it is logged as any failed one.
    delivery = await delivery_of(db, last.id)
    assert (delivery.status, delivery.requests_made_count) == (WebhookDeliveryStatus.PENDING, 1)


async def test_the_metrics_count_attempts_by_outcome(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    loopback: None,
    worker: DeliveryWorker,
) -> None:
    """``fundline_webhook_deliveries_total`` on ``GET /metrics`` counts each attempt under
    its outcome."""

    answers = {"/ok": always(200), "/fail": always(500), "/gone": always(410)}
    async with receiving(by_path(answers)) as receiver:
        await subscribed_at(client, tenant, receiver, ["ok", "fail", "gone"])
        before = await deliveries_counted(client)
        await record_event(db, tenant)
        await worker.run_until_idle()
    assert len(receiver.received) == 3
    after = await deliveries_counted(client)

    def grew(outcome: str) -> float:
        return after.get(outcome, 0.0) - before.get(outcome, 0.0)

    assert {o: grew(o) for o in ("succeeded", "retrying", "gone", "failed", "dropped")} == {
        "succeeded": 1,
        "retrying": 1,
        "gone": 1,
        "failed": 0,
        "dropped": 0,
    }
