"""financing list indexes: one per filter and sort of GET /v1/financing_invoices, per entity

Revision ID: 20261125_financing_list_indexes
Revises: 20261125_unpaid_instalments
Create Date: 2026-11-25 23:00:00
"""

from __future__ import annotations

from alembic import op

revision = "20261125_financing_list_indexes"
down_revision = "20261125_unpaid_instalments"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_financing_invoices_entity_id": ["entity_id", "id"],
    "ix_financing_invoices_entity_type": ["entity_id", "type", "created_at", "id"],
    "ix_financing_invoices_entity_document": ["entity_id", "document_id"],
    "ix_financing_invoices_entity_total": ["entity_id", "total_amount"],
    "ix_financing_invoices_entity_issue_date": ["entity_id", "issue_date"],
    "ix_financing_invoices_entity_due_date": ["entity_id", "due_date"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "financing_invoices", columns, unique=False)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="financing_invoices")
