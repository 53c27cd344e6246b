"""webhooks: partners' subscriptions and the deliveries log

Revision ID: 20261201_webhooks
Revises: 20261201_financing_approved_at
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fundline.kit.db

revision = "20261201_webhooks"
down_revision = "20261201_financing_approved_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2083), nullable=False),
        sa.Column("object_type", sa.String(length=64), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("failing_since", fundline.kit.db.UTCDateTime(), nullable=True),
        sa.Column("disabled_reason", sa.String(length=255), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_webhook_subscriptions_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    op.create_index(
        op.f("ix_webhook_subscriptions_created_at"),
        "webhook_subscriptions",
        ["created_at"],
        unique=False,
    )
    op.create_index(
        "ix_webhook_subscriptions_fanout",
        "webhook_subscriptions",
        ["partner_id", "object_type", "status"],
        unique=False,
    )

    op.create_table(
        "webhook_deliveries",
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("object_type", sa.String(length=64), nullable=False),
        sa.Column("object_id", sa.Uuid(), nullable=False),
        sa.Column("event_action", sa.String(length=128), nullable=False),
        sa.Column("event_created_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.Column("url", sa.String(length=2083), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("requests_made_count", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.Column("lease_until", fundline.kit.db.UTCDateTime(), nullable=True),
        sa.Column("last_response_status_code", sa.Integer(), nullable=True),
        sa.Column("last_response", sa.Text(), nullable=True),
        sa.Column("was_successful", sa.Boolean(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscriptions.id"],
            name=op.f("fk_webhook_deliveries_subscription_id_webhook_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_webhook_deliveries_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_webhook_deliveries_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"], ["entities.id"], name=op.f("fk_webhook_deliveries_entity_id_entities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_created_at"), "webhook_deliveries", ["created_at"], unique=False
    )
    op.create_index(
        op.f("ix_webhook_deliveries_event_id"), "webhook_deliveries", ["event_id"], unique=False
    )
    # The worker's claim: due pending rows, oldest first.
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
        unique=False,
    )
    # The per-object order: is an earlier delivery of this object still pending?
    op.create_index(
        "ix_webhook_deliveries_object_order",
        "webhook_deliveries",
        ["subscription_id", "object_id", "event_created_at"],
        unique=False,
    )
    # GET /v1/webhook_deliveries pages an entity's rows by created_at.
    op.create_index(
        "ix_webhook_deliveries_entity_created",
        "webhook_deliveries",
        ["entity_id", "created_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_entity_created", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_object_order", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_index(op.f("ix_webhook_deliveries_event_id"), table_name="webhook_deliveries")
    op.drop_index(op.f("ix_webhook_deliveries_created_at"), table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_subscriptions_fanout", table_name="webhook_subscriptions")
    op.drop_index(op.f("ix_webhook_subscriptions_created_at"), table_name="webhook_subscriptions")
    op.drop_table("webhook_subscriptions")
