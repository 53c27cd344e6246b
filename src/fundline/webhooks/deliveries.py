"""The deliveries log, as Monite's ``GET /webhook_deliveries`` has it (per entity), and
``POST /webhook_deliveries/{id}/replay``, Fundline's addition."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from fundline.auth.deps import EntityDep, Session
from fundline.kit.pagination import Paginator
from fundline.kit.routing import TransactionalRoute
from fundline.models import WebhookDelivery
from fundline.webhooks import service
from fundline.webhooks.subscription_schemas import (
    WebhookDeliveryListParams,
    WebhookDeliveryPaginationResource,
    WebhookDeliveryResource,
)

router = APIRouter(
    prefix="/webhook_deliveries", tags=["Webhook deliveries"], route_class=TransactionalRoute
)


def delivery_out(delivery: WebhookDelivery) -> WebhookDeliveryResource:
    return WebhookDeliveryResource(
        id=delivery.id,
        event_id=delivery.event_id,
        requests_made_count=delivery.requests_made_count,
        response=delivery.last_response,
        response_status_code=delivery.last_response_status_code,
        url=delivery.url,
        was_successful=delivery.was_successful,
    )


@router.get(
    "",
    response_model=WebhookDeliveryPaginationResource,
    operation_id="get_webhook_deliveries",
)
async def list_deliveries(
    request: Request,
    session: Session,
    entity: EntityDep,
    params: Annotated[WebhookDeliveryListParams, Query()],
) -> WebhookDeliveryPaginationResource:
    """List the webhooks sent, being sent or given up for the entity's events, oldest first
    by default: one row per event and subscription (and per replay)."""
    paginator = Paginator(request.app.state.signer, "webhook_deliveries")
    page = await service.list_deliveries(session, entity, paginator, params)
    return WebhookDeliveryPaginationResource.of(page, [delivery_out(d) for d in page.data])


@router.post(
    "/{webhook_delivery_id}/replay",
    response_model=WebhookDeliveryResource,
    status_code=status.HTTP_201_CREATED,
    operation_id="post_webhook_deliveries_id_replay",
    responses={
        409: {
            "description": (
                "Conflict: the subscription is disabled, or a request with the same "
                "`Idempotency-Key` is still being processed"
            )
        }
    },
)
async def replay_delivery(
    session: Session, entity: EntityDep, webhook_delivery_id: uuid.UUID
) -> WebhookDeliveryResource:
    """Send the delivery's event again to its subscription (a Fundline addition): a new
    pending delivery with the same event id, so the receiver can tell it is the same event."""
    return delivery_out(await service.replay_delivery(session, entity, webhook_delivery_id))
