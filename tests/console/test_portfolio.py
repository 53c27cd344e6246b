"""The portfolio page and its CSV: every figure equals what was seeded (read back from the rows,
not from the page's SQL), per currency; the charts are well-formed SVG; the CSV parses and
matches the page's tables; figures of a large book are kept and computed again."""

from __future__ import annotations

import csv
import io
import itertools
import re
import uuid
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from fundline.console import charts, portfolio
from fundline.kit import clock, money
from fundline.kit.db import Database
from fundline.lending import ledger, servicing
from fundline.lending.policy import Policy
from fundline.models import (
    Entity,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    JournalEntry,
    Posting,
)
from tests.console.conftest import Operator
from tests.support.factories import Tenant, make_tenant
from tests.support.lending import (
    PLAN,
    make_draft,
    make_financing_invoice,
    make_offer,
    plans_of,
    walk,
)

EUR_LIMIT = 90_000_000


# --- seeding ---------------------------------------------------------------------------------


async def invoice(
    db: Database, tenant: Tenant, policy: Policy, status: str, total: int, *, days_ago: int = 0
) -> uuid.UUID:
    """A USD financing invoice in ``status``, made (and funded) ``days_ago`` days ago."""
    clock.set_offset(timedelta(days=-days_ago))
    try:
        return await make_financing_invoice(db, tenant, policy, status=status, total_amount=total)
    finally:
        clock.reset()


async def act(db: Database, fi_id: uuid.UUID, action: str, *args: Any, days_ago: int = 0) -> None:
    """A servicing step (``record_repayment``, ``write_off``) on an invoice, ``days_ago``."""
    clock.set_offset(timedelta(days=-days_ago))
    try:
        async with db.session() as session, session.begin():
            fi = await session.get(FinancingInvoice, fi_id)
            assert fi is not None
            await getattr(servicing, action)(session, fi, *args, cause="test")
    finally:
        clock.reset()


async def eur_invoices(db: Database, tenant: Tenant, statuses: dict[str, int]) -> None:
    """A EUR credit line for ``tenant`` (limit ``EUR_LIMIT``) and an invoice on it in each
    status (``make_offer`` and ``make_draft`` write USD: the rows are switched before use)."""
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant, total_amount=EUR_LIMIT, plans=(PLAN,))
        offer.currency = "EUR"
        await session.flush()
        [plan] = await plans_of(session, offer)
        for status, total in statuses.items():
            fi = await make_draft(session, offer, total_amount=total)
            fi.currency = "EUR"
            await session.flush()
            await walk(session, fi, status, plan=plan)


async def name_business(db: Database, tenant: Tenant, legal_name: str) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            update(FinancingBusiness)
            .where(FinancingBusiness.entity_id == uuid.UUID(tenant.entity_id))
            .values(legal_name=legal_name)
        )


@pytest.fixture
async def book(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    policy: Policy,
) -> dict[str, uuid.UUID]:
    """Two USD businesses with invoices in every status over the last months, and a EUR one."""
    ids = {
        "draft": await invoice(db, tenant, policy, "DRAFT", 50_000),
        "new": await invoice(db, tenant, policy, "NEW", 200_000),
        "funded_old": await invoice(db, tenant, policy, "FUNDED", 100_000, days_ago=70),
        "funded_part": await invoice(db, tenant, policy, "FUNDED", 300_000, days_ago=35),
        "paid": await invoice(db, tenant, policy, "PAID", 120_000, days_ago=40),
        "rejected": await invoice(db, tenant, policy, "REJECTED", 80_000),
        "written_off": await invoice(db, tenant, policy, "DEFAULTED", 90_000, days_ago=100),
        "other_funded": await invoice(db, other_tenant, policy, "FUNDED", 500_000),
        "other_late": await invoice(db, other_tenant, policy, "LATE", 150_000, days_ago=45),
    }
    await act(db, ids["funded_part"], "record_repayment", 10_000, days_ago=5)
    await act(db, ids["written_off"], "write_off", days_ago=20)
    euro = await make_tenant(app, client, name="Euro GmbH")
    await eur_invoices(db, euro, {"FUNDED": 400_000, "NEW": 100_000})
    return ids


@dataclass
class Seeded:
    """What the rows of one currency say, added up here in Python."""

    totals: dict[str, int]
    funnel: dict[str, tuple[int, int, int]]
    months: list[tuple[str, int, int, int]]
    exposures: list[tuple[uuid.UUID, int, int]]  # entity, invoices, outstanding


async def seeded(db: Database, currency: str) -> Seeded:
    async with db.session() as session:
        invoices = list(
            await session.scalars(
                select(FinancingInvoice).where(FinancingInvoice.currency == currency)
            )
        )
        offers = list(
            await session.scalars(select(FinancingOffer).where(FinancingOffer.currency == currency))
        )
        postings = (
            await session.execute(
                select(Posting.account, Posting.amount, JournalEntry.created_at)
                .join(JournalEntry, JournalEntry.id == Posting.entry_id)
                .where(Posting.currency == currency)
            )
        ).all()
    in_use = [o for o in offers if o.status in ("CURRENT", "LATE")]
    owing = [fi for fi in invoices if ledger.expected_outstanding(fi)]
    totals = {
        "limits": sum(o.total_amount for o in in_use),
        "reserved": sum(o.reserved_amount for o in in_use),
        "outstanding": sum(ledger.expected_outstanding(fi) for fi in invoices),
        "available": sum(o.available_amount for o in in_use),
        "fees_earned": -sum(a for account, a, _ in postings if account == ledger.FEE_INCOME),
        "losses": sum(a for account, a, _ in postings if account == ledger.CREDIT_LOSSES),
    }
    funnel: dict[str, tuple[int, int, int]] = {}
    for status in portfolio.FUNNEL:
        rows = [fi for fi in invoices if fi.status == status]
        funnel[status.value] = (
            len(rows),
            sum(fi.total_amount for fi in rows),
            sum(fi.requested_amount or 0 for fi in rows),
        )
    starts = portfolio.month_starts(clock.now())
    receivable = [(a, at) for account, a, at in postings if account == ledger.FINANCED_RECEIVABLE]
    balance = sum(a for a, at in receivable if at < starts[0])
    months = []
    for start, end in itertools.pairwise(starts):
        moved = [a for a, at in receivable if start <= at < end]
        added, reduced = sum(a for a in moved if a > 0), -sum(a for a in moved if a < 0)
        balance += added - reduced
        months.append((f"{start:%Y-%m}", added, reduced, balance))
    by_entity: dict[uuid.UUID, list[int]] = defaultdict(list)
    for fi in owing:
        by_entity[fi.entity_id].append(ledger.expected_outstanding(fi))
    exposures = sorted(
        ((entity, len(owed), sum(owed)) for entity, owed in by_entity.items()),
        key=lambda e: (-e[2], str(e[0])),
    )
    return Seeded(totals, funnel, months, exposures)


# --- reading the page ------------------------------------------------------------------------


class Tables(HTMLParser):
    """Every table of a page by its caption: rows of cell texts (header row included)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._caption: str | None = None
        self._rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._in_caption = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._caption, self._rows = "", []
        elif tag == "caption":
            self._in_caption = True
        elif tag == "tr":
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._caption is not None:
            self.tables[self._caption] = self._rows
            self._caption = None
        elif tag == "caption":
            self._in_caption = False
        elif tag in ("td", "th") and self._cell is not None:
            self._rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_caption and self._caption is not None:
            self._caption += data.strip()
        elif self._cell is not None:
            self._cell.append(data)


async def read_csv(operator: Operator, name: str, currency: str) -> list[list[str]]:
    response = await operator.client.get(f"/lender/portfolio/{name}.csv?currency={currency}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert re.fullmatch(
        rf'attachment; filename="portfolio-{name}-{currency}-\d{{4}}-\d\d-\d\d\.csv"', disposition
    )
    assert response.text.endswith("\r\n")  # RFC 4180 line ends
    return list(csv.reader(io.StringIO(response.text)))


def show(amount: int | str, currency: str) -> str:
    return money.display(int(amount), currency)


def check_major(minor: str, major: str, currency: str) -> None:
    assert major == str(money.to_major(int(minor), currency))


def svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(found) for found in re.findall(r"<svg\b.*?</svg>", html, re.S)]


# --- the figures -----------------------------------------------------------------------------


@pytest.mark.usefixtures("book")
async def test_the_totals_and_funnel_are_what_was_seeded(operator: Operator, db: Database) -> None:
    expected = await seeded(db, "USD")
    rows = await read_csv(operator, "totals", "USD")
    assert rows[0] == ["figure", "currency", "amount_minor", "amount_major"]
    got = {figure: int(minor) for figure, _, minor, _ in rows[1:]}
    assert got == expected.totals
    for _, currency, minor, major in rows[1:]:
        assert currency == "USD"
        check_major(minor, major, "USD")
    # Cross-checks from other rows than the ledger's: the fees booked are the funded invoices'
    # fees; the loss is what the written-off invoice still owed.
    async with db.session() as session:
        invoices = list(
            await session.scalars(
                select(FinancingInvoice).where(FinancingInvoice.currency == "USD")
            )
        )
    funded = [fi for fi in invoices if fi.funded_at is not None]
    assert got["fees_earned"] == sum(fi.fee_amount or 0 for fi in funded) > 0
    [lost] = [fi for fi in invoices if fi.status == "DEFAULTED" and fi.closed_at is not None]
    assert got["losses"] == (lost.repayment_amount or 0) - lost.repaid_amount > 0
    assert got["outstanding"] > 0
    assert got["limits"] > 0

    funnel = await read_csv(operator, "funnel", "USD")
    assert [row[0] for row in funnel[1:]] == [s.value for s in portfolio.FUNNEL]
    assert {row[0]: (int(row[1]), int(row[3]), int(row[5])) for row in funnel[1:]} == (
        expected.funnel
    )
    assert Counter({s: n for s, (n, _, _) in expected.funnel.items() if n}) == Counter(
        {"DRAFT": 1, "NEW": 1, "FUNDED": 3, "PAID": 1, "REJECTED": 1, "DEFAULTED": 1, "LATE": 1}
    )


@pytest.mark.usefixtures("book")
async def test_outstanding_over_time_is_the_ledgers_running_sum(
    operator: Operator, db: Database
) -> None:
    expected = await seeded(db, "USD")
    rows = await read_csv(operator, "outstanding", "USD")
    assert rows[0][0] == "month"
    got = [(r[0], int(r[2]), int(r[4]), int(r[6])) for r in rows[1:]]
    assert got == expected.months
    assert len(got) == portfolio.MONTHS
    assert got[-1][0] == f"{clock.today():%Y-%m}"
    # Money moved in more than one month, and the last balance is what the invoices owe.
    assert sum(1 for _, added, reduced, _ in got if added or reduced) >= 3
    assert got[-1][3] == expected.totals["outstanding"]


@pytest.mark.usefixtures("book")
async def test_the_largest_exposures_are_the_businesses_that_owe_most(
    operator: Operator, db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    expected = await seeded(db, "USD")
    rows = await read_csv(operator, "exposures", "USD")
    assert rows[0] == [
        "rank", "business_id", "entity_id", "business", "invoices", "currency",
        "outstanding_minor", "outstanding_major",
    ]  # fmt: skip
    assert [(uuid.UUID(r[2]), int(r[4]), int(r[6])) for r in rows[1:]] == expected.exposures
    assert {uuid.UUID(r[2]) for r in rows[1:]} == {
        uuid.UUID(tenant.entity_id),
        uuid.UUID(other_tenant.entity_id),
    }
    async with db.session() as session:
        names = {
            entity.id: entity.organization["legal_name"]  # type: ignore[index]
            for entity in await session.scalars(select(Entity))
        }
        businesses = {b.entity_id: b.id for b in await session.scalars(select(FinancingBusiness))}
    for rank, business_id, entity_id, name, *_ in rows[1:]:
        assert name == names[uuid.UUID(entity_id)]  # the entity's name: no legal name yet
        assert uuid.UUID(business_id) == businesses[uuid.UUID(entity_id)]
        assert rank in ("1", "2")


async def test_late_invoices_are_aged_by_their_oldest_unpaid_instalment(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    # Funded 30 + d days ago on a 30-day plan: its one instalment fell due d days ago.
    owed = {}
    for days, status, total in (
        (5, "LATE", 100_000),
        (45, "LATE", 200_000),
        (75, "LATE", 300_000),
        (120, "DEFAULTED", 400_000),
    ):
        fi_id = await invoice(db, tenant, policy, status, total, days_ago=30 + days)
        owed[days] = ledger.expected_outstanding(await load(db, fi_id))
    # Left out: one not late, one written off; and a partly repaid one owes the rest.
    await invoice(db, tenant, policy, "FUNDED", 100_000, days_ago=40)
    written = await invoice(db, tenant, policy, "LATE", 100_000, days_ago=200)
    await act(db, written, "write_off")
    partly = await invoice(db, tenant, policy, "LATE", 100_000, days_ago=30 + 31)
    await act(db, partly, "record_repayment", 1_000)
    partly_owed = ledger.expected_outstanding(await load(db, partly))

    rows = await read_csv(operator, "aging", "USD")
    assert rows[0] == ["days_past_due", "count", "currency", "owed_minor", "owed_major"]
    labels = [label for label, _ in portfolio.AGING]
    assert labels == [
        "Not yet past due",
        "1\u201330 days",
        "31\u201360 days",
        "61\u201390 days",
        "Over 90 days",
    ]
    assert [(r[0], int(r[1]), int(r[3])) for r in rows[1:]] == [
        (labels[0], 0, 0),
        (labels[1], 1, owed[5]),
        (labels[2], 2, owed[45] + partly_owed),
        (labels[3], 1, owed[75]),
        (labels[4], 1, owed[120]),
    ]
    html = await operator.page("/lender/portfolio?currency=USD")
    table = Tables(html).tables["Late and defaulted invoices by days past due"]
    assert table[2] == [labels[1], "1", show(owed[5], "USD")]
    assert table[-1] == ["All", "5", show(sum(owed.values()) + partly_owed, "USD")]


async def test_the_day_an_instalment_is_30_days_past_due_it_is_still_in_the_first_bucket(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    for days in (30, 31, 90, 91):
        await invoice(db, tenant, policy, "LATE", 100_000, days_ago=30 + days)
    rows = await read_csv(operator, "aging", "USD")
    assert [int(r[1]) for r in rows[1:]] == [0, 1, 1, 1, 1]


async def load(db: Database, fi_id: uuid.UUID) -> FinancingInvoice:
    async with db.session() as session:
        fi = await session.get(FinancingInvoice, fi_id)
        assert fi is not None
        return fi


@pytest.mark.usefixtures("book")
async def test_each_currency_shows_its_own_book_and_the_largest_limits_come_first(
    operator: Operator, db: Database
) -> None:
    html = await operator.page("/lender/portfolio")
    # EUR's one line (90M) is larger than the USD lines in use: it is shown first.
    assert '<option value="EUR" selected>' in html
    assert '<option value="USD">' in html
    eur, usd = await seeded(db, "EUR"), await seeded(db, "USD")
    assert eur.totals["limits"] == EUR_LIMIT > usd.totals["limits"]
    for currency, expected in (("EUR", eur), ("USD", usd)):
        rows = await read_csv(operator, "totals", currency)
        assert {r[0]: int(r[2]) for r in rows[1:]} == expected.totals
        funnel = await read_csv(operator, "funnel", currency)
        assert {r[0]: (int(r[1]), int(r[3]), int(r[5])) for r in funnel[1:]} == expected.funnel
    assert eur.funnel["FUNDED"][0] == 1
    assert eur.funnel["NEW"][0] == 1
    assert usd.funnel["FUNDED"][0] == 3
    # A currency without a book shows zeros; one that is not a currency is a 404.
    rows = await read_csv(operator, "totals", "JPY")
    assert {int(r[2]) for r in rows[1:]} == {0}
    assert (await operator.client.get("/lender/portfolio?currency=XYZ")).status_code == 404
    assert (await operator.client.get("/lender/portfolio/nothing.csv")).status_code == 404


async def test_an_empty_book_shows_usd_and_zeros(operator: Operator) -> None:
    html = await operator.page("/lender/portfolio")
    assert '<option value="USD" selected>' in html
    tables = Tables(html).tables
    assert tables["Businesses by outstanding"][1] == ["No business owes anything in USD."]
    for svg in svgs(html):
        assert svg.attrib["role"] == "img"


# --- the page's tables, charts and CSV agree -------------------------------------------------


@pytest.mark.usefixtures("book")
async def test_the_csv_files_hold_the_numbers_of_the_tables(operator: Operator) -> None:
    html = await operator.page("/lender/portfolio?currency=USD")
    tables = Tables(html).tables
    cur = "USD"

    totals = await read_csv(operator, "totals", cur)
    figures = dict(re.findall(r"<li>(\w[\w ]*?) <span class=\"figure\">([^<]+)</span>", html))
    labels = dict(portfolio.TOTALS)
    assert figures == {labels[r[0]]: show(r[2], cur) for r in totals[1:]}

    funnel = await read_csv(operator, "funnel", cur)
    table = tables["Financing invoices by status"]
    assert table[0] == ["Status", "Invoices", "Invoice total", "Financed"]
    assert table[1:-1] == [
        [r[0], f"{int(r[1]):,}", show(r[3], cur), show(r[5], cur)] for r in funnel[1:]
    ]
    for r in funnel[1:]:
        check_major(r[3], r[4], cur)
        check_major(r[5], r[6], cur)

    months = await read_csv(operator, "outstanding", cur)
    table = tables["Financed receivable by month"]
    assert [row[0] for row in table[2:]] == [
        datetime.strptime(r[0], "%Y-%m").strftime("%b %Y") for r in months[1:]
    ]
    assert table[2:] == [
        [row[0], show(r[2], cur), show(r[4], cur), show(r[6], cur)]
        for row, r in zip(table[2:], months[1:], strict=True)
    ]

    aging = await read_csv(operator, "aging", cur)
    table = tables["Late and defaulted invoices by days past due"]
    assert table[1:-1] == [[r[0], f"{int(r[1]):,}", show(r[3], cur)] for r in aging[1:]]

    exposures = await read_csv(operator, "exposures", cur)
    table = tables["Businesses by outstanding"]
    assert [row[:4] for row in table[1:]] == [
        [r[0], r[3], f"{int(r[4]):,}", show(r[6], cur)] for r in exposures[1:]
    ]
    for r in exposures[1:]:
        check_major(r[6], r[7], cur)
    # Every table is linked as CSV, in the page's currency.
    for name in portfolio.TABLES:
        assert f'href="/lender/portfolio/{name}.csv?currency=USD"' in html


@pytest.mark.usefixtures("book")
async def test_the_charts_are_labelled_svg_without_script_or_inline_style(
    operator: Operator,
) -> None:
    html = await operator.page("/lender/portfolio?currency=USD")
    found = svgs(html)
    assert len(found) == 4
    for svg in found:
        assert svg.tag == f"{{{charts.SVG_NS}}}svg"
        assert svg.attrib["role"] == "img"
        assert svg[0].tag == f"{{{charts.SVG_NS}}}title"
        assert svg[0].text
        caption = svg.attrib["aria-labelledby"]
        assert re.search(rf'<figcaption id="{caption}">[^<]+</figcaption>', html)
        assert not svg.findall(f".//{{{charts.SVG_NS}}}script")
        assert all(not key.startswith("on") for el in svg.iter() for key in el.attrib)
    assert "<script" not in html.replace('<script src="/lender/static/', "")
    assert "style=" not in html
    assert "<style" not in html
    # The funnel's bars follow the invoice totals.
    funnel = found[0]
    widths = [
        float(r.attrib["width"].removesuffix("%"))
        for r in funnel.iter(f"{{{charts.SVG_NS}}}rect")
        if r.attrib.get("class") == "bar"
    ]
    assert len(widths) == len(portfolio.FUNNEL)
    assert max(widths) == 100.0
    assert widths[0] > 0  # the DRAFT has an invoice total


async def test_names_are_escaped_on_the_page_and_written_safely_in_the_csv(
    operator: Operator, db: Database, tenant: Tenant, other_tenant: Tenant, policy: Policy
) -> None:
    await invoice(db, tenant, policy, "FUNDED", 300_000)
    await invoice(db, other_tenant, policy, "FUNDED", 100_000)
    nasty = 'Acme <script>alert("x")</script> & "Sons", Ltd'
    await name_business(db, tenant, nasty)
    await name_business(db, other_tenant, '=HYPERLINK("http://evil.example")')
    html = await operator.page("/lender/portfolio")
    assert "<script>alert" not in html
    assert "Acme &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;Sons&#34;, Ltd" in html
    exposures = svgs(html)[3]
    labels = [t.text for t in exposures.iter(f"{{{charts.SVG_NS}}}text")]
    assert labels[0] == nasty[: charts.LABEL_CHARS - 1] + "…"
    rows = await read_csv(operator, "exposures", "USD")
    assert rows[1][3] == nasty  # quoted by the csv module, read back whole
    assert rows[2][3] == '\'=HYPERLINK("http://evil.example")'  # never a formula


# --- kept figures ----------------------------------------------------------------------------


async def test_slow_figures_are_kept_then_computed_again_in_the_background(
    app: FastAPI, operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    kept = portfolio.Snapshots(live_under=0.0, max_age=3600.0)
    app.state.portfolio_snapshots = kept

    async def outstanding() -> int:
        rows = await read_csv(operator, "totals", "USD")
        return {r[0]: int(r[2]) for r in rows[1:]}["outstanding"]

    await invoice(db, tenant, policy, "FUNDED", 100_000)
    first = await outstanding()
    assert first > 0
    html = await operator.page("/lender/portfolio")
    assert "its figures are kept" in html
    await invoice(db, tenant, policy, "FUNDED", 100_000)
    assert await outstanding() == first  # kept, and young: nothing computed again
    kept.max_age = 0.0
    assert await outstanding() == first  # old: served while computed again
    await kept.settle()
    assert await outstanding() == 2 * first
    await kept.settle()


async def test_quick_figures_are_computed_for_every_request(
    app: FastAPI, operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    # Quicker than a minute: a small book (on a busy machine too) is never kept.
    app.state.portfolio_snapshots = portfolio.Snapshots(live_under=60.0)
    await invoice(db, tenant, policy, "FUNDED", 100_000)
    first = await read_csv(operator, "totals", "USD")
    await invoice(db, tenant, policy, "FUNDED", 100_000)
    again = await read_csv(operator, "totals", "USD")
    assert first != again
    html = await operator.page("/lender/portfolio")
    assert "its figures are kept" not in html


def test_month_starts_cross_the_year() -> None:
    starts = portfolio.month_starts(datetime(2027, 2, 15, 9, tzinfo=UTC))
    assert len(starts) == portfolio.MONTHS + 1
    assert starts[0] == datetime(2026, 3, 1, tzinfo=UTC)
    assert starts[-2] == datetime(2027, 2, 1, tzinfo=UTC)
    assert starts[-1] == datetime(2027, 3, 1, tzinfo=UTC)
    assert [s.date() for s in portfolio.month_starts(datetime(2026, 12, 31, tzinfo=UTC), 2)] == [
        date(2026, 11, 1),
        date(2026, 12, 1),
        date(2027, 1, 1),
    ]
