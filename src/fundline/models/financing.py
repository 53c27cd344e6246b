"""The financing side: businesses, offers and plans, requests, financed invoices and their
instalments and history. Connect tokens live in ``models/connect.py``, the ledger in
``models/ledger.py``.

Amounts are integers in minor units; rates are basis points (10000 = 100 %). The status enums
keep the names Monite's API gives them: the OpenAPI document names its components after them.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from fundline.kit import clock
from fundline.kit.db import Base, IdMixin, StrEnumColumn, TimestampMixin
from fundline.kit.tenancy import EntityOwned


class WCBusinessStatus(StrEnum):
    NEW = "NEW"
    INPUT_REQUIRED = "INPUT_REQUIRED"
    ONBOARDED = "ONBOARDED"


class WCOfferStatus(StrEnum):
    NEW = "NEW"
    ACCEPTED = "ACCEPTED"
    EXPIRED = "EXPIRED"
    CURRENT = "CURRENT"
    LATE = "LATE"
    CLOSED = "CLOSED"
    DEFAULTED = "DEFAULTED"


# The offers in which a business already has a usable (or pending) credit line.
LIVE_OFFER_STATUSES = frozenset(
    {WCOfferStatus.NEW, WCOfferStatus.ACCEPTED, WCOfferStatus.CURRENT, WCOfferStatus.LATE}
)


class WCInvoiceStatus(StrEnum):
    DRAFT = "DRAFT"
    NEW = "NEW"
    FUNDED = "FUNDED"
    PAID = "PAID"
    LATE = "LATE"
    REJECTED = "REJECTED"
    DEFAULTED = "DEFAULTED"


# Funded and not closed (paid, written off): the invoices that still owe. The predicate of
# ``ix_financing_invoices_owing``, as SQL.
OWING_PREDICATE = "status IN ('FUNDED', 'LATE', 'DEFAULTED') AND closed_at IS NULL"
QUEUE_PREDICATE = "status = 'NEW'"

# A financing invoice in one of these holds its invoice (see ``live_invoice_id``).
LIVE_STATUSES = frozenset(
    {WCInvoiceStatus.DRAFT, WCInvoiceStatus.NEW, WCInvoiceStatus.FUNDED, WCInvoiceStatus.LATE}
)


class FinancingRequestStatus(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"  # the user confirmed in Connect
    EXPIRED = "expired"  # its drafts released


# What a business tells its lender in onboarding, as dotted names, in the order the Connect
# widget asks for them; the built-in lender needs all of them.
REQUIRED_FIELDS = (
    "legal_name",
    "ein",
    "address.line1",
    "address.city",
    "address.state",
    "address.postal_code",
    "address.country",
    "owner.first_name",
    "owner.last_name",
    "owner.email",
    "bank_account.routing_number",
    "bank_account.account_number",
)


def missing_fields(business: FinancingBusiness) -> list[str]:
    """The onboarding fields ``business`` has not given yet."""
    present: dict[str, Any] = {
        "legal_name": business.legal_name,
        "ein": business.ein,
        **{f"address.{k}": v for k, v in (business.address or {}).items()},
        **{f"owner.{k}": v for k, v in (business.owner or {}).items()},
        "bank_account.routing_number": business.bank_routing_number,
        "bank_account.account_number": business.bank_account_number,
    }
    return [name for name in REQUIRED_FIELDS if not present.get(name)]


class FinancingBusiness(EntityOwned, IdMixin, TimestampMixin, Base):
    """An entity's onboarding with the lender; created by its first financing token."""

    __tablename__ = "financing_businesses"

    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entities.id"), unique=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    status: Mapped[WCBusinessStatus] = mapped_column(
        StrEnumColumn(WCBusinessStatus, 20), default=WCBusinessStatus.NEW
    )
    legal_name: Mapped[str | None] = mapped_column(String(255), default=None)
    ein: Mapped[str | None] = mapped_column(String(10), default=None)
    address: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    owner: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    bank_routing_number: Mapped[str | None] = mapped_column(String(9), default=None)
    bank_account_number: Mapped[str | None] = mapped_column(String(17), default=None)
    # Why underwriting extended no offer, when it did not.
    decision_note: Mapped[str | None] = mapped_column(String(500), default=None)
    onboarded_at: Mapped[datetime | None] = mapped_column(default=None)
    # A remote lender's (Kanmon's): its id of the business, the platform user ids created
    # there, and when the offers and the invoices were last read from it (real time).
    lender_ref: Mapped[str | None] = mapped_column(String(64), default=None)
    lender_users: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    lender_offers_synced_at: Mapped[datetime | None] = mapped_column(default=None)
    lender_invoices_synced_at: Mapped[datetime | None] = mapped_column(default=None)


class FinancingOffer(EntityOwned, IdMixin, TimestampMixin, Base):
    """A credit line. ``available = total - reserved - outstanding`` (all minor units).

    ``reserved_amount`` holds confirmed, unfunded requests (``NEW``); ``outstanding_amount`` what
    funded invoices still owe. Both change only with the offer row locked.
    """

    __tablename__ = "financing_offers"
    __table_args__ = (Index("ix_financing_offers_entity", "entity_id", "created_at"),)

    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("financing_businesses.id"))
    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entities.id"))
    status: Mapped[WCOfferStatus] = mapped_column(
        StrEnumColumn(WCOfferStatus, 20), default=WCOfferStatus.NEW
    )
    currency: Mapped[str] = mapped_column(String(3))
    total_amount: Mapped[int] = mapped_column(BigInteger)
    reserved_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    outstanding_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column(default=None)
    issued_at: Mapped[datetime | None] = mapped_column(default=None)
    # A remote lender's offer and the product it issued on it.
    lender_ref: Mapped[str | None] = mapped_column(String(64), default=None)
    lender_product_ref: Mapped[str | None] = mapped_column(String(64), default=None)

    @property
    def available_amount(self) -> int:
        return max(0, self.total_amount - self.reserved_amount - self.outstanding_amount)


class PricingPlan(IdMixin, Base):
    __tablename__ = "financing_pricing_plans"

    offer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("financing_offers.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    repayment_type: Mapped[str] = mapped_column(String(20))
    advance_rate_percentage: Mapped[int] = mapped_column(Integer)
    fee_percentage: Mapped[int] = mapped_column(Integer)
    # FIXED_DURATION: one repayment this many days after funding. MULTIPLE_DURATION: the
    # whole term, split into ``instalments`` equal periods. FIXED_DATE: unused.
    repayment_duration_days: Mapped[int | None] = mapped_column(Integer, default=None)
    instalments: Mapped[int] = mapped_column(Integer, default=1)
    # FIXED_DATE: repay on the invoice's due date plus this many days.
    grace_days: Mapped[int] = mapped_column(Integer, default=0)


class FinancingRequest(EntityOwned, IdMixin, TimestampMixin, Base):
    """One ``POST /v1/financing_invoices``: its DRAFT invoices and its session token."""

    __tablename__ = "financing_requests"

    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entities.id"), index=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    # open → confirmed | expired
    status: Mapped[FinancingRequestStatus] = mapped_column(
        StrEnumColumn(FinancingRequestStatus, 20), default=FinancingRequestStatus.OPEN
    )
    expires_at: Mapped[datetime] = mapped_column(index=True)


class FinancingInvoice(EntityOwned, IdMixin, TimestampMixin, Base):
    """An invoice in financing; Monite's ``FinancingInvoice`` is read from it."""

    __tablename__ = "financing_invoices"
    __table_args__ = (
        # One live financing per invoice: the column holds invoice_id while the financing is
        # live and NULL after, and NULLs never collide.
        UniqueConstraint("live_invoice_id", name="uq_financing_invoices_live_invoice_id"),
        # The list's sorts and filters, each within one entity (GET /v1/financing_invoices):
        # a selective filter reads its matches, not every row of a large entity.
        Index("ix_financing_invoices_entity_created", "entity_id", "created_at", "id"),
        Index("ix_financing_invoices_entity_id", "entity_id", "id"),
        Index("ix_financing_invoices_entity_status", "entity_id", "status", "created_at", "id"),
        Index("ix_financing_invoices_entity_type", "entity_id", "type", "created_at", "id"),
        Index("ix_financing_invoices_entity_document", "entity_id", "document_id"),
        Index("ix_financing_invoices_entity_total", "entity_id", "total_amount"),
        Index("ix_financing_invoices_entity_issue_date", "entity_id", "issue_date"),
        Index("ix_financing_invoices_entity_due_date", "entity_id", "due_date"),
        Index("ix_financing_invoices_status_repayment", "status", "repayment_date"),
        # A request's invoices, and the foreign key's check when a request goes.
        Index("ix_financing_invoices_request_id", "request_id"),
        # What is still owed, per currency (the console's portfolio: outstanding, exposures,
        # aging), read from the index alone; it holds the live book, not the paid history.
        Index(
            "ix_financing_invoices_owing",
            "currency",
            "status",
            "entity_id",
            "repayment_amount",
            "repaid_amount",
            "id",
            postgresql_where=text(OWING_PREDICATE),
            sqlite_where=text(OWING_PREDICATE),
        ),
        # The console's late and defaulted invoices, the most overdue first.
        Index(
            "ix_financing_invoices_overdue",
            "status",
            "next_due_date",
            "id",
            postgresql_where=text(OWING_PREDICATE),
            sqlite_where=text(OWING_PREDICATE),
        ),
        # The console's review queue: what waits for a decision, oldest first, and its counts
        # per currency, from two small indexes of the NEW invoices alone.
        Index(
            "ix_financing_invoices_queue",
            "confirmed_at",
            "created_at",
            "id",
            postgresql_where=text(QUEUE_PREDICATE),
            sqlite_where=text(QUEUE_PREDICATE),
        ),
        Index(
            "ix_financing_invoices_queue_totals",
            "currency",
            "approved_at",
            "requested_amount",
            postgresql_where=text(QUEUE_PREDICATE),
            sqlite_where=text(QUEUE_PREDICATE),
        ),
    )

    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entities.id"))
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("financing_requests.id"))
    offer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("financing_offers.id"))
    pricing_plan_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("financing_pricing_plans.id"), default=None
    )
    invoice_id: Mapped[uuid.UUID] = mapped_column(index=True)
    live_invoice_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    type: Mapped[str] = mapped_column(String(10))
    status: Mapped[WCInvoiceStatus] = mapped_column(
        StrEnumColumn(WCInvoiceStatus, 10), default=WCInvoiceStatus.DRAFT
    )
    # Copied from the invoice when requested: what the lender agreed to finance.
    document_id: Mapped[str] = mapped_column(String(100))
    issue_date: Mapped[date] = mapped_column()
    due_date: Mapped[date] = mapped_column()
    total_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str | None] = mapped_column(String(500), default=None)
    payer_type: Mapped[str] = mapped_column(String(10))
    payer_business_name: Mapped[str | None] = mapped_column(String(255), default=None)
    payer_first_name: Mapped[str | None] = mapped_column(String(255), default=None)
    payer_last_name: Mapped[str | None] = mapped_column(String(255), default=None)
    # Set when the business confirms (plan and amount chosen).
    advance_rate_percentage: Mapped[int | None] = mapped_column(Integer, default=None)
    fee_percentage: Mapped[int | None] = mapped_column(Integer, default=None)
    requested_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    fee_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    principal_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    repayment_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    repayment_date: Mapped[date | None] = mapped_column(default=None)
    # The due date of its earliest instalment not yet paid in full (NULL when none is left):
    # what the console's late lists sort by, kept wherever instalments are written or paid.
    next_due_date: Mapped[date | None] = mapped_column(default=None)
    repaid_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set once, when the lender approves it (NEW, waiting to be funded): Monite has no status
    # for that.
    approved_at: Mapped[datetime | None] = mapped_column(default=None)
    funded_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    # A remote lender's invoice, and its own word for the status (``lender_status`` on the
    # wire), which says more than Monite's (a return, a review).
    lender_ref: Mapped[str | None] = mapped_column(String(64), default=None)
    lender_status: Mapped[str | None] = mapped_column(String(32), default=None)


class Instalment(IdMixin, Base):
    __tablename__ = "financing_instalments"
    __table_args__ = (
        UniqueConstraint("financing_invoice_id", "sequence", name="uq_financing_instalments_seq"),
        # The worker's lateness check reads only what is still owed: a small index however
        # many instalments have been paid.
        Index(
            "ix_financing_instalments_unpaid_due",
            "due_date",
            postgresql_where=text("paid_amount < amount"),
            sqlite_where=text("paid_amount < amount"),
        ),
        # An invoice's oldest unpaid instalment (the console's aging): its first entry here.
        Index(
            "ix_financing_instalments_unpaid_invoice",
            "financing_invoice_id",
            "due_date",
            postgresql_where=text("paid_amount < amount"),
            sqlite_where=text("paid_amount < amount"),
        ),
    )

    financing_invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("financing_invoices.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column()
    amount: Mapped[int] = mapped_column(BigInteger)
    fee_amount: Mapped[int] = mapped_column(BigInteger)
    principal_amount: Mapped[int] = mapped_column(BigInteger)
    paid_amount: Mapped[int] = mapped_column(BigInteger, default=0)


class FinancingStatusChange(IdMixin, Base):
    """The status history of a financing invoice: every transition, its cause and time."""

    __tablename__ = "financing_status_history"
    __table_args__ = (Index("ix_financing_status_history_invoice", "financing_invoice_id", "at"),)

    financing_invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("financing_invoices.id"))
    from_status: Mapped[WCInvoiceStatus | None] = mapped_column(StrEnumColumn(WCInvoiceStatus, 10))
    to_status: Mapped[WCInvoiceStatus] = mapped_column(StrEnumColumn(WCInvoiceStatus, 10))
    cause: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(default=clock.now)
