"""Signatures: the ``standardwebhooks`` package verifies ours, an HMAC written here from
Monite's description verifies ``Monite-Signature``, and one changed byte fails both."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from fundline.kit import clock
from fundline.models import Event
from fundline.webhooks.signing import new_secret, payload, signature_headers
from tests.support.factories import Tenant
from tests.support.spec import check_schema
from tests.support.webhooks import (
    changed_byte,
    monite_verifies,
    standard_verifies,
    subscribe,
)

SUBSCRIPTION_ID = uuid.UUID("5b7e0b8e-9a43-4f4e-9a55-0f4c0e0a3c11")


def an_event(**overrides: object) -> Event:
    object_id = uuid.uuid4()
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "partner_id": uuid.uuid4(),
        "entity_id": uuid.uuid4(),
        "object_type": "financing_invoice",
        "object_id": object_id,
        "action": "financing_invoice.status_changed",
        "description": "financing_invoice_status_changed",
        "api_version": "2024-05-25",
        "object": {"id": str(object_id), "status": "FUNDED", "previous_status": "NEW"},
        "created_at": datetime(2026, 12, 1, 10, 30, 15, 123456, tzinfo=UTC),
    }
    fields.update(overrides)
    return Event(**fields)


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert new_secret() != secret


def test_the_payload_is_monites_webhook_body_and_always_the_same_bytes() -> None:
    event = an_event()
    body = payload(event, SUBSCRIPTION_ID)
    assert body == payload(event, SUBSCRIPTION_ID)
    data = orjson.loads(body)
    check_schema("EventResourceForWebhookClient", data)
    assert data == {
        "id": str(event.id),
        "created_at": "2026-12-01T10:30:15.123456Z",
        "action": "financing_invoice.status_changed",
        "api_version": "2024-05-25",
        "entity_id": str(event.entity_id),
        "description": "financing_invoice_status_changed",
        "object_type": "financing_invoice",
        "object": event.object,
        "webhook_subscription_id": str(SUBSCRIPTION_ID),
    }


def test_both_signatures_verify() -> None:
    secret, event = new_secret(), an_event()
    body = payload(event, SUBSCRIPTION_ID)
    now = clock.system_now()
    headers = signature_headers(secret, event_id=event.id, body=body, at=now)
    timestamp = str(int(now.timestamp()))
    assert headers["webhook-id"] == str(event.id)
    assert headers["webhook-timestamp"] == timestamp
    assert headers["Monite-Signature"].startswith(f"t={timestamp},v1=")
    assert headers["webhook-signature"].startswith("v1,")
    assert monite_verifies(secret, body, headers)
    assert Webhook(secret).verify(body, headers) == orjson.loads(body)
    # A retry a minute later: the same id, a new timestamp, still valid.
    later = signature_headers(secret, event_id=event.id, body=body, at=now + timedelta(minutes=1))
    assert later["webhook-id"] == headers["webhook-id"]
    assert later["webhook-timestamp"] != headers["webhook-timestamp"]
    assert monite_verifies(secret, body, later)
    assert standard_verifies(secret, body, later)


def test_one_changed_byte_of_the_body_fails_both() -> None:
    secret, event = new_secret(), an_event()
    body = payload(event, SUBSCRIPTION_ID)
    headers = signature_headers(secret, event_id=event.id, body=body, at=clock.system_now())
    for index in (0, len(body) // 2, len(body) - 1):
        tampered = changed_byte(body, index)
        assert not monite_verifies(secret, tampered, headers), index
        assert not standard_verifies(secret, tampered, headers), index


@pytest.mark.parametrize(
    ("header", "index"),
    [
        ("Monite-Signature", 2),  # in t=<unix>
        ("Monite-Signature", -1),  # in v1=<hex>
        ("webhook-id", 0),
        ("webhook-timestamp", -1),
        ("webhook-signature", -3),
    ],
)
def test_one_changed_byte_of_a_header_fails(header: str, index: int) -> None:
    secret, event = new_secret(), an_event()
    body = payload(event, SUBSCRIPTION_ID)
    headers = signature_headers(secret, event_id=event.id, body=body, at=clock.system_now())
    value = headers[header].encode()
    tampered = {**headers, header: changed_byte(value, index % len(value)).decode()}
    # Each scheme signs what its own headers carry; a change to them fails that scheme, and
    # a receiver checking both refuses the request.
    monite_ok = monite_verifies(secret, body, tampered)
    standard_ok = standard_verifies(secret, body, tampered)
    if header == "Monite-Signature":
        assert not monite_ok
        assert standard_ok
    else:
        assert monite_ok
        assert not standard_ok


def test_another_secret_verifies_neither() -> None:
    secret, other, event = new_secret(), new_secret(), an_event()
    body = payload(event, SUBSCRIPTION_ID)
    headers = signature_headers(secret, event_id=event.id, body=body, at=clock.system_now())
    assert not monite_verifies(other, body, headers)
    assert not standard_verifies(other, body, headers)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        signature_headers(new_secret(), event_id="x", body=b"{}", at=datetime(2026, 12, 1))


async def test_regenerating_the_secret_invalidates_the_old_one(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await subscribe(client, tenant)
    response = await client.post(
        f"/v1/webhook_subscriptions/{created['id']}/regenerate_secret", headers=tenant.auth
    )
    assert response.status_code == 200
    new = response.json()["secret"]
    assert new != created["secret"]
    event = an_event()
    body = payload(event, uuid.UUID(created["id"]))
    old_headers = signature_headers(
        created["secret"], event_id=event.id, body=body, at=clock.system_now()
    )
    # What the old secret signs, a receiver holding the new one refuses; the new one verifies.
    assert not monite_verifies(new, body, old_headers)
    assert not standard_verifies(new, body, old_headers)
    new_headers = signature_headers(new, event_id=event.id, body=body, at=clock.system_now())
    assert monite_verifies(new, body, new_headers)
    assert standard_verifies(new, body, new_headers)
