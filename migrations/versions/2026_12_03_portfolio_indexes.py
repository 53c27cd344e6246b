"""lender console portfolio: indexes its aggregates read instead of the tables

Revision ID: 20261203_portfolio_indexes
Revises: 20261202_console
Create Date: 2026-12-03 09:00:00

Measured over 1M financing invoices (docs/performance.md, "Lender console"):

- ``ix_ledger_postings_account_currency (account, currency, entry_id, amount)``: an account's
  balance in a currency from the index alone (fee income, credit losses), and the financed
  receivable's postings in entry order;
- ``ix_ledger_entries_id_created (id, created_at)``: with the one above, the receivable by
  month is a merge join of two index-only scans instead of a hash of every journal entry;
- ``ix_financing_invoices_owing (currency, status, entity_id, repayment_amount,
  repaid_amount, id) WHERE status IN ('FUNDED', 'LATE', 'DEFAULTED') AND closed_at IS NULL``:
  outstanding, the largest exposures and the late invoices from the live book alone, never
  the paid history;
- ``ix_financing_instalments_unpaid_invoice (financing_invoice_id, due_date) WHERE paid_amount
  < amount``: an invoice's oldest unpaid instalment is its first entry.

All in key columns (SQLite has no ``INCLUDE``), so both databases read them the same way.
Plain ``CREATE INDEX``, as every migration here: on a large book it holds writes to these
tables while it builds (about 1 to 10 s each over 1M invoices).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261203_portfolio_indexes"
down_revision = "20261202_console"
branch_labels = None
depends_on = None

OWING = sa.text("status IN ('FUNDED', 'LATE', 'DEFAULTED') AND closed_at IS NULL")
UNPAID = sa.text("paid_amount < amount")


def upgrade() -> None:
    op.create_index(
        "ix_ledger_postings_account_currency",
        "ledger_postings",
        ["account", "currency", "entry_id", "amount"],
    )
    op.create_index("ix_ledger_entries_id_created", "ledger_entries", ["id", "created_at"])
    op.create_index(
        "ix_financing_invoices_owing",
        "financing_invoices",
        ["currency", "status", "entity_id", "repayment_amount", "repaid_amount", "id"],
        postgresql_where=OWING,
        sqlite_where=OWING,
    )
    op.create_index(
        "ix_financing_instalments_unpaid_invoice",
        "financing_instalments",
        ["financing_invoice_id", "due_date"],
        postgresql_where=UNPAID,
        sqlite_where=UNPAID,
    )


def downgrade() -> None:
    op.drop_index("ix_financing_instalments_unpaid_invoice", table_name="financing_instalments")
    op.drop_index("ix_financing_invoices_owing", table_name="financing_invoices")
    op.drop_index("ix_ledger_entries_id_created", table_name="ledger_entries")
    op.drop_index("ix_ledger_postings_account_currency", table_name="ledger_postings")
