"""GET /v1/events and /v1/events/{id}: the outbox as Monite serves it."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from fundline.webhooks import outbox
from tests.support.factories import Tenant, create_entity_user


async def test_events_list_and_get(client: httpx.AsyncClient, tenant: Tenant) -> None:
    user = await create_entity_user(client, tenant)
    response = await client.get("/v1/events", headers=tenant.headers)
    assert response.status_code == 200
    events = response.json()["data"]
    assert [e["action"] for e in events] == ["entity.created", "entity_user.created"]
    assert events[1]["object"]["id"] == user["id"]
    assert events[1]["object_type"] == "entity_user"
    assert all(e["entity_id"] == tenant.entity_id for e in events)

    one = await client.get(f"/v1/events/{events[1]['id']}", headers=tenant.headers)
    assert one.status_code == 200
    assert one.json() == events[1]


async def test_events_filters(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await create_entity_user(client, tenant)
    only_users = await client.get("/v1/events?object_type=entity_user", headers=tenant.headers)
    assert [e["object_type"] for e in only_users.json()["data"]] == ["entity_user"]
    newest_first = await client.get("/v1/events?order=desc", headers=tenant.headers)
    assert [e["action"] for e in newest_first.json()["data"]] == [
        "entity_user.created",
        "entity.created",
    ]
    cutoff = newest_first.json()["data"][0]["created_at"].replace("+", "%2B")
    after = await client.get(f"/v1/events?created_at__gte={cutoff}", headers=tenant.headers)
    assert len(after.json()["data"]) == 1


async def test_other_tenants_event_is_404(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = (await client.get("/v1/events", headers=other_tenant.headers)).json()["data"][0]
    response = await client.get(f"/v1/events/{theirs['id']}", headers=tenant.headers)
    assert response.status_code == 404
    crossed = await client.get(
        f"/v1/events/{theirs['id']}",
        headers={**tenant.auth, "x-monite-entity-id": other_tenant.entity_id},
    )
    assert crossed.status_code == 404
    unknown = await client.get(f"/v1/events/{uuid.uuid4()}", headers=tenant.headers)
    assert unknown.status_code == 404


async def test_financing_events_are_listed(
    client: httpx.AsyncClient, app: FastAPI, tenant: Tenant
) -> None:
    """Fundline's own object types (financing) are listed beside Monite's: the spec check
    admits them as the documented extension of ``WebhookObjectType``."""
    async with app.state.db.session() as session, session.begin():
        financing = await outbox.record(
            session,
            partner_id=tenant.partner_id,
            entity_id=uuid.UUID(tenant.entity_id),
            object_type="financing_invoice",
            object_id=uuid.uuid4(),
            action="created",
        )
    listed = (await client.get("/v1/events", headers=tenant.headers)).json()["data"]
    assert [e["object_type"] for e in listed] == ["entity", "financing_invoice"]
    one = await client.get(f"/v1/events/{financing.id}", headers=tenant.headers)
    assert one.status_code == 200
    assert one.json()["action"] == "financing_invoice.created"
    only = await client.get("/v1/events?object_type=financing_invoice", headers=tenant.headers)
    assert [e["id"] for e in only.json()["data"]] == [str(financing.id)]
    bogus = await client.get("/v1/events?object_type=invoice", headers=tenant.headers)
    assert bogus.status_code == 422
