"""financing invoices by their request: an index for the foreign key

Revision ID: 20261204_request_index
Revises: 20261203_next_due_date
Create Date: 2026-12-04 09:00:00

``financing_invoices.request_id`` references ``financing_requests`` and had no index, so
PostgreSQL checked every request deleted against every financing invoice: the benchmark's
clean-up of 2,000 requests over 1M financing invoices ran for minutes, one sequential scan per
request. The index also serves a request's invoices (the Connect session's drafts) without
reading through other requests' rows.

``IF NOT EXISTS``: on a large book an operator may build it first, without blocking writes
(``CREATE INDEX CONCURRENTLY ix_financing_invoices_request_id ON financing_invoices
(request_id)``), and then migrate.
"""

from __future__ import annotations

from alembic import op

revision = "20261204_request_index"
down_revision = "20261203_next_due_date"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_financing_invoices_request_id",
        "financing_invoices",
        ["request_id"],
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_financing_invoices_request_id", table_name="financing_invoices")
