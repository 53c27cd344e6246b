"""financing invoices: next_due_date, the due date of the earliest instalment not paid in full,
and the index of the live book by it

Revision ID: 20261203_next_due_date
Revises: 20261203_queue_indexes
Create Date: 2026-12-03 12:00:00

The console's late and defaulted lists sort by how long an invoice has been overdue. Found
from the instalments, that meant the earliest unpaid instalment of every LATE invoice before
the first row (39k of them over 1M financing invoices: 190 ms); kept on the invoice, with
``(status, next_due_date, id)`` over the live book, a list reads its 200 rows in order. The
column is filled from the instalments as they are now: on PostgreSQL that rewrites every row
of the table once, so run ``VACUUM ANALYZE financing_invoices`` after it on a large book (until
autovacuum has, index-only scans of the table's partial indexes fall back to the heap).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261203_next_due_date"
down_revision = "20261203_queue_indexes"
branch_labels = None
depends_on = None

OWING = sa.text("status IN ('FUNDED', 'LATE', 'DEFAULTED') AND closed_at IS NULL")


def upgrade() -> None:
    op.add_column("financing_invoices", sa.Column("next_due_date", sa.Date(), nullable=True))
    op.execute(
        "UPDATE financing_invoices SET next_due_date = ("
        " SELECT MIN(i.due_date) FROM financing_instalments i"
        " WHERE i.financing_invoice_id = financing_invoices.id AND i.paid_amount < i.amount)"
    )
    op.create_index(
        "ix_financing_invoices_overdue",
        "financing_invoices",
        ["status", "next_due_date", "id"],
        postgresql_where=OWING,
        sqlite_where=OWING,
    )


def downgrade() -> None:
    op.drop_index("ix_financing_invoices_overdue", table_name="financing_invoices")
    op.drop_column("financing_invoices", "next_due_date")
