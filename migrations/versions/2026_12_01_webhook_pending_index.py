"""webhook claims: a partial index of the pending deliveries, in the claim's order

Revision ID: 20261201_webhook_pending_index
Revises: 20261201_webhooks
Create Date: 2026-12-01 16:00:00

``(next_attempt_at, id) WHERE status = 'pending'`` replaces ``(status, next_attempt_at)``: the
claim reads the due rows in exactly its ``ORDER BY`` and stops at its ``LIMIT``, and the index
holds only what is still to be sent, however long the log of sent deliveries grows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261201_webhook_pending_index"
down_revision = "20261201_webhooks"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.create_index(
        "ix_webhook_deliveries_pending",
        "webhook_deliveries",
        ["next_attempt_at", "id"],
        unique=False,
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_pending", table_name="webhook_deliveries")
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
        unique=False,
    )
