"""Which invoices may be financed (DESIGN §4, after Monite's documented rules).

The entity must be in the US, onboarded, with a CURRENT offer. Each invoice must be the
entity's own, open (a receivable ``issued`` or ``partially_paid``; a payable
``waiting_to_be_paid`` or ``partially_paid``), due at least ``min_days_to_due`` days from
today, in the offer's currency and not already in a live financing. Every failure is collected,
so one answer names each failing invoice and its reason. Plain data in, reasons out: the
service loads the facts, this module judges them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from fundline.kit.errors import FundlineError
from fundline.models.financing import WCBusinessStatus, WCInvoiceStatus, WCOfferStatus
from fundline.models.payable import PayableStatus
from fundline.models.receivable import ReceivablesStatus

RECEIVABLE_STATUSES = frozenset({ReceivablesStatus.ISSUED, ReceivablesStatus.PARTIALLY_PAID})
PAYABLE_STATUSES = frozenset({PayableStatus.WAITING_TO_BE_PAID, PayableStatus.PARTIALLY_PAID})
ELIGIBLE_COUNTRIES = frozenset({"US"})


@dataclass(frozen=True, slots=True)
class InvoiceFacts:
    """What a financing invoice copies from a receivable or payable and its counterpart."""

    id: uuid.UUID
    type: str  # "receivable" | "payable"
    # The document's status as a client sees it (a receivable's may be OVERDUE).
    status: ReceivablesStatus | PayableStatus
    document_id: str | None
    issue_date: date | None
    due_date: date | None
    total_amount: int | None
    currency: str | None
    description: str | None
    payer_type: str  # "BUSINESS" | "INDIVIDUAL"
    payer_business_name: str | None
    payer_first_name: str | None
    payer_last_name: str | None


@dataclass(frozen=True, slots=True)
class Failure:
    """One reason one invoice cannot be financed; ``status_code`` is 404 or 409."""

    invoice_id: uuid.UUID
    type: str
    reason: str
    status_code: int


class IneligibleInvoices(FundlineError):
    """Nothing was created. 404 when any invoice is unknown, else 409; entity-level reasons
    (not in the US, not onboarded, no current offer) come first in the message."""

    def __init__(self, entity_reasons: list[str], failures: list[Failure]) -> None:
        parts = [*entity_reasons, *(f"Invoice {f.invoice_id}: {f.reason}" for f in failures)]
        status = 404 if any(f.status_code == 404 for f in failures) else 409
        super().__init__("; ".join(parts), status_code=status)
        self.entity_reasons = entity_reasons
        self.failures = failures

    def body(self) -> dict[str, object]:
        """Monite's error shape; ``entity`` and ``invoices`` are additions."""
        return {
            "error": {
                "message": self.message,
                "entity": self.entity_reasons,
                "invoices": [
                    {"id": str(f.invoice_id), "type": f.type, "reason": f.reason}
                    for f in self.failures
                ],
            }
        }


def entity_reasons(
    *,
    country: str,
    business_status: WCBusinessStatus | None,
    offer_status: WCOfferStatus | None,
) -> list[str]:
    """Why the entity cannot finance anything (empty when it can).

    ``offer_status`` is that of the entity's CURRENT offer, else of its newest, else ``None``.
    """
    reasons = []
    if country not in ELIGIBLE_COUNTRIES:
        reasons.append(
            f"Invoice financing is only available to US entities (this entity is in {country})"
        )
    if business_status != WCBusinessStatus.ONBOARDED:
        reasons.append(
            "The business has not completed onboarding for financing (business_status "
            f"{business_status or WCBusinessStatus.NEW}); call POST /v1/financing_tokens and "
            "finish onboarding in Connect"
        )
    elif offer_status != WCOfferStatus.CURRENT:
        reasons.append(
            "The business has no CURRENT financing offer"
            + (f" (its latest offer is {offer_status})" if offer_status else "")
        )
    return reasons


def invoice_reasons(
    facts: InvoiceFacts,
    *,
    today: date,
    min_days_to_due: int,
    offer_currency: str | None,
    live_status: WCInvoiceStatus | None,
) -> list[str]:
    """Why one found invoice cannot be financed (empty when it can); all reasons, in order."""
    reasons = []
    allowed = RECEIVABLE_STATUSES if facts.type == "receivable" else PAYABLE_STATUSES
    if facts.status not in allowed:
        reasons.append(
            f"status {facts.status} is not financeable (a {facts.type} must be "
            f"{' or '.join(sorted(allowed))})"
        )
    if facts.due_date is None:
        reasons.append("it has no due date")
    else:
        days = (facts.due_date - today).days
        if days < min_days_to_due:
            when = f"due in {days} days" if days >= 0 else f"due date passed {-days} days ago"
            reasons.append(f"{when}; at least {min_days_to_due} required")
    if not facts.document_id:
        reasons.append("it has no document number")
    if facts.issue_date is None:
        reasons.append("it has no issue date")
    if not facts.total_amount:
        reasons.append("its total amount is 0")
    if offer_currency is not None and facts.currency != offer_currency:
        reasons.append(f"currency {facts.currency} differs from the offer's {offer_currency}")
    if live_status is not None:
        reasons.append(f"already in a live financing (status {live_status})")
    return reasons
