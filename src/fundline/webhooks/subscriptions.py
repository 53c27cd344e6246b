"""Webhook subscriptions, as Monite has them: a partner's, without ``x-monite-entity-id``.

The secret is in the responses of creation and regeneration only.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from fundline.auth.deps import CallerDep, Session
from fundline.auth.service import Caller
from fundline.kit.errors import Forbidden
from fundline.kit.pagination import Paginator
from fundline.kit.routing import TransactionalRoute
from fundline.models import WebhookSubscription
from fundline.webhooks import service
from fundline.webhooks.addresses import UrlRules
from fundline.webhooks.subscription_schemas import (
    CreateWebhookSubscriptionRequest,
    UpdateWebhookSubscriptionRequest,
    WebhookSubscriptionListParams,
    WebhookSubscriptionPaginationResource,
    WebhookSubscriptionResource,
    WebhookSubscriptionResourceWithSecret,
)

PARTNER_ONLY = "Forbidden: webhook subscriptions need a partner-level token"

router = APIRouter(
    prefix="/webhook_subscriptions",
    tags=["Webhook subscriptions"],
    route_class=TransactionalRoute,
    responses={403: {"description": PARTNER_ONLY}},
)


async def partner_caller(caller: CallerDep) -> Caller:
    """The caller, if it acts for the partner (not as an entity user); else 403."""
    if caller.is_entity_user:
        raise Forbidden("Webhook subscriptions need a partner-level token")
    return caller


Partner = Annotated[Caller, Depends(partner_caller)]


async def url_rules(request: Request) -> UrlRules:
    rules: UrlRules = request.app.state.webhook_urls
    return rules


Rules = Annotated[UrlRules, Depends(url_rules)]


def subscription_out(subscription: WebhookSubscription) -> WebhookSubscriptionResource:
    return WebhookSubscriptionResource.model_validate(subscription, from_attributes=True)


def with_secret(subscription: WebhookSubscription) -> WebhookSubscriptionResourceWithSecret:
    return WebhookSubscriptionResourceWithSecret.model_validate(subscription, from_attributes=True)


@router.post(
    "",
    response_model=WebhookSubscriptionResourceWithSecret,
    status_code=status.HTTP_201_CREATED,
    operation_id="post_webhook_subscriptions",
)
async def create_subscription(
    session: Session, caller: Partner, rules: Rules, payload: CreateWebhookSubscriptionRequest
) -> WebhookSubscriptionResourceWithSecret:
    """Subscribe to the events of one object type, for every entity of the partner.

    The response carries the signing secret, which no other response shows.
    """
    subscription = await service.create_subscription(
        session, caller, payload, sandbox=rules.sandbox, allow=rules.allow
    )
    return with_secret(subscription)


@router.get(
    "",
    response_model=WebhookSubscriptionPaginationResource,
    operation_id="get_webhook_subscriptions",
)
async def list_subscriptions(
    request: Request,
    session: Session,
    caller: Partner,
    params: Annotated[WebhookSubscriptionListParams, Query()],
) -> WebhookSubscriptionPaginationResource:
    """List the partner's webhook subscriptions, enabled and disabled."""
    paginator = Paginator(request.app.state.signer, "webhook_subscriptions")
    page = await service.list_subscriptions(session, caller, paginator, params)
    return WebhookSubscriptionPaginationResource.of(page, [subscription_out(s) for s in page.data])


@router.get(
    "/{webhook_subscription_id}",
    response_model=WebhookSubscriptionResource,
    operation_id="get_webhook_subscriptions_id",
)
async def get_subscription(
    session: Session, caller: Partner, webhook_subscription_id: uuid.UUID
) -> WebhookSubscriptionResource:
    """Get a webhook subscription by ID."""
    return subscription_out(
        await service.get_subscription(session, caller, webhook_subscription_id)
    )


@router.patch(
    "/{webhook_subscription_id}",
    response_model=WebhookSubscriptionResource,
    operation_id="patch_webhook_subscriptions_id",
)
async def update_subscription(
    session: Session,
    caller: Partner,
    rules: Rules,
    webhook_subscription_id: uuid.UUID,
    payload: UpdateWebhookSubscriptionRequest,
) -> WebhookSubscriptionResource:
    """Change the URL, the object type or the event types; pending deliveries follow a new
    URL."""
    subscription = await service.update_subscription(
        session,
        caller,
        webhook_subscription_id,
        payload,
        sandbox=rules.sandbox,
        allow=rules.allow,
    )
    return subscription_out(subscription)


@router.delete(
    "/{webhook_subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    operation_id="delete_webhook_subscriptions_id",
)
async def delete_subscription(
    session: Session, caller: Partner, webhook_subscription_id: uuid.UUID
) -> Response:
    """Delete a webhook subscription and its deliveries log (disable it to keep the log)."""
    await service.delete_subscription(session, caller, webhook_subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhook_subscription_id}/disable",
    response_model=WebhookSubscriptionResource,
    operation_id="post_webhook_subscriptions_id_disable",
)
async def disable_subscription(
    session: Session, caller: Partner, webhook_subscription_id: uuid.UUID
) -> WebhookSubscriptionResource:
    """Stop sending webhooks to this subscription; new events are not queued for it."""
    subscription = await service.set_enabled(
        session, caller, webhook_subscription_id, enabled=False
    )
    return subscription_out(subscription)


@router.post(
    "/{webhook_subscription_id}/enable",
    response_model=WebhookSubscriptionResource,
    operation_id="post_webhook_subscriptions_id_enable",
)
async def enable_subscription(
    session: Session, caller: Partner, webhook_subscription_id: uuid.UUID
) -> WebhookSubscriptionResource:
    """Send webhooks to this subscription again (after a disable, or an automatic one)."""
    subscription = await service.set_enabled(session, caller, webhook_subscription_id, enabled=True)
    return subscription_out(subscription)


@router.post(
    "/{webhook_subscription_id}/regenerate_secret",
    response_model=WebhookSubscriptionResourceWithSecret,
    operation_id="post_webhook_subscriptions_id_regenerate_secret",
)
async def regenerate_secret(
    session: Session, caller: Partner, webhook_subscription_id: uuid.UUID
) -> WebhookSubscriptionResourceWithSecret:
    """Replace the signing secret; the old one stops verifying at once."""
    subscription = await service.regenerate_secret(session, caller, webhook_subscription_id)
    return with_secret(subscription)
