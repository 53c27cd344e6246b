"""The deliveries log (``GET /v1/webhook_deliveries``, per entity as Monite's spec has it) and
``POST /v1/webhook_deliveries/{id}/replay``."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from fundline.kit import clock
from fundline.kit.db import Database
from fundline.models import WebhookDelivery
from fundline.models.webhook import WebhookDeliveryStatus
from tests.support.factories import Tenant, create_entity, token_for
from tests.support.webhooks import PUBLIC_URL, deliveries_of, record_event, subscribe

BASE = "/v1/webhook_deliveries"


async def test_the_log_shows_each_delivery_as_monite_does(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    await subscribe(client, tenant)
    event = await record_event(db, tenant)
    (delivery,) = await deliveries_of(db, event.id)
    response = await client.get(BASE, headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == {
        "data": [
            {
                "id": str(delivery.id),
                "event_id": str(event.id),
                "requests_made_count": 0,
                "response": None,
                "response_status_code": None,
                "url": PUBLIC_URL,
                "was_successful": None,
            }
        ],
        "next_pagination_token": None,
        "prev_pagination_token": None,
    }
    # What the worker records after an attempt.
    async with db.session() as session, session.begin():
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery.id)
            .values(
                status=WebhookDeliveryStatus.SUCCEEDED,
                requests_made_count=2,
                last_response_status_code=204,
                last_response="",
                was_successful=True,
            )
        )
    shown = (await client.get(BASE, headers=tenant.headers)).json()["data"][0]
    assert shown["requests_made_count"] == 2
    assert (shown["response_status_code"], shown["response"]) == (204, "")
    assert shown["was_successful"] is True


async def test_the_log_is_the_entitys(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    await subscribe(client, tenant)
    await subscribe(client, other_tenant)
    ours = await record_event(db, tenant)
    theirs = await record_event(db, other_tenant)
    # A second entity of our partner: its deliveries are listed under its own id.
    token = await token_for(client, tenant.client_id, tenant.client_secret)
    sibling_id = await create_entity(client, token, name="Sibling LLC")
    sibling = Tenant(**{**tenant.__dict__, "entity_id": sibling_id})
    sibling.headers = {**tenant.auth, "x-monite-entity-id": sibling_id}
    sibling_event = await record_event(db, sibling)

    def events_of(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [d["event_id"] for d in response.json()["data"]]

    assert events_of(await client.get(BASE, headers=tenant.headers)) == [str(ours.id)]
    assert events_of(await client.get(BASE, headers=sibling.headers)) == [str(sibling_event.id)]
    assert events_of(await client.get(BASE, headers=other_tenant.headers)) == [str(theirs.id)]
    crossed = await client.get(
        BASE, headers={**tenant.auth, "x-monite-entity-id": other_tenant.entity_id}
    )
    assert crossed.status_code == 404
    no_entity = await client.get(BASE, headers=tenant.auth)
    assert no_entity.status_code == 422


async def test_filters_sorting_and_pages(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    await subscribe(client, tenant)
    await subscribe(client, tenant, object_type="financing_invoice")
    created = await record_event(db, tenant, action="created")
    changed = await record_event(
        db, tenant, object_type="financing_invoice", action="status_changed"
    )
    clock.set_offset(timedelta(hours=1))
    updated = await record_event(db, tenant, action="updated")
    order = [created.id, changed.id, updated.id]

    async def events(query: str = "") -> list[uuid.UUID]:
        response = await client.get(f"{BASE}?{query}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        return [uuid.UUID(d["event_id"]) for d in response.json()["data"]]

    assert await events() == order
    assert await events("order=desc") == order[::-1]
    assert await events(f"event_id={changed.id}") == [changed.id]
    assert await events("object_type=receivable") == [created.id, updated.id]
    assert await events("object_type=financing_invoice") == [changed.id]
    assert await events("event_action=created") == [created.id]
    assert await events("event_action=receivable.updated") == [updated.id]
    assert await events("event_action=status_changed") == [changed.id]
    assert await events("event_action=deleted") == []
    cutoff = (clock.now() - timedelta(minutes=30)).isoformat().replace("+", "%2B")
    assert await events(f"created_at__gte={cutoff}") == [updated.id]
    assert await events(f"created_at__gt={cutoff}") == [updated.id]
    assert await events(f"created_at__lt={cutoff}") == order[:2]
    assert await events(f"created_at__lte={cutoff}&object_type=receivable") == [created.id]

    # The worker touches the first one last: it comes last by updated_at.
    clock.set_offset(timedelta(hours=2))
    async with db.session() as session, session.begin():
        (first,) = await session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.event_id == created.id)
        )
        first.requests_made_count = 1
    assert await events("sort=updated_at") == [changed.id, updated.id, created.id]
    assert await events("sort=updated_at&order=desc") == [created.id, updated.id, changed.id]

    page1 = (await client.get(f"{BASE}?limit=2", headers=tenant.headers)).json()
    assert [uuid.UUID(d["event_id"]) for d in page1["data"]] == order[:2]
    token = page1["next_pagination_token"]
    page2 = await client.get(f"{BASE}?pagination_token={token}", headers=tenant.headers)
    assert [uuid.UUID(d["event_id"]) for d in page2.json()["data"]] == order[2:]
    assert page2.json()["next_pagination_token"] is None
    for query in ("limit=0", "sort=status", "object_type=invoice", "event_id=nope"):
        bad = await client.get(f"{BASE}?{query}", headers=tenant.headers)
        assert bad.status_code == 422, query


async def test_replay_queues_the_same_event_again(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    subscription = await subscribe(client, tenant)
    event = await record_event(db, tenant)
    (original,) = await deliveries_of(db, event.id)
    async with db.session() as session, session.begin():
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == original.id)
            .values(
                status=WebhookDeliveryStatus.FAILED, requests_made_count=8, was_successful=False
            )
        )
    response = await client.post(f"{BASE}/{original.id}/replay", headers=tenant.headers)
    assert response.status_code == 201, response.text
    replay = response.json()
    assert replay["id"] != str(original.id)
    assert replay["event_id"] == str(event.id)
    assert (replay["requests_made_count"], replay["was_successful"]) == (0, None)
    deliveries = await deliveries_of(db, event.id)
    assert [d.id for d in deliveries] == [original.id, uuid.UUID(replay["id"])]
    again = deliveries[1]
    assert str(again.subscription_id) == subscription["id"]
    assert again.status is WebhookDeliveryStatus.PENDING
    assert again.event_created_at == original.event_created_at
    assert again.next_attempt_at <= clock.now()
    listed = (await client.get(BASE, headers=tenant.headers)).json()["data"]
    assert [d["id"] for d in listed] == [str(original.id), replay["id"]]

    # A disabled subscription takes no replay; an enabled one again does.
    one = f"/v1/webhook_subscriptions/{subscription['id']}"
    assert (await client.post(f"{one}/disable", headers=tenant.auth)).status_code == 200
    refused = await client.post(f"{BASE}/{original.id}/replay", headers=tenant.headers)
    assert refused.status_code == 409
    assert refused.json() == {
        "error": {"message": "The webhook subscription is disabled: enable it to replay"}
    }
    assert (await client.post(f"{one}/enable", headers=tenant.auth)).status_code == 200
    assert (
        await client.post(f"{BASE}/{replay['id']}/replay", headers=tenant.headers)
    ).status_code == 201


async def test_replay_of_an_unknown_or_foreign_delivery_is_404(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    await subscribe(client, other_tenant)
    theirs = await record_event(db, other_tenant)
    (delivery,) = await deliveries_of(db, theirs.id)
    for headers in (
        tenant.headers,
        {**tenant.auth, "x-monite-entity-id": other_tenant.entity_id},
    ):
        response = await client.post(f"{BASE}/{delivery.id}/replay", headers=headers)
        assert response.status_code == 404
    unknown = await client.post(f"{BASE}/{uuid.uuid4()}/replay", headers=tenant.headers)
    assert unknown.status_code == 404
    assert unknown.json() == {"error": {"message": "Webhook delivery not found"}}
    bad = await client.post(f"{BASE}/nope/replay", headers=tenant.headers)
    assert bad.status_code == 422
    assert len(await deliveries_of(db, theirs.id)) == 1


async def test_pending_deliveries_follow_a_new_url_and_go_with_their_subscription(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    subscription = await subscribe(client, tenant)
    kept = await subscribe(client, tenant)
    sent = await record_event(db, tenant)
    pending = await record_event(db, tenant)
    async with db.session() as session, session.begin():
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.event_id == sent.id)
            .values(status=WebhookDeliveryStatus.SUCCEEDED, was_successful=True)
        )
    one = f"/v1/webhook_subscriptions/{subscription['id']}"
    new_url = "https://hooks.partner.example/moved"
    patched = await client.patch(one, json={"url": new_url}, headers=tenant.auth)
    assert patched.status_code == 200

    def urls(deliveries: list[WebhookDelivery]) -> dict[str, str]:
        return {str(d.subscription_id): d.url for d in deliveries}

    assert urls(await deliveries_of(db, sent.id)) == {
        subscription["id"]: PUBLIC_URL,  # where it went
        kept["id"]: PUBLIC_URL,
    }
    assert urls(await deliveries_of(db, pending.id)) == {
        subscription["id"]: new_url,
        kept["id"]: PUBLIC_URL,
    }

    assert (await client.delete(one, headers=tenant.auth)).status_code == 204
    remaining = [*await deliveries_of(db, sent.id), *await deliveries_of(db, pending.id)]
    assert {str(d.subscription_id) for d in remaining} == {kept["id"]}
