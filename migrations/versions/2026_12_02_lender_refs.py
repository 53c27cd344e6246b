"""lender references: what a remote lender (Kanmon) calls the rows Fundline mirrors

Revision ID: 20261202_lender_refs
Revises: 20261201_webhook_pending_index
Create Date: 2026-12-02 09:00:00

A business keeps its id at the lender, the platform user ids created there, and when its
offers and its invoices were last read from it; an offer its lender offer and issued product;
a financing invoice its lender invoice and the lender's own status (the extension field
``lender_status``). All empty under the built-in lender.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fundline.kit.db

revision = "20261202_lender_refs"
down_revision = "20261201_webhook_pending_index"
branch_labels = None
depends_on = None


# Plain ADD COLUMNs (nullable, no default): SQLite takes them as they are, without the table
# copy a batch operation makes (which foreign keys into these tables would refuse).
COLUMNS = {
    "financing_businesses": [
        sa.Column("lender_ref", sa.String(64), nullable=True),
        sa.Column("lender_users", sa.JSON(), nullable=True),
        sa.Column("lender_offers_synced_at", fundline.kit.db.UTCDateTime(), nullable=True),
        sa.Column("lender_invoices_synced_at", fundline.kit.db.UTCDateTime(), nullable=True),
    ],
    "financing_offers": [
        sa.Column("lender_ref", sa.String(64), nullable=True),
        sa.Column("lender_product_ref", sa.String(64), nullable=True),
    ],
    "financing_invoices": [
        sa.Column("lender_ref", sa.String(64), nullable=True),
        sa.Column("lender_status", sa.String(32), nullable=True),
    ],
}


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        for column in columns:
            op.add_column(table, column)


def downgrade() -> None:
    for table, columns in COLUMNS.items():
        for column in reversed(columns):
            op.drop_column(table, column.name)
