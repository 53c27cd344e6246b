"""Sandbox mode's own rows: the shared clock, and the demo platform the demo page acts for."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fundline.kit import clock
from fundline.kit.db import Base, IdMixin
from fundline.kit.tenancy import EntityOwned


class SandboxClock(Base):
    """The sandbox clock's offset, shared by every process of one deployment."""

    __tablename__ = "sandbox_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    offset_seconds: Mapped[int] = mapped_column(BigInteger, default=0)


class SandboxDemo(EntityOwned, IdMixin, Base):
    """A demo platform seeded by ``fundline demo`` (or the ``/demo`` page): its partner, API
    client and entity. ``/demo`` acts for the newest one, calling ``/v1`` with these
    credentials as a partner's backend would. Sandbox only: the secret of this one demo
    client is kept in clear so the page can sign in (``fundline demo`` prints it anyway)."""

    __tablename__ = "sandbox_demos"

    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    client_secret: Mapped[str] = mapped_column(String(255))
    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entities.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
