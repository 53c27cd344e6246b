"""The price rule (``Quote``, ``price``) and what a financing invoice is priced on: what its
document still owes.

``FinancingInvoice.total_amount`` is the invoice's total (Monite's field, copied when financing
was requested). A partially paid invoice still owes less than that, and lending against money
already collected would be lending against nothing: quotes and the requestable maximum are
based on the document's amount due, read at the moment of quoting or confirming.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.kit import money
from fundline.kit.statements import Prepared
from fundline.models import FinancingInvoice, Payable, PricingPlan, Receivable


@dataclass(frozen=True)
class Quote:
    """What financing ``requested_amount`` of an invoice costs (DESIGN §5), all minor units.

    The business receives ``principal_amount`` (Monite's ``advance_amount`` too) and repays
    ``repayment_amount``, which is the requested amount: ``repayment = principal + fee``.
    """

    max_requested_amount: int
    requested_amount: int
    fee_amount: int
    principal_amount: int
    repayment_amount: int

    @property
    def advance_amount(self) -> int:
        return self.principal_amount


def price(
    total_amount: int,
    *,
    advance_rate_percentage: int,
    fee_percentage: int,
    requested_amount: int | None = None,
) -> Quote:
    """Price financing of an invoice of ``total_amount`` on a plan (advance rate ``a``, fee ``f``).

    ``R ≤ floor(total * a / 10000)`` (the maximum, also the default ``R``);
    ``fee F = round_half_even(R * f / 10000)``; ``principal = advance = R - F``;
    ``repayment = R``. ``ValueError`` if ``R`` is below 1 or above the maximum.
    """
    money.require_int("total_amount", total_amount, low=0)
    bps = money.BASIS_POINTS
    money.require_int("advance_rate_percentage", advance_rate_percentage, low=0, high=bps)
    money.require_int("fee_percentage", fee_percentage, low=0, high=bps)
    maximum = total_amount * advance_rate_percentage // bps
    requested = maximum if requested_amount is None else requested_amount
    if type(requested) is not int:
        raise TypeError(f"requested_amount must be an int, not {type(requested).__name__}")
    if maximum < 1:
        raise ValueError(f"nothing of {total_amount} can be financed at this advance rate")
    if not 1 <= requested <= maximum:
        raise ValueError(f"requested_amount must be between 1 and {maximum}, not {requested}")
    fee = money.percent_of(requested, fee_percentage)
    return Quote(
        max_requested_amount=maximum,
        requested_amount=requested,
        fee_amount=fee,
        principal_amount=requested - fee,
        repayment_amount=requested,
    )


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


async def amounts_owed(
    session: AsyncSession, fis: Sequence[FinancingInvoice]
) -> dict[uuid.UUID, int]:
    """``amount_owed`` of each of ``fis`` (by financing invoice id), one statement per
    document type."""
    owed = {fi.id: fi.total_amount for fi in fis}
    for document in (Receivable, Payable):
        kind = "receivable" if document is Receivable else "payable"
        mine = [fi for fi in fis if fi.type == kind]
        if not mine:
            continue
        ids = list(dict.fromkeys(fi.invoice_id for fi in mine))
        entity_ids = list(dict.fromkeys(fi.entity_id for fi in mine))
        values = {f"id_{i}": v for i, v in enumerate(ids)}
        values.update((f"entity_id_{i}", v) for i, v in enumerate(entity_ids))
        rows = await _owed(document, len(ids), len(entity_ids)).rows(session, values)
        found = {(id_, entity_id): (total, paid) for id_, entity_id, total, paid in rows}
        for fi in mine:
            row = found.get((fi.invoice_id, fi.entity_id))
            if row is not None and row[0] is not None:
                due = int(row[0]) - int(row[1])
                owed[fi.id] = max(0, min(fi.total_amount, due))
    return owed


@functools.lru_cache(maxsize=64)
def _owed(document: type[Receivable | Payable], ids: int, entities: int) -> Prepared:
    """What documents still owe, for ``ids`` documents of ``entities`` entities, built once
    per shape (a confirmation has at most ten of one entity)."""
    id_type, entity_type = document.id.type, document.entity_id.type
    return Prepared(
        select(document.id, document.entity_id, document.total_amount, document.amount_paid).where(
            document.id.in_([bindparam(f"id_{i}", type_=id_type) for i in range(ids)]),
            document.entity_id.in_(
                [bindparam(f"entity_id_{i}", type_=entity_type) for i in range(entities)]
            ),
        )
    )


def quote(owed: int, plan: PricingPlan, *, requested_amount: int | None = None) -> Quote:
    """``price`` of ``plan`` on the amount owed: the maximum is
    ``floor(owed * advance_rate / 10000)``. ``ValueError`` for an amount outside ``1 … max``."""
    return price(
        owed,
        advance_rate_percentage=plan.advance_rate_percentage,
        fee_percentage=plan.fee_percentage,
        requested_amount=requested_amount,
    )
