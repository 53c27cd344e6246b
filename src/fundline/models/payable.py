"""Payables: invoices an entity received from its vendors, as Monite has them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fundline.kit.db import Base, IdMixin, StrEnumColumn, TimestampMixin
from fundline.kit.tenancy import EntityOwned

# Keyset pagination cannot page over NULLs, so sorting by `issued_at` uses this stand-in for
# a payable without an issue date: such payables come first in ascending order.
NO_ISSUE_DATE = date(1, 1, 1)


class PayableStatus(StrEnum):
    DRAFT = "draft"
    NEW = "new"
    APPROVE_IN_PROGRESS = "approve_in_progress"
    WAITING_TO_BE_PAID = "waiting_to_be_paid"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    CANCELED = "canceled"
    REJECTED = "rejected"


class Payable(EntityOwned, IdMixin, TimestampMixin, Base):
    __tablename__ = "payables"
    __table_args__ = (
        Index("ix_payables_entity_created", "entity_id", "created_at", "id"),
        Index("ix_payables_entity_issued", "entity_id", "issued_at_sort", "id"),
        Index("ix_payables_entity_status", "entity_id", "status"),
    )

    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entities.id"))
    status: Mapped[PayableStatus] = mapped_column(StrEnumColumn(PayableStatus, 32))
    counterpart_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("counterparts.id"), default=None, index=True
    )
    counterpart_address_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # Monite's `counterpart`: the vendor's data as it was when the payable left review.
    counterpart_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    # Money in minor units of `currency`; `tax` is a rate in basis points.
    subtotal: Mapped[int | None] = mapped_column(BigInteger, default=None)
    tax: Mapped[int | None] = mapped_column(Integer, default=None)
    tax_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    total_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    discount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    document_id: Mapped[str | None] = mapped_column(String(255), default=None)
    description: Mapped[str | None] = mapped_column(String(255), default=None)
    issued_at: Mapped[date | None] = mapped_column(default=None)
    issued_at_sort: Mapped[date] = mapped_column(default=NO_ISSUE_DATE)
    due_date: Mapped[date | None] = mapped_column(default=None)
    payment_terms: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    suggested_payment_term: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    partner_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    sender: Mapped[str | None] = mapped_column(String(255), default=None)
    was_created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    marked_as_paid_by_entity_user_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    marked_as_paid_with_comment: Mapped[str | None] = mapped_column(String(1000), default=None)

    @property
    def amount_due(self) -> int | None:
        return None if self.total_amount is None else self.total_amount - self.amount_paid
