"""Entities (a partner's business customers) and their users."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fundline.kit.db import Base, IdMixin, TimestampMixin
from fundline.kit.tenancy import EntityOwned


class Entity(IdMixin, TimestampMixin, Base):
    __tablename__ = "entities"
    __table_args__ = (Index("ix_entities_partner_created", "partner_id", "created_at", "id"),)

    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    type: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="active")
    email: Mapped[str | None] = mapped_column(String(255), default=None)
    phone: Mapped[str | None] = mapped_column(String(100), default=None)
    website: Mapped[str | None] = mapped_column(String(2083), default=None)
    tax_id: Mapped[str | None] = mapped_column(String(30), default=None)
    registration_number: Mapped[str | None] = mapped_column(String(100), default=None)
    registration_authority: Mapped[str | None] = mapped_column(String(100), default=None)
    # Nested Monite objects kept as documents: they are read and written whole.
    address: Mapped[dict[str, Any]] = mapped_column(JSON)
    organization: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    individual: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)

    @property
    def country(self) -> str:
        return str(self.address.get("country", ""))


class EntityUser(EntityOwned, IdMixin, TimestampMixin, Base):
    __tablename__ = "entity_users"
    __table_args__ = (
        UniqueConstraint("entity_id", "login", name="uq_entity_users_entity_login"),
        Index("ix_entity_users_entity_created", "entity_id", "created_at", "id"),
    )

    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entities.id"))
    login: Mapped[str] = mapped_column(String(255))
    first_name: Mapped[str] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255), default=None)
    email: Mapped[str | None] = mapped_column(String(255), default=None)
    phone: Mapped[str | None] = mapped_column(String(100), default=None)
    title: Mapped[str | None] = mapped_column(String(255), default=None)
    role_id: Mapped[uuid.UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(20), default="active")
