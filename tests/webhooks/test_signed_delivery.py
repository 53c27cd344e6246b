"""What a receiver gets, checked as a receiver would: both signatures verify (with the
``standardwebhooks`` package, and with an HMAC written here from Monite's description), one
changed byte fails them, and retries and replays carry the same event id and the same body."""

from __future__ import annotations

from datetime import timedelta

import httpx

from fundline.kit.db import Database
from fundline.models.webhook import WebhookDeliveryStatus
from fundline.webhooks.sender import USER_AGENT
from fundline.webhooks.worker import DeliveryWorker
from tests.support.factories import Tenant
from tests.support.receiver import Received, always, in_turn, receiving
from tests.support.webhooks import (
    FakeClock,
    changed_byte,
    deliveries_of,
    delivery_of,
    monite_verifies,
    record_event,
    standard_verifies,
    subscribe,
)

LATER = timedelta(hours=1)  # past the wait of any of the first retries


def verifies(secret: str, request: Received) -> tuple[bool, bool]:
    """(Monite-Signature, Standard Webhooks) checks of a received request."""
    return (
        monite_verifies(secret, request.body, request.headers),
        standard_verifies(secret, request.body, request.headers),
    )


async def test_a_delivery_carries_both_signatures(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None, worker: DeliveryWorker
) -> None:
    """A received request verifies with both schemes, with the event id as webhook-id."""
    async with receiving() as receiver:
        subscription = await subscribe(client, tenant, url=receiver.url)
        event = await record_event(db, tenant)
        await worker.run_until_idle()
    (request,) = receiver.received
    assert verifies(subscription["secret"], request) == (True, True)
    assert request.headers["webhook-id"] == str(event.id)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == USER_AGENT
    timestamp = request.headers["webhook-timestamp"]
    assert request.headers["monite-signature"].startswith(f"t={timestamp},v1=")
    assert request.json["id"] == str(event.id)


# (header, a byte in it, the scheme that signs it)
SIGNED_HEADERS = [
    ("monite-signature", 2, "monite"),  # in t=<unix>
    ("monite-signature", -1, "monite"),  # in v1=<hex>
    ("webhook-id", 0, "standard"),
    ("webhook-timestamp", -1, "standard"),
    ("webhook-signature", -3, "standard"),
]


async def test_a_changed_byte_is_refused(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None, worker: DeliveryWorker
) -> None:
    """One changed byte of the body fails both signatures; one of a signed header fails the
    scheme that signs it (each signs what its own headers carry), so a receiver checking
    both refuses the request either way."""
    async with receiving() as receiver:
        subscription = await subscribe(client, tenant, url=receiver.url)
        await record_event(db, tenant)
        await worker.run_until_idle()
    (request,) = receiver.received
    secret, body, headers = subscription["secret"], request.body, request.headers
    for index in (0, len(body) // 2, len(body) - 1):
        tampered = Received(request.path, headers, changed_byte(body, index), request.at)
        assert verifies(secret, tampered) == (False, False), f"byte {index} of the body"
    for header, index, signer in SIGNED_HEADERS:
        value = headers[header].encode()
        changed = changed_byte(value, index % len(value)).decode()
        tampered = Received(request.path, {**headers, header: changed}, body, request.at)
        expected = (False, True) if signer == "monite" else (True, False)
        assert verifies(secret, tampered) == expected, f"byte {index} of {header}"


async def test_a_retry_sends_the_same_event_id_and_body(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    loopback: None,
    fake_clock: FakeClock,
    timed_worker: DeliveryWorker,
) -> None:
    """Every attempt of a delivery carries the same webhook-id and body bytes, each signed anew."""
    async with receiving(in_turn(500, 500, 200)) as receiver:
        subscription = await subscribe(client, tenant, url=receiver.url)
        event = await record_event(db, tenant)
        for _ in range(3):
            await timed_worker.run_until_idle()
            fake_clock.advance(LATER)
    assert len(receiver.received) == 3
    first = receiver.received[0]
    for request in receiver.received:
        assert request.headers["webhook-id"] == str(event.id)
        assert request.body == first.body
        assert verifies(subscription["secret"], request) == (True, True)
    assert (await delivery_of(db, event.id)).status is WebhookDeliveryStatus.SUCCEEDED


async def test_the_next_attempt_after_regenerate_secret_is_signed_with_the_new_secret(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    loopback: None,
    fake_clock: FakeClock,
    timed_worker: DeliveryWorker,
) -> None:
    """After regenerate_secret the next attempt verifies with the new secret only."""
    async with receiving(in_turn(500, 200)) as receiver:
        subscription = await subscribe(client, tenant, url=receiver.url)
        old = subscription["secret"]
        await record_event(db, tenant)
        await timed_worker.run_until_idle()
        regenerated = await client.post(
            f"/v1/webhook_subscriptions/{subscription['id']}/regenerate_secret",
            headers=tenant.auth,
        )
        assert regenerated.status_code == 200
        new = regenerated.json()["secret"]
        fake_clock.advance(LATER)
        await timed_worker.run_until_idle()
    before, after = receiver.received
    assert verifies(old, before) == (True, True)
    assert verifies(new, before) == (False, False)
    assert verifies(new, after) == (True, True)
    assert verifies(old, after) == (False, False)


async def test_a_replay_sends_the_same_event_again(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None, worker: DeliveryWorker
) -> None:
    """``POST /v1/webhook_deliveries/{id}/replay`` of a delivered event: a new delivery, sent
    with the same event id (``webhook-id`` and the body's ``id``) and the same body."""
    async with receiving(always(200)) as receiver:
        subscription = await subscribe(client, tenant, url=receiver.url)
        event = await record_event(db, tenant)
        await worker.run_until_idle()
        delivered = await delivery_of(db, event.id)
        assert delivered.status is WebhookDeliveryStatus.SUCCEEDED
        replayed = await client.post(
            f"/v1/webhook_deliveries/{delivered.id}/replay", headers=tenant.headers
        )
        assert replayed.status_code == 201, replayed.text
        assert replayed.json()["event_id"] == str(event.id)
        assert replayed.json()["id"] != str(delivered.id)
        await worker.run_until_idle()
    first, again = receiver.received
    assert first.event_id == again.event_id == str(event.id)
    assert again.json["id"] == str(event.id)
    assert again.body == first.body
    assert verifies(subscription["secret"], again) == (True, True)
    deliveries = await deliveries_of(db, event.id)
    assert [d.status for d in deliveries] == [WebhookDeliveryStatus.SUCCEEDED] * 2
    listed = (await client.get("/v1/webhook_deliveries", headers=tenant.headers)).json()["data"]
    assert sorted(d["id"] for d in listed) == sorted(str(d.id) for d in deliveries)
