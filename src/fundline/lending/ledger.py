"""The lender's double-entry ledger.

Every movement of money is a journal entry whose postings sum to zero: a debit is positive,
a credit negative. Four accounts:

- ``cash``: the lender's money (credited when an advance is paid out, debited on repayment);
- ``financed_receivable``: what businesses owe; per financing invoice its postings sum to the
  outstanding balance;
- ``fee_income``: fees, recognised when an invoice is funded;
- ``credit_losses``: what was written off.

Funding an invoice posts a disbursement (receivable + principal, cash - principal) and a fee
(receivable + fee, fee income - fee), so the receivable is the repayment amount. A repayment
moves cash in against the receivable; a write-off moves the rest of the receivable to losses.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.models import FinancingInvoice, FinancingOffer, JournalEntry, Posting
from fundline.models.financing import WCInvoiceStatus

CASH = "cash"
FINANCED_RECEIVABLE = "financed_receivable"
FEE_INCOME = "fee_income"
CREDIT_LOSSES = "credit_losses"
ACCOUNTS = (CASH, FINANCED_RECEIVABLE, FEE_INCOME, CREDIT_LOSSES)
KINDS = ("disbursement", "fee", "repayment", "write_off")


class LedgerError(Exception):
    """A journal entry that must not be written (a bug, never a client's mistake)."""


async def post(
    session: AsyncSession,
    *,
    entity_id: uuid.UUID,
    financing_invoice_id: uuid.UUID | None,
    kind: str,
    currency: str,
    memo: str,
    lines: Sequence[tuple[str, int]],
) -> JournalEntry:
    """Write one balanced journal entry; ``LedgerError`` if it does not sum to zero."""
    if kind not in KINDS:
        raise LedgerError(f"unknown journal entry kind {kind!r}")
    if not lines:
        raise LedgerError("a journal entry needs postings")
    for account, amount in lines:
        if account not in ACCOUNTS:
            raise LedgerError(f"unknown account {account!r}")
        if type(amount) is not int or amount == 0:
            raise LedgerError(f"posting to {account} must be a non-zero int, not {amount!r}")
    if sum(amount for _, amount in lines) != 0:
        raise LedgerError(f"unbalanced {kind} entry: postings sum to {sum(a for _, a in lines)}")
    entry = JournalEntry(
        entity_id=entity_id,
        financing_invoice_id=financing_invoice_id,
        kind=kind,
        currency=currency,
        memo=memo[:255],
    )
    session.add(entry)
    await session.flush()
    session.add_all(
        Posting(
            entry_id=entry.id,
            financing_invoice_id=financing_invoice_id,
            account=account,
            amount=amount,
            currency=currency,
        )
        for account, amount in lines
    )
    await session.flush()
    return entry


async def outstanding(session: AsyncSession, financing_invoice_id: uuid.UUID) -> int:
    """What the invoice still owes per the ledger: the sum of its receivable postings."""
    total = await session.scalar(
        select(func.coalesce(func.sum(Posting.amount), 0)).where(
            Posting.financing_invoice_id == financing_invoice_id,
            Posting.account == FINANCED_RECEIVABLE,
        )
    )
    return int(total or 0)


async def balances(
    session: AsyncSession, *, entity_id: uuid.UUID | None = None
) -> dict[tuple[str, str], int]:
    """Each ``(account, currency)`` balance, over all entities or one."""
    stmt = select(Posting.account, Posting.currency, func.sum(Posting.amount)).group_by(
        Posting.account, Posting.currency
    )
    if entity_id is not None:
        stmt = stmt.join(JournalEntry, JournalEntry.id == Posting.entry_id).where(
            JournalEntry.entity_id == entity_id
        )
    rows = await session.execute(stmt)
    return {(account, currency): int(total) for account, currency, total in rows}


def _mismatch(
    fi_id: uuid.UUID, status: WCInvoiceStatus | None, booked: int, expected: int
) -> dict[str, Any]:
    return {
        "kind": "outstanding_mismatch",
        "financing_invoice_id": str(fi_id),
        "status": status,
        "ledger": booked,
        "expected": expected,
    }


def expected_outstanding(fi: FinancingInvoice) -> int:
    """What the invoice's state says it owes: its repayment less repayments, until closed.

    Closed means paid, rejected or written off (``closed_at`` set); unfunded owes nothing.
    """
    if fi.funded_at is None or fi.closed_at is not None:
        return 0
    return (fi.repayment_amount or 0) - fi.repaid_amount


async def reconcile(session: AsyncSession) -> list[dict[str, Any]]:
    """Every difference between the ledger and the state of invoices and offers.

    Kinds: ``unbalanced_entry`` (postings not summing to zero), ``outstanding_mismatch`` (an
    invoice's receivable postings against ``expected_outstanding``), ``offer_outstanding_mismatch``
    and ``offer_reserved_mismatch`` (an offer's counters against its invoices). Empty when
    everything agrees.
    """
    differences = await _unbalanced_entries(session)
    mismatches, outstanding_by_offer, reserved_by_offer = await _invoice_differences(session)
    differences += mismatches
    differences += await _offer_differences(session, outstanding_by_offer, reserved_by_offer)
    return differences


async def _unbalanced_entries(session: AsyncSession) -> list[dict[str, Any]]:
    """Journal entries whose postings do not sum to zero."""
    unbalanced = await session.execute(
        select(Posting.entry_id, func.sum(Posting.amount))
        .group_by(Posting.entry_id)
        .having(func.sum(Posting.amount) != 0)
    )
    return [
        {"kind": "unbalanced_entry", "entry_id": str(entry_id), "difference": int(total)}
        for entry_id, total in unbalanced
    ]


async def _invoice_differences(
    session: AsyncSession,
) -> tuple[list[dict[str, Any]], dict[uuid.UUID, int], dict[uuid.UUID, int]]:
    """Each invoice's receivable postings against what it owes; and, per offer, what its
    invoices owe and what its NEW invoices reserve, for ``_offer_differences``."""
    differences: list[dict[str, Any]] = []
    ledger = dict(
        (
            await session.execute(
                select(Posting.financing_invoice_id, func.sum(Posting.amount))
                .where(Posting.account == FINANCED_RECEIVABLE)
                .group_by(Posting.financing_invoice_id)
            )
        ).all()
    )
    offer_outstanding: dict[uuid.UUID, int] = {}
    offer_reserved: dict[uuid.UUID, int] = {}
    invoices = await session.scalars(
        select(FinancingInvoice).where(
            FinancingInvoice.funded_at.is_not(None)
            | (FinancingInvoice.status == WCInvoiceStatus.NEW)
        )
    )
    for fi in invoices:
        expected = expected_outstanding(fi)
        booked = int(ledger.pop(fi.id, 0) or 0)
        if booked != expected:
            differences.append(_mismatch(fi.id, fi.status, booked, expected))
        offer_outstanding[fi.offer_id] = offer_outstanding.get(fi.offer_id, 0) + expected
        if fi.status == WCInvoiceStatus.NEW:
            reserved = fi.requested_amount or 0
            offer_reserved[fi.offer_id] = offer_reserved.get(fi.offer_id, 0) + reserved
    # What is left has receivable postings but was never funded.
    differences.extend(
        _mismatch(fi_id, None, int(total), 0)
        for fi_id, total in ledger.items()
        if fi_id is not None and total
    )
    return differences, offer_outstanding, offer_reserved


async def _offer_differences(
    session: AsyncSession,
    offer_outstanding: dict[uuid.UUID, int],
    offer_reserved: dict[uuid.UUID, int],
) -> list[dict[str, Any]]:
    """Each offer's stored counters against the sums over its invoices."""
    differences: list[dict[str, Any]] = []
    for offer in await session.scalars(select(FinancingOffer)):
        for kind, counted, stored in (
            ("offer_outstanding_mismatch", offer_outstanding, offer.outstanding_amount),
            ("offer_reserved_mismatch", offer_reserved, offer.reserved_amount),
        ):
            expected = counted.get(offer.id, 0)
            if stored != expected:
                differences.append(
                    {
                        "kind": kind,
                        "offer_id": str(offer.id),
                        "stored": stored,
                        "expected": expected,
                    }
                )
    return differences
