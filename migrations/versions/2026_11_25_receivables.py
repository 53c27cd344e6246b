"""receivables

Revision ID: 20261125_receivables
Revises: 20261125_counterparts
Create Date: 2026-11-25
"""

from __future__ import annotations

revision = "20261125_receivables"
down_revision = "20261125_counterparts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
