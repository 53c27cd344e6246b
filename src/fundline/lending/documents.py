"""What happens to a financing when its receivable or payable is paid, partly paid, canceled or
marked uncollectible: the one rule per financing status, called by ``receivables`` and
``payables`` in the transaction that changes the document.

The document's row is locked first (by its domain), then its financing invoice, then the offer
(``locks``).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.financing import record
from fundline.lending import locks, servicing
from fundline.models import FinancingInvoice
from fundline.models.financing import LIVE_STATUSES, WCInvoiceStatus


async def _live_financing(
    session: AsyncSession, *, invoice_type: str, invoice_id: uuid.UUID
) -> FinancingInvoice | None:
    """The live financing of the receivable or payable ``invoice_id``, locked (its document,
    which the caller changes, is locked before it); ``None`` when it has none."""
    return await locks.row(
        session,
        select(FinancingInvoice).where(
            FinancingInvoice.invoice_id == invoice_id,
            FinancingInvoice.type == invoice_type,
            FinancingInvoice.status.in_(LIVE_STATUSES),
        ),
    )


async def paid(session: AsyncSession, *, invoice_type: str, invoice_id: uuid.UUID) -> None:
    """The receivable or payable ``invoice_id`` was marked paid: settle its live financing.

    Funded (or late): repaid in full (what is left after any partial payments), ``PAID``. Not
    yet funded: a ``NEW`` one is rejected and a ``DRAFT`` released, since a paid invoice can no
    longer be financed. No live financing: nothing to do.
    """
    fi = await _live_financing(session, invoice_type=invoice_type, invoice_id=invoice_id)
    if fi is None:
        return
    if fi.status == WCInvoiceStatus.DRAFT:
        await servicing.release_draft(
            session, fi, cause="the invoice was paid before it was confirmed"
        )
    elif fi.status == WCInvoiceStatus.NEW:
        await servicing.reject(session, fi, cause="the invoice was paid before it was funded")
    elif fi.status in (WCInvoiceStatus.FUNDED, WCInvoiceStatus.LATE):
        remaining = (fi.repayment_amount or 0) - fi.repaid_amount
        await servicing.record_repayment(
            session, fi, remaining, cause=f"the {invoice_type} was paid"
        )


async def partly_paid(
    session: AsyncSession, *, invoice_type: str, invoice_id: uuid.UUID, amount: int
) -> None:
    """``amount`` more was paid on the receivable or payable ``invoice_id``, short of the whole.

    A ``FUNDED`` or ``LATE`` financing of it is repaid that much, or what it still owes if that
    is less (``PAID`` when nothing is left): the earliest unpaid instalment first, fee before
    principal (``record_repayment``). A financing not yet funded keeps its amounts (a draft is
    priced on what the document owes when it is confirmed); none: nothing to do.
    """
    if amount <= 0:
        return
    fi = await _live_financing(session, invoice_type=invoice_type, invoice_id=invoice_id)
    if fi is None or fi.status not in (WCInvoiceStatus.FUNDED, WCInvoiceStatus.LATE):
        return
    remaining = (fi.repayment_amount or 0) - fi.repaid_amount
    await servicing.record_repayment(
        session,
        fi,
        min(amount, remaining),
        cause=f"the {invoice_type} was partly paid ({amount} more)",
    )


async def canceled(
    session: AsyncSession, *, invoice_type: str, invoice_id: uuid.UUID, outcome: str
) -> None:
    """The receivable or payable ``invoice_id`` was ``outcome`` (canceled, or marked
    uncollectible): its payer will not pay it. One rule per status of its live financing:

    - ``DRAFT``: released (deleted), as an expired request's drafts are;
    - ``NEW``: withdrawn, i.e. rejected, and the limit it reserved released;
    - ``FUNDED`` or ``LATE``: unchanged, since the business was advanced the money and still
      owes what is left; a note in its history says why its payer will not pay, and the lender
      collects it from the business (repayments), or the clock turns it ``LATE`` and
      ``DEFAULTED`` and the lender writes it off.
    """
    fi = await _live_financing(session, invoice_type=invoice_type, invoice_id=invoice_id)
    if fi is None:
        return
    why = f"the {invoice_type} was {outcome}"
    if fi.status == WCInvoiceStatus.DRAFT:
        await servicing.release_draft(session, fi, cause=f"{why} before it was confirmed")
    elif fi.status == WCInvoiceStatus.NEW:
        await servicing.reject(session, fi, cause=f"withdrawn: {why} before it was funded")
    else:
        remaining = (fi.repayment_amount or 0) - fi.repaid_amount
        await record.note(session, fi, cause=f"{why}; the business still owes {remaining}")
