"""Factories and helpers of the webhook tests: subscriptions through the API, events and their
deliveries written as the outbox and the fan-out write them, workers on a clock the test moves,
and a receiver's checks of the signatures."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from fundline.kit import clock
from fundline.kit.db import Database
from fundline.models import Event, WebhookDelivery, WebhookSubscription
from fundline.webhooks import addresses, fanout, outbox
from fundline.webhooks.sender import Sender
from fundline.webhooks.worker import DeliveryWorker, Limits
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


async def delivery_of(db: Database, event_id: uuid.UUID) -> WebhookDelivery:
    """The one delivery of ``event_id``, as the database has it now."""
    (delivery,) = await deliveries_of(db, event_id)
    return delivery


async def subscription_row(db: Database, subscription_id: str) -> WebhookSubscription:
    async with db.session() as session:
        found = await session.get(WebhookSubscription, uuid.UUID(subscription_id))
        assert found is not None
        return found


class FakeClock:
    """Business time for a worker that moves only when the test says (``advance``).

    It starts a minute ahead of ``clock.now()``, so what the API and the fan-out write during
    the test (at ``clock.now()``) is already due for it."""

    def __init__(self) -> None:
        self.at = clock.now() + timedelta(minutes=1)

    def now(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> datetime:
        self.at += by
        return self.at


@contextlib.asynccontextmanager
async def a_worker(
    db: Database,
    *,
    allow: Collection[str] = LOOPBACK,
    timeout_seconds: float = TEST_TIMEOUT_SECONDS,
    now: Callable[[], datetime] = clock.now,
    real_now: Callable[[], datetime] = clock.system_now,
    **limits: Any,
) -> AsyncIterator[DeliveryWorker]:
    """A delivery worker with its own sender (``allow``, ``timeout_seconds``), no jitter, and
    ``Limits`` made of ``limits`` (a lease of 30 s unless given)."""
    limits.setdefault("lease_seconds", 30.0)
    async with Sender(allow=allow, timeout_seconds=timeout_seconds) as sender:
        yield DeliveryWorker(
            db, sender, Limits(**limits), now=now, real_now=real_now, jitter=lambda: 1.0
        )


@contextlib.asynccontextmanager
async def running(worker: DeliveryWorker) -> AsyncIterator[asyncio.Task[None]]:
    """``worker.run()`` in a task for the block; stopped (gracefully) at its end."""
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)


async def eventually(check: Callable[[], bool], *, seconds: float = 5.0) -> None:
    """Wait until ``check()`` holds (polling); fail if it does not within ``seconds``."""
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.005)


def monite_verifies(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """A receiver's check of ``Monite-Signature``, from Monite's description alone:
    ``t=<unix>,v1=<hex HMAC-SHA256 of "<unix>.<body>" keyed by the secret's UTF-8 bytes>``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    parts = dict(item.split("=", 1) for item in lowered["monite-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts["v1"])


def standard_verifies(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """The ``standardwebhooks`` package's check of the ``webhook-*`` headers."""
    try:
        Webhook(secret).verify(body, dict(headers))
    # A signature that is not base64 any more (one flipped byte can make it so), or a body
    # that is not UTF-8 any more, is refused with the decoder's error rather than the
    # library's own.
    except (WebhookVerificationError, ValueError):
        return False
    return True


def changed_byte(value: bytes, index: int) -> bytes:
    """``value`` with one bit of its byte at ``index`` flipped."""
    return value[:index] + bytes([value[index] ^ 0x01]) + value[index + 1 :]


async def deliveries_counted(client: httpx.AsyncClient) -> dict[str, float]:
    """``fundline_webhook_deliveries_total`` by outcome, as ``GET /metrics`` shows it now (the
    registry is the process's: compare before and after)."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    counted: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "fundline_webhook_deliveries_total":
                counted[sample.labels["outcome"]] = sample.value
    return counted
