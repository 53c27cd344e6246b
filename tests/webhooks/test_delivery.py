"""The delivery worker against a real receiver on loopback: what is sent, and what each answer
leads to."""

from __future__ import annotations

import httpx

from fundline.kit.db import Database
from fundline.models.webhook import WebhookDeliveryStatus
from fundline.webhooks.worker import DeliveryWorker
from tests.support.factories import Tenant
from tests.support.receiver import receiving
from tests.support.webhooks import deliveries_of, record_event, subscribe


async def test_an_event_is_delivered(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, loopback: None, worker: DeliveryWorker
) -> None:
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
