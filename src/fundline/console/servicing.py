"""``/lender/servicing``: what falls due, what is late, and the two actions on them.

Upcoming repayments are the next ``UPCOMING_ROWS`` unpaid instalments of FUNDED invoices due
from today (business time, ``clock.today()``) through the next ``UPCOMING_DAYS`` days, grouped
by due date, with each date's count and sum of them. Late invoices are LATE ones and, apart,
DEFAULTED ones not yet written off, the most overdue first: days past due count from the
oldest unpaid instalment's due date.

Every list is read in the order of an index of the unpaid instalments (by due date) and
stops at its bound, so the page costs the same over a book of any size: it never adds up the
whole window or every late invoice (the totals over the whole book are the portfolio's).

Recording a repayment and writing off go through ``actions.on_invoice`` (the lender API's
service functions and their audit entries); the page answers with what was done and the
ledger postings it made.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVarTuple

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy import ColumnElement, Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.console import actions
from fundline.console.names import business_name
from fundline.console.pages import PREFIX, Console, ConsoleDep
from fundline.kit import clock, money
from fundline.kit.routing import TransactionalRoute
from fundline.models import Entity, FinancingBusiness, FinancingInvoice, Instalment
from fundline.models.financing import WCInvoiceStatus

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=TransactionalRoute)

UPCOMING_DAYS = 60
UPCOMING_ROWS = 200
LATE_ROWS = 200

Row = TypeVarTuple("Row")


@dataclass(frozen=True)
class Business:
    id: uuid.UUID | None
    name: str


@dataclass(frozen=True)
class DueRow:
    instalment_id: uuid.UUID
    sequence: int
    due: int  # what is still due on this instalment
    financing_invoice_id: uuid.UUID
    document_id: str
    currency: str
    business: Business

    @property
    def prefill(self) -> str:
        """The row's repayment amount: this instalment's (a repayment pays the earliest
        unpaid instalment first, so it meets this one once the earlier ones are paid)."""
        return _major(self.due, self.currency)


@dataclass
class DueDay:
    due_date: date
    currency: str
    count: int
    amount: int
    rows: list[DueRow]


@dataclass(frozen=True)
class LateRow:
    financing_invoice_id: uuid.UUID
    document_id: str
    status: str
    currency: str
    owed: int  # repayment_amount - repaid_amount
    oldest_unpaid: date | None
    days_past_due: int | None
    business: Business

    @property
    def prefill(self) -> str:
        return _major(self.owed, self.currency)


@dataclass(frozen=True)
class Total:
    currency: str
    count: int
    amount: int


@dataclass(frozen=True)
class LateTable:
    status: str
    rows: list[LateRow]
    totals: list[Total]  # over every such invoice, not only the rows shown

    @property
    def count(self) -> int:
        return sum(total.count for total in self.totals)


@router.get("/servicing")
async def servicing_page(console: ConsoleDep) -> HTMLResponse:
    """Upcoming repayments by due date, and late and defaulted invoices by days past due."""
    return await _render(console)


@router.post("/servicing/repayment")
async def record_repayment(console: ConsoleDep) -> HTMLResponse:
    """Record money received on a FUNDED or LATE invoice: less than it owes is a partial
    repayment; what it owes makes it PAID."""
    form = await console.form()
    fi = await _invoice(console.session, form.get("financing_invoice_id"))
    if fi is None:
        return await _render(console, [_not_found(form.get("financing_invoice_id"))])
    try:
        amount = _amount(form.get("amount"), fi.currency)
    except ValueError as exc:
        result = actions.Result(fi.document_id, False, str(exc), fi.id)
    else:
        result = await actions.on_invoice(console, fi.id, "record_repayment", amount=amount)
    return await _render(console, [result])


@router.post("/servicing/write_off")
async def write_off(console: ConsoleDep) -> HTMLResponse:
    """Book what a LATE or DEFAULTED invoice still owes as a credit loss."""
    form = await console.form()
    fi = await _invoice(console.session, form.get("financing_invoice_id"))
    if fi is None:
        return await _render(console, [_not_found(form.get("financing_invoice_id"))])
    return await _render(console, [await actions.on_invoice(console, fi.id, "write_off")])


async def _render(console: Console, results: list[actions.Result] | None = None) -> HTMLResponse:
    session, today = console.session, clock.today()
    until = today + timedelta(days=UPCOMING_DAYS)
    results = results or []
    return console.render(
        "servicing.html",
        today=today,
        until=until,
        upcoming=(upcoming := await _upcoming(session, today, until)),
        upcoming_totals=_upcoming_totals(upcoming),
        upcoming_full=sum(day.count for day in upcoming) >= UPCOMING_ROWS,
        upcoming_limit=UPCOMING_ROWS,
        late_tables=[
            await _late(session, WCInvoiceStatus.LATE, today),
            await _late(session, WCInvoiceStatus.DEFAULTED, today),
        ],
        late_limit=LATE_ROWS,
        results=results,
        entries=[entry for result in results for entry in result.entries],
    )


# --- upcoming repayments ---------------------------------------------------------------------


def _due() -> ColumnElement[int]:
    """What is still due on an instalment."""
    return Instalment.amount - Instalment.paid_amount


def _upcoming_where(stmt: Select[*Row], today: date, until: date) -> Select[*Row]:
    """Unpaid instalments of FUNDED invoices due from ``today`` through ``until``."""
    return stmt.join(
        FinancingInvoice, FinancingInvoice.id == Instalment.financing_invoice_id
    ).where(
        FinancingInvoice.status == WCInvoiceStatus.FUNDED,
        Instalment.paid_amount < Instalment.amount,
        Instalment.due_date >= today,
        Instalment.due_date <= until,
    )


async def _upcoming(session: AsyncSession, today: date, until: date) -> list[DueDay]:
    """The next ``UPCOMING_ROWS`` instalments of the window, by due date, each date with the
    count and sum of its instalments listed."""
    days: dict[tuple[date, str], DueDay] = {}
    rows = await session.execute(
        _with_business(
            _upcoming_where(
                select(
                    Instalment.id,
                    Instalment.sequence,
                    Instalment.due_date,
                    _due(),
                    FinancingInvoice.id,
                    FinancingInvoice.document_id,
                    FinancingInvoice.currency,
                    *_BUSINESS_COLUMNS,
                ),
                today,
                until,
            )
        )
        # The index's order (``ix_financing_instalments_unpaid_due``): the first rows are read,
        # not the whole window sorted.
        .order_by(Instalment.due_date, Instalment.id)
        .limit(UPCOMING_ROWS)
    )
    for inst_id, sequence, due_date, due, fi_id, document_id, currency, bid, name in rows:
        day = days.setdefault((due_date, currency), DueDay(due_date, currency, 0, 0, []))
        day.count += 1
        day.amount += int(due)
        day.rows.append(
            DueRow(inst_id, sequence, int(due), fi_id, document_id, currency, Business(bid, name))
        )
    return sorted(days.values(), key=lambda d: (d.due_date, d.currency))


def _upcoming_totals(days: list[DueDay]) -> list[Total]:
    """What the listed instalments come to, per currency."""
    totals: dict[str, Total] = {}
    for day in days:
        found = totals.get(day.currency, Total(day.currency, 0, 0))
        totals[day.currency] = Total(
            day.currency, found.count + day.count, found.amount + day.amount
        )
    return [totals[c] for c in sorted(totals)]


# --- late invoices ---------------------------------------------------------------------------


def _owed() -> ColumnElement[int]:
    return func.coalesce(FinancingInvoice.repayment_amount, 0) - FinancingInvoice.repaid_amount


def _late_where(stmt: Select[*Row], status: WCInvoiceStatus) -> Select[*Row]:
    # A written-off invoice (closed) is DEFAULTED for good and owes nothing any more. The
    # status is a literal, so that even a prepared statement's generic plan reads the partial
    # index of what is owed (``ix_financing_invoices_owing``) rather than the table.
    return stmt.where(
        text(f"financing_invoices.status = '{status.value}'"),
        FinancingInvoice.closed_at.is_(None),
    )


async def _late(session: AsyncSession, status: WCInvoiceStatus, today: date) -> LateTable:
    """The ``status`` invoices by their oldest unpaid instalment, the oldest first: first the
    ``LATE_ROWS`` most overdue, from the indexes alone (what is owed; each invoice's unpaid
    instalments by due date), then those rows' details."""
    oldest = (
        select(func.min(Instalment.due_date))
        .where(
            Instalment.financing_invoice_id == FinancingInvoice.id,
            Instalment.paid_amount < Instalment.amount,
        )
        .correlate(FinancingInvoice)
        .scalar_subquery()
    )
    first = list(
        await session.execute(
            _late_where(select(FinancingInvoice.id, oldest.label("oldest")), status)
            .order_by(oldest.is_(None), oldest, FinancingInvoice.id)
            .limit(LATE_ROWS)
        )
    )
    details: dict[uuid.UUID, tuple[str, str, int, uuid.UUID | None, str]] = {
        fi_id: (document_id, currency, int(owed), business_id, name)
        for fi_id, document_id, currency, owed, business_id, name in await session.execute(
            _with_business(
                select(
                    FinancingInvoice.id,
                    FinancingInvoice.document_id,
                    FinancingInvoice.currency,
                    _owed(),
                    *_BUSINESS_COLUMNS,
                )
            ).where(FinancingInvoice.id.in_([fi_id for fi_id, _ in first]))
        )
    }
    late = []
    for fi_id, oldest_unpaid in first:
        document_id, currency, owed, business_id, name = details[fi_id]
        late.append(
            LateRow(
                fi_id,
                document_id,
                status.value,
                currency,
                owed,
                oldest_unpaid,
                None if oldest_unpaid is None else (today - oldest_unpaid).days,
                Business(business_id, name),
            )
        )
    totals = await session.execute(
        _late_where(select(FinancingInvoice.currency, func.count(), func.sum(_owed())), status)
        .group_by(FinancingInvoice.currency)
        .order_by(FinancingInvoice.currency)
    )
    return LateTable(
        status.value,
        late,
        [Total(currency, int(count), int(amount)) for currency, count, amount in totals],
    )


# --- shared ----------------------------------------------------------------------------------

_BUSINESS_COLUMNS = (FinancingBusiness.id, business_name())


def _with_business(stmt: Select[*Row]) -> Select[*Row]:
    """``stmt`` (reading financing invoices) with the invoice's business and entity."""
    return stmt.outerjoin(
        FinancingBusiness, FinancingBusiness.entity_id == FinancingInvoice.entity_id
    ).join(Entity, Entity.id == FinancingInvoice.entity_id)


async def _invoice(session: AsyncSession, text: str | None) -> FinancingInvoice | None:
    try:
        fi_id = uuid.UUID(text or "")
    except ValueError:
        return None
    return await session.get(FinancingInvoice, fi_id)


def _major(amount: int, currency: str) -> str:
    """What an amount input is prefilled with: ``1234.50``, in the form ``_amount`` reads."""
    return str(money.to_major(amount, currency))


def _not_found(text: str | None) -> actions.Result:
    return actions.Result(text or "Financing invoice", False, "no such financing invoice")


def _amount(text: str | None, currency: str) -> int:
    """Minor units of the amount received as typed (``money.parse_major``), above zero."""
    if not (text or "").strip():
        raise ValueError("Enter the amount received")
    amount = money.parse_major(text or "", currency)
    if amount <= 0:
        raise ValueError("Enter the amount received, more than zero")
    return amount
