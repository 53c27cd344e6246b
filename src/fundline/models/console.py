"""The lender console's sign-ins, and the audit log of every operator action (console, lender
API and CLI alike). Both run on real time: moving a sandbox's clock signs nobody out and
dates no action in the future."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fundline.kit import clock
from fundline.kit.db import Base, IdMixin


class ConsoleSession(Base):
    """A signed-in operator in a browser; only the digest of its cookie is stored."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("operator_keys.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.system_now)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AuditEntry(IdMixin, Base):
    """One operator action: who, what, on which object, the object before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at", "id"),
        Index("ix_audit_log_object", "object_id", "at"),
    )

    operator: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # What the operator said (a rejection's reason), or how the action came in.
    note: Mapped[str | None] = mapped_column(String(500), default=None)
    at: Mapped[datetime] = mapped_column(default=clock.system_now)
