"""financing approved_at: when the lender approved a financing invoice, a column of its own

Until now an approval was read from the history: a NEW → NEW row whose cause starts with
"approved". The upgrade copies that row's time into the column; the rows stay, as users see
them, so the downgrade loses nothing.

Revision ID: 20261201_financing_approved_at
Revises: 20261201_sandbox_demos
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fundline.kit.db

revision = "20261201_financing_approved_at"
down_revision = "20261201_sandbox_demos"
branch_labels = None
depends_on = None

APPROVALS = """
    FROM financing_status_history AS h
    WHERE h.financing_invoice_id = financing_invoices.id
      AND h.from_status = 'NEW' AND h.to_status = 'NEW' AND h.cause LIKE 'approved%'
"""


def upgrade() -> None:
    op.add_column(
        "financing_invoices",
        sa.Column("approved_at", fundline.kit.db.UTCDateTime(), nullable=True),
    )
    op.execute(
        f"UPDATE financing_invoices SET approved_at = (SELECT MIN(h.at) {APPROVALS}) "
        f"WHERE EXISTS (SELECT 1 {APPROVALS})"
    )


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN on SQLite too (3.35+): a batch would copy the table, and
    # dropping the original fails while other tables' foreign keys point at it.
    op.drop_column("financing_invoices", "approved_at")
