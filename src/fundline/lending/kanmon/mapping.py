"""Kanmon's words in Monite's: statuses, offers and plans, invoices, each rule in one place.
docs/lenders.md has these as tables; the tests check every row.

Kanmon sends amounts as JSON numbers of cents and rates as percentages (``80`` is 80 %, ``2.5``
is 2.5 %); Fundline keeps integers of minor units and basis points. A number that is not a
whole amount, or a rate finer than a basis point, is refused (``Unreadable``) rather than
rounded: money is never guessed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fundline.models.financing import WCBusinessStatus, WCInvoiceStatus, WCOfferStatus

# Fundline's ids for Kanmon's offers and plans are derived from Kanmon's, so a sync finds the
# row it wrote before without a lookup table, and two workers syncing at once agree.
NAMESPACE = uuid.UUID("6b1f6f2e-6f0c-4f7e-9a53-4b616e6d6f6e")

INVOICE_STATUS: dict[str, WCInvoiceStatus] = {
    "INVOICE_CREATED": WCInvoiceStatus.NEW,
    "IN_REVIEW": WCInvoiceStatus.NEW,
    "INVOICE_FUNDED": WCInvoiceStatus.FUNDED,
    # A return under way: the money is still out until it is recollected.
    "INVOICE_PENDING_RETURN": WCInvoiceStatus.FUNDED,
    "INVOICE_PAID_IN_FULL": WCInvoiceStatus.PAID,
    "LATE": WCInvoiceStatus.LATE,
    "DEFAULTED": WCInvoiceStatus.DEFAULTED,
    "REJECTED": WCInvoiceStatus.REJECTED,
    # Disbursement cancelled or funds recollected: the financing did not stand, nothing is
    # owed. Monite has no word for it; ``lender_status`` says which.
    "INVOICE_RETURNED": WCInvoiceStatus.REJECTED,
}

LOAN_STATUS: dict[str, WCOfferStatus] = {
    "CURRENT": WCOfferStatus.CURRENT,
    "LATE": WCOfferStatus.LATE,
    "DEFAULTED": WCOfferStatus.DEFAULTED,
    "CLOSED": WCOfferStatus.CLOSED,
    "FULLY_PAID": WCOfferStatus.CLOSED,
    "REFINANCED": WCOfferStatus.CLOSED,
}

# Kanmon's products that finance invoices, and the kind of invoice each finances.
PRODUCT_INVOICE_TYPE = {"INVOICE_FINANCING": "receivable", "ACCOUNTS_PAYABLE_FINANCING": "payable"}
SESSION_COMPONENT = {
    "receivable": "SESSION_INVOICE_FLOW",
    "payable": "SESSION_ACCOUNTS_PAYABLE_INVOICE_FLOW",
}


class Unreadable(ValueError):
    """Kanmon sent something Fundline cannot take as it is (logged; the row is skipped)."""


def cents(value: Any, what: str) -> int:
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise Unreadable(f"{what} is not a number: {value!r}") from exc
    if isinstance(value, bool) or amount != amount.to_integral_value():
        raise Unreadable(f"{what} is not a whole number of cents: {value!r}")
    return int(amount)


def basis_points(percent: Any, what: str) -> int:
    """``2.5`` (per cent) is 250 basis points."""
    try:
        bps = Decimal(str(percent)) * 100
    except InvalidOperation as exc:
        raise Unreadable(f"{what} is not a number: {percent!r}") from exc
    if isinstance(percent, bool) or bps != bps.to_integral_value() or bps < 0:
        raise Unreadable(f"{what} is not a whole number of basis points: {percent!r}")
    return int(bps)


def day(value: Any, what: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise Unreadable(f"{what} is not a date: {value!r}") from exc


def instant(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise Unreadable(f"not a timestamp: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def derived_id(kind: str, *refs: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join((kind, *refs)))


# --- the business -----------------------------------------------------------------------------


def business_status(business: dict[str, Any], *, has_offers: bool) -> WCBusinessStatus:
    """Kanmon's business has no status; Fundline reads one from what Kanmon knows of it:

    - an offer or an issued product exists: ``ONBOARDED`` (underwriting is done);
    - both its EIN and its address are known (the user gave them in Kanmon's onboarding):
      ``ONBOARDED``, awaiting underwriting;
    - one of them is known: ``INPUT_REQUIRED`` (onboarding started);
    - neither: ``NEW`` (created by the first financing token, onboarding not begun).

    Fundline creates the business with its platform id alone, so what Kanmon knows came from
    the user.
    """
    if has_offers:
        return WCBusinessStatus.ONBOARDED
    known = [bool(business.get("ein")), bool(business.get("address"))]
    if all(known):
        return WCBusinessStatus.ONBOARDED
    return WCBusinessStatus.INPUT_REQUIRED if any(known) else WCBusinessStatus.NEW


# --- offers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanFacts:
    id: uuid.UUID
    ref: str
    advance_rate_percentage: int
    fee_percentage: int
    repayment_type: str
    repayment_duration_days: int | None
    instalments: int


@dataclass(frozen=True)
class OfferFacts:
    """One Kanmon offer of an invoice product, with what its issued product (if any) adds."""

    id: uuid.UUID
    ref: str
    product_ref: str | None
    invoice_type: str
    status: WCOfferStatus
    total_amount: int
    available_amount: int
    expires_at: datetime
    accepted_at: datetime | None
    plans: tuple[PlanFacts, ...]


# An offer Kanmon gives no expiry keeps one far off: Monite's offer has an expiry, and a
# line in use does not lapse.
NO_EXPIRY = datetime(9999, 12, 31, tzinfo=UTC)


def offer_facts(
    offer: dict[str, Any], product: dict[str, Any] | None, *, now: datetime
) -> OfferFacts | None:
    """The offer as Monite's ``FinancingOffer``; ``None`` for a product that does not finance
    invoices (a term loan, an MCA, a line of credit: Monite shows none of them).

    Status: with an issued product, its ``loanStatus`` (``CURRENT``, ``LATE``, ``DEFAULTED``;
    ``CLOSED``, ``FULLY_PAID`` and ``REFINANCED`` are ``CLOSED``); without one, ``EXPIRED``
    once ``expiredAt`` has passed, ``ACCEPTED`` once selected, else ``NEW``. Amounts: the
    total limit, and the issued product's available limit (an offer not issued yet has all of
    it available). Plans: the issued product's when issued, else the offer's.
    """
    terms = offer.get("terms") or {}
    invoice_type = PRODUCT_INVOICE_TYPE.get(str(terms.get("productType")))
    if invoice_type is None:
        return None
    ref = str(offer["id"])
    expires_at = instant(offer.get("expiredAt")) or NO_EXPIRY
    accepted_at = instant(offer.get("selectedAt"))
    servicing = (product or {}).get("servicingData") or {}
    total = cents(servicing.get("totalLimitCents", terms.get("totalLimitCents")), "totalLimitCents")
    if product is not None:
        status = LOAN_STATUS.get(str(product.get("loanStatus")))
        if status is None:
            raise Unreadable(f"unknown loanStatus {product.get('loanStatus')!r}")
        available = cents(servicing.get("availableLimitCents", total), "availableLimitCents")
        plans = servicing.get("pricingPlans") or terms.get("pricingPlans") or []
    else:
        if expires_at <= now:
            status = WCOfferStatus.EXPIRED
        elif accepted_at is not None:
            status = WCOfferStatus.ACCEPTED
        else:
            status = WCOfferStatus.NEW
        available = total
        plans = terms.get("pricingPlans") or []
    return OfferFacts(
        id=derived_id("offer", ref),
        ref=ref,
        product_ref=str(product["id"]) if product is not None else None,
        invoice_type=invoice_type,
        status=status,
        total_amount=total,
        available_amount=max(0, min(available, total)),
        expires_at=expires_at,
        accepted_at=accepted_at,
        plans=tuple(plan_facts(ref, plan) for plan in plans),
    )


def plan_facts(offer_ref: str, plan: dict[str, Any]) -> PlanFacts:
    """A Kanmon pricing plan: rates in basis points, and its repayment window as Monite's
    ``repayment_type``: ``FIXED_DURATION`` with its days; ``MULTIPLE_DURATION`` with the
    last repayment's days as the term and one instalment per repayment; ``FIXED_DATE`` (a
    day of the month) with no duration."""
    window = plan.get("repaymentWindow") or {}
    kind = str(window.get("repaymentType"))
    duration: int | None = None
    instalments = 1
    if kind == "FIXED_DURATION":
        duration = cents(window.get("repaymentDurationDays"), "repaymentDurationDays")
    elif kind == "MULTIPLE_DURATION":
        items = (window.get("repaymentSchedule") or {}).get("schedule") or []
        days = [cents(i.get("repaymentDurationDays"), "repaymentDurationDays") for i in items]
        duration = max(days) if days else None
        instalments = max(1, len(days))
    elif kind != "FIXED_DATE":
        raise Unreadable(f"unknown repaymentType {kind!r}")
    ref = str(plan["id"])
    return PlanFacts(
        id=derived_id("plan", offer_ref, ref),
        ref=ref,
        advance_rate_percentage=basis_points(plan.get("advanceRatePercentage"), "advance rate"),
        fee_percentage=basis_points(plan.get("transactionFeePercentage"), "fee rate"),
        repayment_type=kind,
        repayment_duration_days=duration,
        instalments=instalments,
    )


# --- invoices ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstalmentFacts:
    due_date: date
    amount: int
    fee_amount: int
    principal_amount: int


@dataclass(frozen=True)
class KanmonInvoice:
    """A Kanmon invoice in the record's terms."""

    ref: str
    invoice_id: uuid.UUID | None  # ``platformInvoiceId``: a Fundline receivable or payable
    product_ref: str | None
    lender_status: str
    status: WCInvoiceStatus
    total_amount: int
    requested_amount: int | None
    fee_amount: int | None
    principal_amount: int | None
    repayment_amount: int | None
    advance_rate_percentage: int | None
    fee_percentage: int | None
    schedule: tuple[InstalmentFacts, ...]


def invoice_facts(invoice: dict[str, Any]) -> KanmonInvoice:
    """Fields as Monite's SDK reads a Kanmon invoice (monite-reference §3.6); the status by
    ``INVOICE_STATUS``."""
    lender_status = str(invoice.get("status"))
    status = INVOICE_STATUS.get(lender_status)
    if status is None:
        raise Unreadable(f"unknown invoice status {lender_status!r}")
    try:
        invoice_id: uuid.UUID | None = uuid.UUID(str(invoice.get("platformInvoiceId")))
    except ValueError:
        invoice_id = None

    def optional_cents(key: str) -> int | None:
        value = invoice.get(key)
        return None if value is None else cents(value, key)

    def optional_bps(key: str) -> int | None:
        value = invoice.get(key)
        return None if value is None else basis_points(value, key)

    items = (invoice.get("repaymentSchedule") or {}).get("schedule") or []
    schedule = tuple(
        InstalmentFacts(
            due_date=day(item.get("repaymentDate"), "repaymentDate"),
            amount=cents(item.get("repaymentAmountCents"), "repaymentAmountCents"),
            fee_amount=cents(item.get("repaymentFeeAmountCents"), "repaymentFeeAmountCents"),
            principal_amount=cents(
                item.get("repaymentPrincipalAmountCents"), "repaymentPrincipalAmountCents"
            ),
        )
        for item in items
    )
    return KanmonInvoice(
        ref=str(invoice["id"]),
        invoice_id=invoice_id,
        product_ref=str(invoice["issuedProductId"]) if invoice.get("issuedProductId") else None,
        lender_status=lender_status,
        status=status,
        total_amount=cents(invoice.get("invoiceAmountCents"), "invoiceAmountCents"),
        requested_amount=optional_cents("amountRequestedForFinancingCents"),
        fee_amount=optional_cents("feeAmountCents"),
        principal_amount=optional_cents("principalAmountCents"),
        repayment_amount=optional_cents("repaymentAmountCents"),
        advance_rate_percentage=optional_bps("advanceRatePercentage"),
        fee_percentage=optional_bps("transactionFeePercentage"),
        schedule=schedule,
    )
