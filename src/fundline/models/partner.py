"""Partners (API customers), their API clients, access tokens, embedding origins and operator
keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fundline.kit import clock
from fundline.kit.db import Base, IdMixin, TimestampMixin


class Partner(IdMixin, TimestampMixin, Base):
    __tablename__ = "partners"

    name: Mapped[str] = mapped_column(String(255))


class ApiClient(IdMixin, TimestampMixin, Base):
    """A client id and its argon2-hashed secret; the id is what Monite calls ``client_id``."""

    __tablename__ = "api_clients"

    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(255))
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)


class AccessToken(Base):
    """An issued bearer token, stored only as its SHA-256 digest."""

    __tablename__ = "access_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"), index=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    entity_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("entity_users.id"), default=None
    )
    entity_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("entities.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.system_now)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class PartnerOrigin(IdMixin, TimestampMixin, Base):
    """A web origin (``scheme://host[:port]``, normalized) the partner may embed the Connect
    widget from."""

    __tablename__ = "partner_origins"
    __table_args__ = (
        UniqueConstraint("partner_id", "origin", name="uq_partner_origins_partner_id_origin"),
    )

    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    # Indexed alone too: the widget's frame asks whether any partner registered an origin.
    origin: Mapped[str] = mapped_column(String(255), index=True)


class OperatorKey(IdMixin, TimestampMixin, Base):
    """A key for the lender API (``/lender/v1``), stored only as its SHA-256 digest."""

    __tablename__ = "operator_keys"

    name: Mapped[str] = mapped_column(String(255))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
