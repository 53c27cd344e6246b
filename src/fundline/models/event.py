"""The events outbox: one row per state change, written in the transaction that made it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fundline.kit import clock
from fundline.kit.db import Base, IdMixin
from fundline.kit.tenancy import EntityOwned


class Event(EntityOwned, IdMixin, Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_entity_created", "entity_id", "created_at", "id"),
        Index("ix_events_undelivered", "dispatched_at", "created_at"),
    )

    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entities.id"))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[uuid.UUID] = mapped_column()
    action: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(255))
    api_version: Mapped[str | None] = mapped_column(String(10), default=None)
    object: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    # Set by the webhook worker once the event has been fanned out to deliveries.
    dispatched_at: Mapped[datetime | None] = mapped_column(default=None)
