"""Webhook subscriptions (a partner's) and the deliveries log (read per entity, as Monite's
``GET /webhook_deliveries`` takes ``x-monite-entity-id``)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.auth.service import Caller
from fundline.kit.errors import Conflict, NotFound
from fundline.kit.filters import apply_filters
from fundline.kit.pagination import Page, Paginator
from fundline.models import Entity, Event, WebhookDelivery, WebhookSubscription
from fundline.models.webhook import WebhookDeliveryStatus, WebhookSubscriptionStatus
from fundline.webhooks import addresses, signing
from fundline.webhooks.fanout import new_delivery
from fundline.webhooks.subscription_schemas import (
    CreateWebhookSubscriptionRequest,
    UpdateWebhookSubscriptionRequest,
    WebhookDeliveryListParams,
    WebhookSubscriptionListParams,
)

SUBSCRIPTION_COLUMNS: dict[str, Any] = {
    "object_type": WebhookSubscription.object_type,
    "created_at": WebhookSubscription.created_at,
}
DELIVERY_COLUMNS: dict[str, Any] = {
    "event_id": WebhookDelivery.event_id,
    "object_type": WebhookDelivery.object_type,
    "created_at": WebhookDelivery.created_at,
}
DISABLED_BY_PARTNER = "disabled through the API"


async def create_subscription(
    session: AsyncSession,
    caller: Caller,
    payload: CreateWebhookSubscriptionRequest,
    *,
    sandbox: bool,
    allow: Collection[str],
) -> WebhookSubscription:
    """A subscription of the caller's partner, enabled, with a new secret."""
    await addresses.check_url(payload.url, sandbox=sandbox, allow=allow)
    subscription = WebhookSubscription(
        partner_id=caller.partner_id,
        url=payload.url,
        object_type=str(payload.object_type),
        event_types=list(payload.event_types),
        status=WebhookSubscriptionStatus.ENABLED,
        secret=signing.new_secret(),
    )
    session.add(subscription)
    await session.flush()
    return subscription


async def get_subscription(
    session: AsyncSession, caller: Caller, subscription_id: uuid.UUID
) -> WebhookSubscription:
    """The partner's subscription; another partner's is a 404."""
    subscription = await session.scalar(
        select(WebhookSubscription).where(
            WebhookSubscription.id == subscription_id,
            WebhookSubscription.partner_id == caller.partner_id,
        )
    )
    if subscription is None:
        raise NotFound("Webhook subscription not found")
    return subscription


async def list_subscriptions(
    session: AsyncSession,
    caller: Caller,
    paginator: Paginator,
    params: WebhookSubscriptionListParams,
) -> Page[WebhookSubscription]:
    params, cursor = paginator.resolve(params)
    stmt = select(WebhookSubscription).where(WebhookSubscription.partner_id == caller.partner_id)
    stmt = apply_filters(stmt, params, SUBSCRIPTION_COLUMNS)
    sort = (
        WebhookSubscription.updated_at
        if params.sort and params.sort.value == "updated_at"
        else WebhookSubscription.created_at
    )
    return await paginator.fetch(
        session,
        stmt,
        params=params,
        cursor=cursor,
        sort_column=sort,
        id_column=WebhookSubscription.id,
    )


async def update_subscription(
    session: AsyncSession,
    caller: Caller,
    subscription_id: uuid.UUID,
    payload: UpdateWebhookSubscriptionRequest,
    *,
    sandbox: bool,
    allow: Collection[str],
) -> WebhookSubscription:
    """Change what is given; pending deliveries follow a new URL."""
    subscription = await get_subscription(session, caller, subscription_id)
    if payload.url is not None and payload.url != subscription.url:
        await addresses.check_url(payload.url, sandbox=sandbox, allow=allow)
        subscription.url = payload.url
        await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.partner_id == caller.partner_id,
                WebhookDelivery.subscription_id == subscription.id,
                WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
            )
            .values(url=payload.url)
        )
    if payload.object_type is not None:
        subscription.object_type = str(payload.object_type)
    if payload.event_types is not None:
        subscription.event_types = list(payload.event_types)
    await session.flush()
    return subscription


async def delete_subscription(
    session: AsyncSession, caller: Caller, subscription_id: uuid.UUID
) -> None:
    """Delete the subscription, and with it (the database cascades) its deliveries."""
    subscription = await get_subscription(session, caller, subscription_id)
    await session.delete(subscription)
    await session.flush()


async def set_enabled(
    session: AsyncSession, caller: Caller, subscription_id: uuid.UUID, *, enabled: bool
) -> WebhookSubscription:
    """Enable (a fresh start: no failure streak) or disable the subscription."""
    subscription = await get_subscription(session, caller, subscription_id)
    if enabled:
        subscription.status = WebhookSubscriptionStatus.ENABLED
        subscription.failing_since = None
        subscription.disabled_reason = None
    elif subscription.status is WebhookSubscriptionStatus.ENABLED:
        subscription.status = WebhookSubscriptionStatus.DISABLED
        subscription.disabled_reason = DISABLED_BY_PARTNER
    await session.flush()
    return subscription


async def regenerate_secret(
    session: AsyncSession, caller: Caller, subscription_id: uuid.UUID
) -> WebhookSubscription:
    """A new secret; the old one signs nothing more (the sender reads the secret per attempt)."""
    subscription = await get_subscription(session, caller, subscription_id)
    subscription.secret = signing.new_secret()
    await session.flush()
    return subscription


# --- deliveries ------------------------------------------------------------------------------


async def list_deliveries(
    session: AsyncSession,
    entity: Entity,
    paginator: Paginator,
    params: WebhookDeliveryListParams,
) -> Page[WebhookDelivery]:
    params, cursor = paginator.resolve(params)
    stmt = select(WebhookDelivery).where(WebhookDelivery.entity_id == entity.id)
    if params.event_action is not None:
        # Monite's short form ("created") or the event's full action ("receivable.created").
        action = WebhookDelivery.event_action
        stmt = stmt.where(
            or_(
                action == params.event_action,
                action == WebhookDelivery.object_type + "." + params.event_action,
            )
        )
    stmt = apply_filters(stmt, params.model_copy(update={"event_action": None}), DELIVERY_COLUMNS)
    sort = (
        WebhookDelivery.updated_at
        if params.sort and params.sort.value == "updated_at"
        else WebhookDelivery.created_at
    )
    return await paginator.fetch(
        session, stmt, params=params, cursor=cursor, sort_column=sort, id_column=WebhookDelivery.id
    )


async def replay_delivery(
    session: AsyncSession, entity: Entity, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """A new pending delivery of the same event to the same subscription, due now."""
    delivery = await session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.entity_id == entity.id
        )
    )
    if delivery is None:
        raise NotFound("Webhook delivery not found")
    subscription = await session.scalar(
        select(WebhookSubscription).where(
            WebhookSubscription.id == delivery.subscription_id,
            WebhookSubscription.partner_id == entity.partner_id,
        )
    )
    event = await session.scalar(
        select(Event).where(Event.id == delivery.event_id, Event.entity_id == entity.id)
    )
    # Both exist: a delivery is deleted with its subscription, and with its entity's events.
    assert subscription is not None
    assert event is not None
    if subscription.status is not WebhookSubscriptionStatus.ENABLED:
        raise Conflict("The webhook subscription is disabled: enable it to replay")
    replay = new_delivery(subscription, event)
    session.add(replay)
    await session.flush()
    return replay
