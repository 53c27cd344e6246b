"""Webhook subscriptions (a partner's) and the deliveries log (one row per event and
subscription, each attempt recorded on it).

The delivery worker works from ``webhook_deliveries`` alone: it claims due rows
(``status = pending AND next_attempt_at <= now``, through a partial index of the pending rows,
with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL) by setting ``lease_until``, so a killed
worker's claims come free when the lease runs out; it keeps the events of one object in order
by sending a delivery only when no earlier pending one exists for the same subscription and
object (``event_created_at``, the time the change happened: deliveries made in one batch share
their ``created_at``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from fundline.kit import clock
from fundline.kit.db import Base, IdMixin, StrEnumColumn, TimestampMixin
from fundline.kit.tenancy import EntityOwned

URL_MAX_LENGTH = 2083  # Monite's limit on a subscription's URL
# How much of a receiver's answer the log keeps (``last_response``).
RESPONSE_MAX_LENGTH = 2000


class WebhookSubscriptionStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class WebhookDeliveryStatus(StrEnum):
    PENDING = "pending"  # to be sent, or to be retried at next_attempt_at
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the last attempt failed too: no more retries


class WebhookSubscription(IdMixin, TimestampMixin, Base):
    """Where a partner wants the events of one object type. Partner-level, as in Monite:
    it receives the events of every entity of the partner."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        Index("ix_webhook_subscriptions_fanout", "partner_id", "object_type", "status"),
    )

    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    url: Mapped[str] = mapped_column(String(URL_MAX_LENGTH))
    object_type: Mapped[str] = mapped_column(String(64))
    # Actions to deliver (Monite's short form, "created"); empty: every action of the type.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[WebhookSubscriptionStatus] = mapped_column(
        StrEnumColumn(WebhookSubscriptionStatus, 10), default=WebhookSubscriptionStatus.ENABLED
    )
    # The signing secret, kept readable: every delivery is signed with it.
    secret: Mapped[str] = mapped_column(String(128))
    # Since when every attempt has failed (the worker disables after 5 days), and why the
    # subscription was disabled, if it was.
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), default=None)


class WebhookDelivery(EntityOwned, IdMixin, TimestampMixin, Base):
    """One event on its way to one subscription; the log ``GET /v1/webhook_deliveries`` shows.

    Deleting the subscription deletes its deliveries (the database cascades).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The worker's claim: the pending rows in its order (``next_attempt_at, id``), and
        # nothing else, however many deliveries the log keeps.
        Index(
            "ix_webhook_deliveries_pending",
            "next_attempt_at",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(
            "ix_webhook_deliveries_object_order", "subscription_id", "object_id", "event_created_at"
        ),
        Index("ix_webhook_deliveries_entity_created", "entity_id", "created_at", "id"),
    )

    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"), index=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entities.id"))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[uuid.UUID] = mapped_column()
    event_action: Mapped[str] = mapped_column(String(128))  # the event's, "receivable.created"
    event_created_at: Mapped[datetime] = mapped_column()
    url: Mapped[str] = mapped_column(String(URL_MAX_LENGTH))
    status: Mapped[WebhookDeliveryStatus] = mapped_column(
        StrEnumColumn(WebhookDeliveryStatus, 10), default=WebhookDeliveryStatus.PENDING
    )
    requests_made_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=clock.now)
    # Held by a worker until then (real time: the sandbox clock does not move it); NULL or
    # past: free to claim.
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_response_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_response: Mapped[str | None] = mapped_column(Text, default=None)  # truncated
    was_successful: Mapped[bool | None] = mapped_column(Boolean, default=None)
