"""Connect's credentials: the one-time tokens a partner hands to a browser, and the sessions
they are exchanged for."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from fundline.kit import clock
from fundline.kit.db import Base
from fundline.kit.tenancy import EntityOwned


class ConnectToken(EntityOwned, Base):
    """A one-time token handed to the business's browser: ``connect`` (onboarding and offers)
    or ``session`` (confirming one request's invoices). Stored as its SHA-256 digest."""

    __tablename__ = "connect_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entities.id"), index=True)
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("financing_requests.id"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class ConnectSession(EntityOwned, Base):
    """What a Connect token is exchanged for: a bearer for ``/connect/v1`` with one scope."""

    __tablename__ = "connect_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entities.id"))
    scope: Mapped[str] = mapped_column(String(20))  # "onboarding" | "invoices"
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("financing_requests.id"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime] = mapped_column()
