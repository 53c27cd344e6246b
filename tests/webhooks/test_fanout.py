"""From an event to its deliveries: every enabled subscription of the event's partner for its
object type, filtered by ``event_types``."""

from __future__ import annotations

import uuid

import httpx
import pytest

from fundline.kit.db import Database
from fundline.models.webhook import WebhookDeliveryStatus
from fundline.webhooks.fanout import wants
from tests.support.factories import Tenant
from tests.support.webhooks import PUBLIC_URL, deliveries_of, record_event, subscribe


@pytest.mark.parametrize(
    ("event_types", "action", "wanted"),
    [
        ([], "receivable.created", True),
        (["created"], "receivable.created", True),
        (["receivable.created"], "receivable.created", True),
        (["updated", "status_changed"], "receivable.created", False),
        (["created"], "receivable.created_from_mail", False),
        (["status_updated"], "entity.onboarding_requirements.status_updated", False),
        (
            ["onboarding_requirements.status_updated"],
            "entity.onboarding_requirements.status_updated",
            True,
        ),
    ],
)
def test_event_types_filter(event_types: list[str], action: str, wanted: bool) -> None:
    object_type = action.split(".", 1)[0]
    assert wants(event_types, object_type=object_type, action=action) is wanted


async def test_an_event_goes_to_each_subscription_that_wants_it(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    every = await subscribe(client, tenant)
    created_only = await subscribe(client, tenant, event_types=["created"])
    updates_only = await subscribe(client, tenant, event_types=["receivable.updated"])
    other_type = await subscribe(client, tenant, object_type="payable")
    disabled = await subscribe(client, tenant)
    response = await client.post(
        f"/v1/webhook_subscriptions/{disabled['id']}/disable", headers=tenant.auth
    )
    assert response.status_code == 200
    other_partners = await subscribe(client, other_tenant)

    object_id = uuid.uuid4()
    event = await record_event(db, tenant, action="created", object_id=object_id)
    deliveries = await deliveries_of(db, event.id)
    assert {str(d.subscription_id) for d in deliveries} == {every["id"], created_only["id"]}
    for delivery in deliveries:
        assert delivery.event_id == event.id
        assert delivery.partner_id == tenant.partner_id
        assert delivery.entity_id == uuid.UUID(tenant.entity_id)
        assert (delivery.object_type, delivery.object_id) == ("receivable", object_id)
        assert delivery.event_action == "receivable.created"
        assert delivery.event_created_at == event.created_at
        assert delivery.url == PUBLIC_URL
        assert delivery.status is WebhookDeliveryStatus.PENDING
        assert delivery.requests_made_count == 0
        assert delivery.next_attempt_at <= delivery.created_at
        assert delivery.lease_until is None
        assert delivery.was_successful is None

    updated = await record_event(db, tenant, action="updated", object_id=object_id)
    assert {str(d.subscription_id) for d in await deliveries_of(db, updated.id)} == {
        every["id"],
        updates_only["id"],
    }
    payable = await record_event(db, tenant, object_type="payable")
    assert [str(d.subscription_id) for d in await deliveries_of(db, payable.id)] == [
        other_type["id"]
    ]
    theirs = await record_event(db, other_tenant)
    assert [str(d.subscription_id) for d in await deliveries_of(db, theirs.id)] == [
        other_partners["id"]
    ]


async def test_financing_events_go_to_financing_subscriptions(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    subscription = await subscribe(
        client, tenant, object_type="financing_invoice", event_types=["status_changed"]
    )
    changed = await record_event(
        db, tenant, object_type="financing_invoice", action="status_changed"
    )
    created = await record_event(db, tenant, object_type="financing_invoice", action="created")
    assert [str(d.subscription_id) for d in await deliveries_of(db, changed.id)] == [
        subscription["id"]
    ]
    assert await deliveries_of(db, created.id) == []
