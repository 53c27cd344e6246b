"""What a webhook request carries: the body (Monite's ``EventResourceForWebhookClient``) and
its signatures, Monite's and the Standard Webhooks ones.

``Monite-Signature: t=<unix>,v1=<hex>`` is the HMAC-SHA256 of ``"<unix>.<body>"`` keyed by the
secret string's UTF-8 bytes, as Stripe signs. ``webhook-signature: v1,<base64>`` is the
Standard Webhooks HMAC of ``"<id>.<unix>.<body>"`` keyed by the base64-decoded secret, made
by the ``standardwebhooks`` package itself, so any of its verifiers accepts it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from standardwebhooks import Webhook

from fundline.models import Event

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A subscription's signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def payload(event: Event, subscription_id: uuid.UUID) -> bytes:
    """The body of ``event``'s webhook to one subscription. It depends on nothing but the
    event row and the subscription, so every attempt sends the same bytes."""
    body: dict[str, Any] = {
        "id": str(event.id),
        "created_at": event.created_at,
        "action": event.action,
        "api_version": event.api_version,
        "entity_id": str(event.entity_id),
        "description": event.description,
        "object_type": event.object_type,
        "object": event.object or {"id": str(event.object_id)},
        "webhook_subscription_id": str(subscription_id),
    }
    # UTC as "Z", as the API renders its timestamps (GET /v1/events).
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


def signature_headers(
    secret: str, *, event_id: uuid.UUID | str, body: bytes, at: datetime
) -> dict[str, str]:
    """The headers that sign ``body`` at ``at`` (real time: receivers compare it with their
    clock): ``Monite-Signature`` and ``webhook-id`` (the event id, the same on every retry),
    ``webhook-timestamp``, ``webhook-signature``."""
    if at.tzinfo is None:
        raise ValueError("a signature's time must be timezone-aware")
    timestamp = int(at.timestamp())
    monite = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    standard = Webhook(secret).sign(
        str(event_id), datetime.fromtimestamp(timestamp, UTC), body.decode()
    )
    return {
        "Monite-Signature": f"t={timestamp},v1={monite.hexdigest()}",
        "webhook-id": str(event_id),
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard,
    }
