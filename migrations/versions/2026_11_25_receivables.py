"""receivables

Revision ID: 20261125_receivables
Revises: 20261125_counterparts
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fundline.kit.db

revision = "20261125_receivables"
down_revision = "20261125_counterparts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "receivable_counters",
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("document_type", sa.String(length=20), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entity_id"], ["entities.id"], name=op.f("fk_receivable_counters_entity_id_entities")
        ),
        sa.PrimaryKeyConstraint("entity_id", "document_type", name=op.f("pk_receivable_counters")),
    )
    op.create_table(
        "receivables",
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("document_id", sa.String(length=100), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("entity_user_id", sa.Uuid(), nullable=True),
        sa.Column("counterpart_id", sa.Uuid(), nullable=False),
        sa.Column("counterpart_name", sa.String(length=512), nullable=False),
        sa.Column("counterpart_type", sa.String(length=20), nullable=False),
        sa.Column("counterpart_billing_address_id", sa.Uuid(), nullable=False),
        sa.Column("counterpart_shipping_address_id", sa.Uuid(), nullable=True),
        sa.Column("counterpart", sa.JSON(), nullable=False),
        sa.Column("issuer", sa.JSON(), nullable=False),
        sa.Column("line_items", sa.JSON(), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("total_vat_amount", sa.BigInteger(), nullable=False),
        sa.Column("total_amount", sa.BigInteger(), nullable=False),
        sa.Column("amount_paid", sa.BigInteger(), nullable=False),
        sa.Column("payment_terms", sa.JSON(), nullable=True),
        sa.Column("issue_date", fundline.kit.db.UTCDateTime(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("paid_at", fundline.kit.db.UTCDateTime(), nullable=True),
        sa.Column("file_language", sa.String(length=2), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["counterpart_id"],
            ["counterparts.id"],
            name=op.f("fk_receivables_counterpart_id_counterparts"),
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"], ["entities.id"], name=op.f("fk_receivables_entity_id_entities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receivables")),
        sa.UniqueConstraint("entity_id", "document_id", name="uq_receivables_entity_document"),
    )
    op.create_index(op.f("ix_receivables_created_at"), "receivables", ["created_at"])
    op.create_index(
        "ix_receivables_entity_counterpart", "receivables", ["entity_id", "counterpart_id"]
    )
    op.create_index(
        "ix_receivables_entity_created", "receivables", ["entity_id", "created_at", "id"]
    )
    op.create_index(
        "ix_receivables_entity_status_due", "receivables", ["entity_id", "status", "due_date"]
    )


def downgrade() -> None:
    op.drop_index("ix_receivables_entity_status_due", table_name="receivables")
    op.drop_index("ix_receivables_entity_created", table_name="receivables")
    op.drop_index("ix_receivables_entity_counterpart", table_name="receivables")
    op.drop_index(op.f("ix_receivables_created_at"), table_name="receivables")
    op.drop_table("receivables")
    op.drop_table("receivable_counters")
