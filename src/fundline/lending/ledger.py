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

from sqlalchemy import ColumnElement, case, func, select
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

    Each kind is one SQL statement that compares sums in the database and returns only the
    rows that disagree: the whole book is read once per statement, never brought into Python.
    """
    differences = await _unbalanced_entries(session)
    differences += await _invoice_differences(session)
    differences += await _offer_differences(session)
    return differences


async def _unbalanced_entries(session: AsyncSession) -> list[dict[str, Any]]:
    """Journal entries whose postings do not sum to zero."""
    unbalanced = await session.execute(
        select(Posting.entry_id, func.sum(Posting.amount))
        .group_by(Posting.entry_id)
        .having(func.sum(Posting.amount) != 0)
        .order_by(Posting.entry_id)
    )
    return [
        {"kind": "unbalanced_entry", "entry_id": str(entry_id), "difference": int(total)}
        for entry_id, total in unbalanced
    ]


def _expected() -> ColumnElement[int]:
    """``expected_outstanding`` in SQL."""
    fi = FinancingInvoice
    return case(
        ((fi.funded_at.is_(None)) | (fi.closed_at.is_not(None)), 0),
        else_=func.coalesce(fi.repayment_amount, 0) - fi.repaid_amount,
    )


# The invoices the ledger is checked against: funded ones, and NEW ones (which reserve).
_CHECKED = FinancingInvoice.funded_at.is_not(None) | (
    FinancingInvoice.status == WCInvoiceStatus.NEW
)


def _booked() -> Any:
    """Each invoice's receivable postings, summed."""
    return (
        select(Posting.financing_invoice_id.label("id"), func.sum(Posting.amount).label("booked"))
        .where(Posting.account == FINANCED_RECEIVABLE, Posting.financing_invoice_id.is_not(None))
        .group_by(Posting.financing_invoice_id)
        .subquery()
    )


async def _invoice_differences(session: AsyncSession) -> list[dict[str, Any]]:
    """Each checked invoice's receivable postings against what it owes; then receivable
    postings of invoices that were never funded (or no longer exist)."""
    fi, booked = FinancingInvoice, _booked()
    held = func.coalesce(booked.c.booked, 0)
    owing = await session.execute(
        select(fi.id, fi.status, held, _expected())
        .outerjoin(booked, booked.c.id == fi.id)
        .where(_CHECKED, held != _expected())
        .order_by(fi.id)
    )
    differences = [
        _mismatch(fi_id, status, int(ledger), int(expected))
        for fi_id, status, ledger, expected in owing
    ]
    strays = await session.execute(
        select(booked.c.id, booked.c.booked)
        .outerjoin(fi, fi.id == booked.c.id)
        .where(booked.c.booked != 0, fi.id.is_(None) | ~_CHECKED)
        .order_by(booked.c.id)
    )
    differences += [_mismatch(fi_id, None, int(total), 0) for fi_id, total in strays]
    return differences


async def _offer_differences(session: AsyncSession) -> list[dict[str, Any]]:
    """Each offer's stored counters against the sums over its invoices."""
    fi = FinancingInvoice
    counted = (
        select(
            fi.offer_id.label("offer_id"),
            func.sum(_expected()).label("outstanding"),
            func.sum(
                case(
                    (fi.status == WCInvoiceStatus.NEW, func.coalesce(fi.requested_amount, 0)),
                    else_=0,
                )
            ).label("reserved"),
        )
        .where(_CHECKED)
        .group_by(fi.offer_id)
        .subquery()
    )
    outstanding = func.coalesce(counted.c.outstanding, 0)
    reserved = func.coalesce(counted.c.reserved, 0)
    rows = await session.execute(
        select(
            FinancingOffer.id,
            FinancingOffer.outstanding_amount,
            outstanding,
            FinancingOffer.reserved_amount,
            reserved,
        )
        .outerjoin(counted, counted.c.offer_id == FinancingOffer.id)
        .where(
            (FinancingOffer.outstanding_amount != outstanding)
            | (FinancingOffer.reserved_amount != reserved)
        )
        .order_by(FinancingOffer.id)
    )
    differences: list[dict[str, Any]] = []
    for offer_id, stored_out, expected_out, stored_res, expected_res in rows:
        for kind, stored, expected in (
            ("offer_outstanding_mismatch", stored_out, int(expected_out)),
            ("offer_reserved_mismatch", stored_res, int(expected_res)),
        ):
            if stored != expected:
                differences.append(
                    {
                        "kind": kind,
                        "offer_id": str(offer_id),
                        "stored": stored,
                        "expected": expected,
                    }
                )
    return differences
