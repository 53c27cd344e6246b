"""payables

Revision ID: 20261125_payables
Revises: 20261125_receivables
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fundline.kit.db

revision = "20261125_payables"
down_revision = "20261125_receivables"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payables",
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("counterpart_id", sa.Uuid(), nullable=True),
        sa.Column("counterpart_address_id", sa.Uuid(), nullable=True),
        sa.Column("counterpart_snapshot", sa.JSON(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("subtotal", sa.BigInteger(), nullable=True),
        sa.Column("tax", sa.Integer(), nullable=True),
        sa.Column("tax_amount", sa.BigInteger(), nullable=True),
        sa.Column("total_amount", sa.BigInteger(), nullable=True),
        sa.Column("discount", sa.BigInteger(), nullable=True),
        sa.Column("amount_paid", sa.BigInteger(), nullable=False),
        sa.Column("document_id", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("issued_at", sa.Date(), nullable=True),
        sa.Column("issued_at_sort", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("payment_terms", sa.JSON(), nullable=True),
        sa.Column("suggested_payment_term", sa.JSON(), nullable=True),
        sa.Column("partner_metadata", sa.JSON(), nullable=True),
        sa.Column("sender", sa.String(length=255), nullable=True),
        sa.Column("was_created_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("paid_at", fundline.kit.db.UTCDateTime(), nullable=True),
        sa.Column("marked_as_paid_by_entity_user_id", sa.Uuid(), nullable=True),
        sa.Column("marked_as_paid_with_comment", sa.String(length=1000), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["counterpart_id"],
            ["counterparts.id"],
            name=op.f("fk_payables_counterpart_id_counterparts"),
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"], ["entities.id"], name=op.f("fk_payables_entity_id_entities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payables")),
    )
    op.create_index(op.f("ix_payables_counterpart_id"), "payables", ["counterpart_id"])
    op.create_index(op.f("ix_payables_created_at"), "payables", ["created_at"])
    op.create_index("ix_payables_entity_created", "payables", ["entity_id", "created_at", "id"])
    op.create_index("ix_payables_entity_issued", "payables", ["entity_id", "issued_at_sort", "id"])
    op.create_index("ix_payables_entity_status", "payables", ["entity_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_payables_entity_status", table_name="payables")
    op.drop_index("ix_payables_entity_issued", table_name="payables")
    op.drop_index("ix_payables_entity_created", table_name="payables")
    op.drop_index(op.f("ix_payables_created_at"), table_name="payables")
    op.drop_index(op.f("ix_payables_counterpart_id"), table_name="payables")
    op.drop_table("payables")
