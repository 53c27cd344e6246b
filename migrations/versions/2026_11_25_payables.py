"""payables

Revision ID: 20261125_payables
Revises: 20261125_receivables
Create Date: 2026-11-25
"""

from __future__ import annotations

revision = "20261125_payables"
down_revision = "20261125_receivables"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
