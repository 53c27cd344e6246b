"""The lender's double-entry ledger: journal entries and their postings.

Amounts are integers in minor units; a debit is positive, a credit negative.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fundline.kit import clock
from fundline.kit.db import Base, IdMixin
from fundline.kit.tenancy import EntityOwned


class JournalEntry(EntityOwned, IdMixin, Base):
    """One balanced movement of money; its postings sum to zero."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        # The console's receivable by month joins postings to their entry's date: with both
        # indexes in entry order, a merge join of two index-only scans (no hash of every entry).
        Index("ix_ledger_entries_id_created", "id", "created_at"),
    )

    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entities.id"), index=True)
    financing_invoice_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("financing_invoices.id"), index=True, default=None
    )
    kind: Mapped[str] = mapped_column(String(20))  # disbursement | fee | repayment | write_off
    currency: Mapped[str] = mapped_column(String(3))
    memo: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)


class Posting(IdMixin, Base):
    """A debit (positive) or credit (negative) of one account within a journal entry."""

    __tablename__ = "ledger_postings"
    __table_args__ = (
        Index("ix_ledger_postings_invoice_account", "financing_invoice_id", "account"),
        # An account's balance in a currency (the console's portfolio), read from the index.
        Index("ix_ledger_postings_account_currency", "account", "currency", "entry_id", "amount"),
    )

    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    financing_invoice_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("financing_invoices.id"), default=None
    )
    account: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
