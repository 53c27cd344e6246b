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


def upgrade() -> None:
    with op.batch_alter_table("financing_businesses") as table:
        table.add_column(sa.Column("lender_ref", sa.String(64), nullable=True))
        table.add_column(sa.Column("lender_users", sa.JSON(), nullable=True))
        table.add_column(
            sa.Column("lender_offers_synced_at", fundline.kit.db.UTCDateTime(), nullable=True)
        )
        table.add_column(
            sa.Column("lender_invoices_synced_at", fundline.kit.db.UTCDateTime(), nullable=True)
        )
    with op.batch_alter_table("financing_offers") as table:
        table.add_column(sa.Column("lender_ref", sa.String(64), nullable=True))
        table.add_column(sa.Column("lender_product_ref", sa.String(64), nullable=True))
    with op.batch_alter_table("financing_invoices") as table:
        table.add_column(sa.Column("lender_ref", sa.String(64), nullable=True))
        table.add_column(sa.Column("lender_status", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("financing_invoices") as table:
        table.drop_column("lender_status")
        table.drop_column("lender_ref")
    with op.batch_alter_table("financing_offers") as table:
        table.drop_column("lender_product_ref")
        table.drop_column("lender_ref")
    with op.batch_alter_table("financing_businesses") as table:
        table.drop_column("lender_invoices_synced_at")
        table.drop_column("lender_offers_synced_at")
        table.drop_column("lender_users")
        table.drop_column("lender_ref")
