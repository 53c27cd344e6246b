"""sandbox demos: the demo platform the /demo page acts for

Revision ID: 20261201_sandbox_demos
Revises: 20261201_partner_origins
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fundline.kit.db

revision = "20261201_sandbox_demos"
down_revision = "20261201_partner_origins"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sandbox_demos",
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("client_secret", sa.String(length=255), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_sandbox_demos_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_sandbox_demos_client_id_api_clients")
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"], ["entities.id"], name=op.f("fk_sandbox_demos_entity_id_entities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_demos")),
    )
    op.create_index(
        op.f("ix_sandbox_demos_created_at"), "sandbox_demos", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sandbox_demos_created_at"), table_name="sandbox_demos")
    op.drop_table("sandbox_demos")
