"""From events to their deliveries: one for each enabled subscription of the event's partner
that wants it and existed when the event happened (a new subscription does not receive the
past).

The worker takes the outbox's undispatched events in the order they happened, writes their
deliveries and marks them dispatched, in one transaction. On PostgreSQL one worker at a time
does this (a transaction-level advisory lock; the others skip the round): two workers fanning
out one object's events side by side could write a later delivery before an earlier one, and
the order the sender keeps is only as good as the order deliveries appear in.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.kit import clock
from fundline.models import Event, WebhookDelivery, WebhookSubscription
from fundline.models.webhook import WebhookSubscriptionStatus

# An arbitrary, fixed key for pg_try_advisory_xact_lock: "one fan-out at a time".
FANOUT_LOCK_KEY = 7_311_004_212
BATCH = 500


def wants(event_types: Collection[str], *, object_type: str, action: str) -> bool:
    """Whether a subscription with ``event_types`` wants the event ``action``
    (``"<object_type>.<name>"``): every event when the list is empty, else those it names, in
    Monite's short form (``"created"``) or in full (``"receivable.created"``)."""
    if not event_types:
        return True
    short = action.removeprefix(f"{object_type}.")
    return short in event_types or action in event_types


async def fan_out(session: AsyncSession, *, limit: int = BATCH) -> int | None:
    """Fan out up to ``limit`` undispatched events, oldest first, in the caller's transaction;
    returns how many were taken, or ``None`` when another worker holds the fan-out."""
    if on_postgres(session):
        got = await session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": FANOUT_LOCK_KEY}
        )
        if not got:
            return None
    events = list(
        await session.scalars(
            select(Event)
            .where(Event.dispatched_at.is_(None))
            .order_by(Event.created_at, Event.id)
            .limit(limit)
        )
    )
    if not events:
        return 0
    await deliveries_for_events(session, events)
    await session.execute(
        update(Event)
        .where(Event.id.in_([event.id for event in events]))
        .values(dispatched_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return len(events)


def on_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def deliveries_for_events(
    session: AsyncSession, events: Sequence[Event]
) -> list[WebhookDelivery]:
    """Add (and flush) the deliveries of ``events``, in their order; returns them."""
    partners = {event.partner_id for event in events}
    subscriptions = await session.scalars(
        select(WebhookSubscription)
        .where(
            WebhookSubscription.partner_id.in_(partners),
            WebhookSubscription.status == WebhookSubscriptionStatus.ENABLED,
        )
        .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
    )
    by_target: dict[tuple[uuid.UUID, str], list[WebhookSubscription]] = {}
    for subscription in subscriptions:
        by_target.setdefault((subscription.partner_id, subscription.object_type), []).append(
            subscription
        )
    deliveries = [
        new_delivery(subscription, event)
        for event in events
        for subscription in by_target.get((event.partner_id, event.object_type), ())
        if subscription.created_at <= event.created_at
        and wants(subscription.event_types, object_type=event.object_type, action=event.action)
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
