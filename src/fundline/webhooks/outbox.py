"""Writing events. Call ``record`` in the same session as the change it describes."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fundline.kit.versions import CURRENT_VERSION
from fundline.models import Event


async def record(
    session: AsyncSession,
    *,
    partner_id: uuid.UUID,
    entity_id: uuid.UUID,
    object_type: str,
    object_id: uuid.UUID,
    action: str,
    data: dict[str, Any] | None = None,
) -> Event:
    """Add an outbox row for ``<object_type>.<action>``; it commits with the change or not."""
    event = Event(
        partner_id=partner_id,
        entity_id=entity_id,
        object_type=object_type,
        object_id=object_id,
        action=f"{object_type}.{action}",
        description=f"{object_type}_{action}",
        api_version=CURRENT_VERSION,
        object={"id": str(object_id), **(data or {})},
    )
    session.add(event)
    await session.flush()
    return event
