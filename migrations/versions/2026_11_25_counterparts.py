"""counterparts

Revision ID: 20261125_counterparts
Revises: 8e507808052c
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fundline.kit.db

revision = "20261125_counterparts"
down_revision = "8e507808052c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counterparts",
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("is_customer", sa.Boolean(), nullable=False),
        sa.Column("is_vendor", sa.Boolean(), nullable=False),
        sa.Column("legal_name", sa.String(length=255), nullable=True),
        sa.Column("first_name", sa.String(length=255), nullable=True),
        sa.Column("last_name", sa.String(length=255), nullable=True),
        sa.Column("title", sa.String(length=100), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("phone", sa.String(length=100), nullable=True),
        sa.Column("tax_id", sa.String(length=30), nullable=True),
        sa.Column("external_reference", sa.String(length=255), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("reminders_enabled", sa.Boolean(), nullable=False),
        sa.Column("default_billing_address_id", sa.Uuid(), nullable=True),
        sa.Column("default_shipping_address_id", sa.Uuid(), nullable=True),
        sa.Column("created_by_entity_user_id", sa.Uuid(), nullable=True),
        sa.Column("counterpart_name", sa.String(length=512), nullable=False),
        sa.Column("deleted_at", fundline.kit.db.UTCDateTime(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entity_id"], ["entities.id"], name=op.f("fk_counterparts_entity_id_entities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counterparts")),
    )
    op.create_index(
        op.f("ix_counterparts_created_at"), "counterparts", ["created_at"], unique=False
    )
    op.create_index(
        "ix_counterparts_entity_created",
        "counterparts",
        ["entity_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_counterparts_entity_name",
        "counterparts",
        ["entity_id", "counterpart_name", "id"],
        unique=False,
    )

    op.create_table(
        "counterpart_addresses",
        sa.Column("counterpart_id", sa.Uuid(), nullable=False),
        sa.Column("line1", sa.String(length=255), nullable=False),
        sa.Column("line2", sa.String(length=255), nullable=True),
        sa.Column("city", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=255), nullable=True),
        sa.Column("postal_code", sa.String(length=20), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["counterpart_id"],
            ["counterparts.id"],
            name=op.f("fk_counterpart_addresses_counterpart_id_counterparts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counterpart_addresses")),
    )
    op.create_index(
        op.f("ix_counterpart_addresses_created_at"),
        "counterpart_addresses",
        ["created_at"],
        unique=False,
    )
    op.create_index(
        "ix_counterpart_addresses_counterpart_created",
        "counterpart_addresses",
        ["counterpart_id", "created_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_counterpart_addresses_counterpart_created", table_name="counterpart_addresses"
    )
    op.drop_index(op.f("ix_counterpart_addresses_created_at"), table_name="counterpart_addresses")
    op.drop_table("counterpart_addresses")
    op.drop_index("ix_counterparts_entity_name", table_name="counterparts")
    op.drop_index("ix_counterparts_entity_created", table_name="counterparts")
    op.drop_index(op.f("ix_counterparts_created_at"), table_name="counterparts")
    op.drop_table("counterparts")
