from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from fundline.kit.filters import UTCDatetime
from fundline.kit.pagination import ListParams


class EventCursorFields(StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"


class EventResource(BaseModel):
    id: uuid.UUID
    created_at: datetime | None = None
    action: str
    api_version: str | None = None
    description: str
    entity_id: uuid.UUID
    object: Any | None = None
    object_type: str


class EventPaginationResource(BaseModel):
    data: list[EventResource]
    next_pagination_token: str | None = None
    prev_pagination_token: str | None = None


class EventListParams(ListParams):
    sort: EventCursorFields | None = None
    object_type: str | None = None
    created_at__gt: UTCDatetime | None = None
    created_at__lt: UTCDatetime | None = None
    created_at__gte: UTCDatetime | None = None
    created_at__lte: UTCDatetime | None = None
