"""Receivables (an entity's outgoing invoices) and the per-entity document number counter."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    literal,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column

from fundline.kit.db import Base, IdMixin, StrEnumColumn, TimestampMixin, UTCDateTime
from fundline.kit.tenancy import EntityOwned


class ReceivablesStatus(StrEnum):
    DRAFT = "draft"
    ISSUING = "issuing"
    ISSUED = "issued"
    FAILED = "failed"
    ACCEPTED = "accepted"
    EXPIRED = "expired"
    DECLINED = "declined"
    RECURRING = "recurring"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    OVERDUE = "overdue"
    UNCOLLECTIBLE = "uncollectible"
    CANCELED = "canceled"
    DELETED = "deleted"


# Stored statuses of an open invoice: OVERDUE, once its due date has passed.
OPEN_STATUSES = frozenset({ReceivablesStatus.ISSUED, ReceivablesStatus.PARTIALLY_PAID})


class Receivable(EntityOwned, IdMixin, TimestampMixin, Base):
    """One invoice. Line items live in a JSON document on the row, not in a table of their own:
    they are always written and read whole with their invoice (create, patch, respond) and never
    queried on their own, so a document costs one row per invoice instead of N+1 and keeps an
    issued invoice's content a single immutable value. Everything a list filters or sorts on
    (status, dates, counterpart name, totals) is a real column computed from the lines.
    """

    __tablename__ = "receivables"
    __table_args__ = (
        # Also the guard of last resort against two invoices with one number.
        UniqueConstraint("entity_id", "document_id", name="uq_receivables_entity_document"),
        Index("ix_receivables_entity_created", "entity_id", "created_at", "id"),
        Index("ix_receivables_entity_status_due", "entity_id", "status", "due_date"),
        Index("ix_receivables_entity_counterpart", "entity_id", "counterpart_id"),
    )

    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entities.id"))
    type: Mapped[str] = mapped_column(String(20), default="invoice")
    # The stored lifecycle status. OVERDUE is never stored: it is read from the clock
    # (an issued or partially paid invoice past its due date), see receivables.service.
    status: Mapped[ReceivablesStatus] = mapped_column(
        StrEnumColumn(ReceivablesStatus, 20), default=ReceivablesStatus.DRAFT
    )
    document_id: Mapped[str | None] = mapped_column(String(100), default=None)
    currency: Mapped[str] = mapped_column(String(3))
    entity_user_id: Mapped[uuid.UUID | None] = mapped_column(default=None)

    counterpart_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("counterparts.id"))
    # The counterpart as the document shows it, copied when it is chosen: later edits of the
    # counterpart do not rewrite an invoice.
    counterpart_name: Mapped[str] = mapped_column(String(512))
    counterpart_type: Mapped[str] = mapped_column(String(20))
    counterpart_billing_address_id: Mapped[uuid.UUID] = mapped_column()
    counterpart_shipping_address_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    counterpart: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The issuing entity as the document shows it ({"entity": ..., "entity_address": ...}).
    issuer: Mapped[dict[str, Any]] = mapped_column(JSON)

    line_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Money, in minor units of ``currency``, always recomputed from ``line_items``.
    subtotal: Mapped[int] = mapped_column(BigInteger, default=0)
    total_vat_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    total_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)

    payment_terms: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    issue_date: Mapped[datetime | None] = mapped_column(default=None)
    due_date: Mapped[date | None] = mapped_column(Date, default=None)
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    file_language: Mapped[str] = mapped_column(String(2), default="en")
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    # Fields printed on the document that no rule reads (memo, footer, purchase order, ...).
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    # Sort keys for the nullable sort fields: keyset pagination compares (key, id) tuples,
    # which a NULL would silently break; drafts have no dates or number yet.
    sort_issue_date: Mapped[datetime] = column_property(
        func.coalesce(issue_date, literal(datetime(9999, 12, 31, tzinfo=UTC), UTCDateTime()))
    )
    sort_due_date: Mapped[date] = column_property(
        func.coalesce(due_date, literal(date(9999, 12, 31), Date()))
    )
    sort_document_id: Mapped[str] = column_property(func.coalesce(document_id, literal("")))

    @property
    def amount_due(self) -> int:
        return self.total_amount - self.amount_paid


class ReceivableCounter(EntityOwned, Base):
    """The last document number given per entity and document type.

    Issuing takes the next number with one ``UPDATE … RETURNING`` on this row, which holds the
    row lock until commit on PostgreSQL (SQLite has one writer at a time): two invoices issued
    at once get consecutive numbers, never the same one.
    """

    __tablename__ = "receivable_counters"

    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entities.id"), primary_key=True)
    document_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_number: Mapped[int] = mapped_column(BigInteger, default=0)
