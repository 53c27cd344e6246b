"""Counterparts (an entity's customers and vendors) and their addresses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, event
from sqlalchemy.orm import Mapped, mapped_column

from fundline.kit.db import Base, IdMixin, TimestampMixin
from fundline.kit.tenancy import EntityOwned


class Counterpart(EntityOwned, IdMixin, TimestampMixin, Base):
    __tablename__ = "counterparts"
    __table_args__ = (
        Index("ix_counterparts_entity_created", "entity_id", "created_at", "id"),
        Index("ix_counterparts_entity_name", "entity_id", "counterpart_name", "id"),
    )

    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entities.id"))
    type: Mapped[str] = mapped_column(String(20))  # "organization" | "individual"
    is_customer: Mapped[bool] = mapped_column(default=False)
    is_vendor: Mapped[bool] = mapped_column(default=False)
    # organization
    legal_name: Mapped[str | None] = mapped_column(String(255), default=None)
    # individual
    first_name: Mapped[str | None] = mapped_column(String(255), default=None)
    last_name: Mapped[str | None] = mapped_column(String(255), default=None)
    title: Mapped[str | None] = mapped_column(String(100), default=None)
    # both
    email: Mapped[str | None] = mapped_column(String(255), default=None)
    phone: Mapped[str | None] = mapped_column(String(100), default=None)
    tax_id: Mapped[str | None] = mapped_column(String(30), default=None)
    external_reference: Mapped[str | None] = mapped_column(String(255), default=None)
    language: Mapped[str] = mapped_column(String(2), default="en")
    reminders_enabled: Mapped[bool] = mapped_column(default=True)
    # No foreign keys here: addresses point at their counterpart, and a cycle of constraints
    # would make inserts order-dependent. The service only ever sets ids of the counterpart's
    # own addresses.
    default_billing_address_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    default_shipping_address_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_by_entity_user_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # The display name, stored so lists can sort and filter by it on an index; kept equal to
    # ``name`` by the flush hooks below.
    counterpart_name: Mapped[str] = mapped_column(String(512), default="")
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def name(self) -> str:
        """The legal name of an organization, "first last" of an individual."""
        if self.type == "organization":
            return self.legal_name or ""
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@event.listens_for(Counterpart, "before_insert")
@event.listens_for(Counterpart, "before_update")
def _sync_counterpart_name(_mapper: Any, _connection: Any, target: Counterpart) -> None:
    target.counterpart_name = target.name


class CounterpartAddress(IdMixin, TimestampMixin, Base):
    __tablename__ = "counterpart_addresses"
    __table_args__ = (
        Index("ix_counterpart_addresses_counterpart_created", "counterpart_id", "created_at", "id"),
    )

    counterpart_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("counterparts.id"))
    line1: Mapped[str] = mapped_column(String(255))
    line2: Mapped[str | None] = mapped_column(String(255), default=None)
    city: Mapped[str] = mapped_column(String(255))
    state: Mapped[str | None] = mapped_column(String(255), default=None)
    postal_code: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
