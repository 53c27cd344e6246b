"""Wire models of webhook subscriptions and deliveries, under Monite's names and fields."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from fundline.kit.filters import UTCDatetime
from fundline.kit.pagination import ListParams, PaginationResponse
from fundline.models.webhook import URL_MAX_LENGTH, WebhookSubscriptionStatus
from fundline.webhooks.schemas import WebhookObjectType

Url = Annotated[str, Field(min_length=1, max_length=URL_MAX_LENGTH)]
# Bounded so a subscription stays a small row: more names than any object type has actions.
EventType = Annotated[str, Field(min_length=1, max_length=128)]
EventTypes = Annotated[list[EventType], Field(max_length=100)]


class CreateWebhookSubscriptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object_type: WebhookObjectType = Field(
        description="The object type whose events to receive; one subscription per type."
    )
    url: Url = Field(
        description=(
            "The https URL to POST the webhooks to (http only in sandbox mode). It must not "
            "resolve to a private, loopback or link-local address."
        )
    )
    event_types: EventTypes = Field(
        default_factory=list,
        description=(
            'The actions to receive (`"created"`, `"status_changed"`, …); empty: every action '
            "of the object type."
        ),
    )


class UpdateWebhookSubscriptionRequest(BaseModel):
    """What to change; a field left out or `null` keeps its value."""

    model_config = ConfigDict(extra="forbid")

    object_type: WebhookObjectType | None = None
    url: Url | None = None
    event_types: EventTypes | None = None


class WebhookSubscriptionResource(BaseModel):
    id: uuid.UUID = Field(
        description="The subscription's ID, also sent as `webhook_subscription_id` in webhooks."
    )
    event_types: list[str]
    object_type: WebhookObjectType
    status: WebhookSubscriptionStatus
    url: str


class WebhookSubscriptionResourceWithSecret(WebhookSubscriptionResource):
    secret: str = Field(
        description="The signing secret: shown on creation and on regeneration only."
    )


class WebhookSubscriptionPaginationResource(PaginationResponse[WebhookSubscriptionResource]):
    pass


class WebhookSubscriptionCursorFields(StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"


class WebhookSubscriptionListParams(ListParams):
    sort: WebhookSubscriptionCursorFields | None = None
    object_type: WebhookObjectType | None = None
    created_at__gt: UTCDatetime | None = None
    created_at__lt: UTCDatetime | None = None
    created_at__gte: UTCDatetime | None = None
    created_at__lte: UTCDatetime | None = None


class WebhookDeliveryResource(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    requests_made_count: int = Field(description="How many requests were sent so far.")
    response: str | None = Field(None, description="The start of the last answer's body.")
    response_status_code: int | None = Field(None, description="The last answer's status.")
    url: str
    was_successful: bool | None = Field(
        None, description="Whether the webhook was delivered; `null` while it is pending."
    )


class WebhookDeliveryPaginationResource(PaginationResponse[WebhookDeliveryResource]):
    pass


class WebhookDeliveryCursorFields(StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"


class WebhookDeliveryListParams(ListParams):
    sort: WebhookDeliveryCursorFields | None = None
    event_id: uuid.UUID | None = None
    object_type: WebhookObjectType | None = None
    event_action: str | None = Field(
        None, description='The event\'s action, short (`"created"`) or in full.'
    )
    created_at__gt: UTCDatetime | None = None
    created_at__lt: UTCDatetime | None = None
    created_at__gte: UTCDatetime | None = None
    created_at__lte: UTCDatetime | None = None
