"""The events the widget reports to the embedding page, in Kanmon Connect's shapes.

Monite's front end reads ``USER_STATE_CHANGED`` (``data.userState``, ``data.section``,
``data.actionRequired``, ``data.actionMessage``), ``USER_CONFIRMED_INVOICE``
(``data.invoice``, Kanmon's field names) and ``HIDE``. The pages compute nothing of these: they
are built here, on the server, from the same rows the APIs read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fundline.financing.schemas import FinancingInvoice as FinancingInvoiceOut
from fundline.models import FinancingBusiness, FinancingInvoice, FinancingOffer
from fundline.models.financing import (
    REQUIRED_FIELDS,
    WCBusinessStatus,
    WCInvoiceStatus,
    WCOfferStatus,
    missing_fields,
)

Event = dict[str, Any]

USER_STATE_CHANGED = "USER_STATE_CHANGED"
USER_CONFIRMED_INVOICE = "USER_CONFIRMED_INVOICE"

# Kanmon's invoice states for Monite's financing statuses (the adapter maps them back).
KANMON_INVOICE_STATE = {
    WCInvoiceStatus.DRAFT: "INVOICE_CREATED",
    WCInvoiceStatus.NEW: "IN_REVIEW",
    WCInvoiceStatus.FUNDED: "INVOICE_FUNDED",
    WCInvoiceStatus.PAID: "INVOICE_PAID_IN_FULL",
    WCInvoiceStatus.LATE: "LATE",
    WCInvoiceStatus.DEFAULTED: "DEFAULTED",
    WCInvoiceStatus.REJECTED: "REJECTED",
}


@dataclass(frozen=True)
class UserState:
    user_state: str
    section: str
    action_required: bool
    action_message: str

    def event(self) -> Event:
        return {
            "eventType": USER_STATE_CHANGED,
            "data": {
                "userState": self.user_state,
                "section": self.section,
                "actionRequired": self.action_required,
                "actionMessage": self.action_message,
            },
        }


def user_state(business: FinancingBusiness, offer: FinancingOffer | None) -> UserState:
    """Where the business stands, as Kanmon's ``userState``; ``offer`` is its newest."""
    if business.status != WCBusinessStatus.ONBOARDED:
        if len(missing_fields(business)) == len(REQUIRED_FIELDS):
            return UserState(
                "START_FLOW", "ONBOARDING", True, "Get paid early: tell us about your business"
            )
        return UserState(
            "USER_INPUT_REQUIRED", "ONBOARDING", True, "Finish your details to see your offer"
        )
    if offer is None:
        if business.decision_note:
            return UserState("NO_OFFERS_EXTENDED", "OFFER", False, "No offer this time")
        return UserState("WAITING_FOR_OFFERS", "OFFER", False, "We are reviewing your details")
    match offer.status:
        case WCOfferStatus.NEW:
            return UserState("USER_INPUT_REQUIRED", "OFFER", True, "Your offer is ready")
        case WCOfferStatus.ACCEPTED:
            return UserState("OFFER_ACCEPTED", "OFFER", False, "Your credit line opens soon")
        case WCOfferStatus.CURRENT:
            return UserState("SERVICING", "SERVICING", False, "Your credit line is open")
        case WCOfferStatus.LATE:
            return UserState("SERVICING", "SERVICING", True, "A repayment is past due")
        case WCOfferStatus.DEFAULTED:
            return UserState("SERVICING", "SERVICING", True, "Your credit line is in default")
        case _:  # EXPIRED, CLOSED: a new offer comes when the widget is opened again
            if business.decision_note:
                return UserState("NO_OFFERS_EXTENDED", "OFFER", False, "No offer this time")
            return UserState("OFFERS_EXPIRED", "OFFER", False, "Your offer has expired")


def _percent(basis_points: int | None) -> int | float | None:
    """Monite's basis points as Kanmon's percent: 9000 → 90, 250 → 2.5."""
    if basis_points is None:
        return None
    value = Decimal(basis_points) / 100
    return int(value) if value == value.to_integral_value() else float(value)


def _timestamp(at: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` (SQLite hands back naive UTC datetimes)."""
    aware = at if at.tzinfo else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def confirmed_invoice(
    out: FinancingInvoiceOut, row: FinancingInvoice, *, payor_email: str | None
) -> Event:
    """``USER_CONFIRMED_INVOICE`` for one confirmed financing: every figure is read from
    ``out``, the invoice exactly as ``GET /v1/financing_invoices`` renders it."""
    schedule = [
        {
            "repaymentDate": i.due_date.isoformat(),
            "repaymentAmountCents": i.amount,
            "repaymentFeeAmountCents": i.fee_amount,
            "repaymentPrincipalAmountCents": i.principal_amount,
        }
        for i in out.instalments
    ]
    invoice = {
        "id": str(out.id),
        "state": KANMON_INVOICE_STATE[out.status],
        "platformInvoiceId": str(out.invoice_id),
        "platformInvoiceNumber": out.document_id,
        "invoiceAmountCents": out.total_amount,
        "invoiceIssuedDate": out.issue_date.isoformat(),
        "invoiceDueDate": out.due_date.isoformat(),
        "payorType": out.payer_type,
        "payorBusinessName": out.payer_business_name,
        "payorFirstName": out.payer_first_name,
        "payorLastName": out.payer_last_name,
        "payorEmail": payor_email,
        "amountRequestedForFinancingCents": out.requested_amount,
        "principalAmountCents": out.principal_amount,
        "repaymentAmountCents": out.repayment_amount,
        "invoiceAdvanceAmountCents": out.advance_amount,
        "feeAmountCents": out.fee_amount,
        "advanceRatePercentage": _percent(out.advance_rate_percentage),
        "transactionFeePercentage": _percent(out.fee_percentage),
        "repaymentSchedule": {"schedule": schedule},
        "issuedProductId": str(row.offer_id),
        "currency": out.currency,
        "createdAt": _timestamp(row.created_at),
        "updatedAt": _timestamp(row.updated_at),
    }
    return {"eventType": USER_CONFIRMED_INVOICE, "data": {"invoice": invoice}}
