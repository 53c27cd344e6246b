"""From an event to its deliveries: one for each enabled subscription of the event's partner
that wants it. The delivery worker calls this for each event it takes from the outbox."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.kit import clock
from fundline.models import Event, WebhookDelivery, WebhookSubscription
from fundline.models.webhook import WebhookSubscriptionStatus


def wants(event_types: Collection[str], *, object_type: str, action: str) -> bool:
    """Whether a subscription with ``event_types`` wants the event ``action``
    (``"<object_type>.<name>"``): every event when the list is empty, else those it names, in
    Monite's short form (``"created"``) or in full (``"receivable.created"``)."""
    if not event_types:
        return True
    short = action.removeprefix(f"{object_type}.")
    return short in event_types or action in event_types


async def deliveries_for(session: AsyncSession, event: Event) -> list[WebhookDelivery]:
    """Add (and flush) the pending deliveries of ``event``, due now; returns them."""
    subscriptions = await session.scalars(
        select(WebhookSubscription)
        .where(
            WebhookSubscription.partner_id == event.partner_id,
            WebhookSubscription.object_type == event.object_type,
            WebhookSubscription.status == WebhookSubscriptionStatus.ENABLED,
        )
        .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
    )
    deliveries = [
        new_delivery(subscription, event)
        for subscription in subscriptions
        if wants(subscription.event_types, object_type=event.object_type, action=event.action)
    ]
    session.add_all(deliveries)
    await session.flush()
    return deliveries


def new_delivery(subscription: WebhookSubscription, event: Event) -> WebhookDelivery:
    """A pending delivery of ``event`` to ``subscription``, due at once (a fan-out's, or a
    replay's)."""
    return WebhookDelivery(
        subscription_id=subscription.id,
        event_id=event.id,
        partner_id=event.partner_id,
        entity_id=event.entity_id,
        object_type=event.object_type,
        object_id=event.object_id,
        event_action=event.action,
        event_created_at=event.created_at,
        url=subscription.url,
        next_attempt_at=clock.now(),
    )
