"""The servicing page: upcoming repayments by due date, late and defaulted invoices by days past
due, and recording a repayment or writing off from it (through the lender API's service
functions: the ledger postings they make and the audit log)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from html.parser import HTMLParser

import httpx
import pytest
from sqlalchemy import select

from fundline.console import servicing
from fundline.console.servicing import _amount
from fundline.kit import clock, money
from fundline.kit.db import Database
from fundline.lending.policy import Policy
from fundline.models import AuditEntry, Instalment
from tests.console.conftest import Operator
from tests.support.factories import Tenant
from tests.support.lending import load_invoice, make_financing_invoice

UPCOMING = "Upcoming repayments by due date"
LATE = "Late invoices by days past due"
DEFAULTED = "Defaulted invoices by days past due"
POSTINGS = "Ledger postings made"


@dataclass
class Table:
    caption: str = ""
    bodies: list[list[list[str]]] = field(default_factory=list)  # tbody → row → cell texts
    rows_html: list[str] = field(default_factory=list)


class Tables(HTMLParser):
    """A page's tables by caption: each body's rows as the texts of their cells."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[str, Table] = {}
        self._table: Table | None = None
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = Table()
        elif self._table is None:
            return
        elif tag == "caption":
            self._caption = []
        elif tag in ("tbody", "tfoot"):
            self._table.bodies.append([])
        elif tag == "tr" and self._table.bodies:
            self._table.bodies[-1].append([])
        elif tag in ("td", "th") and self._table.bodies:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if self._table is None:
            return
        if tag == "caption" and self._caption is not None:
            self._table.caption = " ".join("".join(self._caption).split())
            self._caption = None
        elif tag in ("td", "th") and self._cell is not None:
            self._table.bodies[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self.found[self._table.caption] = self._table
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._caption is not None:
            self._caption.append(data)
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> dict[str, Table]:
    return Tables(html).found


def usd(amount: int) -> str:
    return money.display(amount, "USD")


def day(value: date) -> str:
    return f"{value.day} {value:%b %Y}"


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


async def invoice_due(db: Database, fi_id: uuid.UUID) -> tuple[str, int, date]:
    """The document id, what is owed and the (single) instalment's due date."""
    fi = await load_invoice(db, fi_id)
    async with db.session() as session:
        [instalment] = await session.scalars(
            select(Instalment).where(Instalment.financing_invoice_id == fi_id)
        )
    return fi.document_id, (fi.repayment_amount or 0) - fi.repaid_amount, instalment.due_date


def at_day(days: int) -> None:
    clock.set_offset(timedelta(days=days))


async def test_upcoming_repayments_are_grouped_by_due_date(
    operator: Operator, db: Database, tenant: Tenant, other_tenant: Tenant, policy: Policy
) -> None:
    a = await make_financing_invoice(db, tenant, policy, status="FUNDED", total_amount=100_000)
    b = await make_financing_invoice(db, other_tenant, policy, total_amount=250_000)
    at_day(5)
    c = await make_financing_invoice(db, tenant, policy, total_amount=40_000)
    at_day(40)  # due on day 70: past the 60 days the page looks ahead
    far = await make_financing_invoice(db, tenant, policy, total_amount=50_000)
    clock.reset()
    paid = await make_financing_invoice(db, tenant, policy, status="PAID")
    late = await make_financing_invoice(db, tenant, policy, status="LATE")
    new = await make_financing_invoice(db, tenant, policy, status="NEW")
    (doc_a, owed_a, due_a), (doc_b, owed_b, due_b), (doc_c, owed_c, due_c) = [
        await invoice_due(db, fi) for fi in (a, b, c)
    ]
    assert due_a == due_b == clock.today() + timedelta(days=30)
    assert due_c == due_a + timedelta(days=5)

    html = await operator.page("/lender/servicing")
    upcoming = tables(html)[UPCOMING]
    [body_ab, body_c] = upcoming.bodies
    assert body_ab[0] == [f"{day(due_a)} · 2 instalments", usd(owed_a + owed_b), ""]
    assert sorted(row[1] for row in body_ab[1:]) == sorted([doc_a, doc_b])
    assert {row[1]: row[2] for row in body_ab[1:]} == {doc_a: usd(owed_a), doc_b: usd(owed_b)}
    assert body_c[0] == [f"{day(due_c)} · 1 instalment", usd(owed_c), ""]
    assert [row[1:3] for row in body_c[1:]] == [[doc_c, usd(owed_c)]]
    assert "Tenant A Entity LLC" in body_c[1][0]
    for fi in (a, b, c):
        assert f'href="/lender/invoices/{fi}"' in html
    for fi in (far, paid, late, new):
        document_id = (await load_invoice(db, fi)).document_id
        assert document_id not in text_of(str(upcoming.bodies)), document_id
    # The window's totals, and the bound the page says it keeps.
    assert f"Due in USD {usd(owed_a + owed_b + owed_c)} 3 instalments" in text_of(html)
    assert "the next 60 days" in text_of(html)
    assert "The next 200 unpaid instalments of funded invoices" in text_of(html)

    # Nothing falls due from day 80 on: the page says so.
    at_day(80)
    assert "Nothing falls due in the next 60 days." in text_of(
        await operator.page("/lender/servicing")
    )


async def test_late_invoices_are_sorted_by_days_past_due(
    operator: Operator, db: Database, tenant: Tenant, other_tenant: Tenant, policy: Policy
) -> None:
    older = await make_financing_invoice(db, tenant, policy, status="LATE", total_amount=60_000)
    defaulted = await make_financing_invoice(db, other_tenant, policy, status="DEFAULTED")
    at_day(12)
    newer = await make_financing_invoice(db, tenant, policy, status="LATE", total_amount=90_000)
    at_day(3)
    middle = await make_financing_invoice(db, tenant, policy, status="LATE", total_amount=70_000)
    at_day(50)  # instalments due on days 30, 42, 33 (and 30 for the defaulted one)
    # Marked late with nothing overdue yet (due on day 80): last, and said so.
    early = await make_financing_invoice(db, tenant, policy, status="LATE", total_amount=30_000)
    (doc_o, owed_o, _), (doc_n, owed_n, _), (doc_m, owed_m, _), (doc_d, owed_d, _) = [
        await invoice_due(db, fi) for fi in (older, newer, middle, defaulted)
    ]
    doc_e, owed_e, _ = await invoice_due(db, early)

    html = await operator.page("/lender/servicing")
    found = tables(html)
    rows = found[LATE].bodies[0]
    assert [row[:3] for row in rows] == [
        ["20", "Tenant A Entity LLC", f"{doc_o} LATE"],
        ["17", "Tenant A Entity LLC", f"{doc_m} LATE"],
        ["8", "Tenant A Entity LLC", f"{doc_n} LATE"],
        ["0 (next due in 30 days)", "Tenant A Entity LLC", f"{doc_e} LATE"],
    ]
    assert [row[4] for row in rows] == [usd(owed_o), usd(owed_m), usd(owed_n), usd(owed_e)]
    assert [row[:3] for row in found[DEFAULTED].bodies[0]] == [
        ["20", "Tenant B Entity LLC", f"{doc_d} DEFAULTED"]
    ]
    assert found[DEFAULTED].bodies[0][0][4] == usd(owed_d)
    late_total = usd(owed_o + owed_m + owed_n + owed_e)
    assert f"Owed in USD {late_total} 4 invoices" in text_of(html)
    # A late invoice takes a repayment and a write-off; a defaulted one only a write-off.
    assert html.count('action="/lender/servicing/write_off"') == 5
    assert html.count('action="/lender/servicing/repayment"') == 4
    assert html.count("data-confirm=") == 5
    # Nothing of theirs is upcoming: only FUNDED invoices fall due there.
    assert UPCOMING not in found


async def test_a_partial_repayment_leaves_the_invoice_funded_and_shows_its_postings(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    document_id, owed, _ = await invoice_due(db, fi_id)
    response = await operator.post(
        "/lender/servicing/repayment", {"financing_invoice_id": str(fi_id), "amount": "$100.00"}
    )
    assert response.status_code == 200
    fi = await load_invoice(db, fi_id)
    assert (fi.status, fi.repaid_amount) == ("FUNDED", 10_000)
    page = text_of(response.text)
    assert f"{document_id}: repayment recorded; now FUNDED" in page
    postings = tables(response.text)[POSTINGS].bodies[0]
    assert sorted(row[1:] for row in postings) == [
        ["cash", usd(10_000)],
        ["financed_receivable", usd(-10_000)],
    ]
    memo = f"repayment: {document_id}: repaid 10000 (fee "
    assert all(row[0].startswith(memo) for row in postings), postings
    # The page answered is the servicing page again, with what is still due.
    [row] = tables(response.text)[UPCOMING].bodies[0][1:]
    assert row[1:3] == [document_id, usd(owed - 10_000)]
    async with db.session() as session:
        [entry] = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "record_repayment")
        )
    assert (entry.operator, entry.object_id, entry.note) == ("ana", fi_id, "amount 10000")
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["repaid_amount"], entry.after["repaid_amount"]) == (0, 10_000)


async def test_the_prefilled_amount_repays_in_full(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    document_id, owed, _ = await invoice_due(db, fi_id)
    html = await operator.page("/lender/servicing")
    [prefill] = re.findall(r'name="amount" value="([^"]*)"', html)
    assert prefill == str(money.to_major(owed, "USD"))
    assert re.search(r'<label for="pay-[^"]+">Amount received', html)
    response = await operator.post(
        "/lender/servicing/repayment", {"financing_invoice_id": str(fi_id), "amount": prefill}
    )
    assert response.status_code == 200
    fi = await load_invoice(db, fi_id)
    assert (fi.status, fi.repaid_amount) == ("PAID", owed)
    assert f"{document_id}: repayment recorded; now PAID" in text_of(response.text)
    assert UPCOMING not in tables(response.text)


async def test_writing_off_a_late_invoice_shows_its_postings(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="LATE")
    document_id, owed, _ = await invoice_due(db, fi_id)
    response = await operator.post(
        "/lender/servicing/write_off", {"financing_invoice_id": str(fi_id)}
    )
    assert response.status_code == 200
    fi = await load_invoice(db, fi_id)
    assert fi.status == "DEFAULTED"
    assert fi.closed_at is not None
    assert f"{document_id}: written off; now DEFAULTED" in text_of(response.text)
    found = tables(response.text)
    assert sorted(row[1:] for row in found[POSTINGS].bodies[0]) == [
        ["credit_losses", usd(owed)],
        ["financed_receivable", usd(-owed)],
    ]
    # Written off, it is off both tables.
    assert LATE not in found
    assert DEFAULTED not in found
    # Twice is refused, as a message.
    again = await operator.post("/lender/servicing/write_off", {"financing_invoice_id": str(fi_id)})
    assert again.status_code == 200
    assert "already written off" in text_of(again.text)
    assert POSTINGS not in tables(again.text)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter the amount received"),
        ("abc", "is not an amount"),
        ("ten dollars", "is not an amount"),
        ("12.345", "has more decimals than USD has (2)"),
        ("0", "more than zero"),
        ("-5", "more than zero"),
        ("€100", "is not an amount"),
        ("100 EUR", "is not in USD"),
        ("1,00", "is not an amount"),
        ("1e3", "is not an amount"),
        ("99999999", "more than the"),  # the service's refusal: more than is owed
    ],
)
async def test_a_bad_amount_is_a_message(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy, typed: str, message: str
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    response = await operator.post(
        "/lender/servicing/repayment", {"financing_invoice_id": str(fi_id), "amount": typed}
    )
    assert response.status_code == 200
    [item] = re.findall(r'<li class="failed">([^<]*)</li>', response.text)
    assert message in item, item
    assert (await load_invoice(db, fi_id)).repaid_amount == 0
    assert POSTINGS not in tables(response.text)


async def test_an_unknown_invoice_is_a_message(operator: Operator) -> None:
    for fi_id in (str(uuid.uuid4()), "not-an-id"):
        for action, data in (("repayment", {"amount": "1"}), ("write_off", {})):
            response = await operator.post(
                f"/lender/servicing/{action}", {"financing_invoice_id": fi_id, **data}
            )
            assert response.status_code == 200
            assert "no such financing invoice" in response.text


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [
        ("1,234.56", "USD", 123_456),
        ("$1,234.56", "USD", 123_456),
        ("$ 1234.5", "USD", 123_450),
        ("1234.56 USD", "USD", 123_456),
        ("usd 1234.56", "USD", 123_456),
        (" 1,234,567 ", "USD", 123_456_700),
        (".5", "USD", 50),
        ("€12.00", "EUR", 1_200),
        ("1,234 JPY", "JPY", 1_234),
        ("1.234", "KWD", 1_234),
    ],
)
def test_amounts_are_read_in_major_units(typed: str, currency: str, minor: int) -> None:
    assert _amount(typed, currency) == minor


@pytest.mark.parametrize(
    ("typed", "currency"),
    [("12.5", "JPY"), ("1,2345", "USD"), ("12,34.00", "USD"), ("$12", "EUR"), ("1.2.3", "USD")],
)
def test_other_amounts_are_refused(typed: str, currency: str) -> None:
    with pytest.raises(ValueError, match="“"):
        _amount(typed, currency)


async def test_the_actions_need_the_csrf_token(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="LATE")
    for action in ("repayment", "write_off"):
        for csrf in ({}, {"csrf": "0" * 64}):
            response = await operator.client.post(
                f"/lender/servicing/{action}",
                data={"financing_invoice_id": str(fi_id), "amount": "1", **csrf},
            )
            assert response.status_code == 403, (action, csrf)
    fi = await load_invoice(db, fi_id)
    assert (fi.status, fi.repaid_amount) == ("LATE", 0)


async def test_the_signed_out_are_sent_to_sign_in(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/lender/servicing")
    assert response.status_code == 303
    assert response.headers["location"] == "/lender/sign-in?next=/lender/servicing"
    for action in ("repayment", "write_off"):
        posted = await anonymous.post(f"/lender/servicing/{action}", data={"amount": "1"})
        assert posted.status_code == 303


async def test_the_lists_are_bounded_and_say_so(
    operator: Operator,
    db: Database,
    tenant: Tenant,
    policy: Policy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(servicing, "UPCOMING_ROWS", 1)
    monkeypatch.setattr(servicing, "LATE_ROWS", 1)
    for status in ("FUNDED", "FUNDED", "LATE", "LATE"):
        await make_financing_invoice(db, tenant, policy, status=status)
    html = await operator.page("/lender/servicing")
    [body] = tables(html)[UPCOMING].bodies
    assert body[0][0].endswith("· 1 instalment")
    assert len(body) == 2  # the date and the one instalment listed
    assert "the page lists the next 1." in text_of(html)
    assert len(tables(html)[LATE].bodies[0]) == 1
    assert "The 1 most overdue of 2 are listed." in text_of(html)
