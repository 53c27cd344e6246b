"""What a financing invoice can be priced on: what its document still owes.

``FinancingInvoice.total_amount`` is the invoice's total (Monite's field, copied when financing
was requested). A partially paid invoice still owes less than that, and lending against money
already collected would be lending against nothing: quotes and the requestable maximum are
based on the document's amount due, read at the moment of quoting or confirming.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.kit import money
from fundline.models import FinancingInvoice, Payable, PricingPlan, Receivable


async def amount_owed(session: AsyncSession, fi: FinancingInvoice) -> int:
    """The amount due of ``fi``'s receivable or payable, never above the total financing was
    requested for; that total when the document cannot be read."""
    document = Receivable if fi.type == "receivable" else Payable
    row = (
        await session.execute(
            select(document.total_amount, document.amount_paid).where(
                document.id == fi.invoice_id, document.entity_id == fi.entity_id
            )
        )
    ).first()
    if row is None or row.total_amount is None:
        return fi.total_amount
    due = int(row.total_amount) - int(row.amount_paid)
    return max(0, min(fi.total_amount, due))


def quote(owed: int, plan: PricingPlan, *, requested_amount: int | None = None) -> money.Quote:
    """``kit.money.quote`` of ``plan`` on the amount owed: the maximum is
    ``floor(owed * advance_rate / 10000)``. ``ValueError`` for an amount outside ``1 … max``."""
    return money.quote(
        owed,
        advance_rate_percentage=plan.advance_rate_percentage,
        fee_percentage=plan.fee_percentage,
        requested_amount=requested_amount,
    )
