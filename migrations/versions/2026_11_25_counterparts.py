"""counterparts

Revision ID: 20261125_counterparts
Revises: 8e507808052c
Create Date: 2026-11-25
"""

from __future__ import annotations

revision = "20261125_counterparts"
down_revision = "8e507808052c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
