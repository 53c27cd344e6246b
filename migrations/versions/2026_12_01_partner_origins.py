"""partner origins: the web origins each partner may embed the Connect widget from

Revision ID: 20261201_partner_origins
Revises: 20261125_financing_list_indexes
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fundline.kit.db

revision = "20261201_partner_origins"
down_revision = "20261125_financing_list_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner_origins",
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", fundline.kit.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_partner_origins_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_origins")),
        sa.UniqueConstraint("partner_id", "origin", name="uq_partner_origins_partner_id_origin"),
    )
    op.create_index(
        op.f("ix_partner_origins_created_at"), "partner_origins", ["created_at"], unique=False
    )
    op.create_index(
        op.f("ix_partner_origins_partner_id"), "partner_origins", ["partner_id"], unique=False
    )
    op.create_index(op.f("ix_partner_origins_origin"), "partner_origins", ["origin"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_partner_origins_origin"), table_name="partner_origins")
    op.drop_index(op.f("ix_partner_origins_partner_id"), table_name="partner_origins")
    op.drop_index(op.f("ix_partner_origins_created_at"), table_name="partner_origins")
    op.drop_table("partner_origins")
