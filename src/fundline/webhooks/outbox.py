"""Writing events. Call ``record`` in the same session as the change it describes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.kit import clock
from fundline.kit.versions import CURRENT_VERSION
from fundline.models import Event


def _fields(
    *,
    partner_id: uuid.UUID,
    entity_id: uuid.UUID,
    object_type: str,
    object_id: uuid.UUID,
    action: str,
    data: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "partner_id": partner_id,
        "entity_id": entity_id,
        "object_type": object_type,
        "object_id": object_id,
        "action": f"{object_type}.{action}",
        "description": f"{object_type}_{action}",
        "api_version": CURRENT_VERSION,
        "object": {"id": str(object_id), **(data or {})},
    }


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
        **_fields(
            partner_id=partner_id,
            entity_id=entity_id,
            object_type=object_type,
            object_id=object_id,
            action=action,
            data=data,
        )
    )
    session.add(event)
    await session.flush()
    return event


async def record_many(
    session: AsyncSession,
    *,
    partner_id: uuid.UUID,
    entity_id: uuid.UUID,
    object_type: str,
    action: str,
    objects: Iterable[tuple[uuid.UUID, dict[str, Any] | None]],
) -> int:
    """``record`` for many objects of one type at once: batched INSERTs, no ORM objects.

    ``objects`` are ``(object_id, data)`` pairs; returns how many events were written.
    """
    now = clock.now()
    rows = [
        {
            "id": uuid.uuid4(),
            "created_at": now,
            "dispatched_at": None,
            **_fields(
                partner_id=partner_id,
                entity_id=entity_id,
                object_type=object_type,
                object_id=object_id,
                action=action,
                data=data,
            ),
        }
        for object_id, data in objects
    ]
    if rows:
        table = Event.__table__
        assert isinstance(table, Table)
        # A Core INSERT (not the ORM's bulk path): executemany in multi-row batches.
        await session.execute(insert(table), rows)
    return len(rows)
