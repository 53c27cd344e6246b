"""The console's portfolio: the whole book in one currency, as figures, charts and CSV.

``GET /lender/portfolio?currency=`` shows, for the chosen currency (by default the one with
the largest limits, else USD):

- totals: limits, reserved and available on the lines in use (``CURRENT`` and ``LATE``
  offers; available per line as ``FinancingOffer.available_amount``, never below zero),
  outstanding (what funded invoices still owe: ``repayment_amount - repaid_amount`` over
  ``FUNDED``, ``LATE`` and ``DEFAULTED`` invoices not yet written off, the rule of
  ``ledger.expected_outstanding``), fees earned (the ``fee_income`` account's postings, sign
  flipped) and losses (the ``credit_losses`` account's postings: what was written off);
- the status funnel: count, invoice total and financed amount per status;
- outstanding over time: the ``financed_receivable`` account's postings summed by the month
  of their journal entry, over the last 12 months, and added up month after month (a running
  sum from the balance before the first month);
- late invoices by days past due: ``LATE`` and ``DEFAULTED`` invoices still owing, by how long
  ago their oldest unpaid instalment fell due (business date ``clock.today()``);
- the largest exposures: the ten businesses that owe the most.

``GET /lender/portfolio/{name}.csv?currency=`` gives each table as CSV. Every figure is a SQL
aggregate (``GROUP BY``, ``SUM``, ``CASE``), written the same for PostgreSQL and SQLite: months
and days-past-due buckets are ``CASE`` expressions over bounds computed here, not a
dialect's date functions.

Over a large book these aggregates read millions of rows (about 1 s over 1M financing
invoices, most of it the receivable by month; docs/performance.md, "Lender console"), so
figures that took longer than ``Snapshots.live_under`` to compute are kept and served for
``max_age``, then computed again in the background while the kept ones are still served:
the page says when its figures are from. A small book is computed for every request.
"""

from __future__ import annotations

import csv
import io
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import ColumnElement, and_, case, desc, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from fundline.console import charts, snapshots
from fundline.console.names import business_name
from fundline.console.pages import PREFIX, ConsoleDep
from fundline.kit import clock, money
from fundline.kit.errors import NotFound
from fundline.kit.routing import TransactionalRoute
from fundline.lending import ledger
from fundline.models import (
    Entity,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    Instalment,
    JournalEntry,
    Posting,
)
from fundline.models.financing import WCInvoiceStatus, WCOfferStatus

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=TransactionalRoute)
log = logging.getLogger(__name__)

S = WCInvoiceStatus
FUNNEL = (S.DRAFT, S.NEW, S.FUNDED, S.LATE, S.PAID, S.DEFAULTED, S.REJECTED)
OWING = (S.FUNDED, S.LATE, S.DEFAULTED)
LINES_IN_USE = (WCOfferStatus.CURRENT, WCOfferStatus.LATE)
DEFAULT_CURRENCY = "USD"
MONTHS = 12
EXPOSURES = 10
# Days past due: (label, the most days in the bucket); the last bucket has no upper end.
DASH = "\u2013"
AGING = (
    ("Not yet past due", 0),
    (f"1{DASH}30 days", 30),
    (f"31{DASH}60 days", 60),
    (f"61{DASH}90 days", 90),
    ("Over 90 days", None),
)
TABLES = ("totals", "funnel", "outstanding", "aging", "exposures")
# The totals, in the page's order: (the ``Totals`` field and the CSV's name, the page's label).
TOTALS = (
    ("limits", "Limits"),
    ("reserved", "Reserved"),
    ("outstanding", "Outstanding"),
    ("available", "Available"),
    ("fees_earned", "Fees earned"),
    ("losses", "Losses"),
)


# --- the figures ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    limits: int
    reserved: int
    available: int
    outstanding: int
    owing_invoices: int
    fees_earned: int
    losses: int


@dataclass(frozen=True)
class StatusRow:
    status: WCInvoiceStatus
    count: int
    invoice_total: int
    financed: int  # requested amounts (none before confirmation)


@dataclass(frozen=True)
class MonthRow:
    month: date  # its first day
    added: int  # receivable postings that raised it: advances and fees
    reduced: int  # those that lowered it (as a positive amount): repayments and write-offs
    balance: int  # at the month's end (for the current month: so far)


@dataclass(frozen=True)
class AgingRow:
    label: str
    count: int
    owed: int


@dataclass(frozen=True)
class Exposure:
    business_id: uuid.UUID | None  # None only for an entity without a financing business
    entity_id: uuid.UUID
    name: str
    invoices: int
    outstanding: int


@dataclass(frozen=True)
class Portfolio:
    currency: str
    as_of: datetime  # business time of the computation
    seconds: float  # how long it took
    totals: Totals
    funnel: list[StatusRow]
    opening_balance: int  # the receivable before the first month
    months: list[MonthRow]
    ledger_receivable: int  # the financed receivable account's balance, all postings
    aging: list[AgingRow]
    exposures: list[Exposure]


def _owed() -> ColumnElement[int]:
    return func.coalesce(FinancingInvoice.repayment_amount, 0) - FinancingInvoice.repaid_amount


def _owing(currency: str, statuses: Sequence[WCInvoiceStatus] = OWING) -> ColumnElement[bool]:
    """Invoices that still owe: funded (in ``statuses``) and not closed by a write-off.

    The statuses are written into the SQL, not bound: PostgreSQL uses the partial index
    ``ix_financing_invoices_owing`` only where it can prove the index's predicate, and it
    cannot from a prepared statement's parameters (a generic plan)."""
    listed = ", ".join(f"'{WCInvoiceStatus(status).value}'" for status in statuses)
    return and_(
        FinancingInvoice.currency == currency,
        text(f"financing_invoices.status IN ({listed})"),
        FinancingInvoice.closed_at.is_(None),
    )


def _sum(expression: ColumnElement[Any] | InstrumentedAttribute[int]) -> ColumnElement[int]:
    return func.coalesce(func.sum(expression), 0)


async def currencies(session: AsyncSession) -> list[tuple[str, int]]:
    """Each currency of a credit line, with its limits in use, largest first."""
    in_use = FinancingOffer.status.in_(LINES_IN_USE)
    limits = _sum(case((in_use, FinancingOffer.total_amount), else_=0))
    rows = await session.execute(
        select(FinancingOffer.currency, limits.label("limits"))
        .group_by(FinancingOffer.currency)
        .order_by(desc("limits"), FinancingOffer.currency)
    )
    return [(currency, int(total)) for currency, total in rows]


async def totals(
    session: AsyncSession, currency: str, *, outstanding: int, owing_invoices: int
) -> Totals:
    """The lines' figures and the ledger's, with what the invoices owe (from ``exposures``)."""
    offer = FinancingOffer
    in_use = offer.status.in_(LINES_IN_USE)
    headroom = offer.total_amount - offer.reserved_amount - offer.outstanding_amount
    lines = (
        await session.execute(
            select(
                _sum(case((in_use, offer.total_amount), else_=0)),
                _sum(case((in_use, offer.reserved_amount), else_=0)),
                _sum(case((and_(in_use, headroom > 0), headroom), else_=0)),
            ).where(offer.currency == currency)
        )
    ).one()
    accounts = dict(
        (
            await session.execute(
                select(Posting.account, func.sum(Posting.amount))
                .where(
                    Posting.currency == currency,
                    Posting.account.in_((ledger.FEE_INCOME, ledger.CREDIT_LOSSES)),
                )
                .group_by(Posting.account)
            )
        ).all()
    )
    return Totals(
        limits=int(lines[0]),
        reserved=int(lines[1]),
        available=int(lines[2]),
        outstanding=outstanding,
        owing_invoices=owing_invoices,
        # Fee income is credited (negative): earned fees are its balance, sign flipped.
        fees_earned=-int(accounts.get(ledger.FEE_INCOME) or 0),
        losses=int(accounts.get(ledger.CREDIT_LOSSES) or 0),
    )


async def funnel(session: AsyncSession, currency: str) -> list[StatusRow]:
    fi = FinancingInvoice
    rows = await session.execute(
        select(
            fi.status,
            func.count(),
            _sum(fi.total_amount),
            _sum(func.coalesce(fi.requested_amount, 0)),
        )
        .where(fi.currency == currency)
        .group_by(fi.status)
    )
    found = {status: (int(n), int(total), int(financed)) for status, n, total, financed in rows}
    return [StatusRow(status, *found.get(status, (0, 0, 0))) for status in FUNNEL]


def month_starts(now: datetime, count: int = MONTHS) -> list[datetime]:
    """The first instants (UTC) of the ``count`` months up to ``now``'s, and of the next one."""
    year, month = now.year, now.month
    index = year * 12 + month - 1 - (count - 1)
    return [
        datetime((index + k) // 12, (index + k) % 12 + 1, 1, tzinfo=UTC) for k in range(count + 1)
    ]


async def outstanding_by_month(
    session: AsyncSession, currency: str, now: datetime
) -> tuple[int, list[MonthRow], int]:
    """The receivable month by month: (the balance before the first month, each month's
    movements and closing balance, the account's balance over every posting).

    One pass over the receivable's postings, each in the month of its journal entry
    (``CASE`` over the month bounds: bucket 0 before the first month, 1 … 12 the months,
    13 anything after, which only a clock moved back could leave); the running sum is added
    up here over those 14 sums."""
    bounds = month_starts(now)
    bucket = case(
        *((JournalEntry.created_at < bound, index) for index, bound in enumerate(bounds)),
        else_=len(bounds),
    ).label("bucket")
    amount = Posting.amount
    rows = await session.execute(
        select(
            bucket,
            _sum(case((amount > 0, amount), else_=0)),
            _sum(case((amount < 0, -amount), else_=0)),
        )
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(Posting.account == ledger.FINANCED_RECEIVABLE, Posting.currency == currency)
        .group_by("bucket")
    )
    sums = {int(b): (int(added), int(reduced)) for b, added, reduced in rows}
    opening = sums.get(0, (0, 0))
    balance = opening[0] - opening[1]
    months = []
    for index, start in enumerate(bounds[:-1], start=1):
        added, reduced = sums.get(index, (0, 0))
        balance += added - reduced
        months.append(MonthRow(start.date(), added, reduced, balance))
    later = sums.get(len(bounds), (0, 0))
    return opening[0] - opening[1], months, balance + later[0] - later[1]


async def aging(session: AsyncSession, currency: str, today: date) -> list[AgingRow]:
    """Late and defaulted invoices still owing, by the days since their oldest unpaid
    instalment fell due.

    Each invoice's bucket comes from one look at its instalments (a correlated subquery on
    ``ix_financing_instalments_unpaid_invoice``, whose first entry is the oldest unpaid one):
    bucket k holds the invoices whose oldest unpaid instalment fell due on or after today
    less the bucket's most days; none unpaid counts as not yet past due."""
    fi = FinancingInvoice
    due = func.min(Instalment.due_date)
    whens: list[tuple[ColumnElement[bool], int]] = [(due.is_(None), 0)]
    whens += [
        (due >= today - timedelta(days=most), index)
        for index, (_, most) in enumerate(AGING)
        if most is not None
    ]
    bucket = (
        select(case(*whens, else_=len(AGING) - 1))
        .where(
            Instalment.financing_invoice_id == fi.id,
            Instalment.paid_amount < Instalment.amount,
        )
        .scalar_subquery()
    )
    late = (
        select(bucket.label("bucket"), _owed().label("owed"))
        .where(_owing(currency, (S.LATE, S.DEFAULTED)), _owed() > 0)
        .subquery()
    )
    rows = await session.execute(
        select(late.c.bucket, func.count(), _sum(late.c.owed)).group_by(late.c.bucket)
    )
    found = {int(b): (int(n), int(owed)) for b, n, owed in rows}
    return [AgingRow(label, *found.get(index, (0, 0))) for index, (label, _) in enumerate(AGING)]


async def exposures(session: AsyncSession, currency: str) -> tuple[list[Exposure], int, int]:
    """The businesses that owe the most, largest first (ten at most), and what all invoices
    owe and how many owe it: one pass over the owing invoices, grouped by business, the
    totals a window over all the groups (computed before the ``LIMIT``)."""
    fi = FinancingInvoice
    owed = _sum(_owed())
    top = (
        select(
            fi.entity_id,
            func.count().label("invoices"),
            owed.label("owed"),
            func.sum(owed).over().label("all_owed"),
            func.sum(func.count()).over().label("all_invoices"),
        )
        .where(_owing(currency))
        .group_by(fi.entity_id)
        .order_by(desc("owed"), fi.entity_id)
        .limit(EXPOSURES)
        .subquery()
    )
    rows = (
        await session.execute(
            select(
                FinancingBusiness.id,
                top.c.entity_id,
                business_name().label("name"),
                top.c.invoices,
                top.c.owed,
                top.c.all_owed,
                top.c.all_invoices,
            )
            .outerjoin(FinancingBusiness, FinancingBusiness.entity_id == top.c.entity_id)
            .outerjoin(Entity, Entity.id == top.c.entity_id)
            .order_by(top.c.owed.desc(), top.c.entity_id)
        )
    ).all()
    found = [
        Exposure(
            row.id,
            row.entity_id,
            row.name,
            int(row.invoices),
            int(row.owed),
        )
        for row in rows
    ]
    return found, int(rows[0].all_owed) if rows else 0, int(rows[0].all_invoices) if rows else 0


async def compute(session: AsyncSession, currency: str) -> Portfolio:
    """Every figure of the portfolio page for ``currency``, now."""
    started = time.perf_counter()
    now = clock.now()
    opening, months, receivable = await outstanding_by_month(session, currency, now)
    largest, outstanding, owing_invoices = await exposures(session, currency)
    return Portfolio(
        currency=currency,
        as_of=now,
        totals=await totals(
            session, currency, outstanding=outstanding, owing_invoices=owing_invoices
        ),
        funnel=await funnel(session, currency),
        opening_balance=opening,
        months=months,
        ledger_receivable=receivable,
        aging=await aging(session, currency, now.date()),
        exposures=largest,
        seconds=time.perf_counter() - started,
    )


# --- kept figures ----------------------------------------------------------------------------


class Snapshots(snapshots.Snapshots[Portfolio]):
    """The kept portfolio of each currency (``console/snapshots.py``)."""

    def __init__(self, *, max_age: float = 60.0, live_under: float = 0.5) -> None:
        super().__init__(compute, max_age=max_age, live_under=live_under)


def kept_portfolios(app: FastAPI) -> Snapshots:
    found = snapshots.for_app(app, "portfolio_snapshots", Snapshots)
    assert isinstance(found, Snapshots)
    return found


# --- the page and its CSV --------------------------------------------------------------------


CurrencyParam = Annotated[str | None, Query(max_length=3)]


async def _portfolio(
    console: ConsoleDep, currency: str | None
) -> tuple[snapshots.Kept[Portfolio], list[str]]:
    """The figures of the asked currency (or the default one) and the currencies to choose."""
    lines = await currencies(console.session)
    choices = [code for code, _ in lines]
    if currency is None or currency == "":
        currency = choices[0] if choices else DEFAULT_CURRENCY
    elif currency not in money.CURRENCIES:
        raise NotFound(f"{currency} is not a currency the console knows")
    if currency not in choices:
        choices.append(currency)
    app = console.request.app
    kept = await kept_portfolios(app).get(app.state.db, console.session, currency)
    return kept, choices


@router.get("/portfolio")
async def portfolio_page(console: ConsoleDep, currency: CurrencyParam = None) -> HTMLResponse:
    """The portfolio in one currency: totals, the status funnel, outstanding over time, late
    invoices by days past due and the largest exposures, each chart with its table and CSV."""
    kept, choices = await _portfolio(console, currency)
    portfolio = kept.value
    return console.render(
        "portfolio.html",
        p=portfolio,
        currencies=choices,
        tables={name: TABLE_ROWS[name](portfolio) for name in TABLES},
        charts=_charts(portfolio),
        kept=kept.kept,
    )


@router.get("/portfolio/{name}.csv")
async def portfolio_csv(console: ConsoleDep, name: str, currency: CurrencyParam = None) -> Response:
    """One table of the portfolio page as CSV (RFC 4180): amounts in minor units and in major
    units."""
    if name not in TABLES:
        raise NotFound(f"The portfolio has no table {name!r}; it has {', '.join(TABLES)}")
    portfolio = (await _portfolio(console, currency))[0].value
    header, rows = CSV_ROWS[name](portfolio)
    out = io.StringIO()
    writer = csv.writer(out)  # RFC 4180: CRLF line ends, fields quoted when they need it
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    filename = f"portfolio-{name}-{portfolio.currency}-{portfolio.as_of.date().isoformat()}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{filename}"',
            "cache-control": "no-store",
            "x-content-type-options": "nosniff",
        },
    )


def _cell(value: object) -> object:
    """A text cell a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``) gets a
    leading apostrophe: a business name is the partner's input. Numbers are left alone."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


# Each table as (header, rows), the page's and the CSV's: the same numbers.
Row = Sequence[object]


def _major(amount: int, currency: str) -> str:
    return str(money.to_major(amount, currency))


def _totals_csv(p: Portfolio) -> tuple[Row, Iterable[Row]]:
    return ("figure", "currency", "amount_minor", "amount_major"), (
        (key, p.currency, amount, _major(amount, p.currency)) for key, _, amount in _totals_rows(p)
    )


def _totals_rows(p: Portfolio) -> list[tuple[str, str, int]]:
    return [(key, label, getattr(p.totals, key)) for key, label in TOTALS]


def _funnel_csv(p: Portfolio) -> tuple[Row, Iterable[Row]]:
    c = p.currency
    header = (
        "status", "count", "currency", "invoice_total_minor", "invoice_total_major",
        "financed_minor", "financed_major",
    )  # fmt: skip
    return header, (
        (
            r.status.value,
            r.count,
            c,
            r.invoice_total,
            _major(r.invoice_total, c),
            r.financed,
            _major(r.financed, c),
        )
        for r in p.funnel
    )


def _outstanding_csv(p: Portfolio) -> tuple[Row, Iterable[Row]]:
    c = p.currency
    header = (
        "month", "currency", "added_minor", "added_major", "reduced_minor", "reduced_major",
        "balance_minor", "balance_major",
    )  # fmt: skip
    return header, (
        (
            f"{m.month:%Y-%m}",
            c,
            m.added,
            _major(m.added, c),
            m.reduced,
            _major(m.reduced, c),
            m.balance,
            _major(m.balance, c),
        )
        for m in p.months
    )


def _aging_csv(p: Portfolio) -> tuple[Row, Iterable[Row]]:
    c = p.currency
    return ("days_past_due", "count", "currency", "owed_minor", "owed_major"), (
        (r.label, r.count, c, r.owed, _major(r.owed, c)) for r in p.aging
    )


def _exposures_csv(p: Portfolio) -> tuple[Row, Iterable[Row]]:
    c = p.currency
    header = (
        "rank", "business_id", "entity_id", "business", "invoices", "currency", "outstanding_minor",
        "outstanding_major",
    )  # fmt: skip
    return header, (
        (
            rank,
            str(e.business_id or ""),
            str(e.entity_id),
            e.name,
            e.invoices,
            c,
            e.outstanding,
            _major(e.outstanding, c),
        )
        for rank, e in enumerate(p.exposures, start=1)
    )


CSV_ROWS: dict[str, Callable[[Portfolio], tuple[Row, Iterable[Row]]]] = {
    "totals": _totals_csv,
    "funnel": _funnel_csv,
    "outstanding": _outstanding_csv,
    "aging": _aging_csv,
    "exposures": _exposures_csv,
}
TABLE_ROWS: dict[str, Callable[[Portfolio], Any]] = {
    "totals": _totals_rows,
    "funnel": lambda p: p.funnel,
    "outstanding": lambda p: p.months,
    "aging": lambda p: p.aging,
    "exposures": lambda p: p.exposures,
}


def _charts(p: Portfolio) -> dict[str, Any]:
    def show(amount: int) -> str:
        return money.display(amount, p.currency)

    def invoices(n: int) -> str:
        return f"{n:,} invoice" + ("" if n == 1 else "s")

    largest = max((m.balance for m in p.months), default=0)
    return {
        "funnel": charts.hbars(
            [
                charts.Bar(
                    r.status.value,
                    r.invoice_total,
                    f"{show(r.invoice_total)} · {invoices(r.count)}",
                )
                for r in p.funnel
            ],
            title=f"Financing invoices by status, {p.currency}",
            labelledby="funnel-caption",
        ),
        "outstanding": charts.columns(
            [charts.Bar(f"{m.month:%b}", max(0, m.balance), show(m.balance)) for m in p.months],
            title=f"Outstanding at each month's end, {p.currency}",
            labelledby="outstanding-caption",
            scale=f"Highest: {show(largest)}",
            notes=[
                f"{m.month:%Y}" if m.month.month == 1 or i == 0 else ""
                for i, m in enumerate(p.months)
            ],
        ),
        "aging": charts.hbars(
            [charts.Bar(r.label, r.owed, f"{show(r.owed)} · {invoices(r.count)}") for r in p.aging],
            title=f"Late invoices by days past due, {p.currency}",
            labelledby="aging-caption",
        ),
        "exposures": charts.hbars(
            [charts.Bar(e.name, e.outstanding, show(e.outstanding)) for e in p.exposures],
            title=f"Largest exposures, {p.currency}",
            labelledby="exposures-caption",
        ),
    }
