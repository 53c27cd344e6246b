"""The operator's actions as the console runs them: through the lender API's service functions
(``backoffice.service``: the same rules, the same audit entries), each in a savepoint of its
own, so one refused row of a bulk action leaves the others done. Each result says what
happened and which ledger postings the action made."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import select

from fundline.backoffice import service
from fundline.backoffice.schemas import JournalEntryView
from fundline.console.pages import Console
from fundline.kit.errors import FundlineError
from fundline.models import FinancingInvoice, JournalEntry

InvoiceAction = Literal["approve", "reject", "fund", "record_repayment", "write_off"]
OfferAction = Literal["issue_offer", "close_offer"]

DONE = {
    "approve": "approved",
    "reject": "rejected",
    "fund": "funded",
    "record_repayment": "repayment recorded",
    "write_off": "written off",
    "issue_offer": "issued",
    "close_offer": "closed",
}


@dataclass
class Result:
    label: str  # what it was done to: an invoice's document id, an offer
    ok: bool
    message: str
    object_id: uuid.UUID | None = None
    entries: list[JournalEntryView] = field(default_factory=list)


async def on_invoice(
    console: Console,
    financing_invoice_id: uuid.UUID,
    action: InvoiceAction,
    *,
    amount: int | None = None,
    reason: str | None = None,
) -> Result:
    """``action`` on one financing invoice; a refusal is a result, not an error."""
    session, operator = console.session, console.operator
    fi = await session.get(FinancingInvoice, financing_invoice_id)
    label = fi.document_id if fi is not None else str(financing_invoice_id)
    before = await _entry_ids(console, financing_invoice_id)
    try:
        async with session.begin_nested():
            if action == "approve":
                policy = console.request.app.state.policy
                fi = await service.approve(
                    session, financing_invoice_id, policy=policy, operator=operator
                )
            elif action == "reject":
                fi = await service.reject(
                    session, financing_invoice_id, operator=operator, reason=reason
                )
            elif action == "fund":
                fi = await service.fund(session, financing_invoice_id, operator=operator)
            elif action == "record_repayment":
                if amount is None or amount <= 0:
                    raise FundlineError("Enter the amount received, more than zero")
                fi = await service.record_repayment(
                    session, financing_invoice_id, amount, operator=operator
                )
            else:
                fi = await service.write_off(session, financing_invoice_id, operator=operator)
    except FundlineError as exc:
        return Result(label, False, exc.message, financing_invoice_id)
    entries = await _entries(console, financing_invoice_id, exclude=before)
    return Result(label, True, f"{DONE[action]}; now {fi.status}", financing_invoice_id, entries)


async def on_offer(console: Console, offer_id: uuid.UUID, action: OfferAction) -> Result:
    session, operator = console.session, console.operator
    try:
        async with session.begin_nested():
            if action == "issue_offer":
                offer = await service.issue_offer(session, offer_id, operator=operator)
            else:
                offer = await service.close_offer(session, offer_id, operator=operator)
    except FundlineError as exc:
        return Result("Offer", False, exc.message, offer_id)
    return Result("Offer", True, f"{DONE[action]}; now {offer.status}", offer_id)


async def _entry_ids(console: Console, financing_invoice_id: uuid.UUID) -> set[uuid.UUID]:
    return set(
        await console.session.scalars(
            select(JournalEntry.id).where(JournalEntry.financing_invoice_id == financing_invoice_id)
        )
    )


async def _entries(
    console: Console, financing_invoice_id: uuid.UUID, *, exclude: set[uuid.UUID]
) -> list[JournalEntryView]:
    """The invoice's journal entries not in ``exclude``, each with its postings."""
    entries = [
        e
        for e in await console.session.scalars(
            select(JournalEntry)
            .where(JournalEntry.financing_invoice_id == financing_invoice_id)
            .order_by(JournalEntry.created_at, JournalEntry.id)
        )
        if e.id not in exclude
    ]
    return await service.with_postings(console.session, entries)
