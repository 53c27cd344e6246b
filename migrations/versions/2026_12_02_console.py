"""lender console: operator sign-in sessions and the audit log of operator actions

Revision ID: 20261202_console
Revises: 20261202_lender_refs
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fundline.kit.db

revision = "20261202_console"
down_revision = "20261202_lender_refs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("operator_key_id", sa.Uuid(), sa.ForeignKey("operator_keys.id"), nullable=False),
        sa.Column("created_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", fundline.kit.db.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_console_sessions_operator_key_id", "console_sessions", ["operator_key_id"])
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("operator", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", sa.Uuid(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("at", fundline.kit.db.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at", "id"])
    op.create_index("ix_audit_log_object", "audit_log", ["object_id", "at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("console_sessions")
