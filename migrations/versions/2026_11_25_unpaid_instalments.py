"""unpaid instalments: a partial index on due_date for the worker's lateness check

Revision ID: 20261125_unpaid_instalments
Revises: 20261125_financing
Create Date: 2026-11-25 22:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261125_unpaid_instalments"
down_revision = "20261125_financing"
branch_labels = None
depends_on = None

UNPAID = sa.text("paid_amount < amount")


def upgrade() -> None:
    op.create_index(
        "ix_financing_instalments_unpaid_due",
        "financing_instalments",
        ["due_date"],
        unique=False,
        postgresql_where=UNPAID,
        sqlite_where=UNPAID,
    )


def downgrade() -> None:
    op.drop_index("ix_financing_instalments_unpaid_due", table_name="financing_instalments")
