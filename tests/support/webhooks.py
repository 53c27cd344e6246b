"""Factories of the webhook tests: subscriptions through the API, events and their deliveries
written as the outbox and the fan-out write them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from fundline.kit.db import Database
from fundline.models import Event, WebhookDelivery
from fundline.webhooks import addresses, fanout, outbox
from tests.support.factories import Tenant

# A host the tests' resolver (``public_dns`` in conftest.py) gives a public address.
PUBLIC_HOST = "hooks.partner.example"
PUBLIC_URL = f"https://{PUBLIC_HOST}/fundline"
PUBLIC_ADDRESS = "93.184.215.14"
# What the delivery tests let webhooks reach (FUNDLINE_WEBHOOK_ALLOW_PRIVATE), and how long
# their receivers have to answer.
LOOPBACK = frozenset({"127.0.0.1", "localhost"})
TEST_TIMEOUT_SECONDS = 1.0


def use_resolver(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    """Resolve hosts from ``answers`` (a host missing there does not resolve)."""

    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError(f"{host} does not resolve")
        return answers[host]

    monkeypatch.setattr(addresses, "system_resolver", resolve)


async def subscribe(
    client: httpx.AsyncClient,
    tenant: Tenant,
    *,
    object_type: str = "receivable",
    url: str = PUBLIC_URL,
    event_types: list[str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"object_type": object_type, "url": url}
    if event_types is not None:
        body["event_types"] = event_types
    response = await client.post("/v1/webhook_subscriptions", json=body, headers=tenant.auth)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def record_event(
    db: Database,
    tenant: Tenant,
    *,
    object_type: str = "receivable",
    action: str = "created",
    object_id: uuid.UUID | None = None,
) -> Event:
    """An event of the tenant's entity, and its deliveries: the worker's fan-out of it and of
    any event still waiting before it."""
    async with db.session() as session, session.begin():
        event = await outbox.record(
            session,
            partner_id=tenant.partner_id,
            entity_id=uuid.UUID(tenant.entity_id),
            object_type=object_type,
            object_id=object_id or uuid.uuid4(),
            action=action,
        )
        await fanout.fan_out(session)
    return event


async def deliveries_of(db: Database, event_id: uuid.UUID) -> list[WebhookDelivery]:
    async with db.session() as session:
        rows = await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.event_id == event_id)
            .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        )
        return list(rows)
