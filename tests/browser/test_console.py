"""The lender console in Chromium, as an operator of the credit team uses it.

A live ``fundline serve`` runs under manual review (``FUNDLINE_POLICY_FILE``: an operator issues
each accepted offer, approves or rejects each confirmed invoice and funds separately). Its data
is made the way real users make it: the ``/demo`` page's button makes a business with three
issued invoices, the partner (``/v1``) and the business user (``/connect/v1``) onboard it and
confirm financing, and the operator (a key from ``fundline operator create-key``) does the rest
in the console. Figures on the pages are checked against the lender API, and every page against
axe-core at desktop and phone sizes.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, ConsoleMessage, Dialog, Locator, Page, expect

from tests.browser.conftest import ConsoleLive, Shots, accessibility_problems

BUSINESS = {
    "legal_name": "Northwind Traders LLC",
    "ein": "12-3456789",
    "address": {
        "line1": "100 Congress Ave",
        "city": "Austin",
        "state": "TX",
        "postal_code": "78701",
        "country": "US",
    },
    "owner": {"first_name": "Nancy", "last_name": "Davolio", "email": "nancy@northwind.example"},
    "bank_account": {"routing_number": "021000021", "account_number": "000123456789"},
}
# The demo business's invoices, by the sandbox policy's plans the business user picks in
# Connect: 30 days at 2 % (one repayment), 90 days in 3 instalments at 4 %, due date + 7 days.
PLANS = {"INV-00001": 0, "INV-00002": 2, "INV-00003": 3}
REASON = "Umbrella Co is on the watch list"


# --- Seeding, as the demo page, the partner and the business user do it ----------------------


@dataclass
class Business:
    """A demo business onboarded in Connect, with its offer accepted."""

    id: str  # the financing business (the console's /lender/businesses/{id})
    entity_id: str
    offer_id: str
    invoices: dict[str, str]  # document id -> receivable id
    partner: httpx.Client  # /v1 as the demo platform, on the business's entity

    def __enter__(self) -> Business:
        return self

    def __exit__(self, *exc: object) -> None:
        self.partner.close()


def expect_status(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    return response.json() if response.content else None


def connect_session(live: ConsoleLive, token: str) -> dict[str, str]:
    opened = expect_status(
        httpx.post(f"{live.url}/connect/v1/sessions", json={"token": token}, timeout=30), 201
    )
    return {"authorization": f"Bearer {opened['access_token']}"}


def new_business(live: ConsoleLive) -> Business:
    """The demo page's "new business" (a partner, an entity, three issued invoices), onboarded
    in Connect by its user, who accepts the offer: ACCEPTED, waiting for the operator."""
    expect_status(httpx.post(f"{live.url}/demo/setup", timeout=60), 303)
    partner = live.partner_api()
    token = expect_status(partner.post("/v1/financing_tokens"), 201)["connect_token"]
    connect = connect_session(live, token)
    onboarded = expect_status(
        httpx.put(f"{live.url}/connect/v1/business", headers=connect, json=BUSINESS), 200
    )
    offer = onboarded["offer"]
    accepted = expect_status(
        httpx.post(f"{live.url}/connect/v1/offers/{offer['id']}/accept", headers=connect), 200
    )
    assert accepted["status"] == "ACCEPTED"  # manual review: the operator issues it
    entity_id = live.demo()["entity_id"]
    with live.lender_api() as lender:
        [view] = expect_status(
            lender.get("/lender/v1/financing_offers", params={"entity_id": entity_id}), 200
        )["data"]
    receivables = expect_status(partner.get("/v1/receivables", params={"limit": 100}), 200)
    invoices = {r["document_id"]: r["id"] for r in receivables["data"]}
    assert sorted(invoices) == sorted(PLANS)
    return Business(view["business_id"], entity_id, offer["id"], invoices, partner)


def finance(live: ConsoleLive, business: Business) -> dict[str, str]:
    """The partner requests financing of every invoice; the business user confirms each in
    Connect on its plan of ``PLANS``, at the plan's maximum. Returns document id -> financing
    invoice id: each waits, NEW, in the review queue."""
    requested = expect_status(
        business.partner.post(
            "/v1/financing_invoices",
            json={
                "invoices": [{"id": i, "type": "receivable"} for i in business.invoices.values()]
            },
        ),
        201,
    )
    connect = connect_session(live, requested["session_token"])
    quoted = expect_status(httpx.get(f"{live.url}/connect/v1/invoices", headers=connect), 200)
    picks = [
        {
            "invoice_id": q["invoice_id"],
            "pricing_plan_id": q["quotes"][PLANS[q["document_id"]]]["pricing_plan_id"],
        }
        for q in quoted["invoices"]
    ]
    confirmed = expect_status(
        httpx.post(
            f"{live.url}/connect/v1/invoices/confirm",
            headers=connect,
            json={"invoices": picks},
            timeout=30,
        ),
        200,
    )
    assert {fi["status"] for fi in confirmed["invoices"]} == {"NEW"}
    return {q["document_id"]: q["financing_invoice_id"] for q in quoted["invoices"]}


def lender_post(live: ConsoleLive, path: str, body: dict[str, Any] | None = None) -> Any:
    with live.lender_api() as lender:
        return expect_status(lender.post(f"/lender/v1{path}", json=body), 200)


# --- The console, as the operator uses it ------------------------------------------------------


async def sign_in(page: Page, live: ConsoleLive, then: str = "/lender/queue") -> None:
    await page.goto(f"{live.url}{then}")
    await page.get_by_label("Operator key").fill(live.operator_key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text(f"Signed in as {live.operator}")).to_be_visible()


def accept_confirmations(page: Page) -> list[str]:
    """Accept every ``data-confirm`` question; returns the questions asked, as they come."""
    asked: list[str] = []

    async def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    return asked


def results(page: Page) -> Locator:
    """The "What was done" list an action answers with."""
    return page.get_by_role("status").filter(has=page.get_by_role("heading", name="What was done"))


def queue_row(page: Page, financing_invoice_id: str) -> Locator:
    return page.locator("tbody tr").filter(has=page.locator(f"#pick-{financing_invoice_id}"))


async def test_signing_in_by_keyboard(console_live: ConsoleLive, page: Page, shots: Shots) -> None:
    live = console_live
    await page.goto(f"{live.url}/lender/")
    # Anyone not signed in is sent to the sign-in page, which brings them back after.
    assert page.url == f"{live.url}/lender/sign-in?next=/lender/queue"
    key = page.get_by_label("Operator key")
    await expect(key).to_be_focused()  # autofocus: the operator can paste at once
    await expect(page.locator("#sign-in-insecure")).to_be_hidden()  # 127.0.0.1 is secure
    # From the top of the page, the key field is two tabs past the skip link.
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Shift+Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await expect(key).to_be_focused()
    await shots.take(page, "sign-in")

    # A wrong key: the page says so, next to the field, which has the focus again.
    await page.keyboard.type("fko_not-a-key")
    async with page.expect_response(f"{live.url}/lender/sign-in") as answer:
        await page.keyboard.press("Enter")
    assert (await answer.value).status == 401
    error = page.get_by_role("alert")
    await expect(error).to_have_text(
        "That operator key is not valid (unknown, mistyped or revoked)"
    )
    await expect(key).to_be_focused()
    await expect(key).to_have_attribute("aria-invalid", "true")
    await expect(key).to_have_attribute("aria-describedby", "sign-in-error")
    await expect(key).to_have_value("")  # the mistyped key is not sent back
    await shots.take(page, "sign-in-wrong-key")

    await page.keyboard.type(live.operator_key)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Review queue", level=1)).to_be_visible()
    assert page.url == f"{live.url}/lender/queue"
    await expect(page.get_by_text(f"Signed in as {live.operator}")).to_be_visible()
    await expect(page.get_by_role("link", name="Review queue")).to_have_attribute(
        "aria-current", "page"
    )
    await shots.take(page, "queue")

    # The session cookie: Secure (Chromium keeps it over http://127.0.0.1, a secure context),
    # HttpOnly, SameSite=Strict, for /lender only, for 8 hours.
    [cookie] = await page.context.cookies()
    assert cookie["name"] == "fundline_console"
    assert cookie["secure"] is True
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/lender"
    expires = datetime.fromtimestamp(cookie["expires"], UTC) - datetime.now(UTC)
    assert timedelta(hours=7, minutes=59) < expires <= timedelta(hours=8)
    assert await page.evaluate("document.cookie") == ""  # no script reads it

    # Signing out ends the session: the queue asks for a key again.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await page.context.cookies() == []
    await page.goto(f"{live.url}/lender/queue")
    assert page.url.startswith(f"{live.url}/lender/sign-in")


async def test_signing_in_over_plain_http_says_why_it_cannot_work(
    console_live: ConsoleLive, page: Page, shots: Shots
) -> None:
    """On http:// to another host than this machine the browser drops the Secure cookie: the
    right key leads back to the sign-in page, which says why rather than nothing."""
    live = console_live
    elsewhere = live.url.replace("127.0.0.1", "console.test")  # this machine, by another name
    await page.goto(f"{elsewhere}/lender/sign-in")
    note = page.locator("#sign-in-insecure")
    await expect(note).to_be_visible()
    await expect(note).to_have_attribute("role", "alert")
    await expect(note).to_contain_text("This address is not secure")
    await page.get_by_label("Operator key").fill(live.operator_key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{elsewhere}/lender/sign-in?next=/lender/queue")
    assert await page.context.cookies() == []
    await expect(note).to_be_visible()
    await shots.take(page, "sign-in-insecure")


async def test_reviewing_funding_and_servicing(
    console_live: ConsoleLive, page: Page, shots: Shots
) -> None:
    """Issue a business's offer, approve two invoices (the checkboxes), reject one (its row's
    button, with a reason), fund one by its row's button and one by select-all, record a part
    repayment on the invoice page and one on the servicing page; the audit log names each."""
    live = console_live
    with new_business(live) as business:
        await review_fund_and_service(live, business, page, shots)


async def review_fund_and_service(
    live: ConsoleLive, business: Business, page: Page, shots: Shots
) -> None:
    asked = accept_confirmations(page)
    await sign_in(page, live)

    # The business page: its accepted offer waits for the operator.
    await page.goto(f"{live.url}/lender/businesses/{business.id}")
    offer = page.locator(f"#offer-{business.offer_id}")
    await expect(offer).to_contain_text("ACCEPTED")
    await shots.take(page, "business-accepted")
    await offer.get_by_role("button", name="Issue offer").click()
    await expect(results(page).get_by_role("listitem")).to_have_text(
        [f"Offer {business.offer_id[:8]} ($50,000.00): issued; now CURRENT"]
    )
    await expect(offer).to_contain_text("CURRENT")
    assert asked[-1] == "Issue this offer of $50,000.00? Its credit line opens at once."
    await shots.take(page, "business-issued")

    # The partner asks to finance the three invoices; the business user confirms them.
    ids = finance(live, business)
    first, second, third = (ids[d] for d in ("INV-00001", "INV-00002", "INV-00003"))

    await page.get_by_role("link", name="Review queue").click()
    for fi in ids.values():
        await expect(queue_row(page, fi)).to_contain_text("to review")
    await shots.take(page, "queue")

    # Approve two at once: their boxes, then "Approve selected".
    await page.get_by_label("Select INV-00001").and_(page.locator(f"#pick-{first}")).check()
    await page.get_by_label("Select INV-00002").and_(page.locator(f"#pick-{second}")).check()
    await page.get_by_role("button", name="Approve selected").click()
    done = results(page)
    await expect(done.get_by_role("listitem")).to_have_text(
        ["INV-00001: approved; now NEW", "INV-00002: approved; now NEW"]
    )
    await expect(queue_row(page, first)).to_contain_text("approved, to fund")
    await expect(queue_row(page, second)).to_contain_text("approved, to fund")
    await expect(queue_row(page, third)).to_contain_text("to review")
    await shots.take(page, "queue-approved")

    # Reject the third by its row's button, for the reason typed above the table.
    await page.get_by_label("Reason (needed to reject)").fill(REASON)
    await queue_row(page, third).get_by_role("button", name="Reject").click()
    await expect(done.get_by_role("listitem")).to_have_text(["INV-00003: rejected; now REJECTED"])
    await expect(queue_row(page, third)).to_have_count(0)
    assert asked[-1] == "Reject INV-00003 for the reason given above?"
    await shots.take(page, "queue-rejected")

    # Fund the first by its row's button: its advance is paid out, the ledger says how.
    await queue_row(page, first).get_by_role("button", name="Fund").click()
    await expect(done.get_by_role("listitem")).to_have_text(["INV-00001: funded; now FUNDED"])
    assert asked[-1] == "Fund INV-00001? Its advance is paid out."
    postings = page.get_by_role("table", name="Ledger postings made")
    await expect(postings).to_contain_text("$12,250.00")  # the advance, 12,500.00 less 2 %
    await expect(queue_row(page, first)).to_have_count(0)
    await shots.take(page, "queue-funded-one")

    # The rest of the approved ones by select-all, on the "Approved, to fund" view.
    await page.get_by_label("Show").select_option("fund")
    await page.get_by_role("button", name="Show", exact=True).click()
    await expect(queue_row(page, second)).to_be_visible()
    waiting = await page.locator('input[name="ids"]').count()
    await page.get_by_label("Select all on this page").check()
    for box in await page.locator('input[name="ids"]').all():
        await expect(box).to_be_checked()
    await page.get_by_role("button", name="Fund selected").click()
    await expect(done.get_by_role("listitem")).to_have_count(waiting)
    await expect(done.get_by_role("listitem").filter(has_text="INV-00002")).to_have_text(
        "INV-00002: funded; now FUNDED"
    )
    assert asked[-1] == "Fund the selected invoices? Their advances are paid out."
    await expect(page.get_by_text("Nothing is waiting at this stage.")).to_be_visible()
    await shots.take(page, "queue-funded-all")

    # A part repayment on the invoice page: still FUNDED, with what was repaid and booked.
    await page.goto(f"{live.url}/lender/invoices/{first}")
    amount = page.get_by_label("Amount received (USD)")
    await expect(amount).to_have_value("12,500.00")  # prefilled with all that is owed
    await amount.fill("5,000.00")
    await page.get_by_role("button", name="Record repayment").click()
    await expect(results(page).get_by_role("listitem")).to_have_text(
        ["INV-00001: repayment recorded; now FUNDED"]
    )
    await expect(page.get_by_role("heading", level=1)).to_have_text("Invoice INV-00001 FUNDED")
    facts = page.locator("dl.facts")
    await expect(facts).to_contain_text("Repaid$5,000.00")
    await expect(facts).to_contain_text("Still owed$7,500.00")
    made = page.get_by_role("table", name="Ledger postings made")
    await expect(made.get_by_role("row").filter(has_text="$5,000.00")).not_to_have_count(0)
    await shots.take(page, "invoice-repaid")

    # And one on the servicing page, on the second's first instalment (of three).
    await page.get_by_role("link", name="Servicing").click()
    form = page.locator("form").filter(
        has=page.locator(f'input[name="financing_invoice_id"][value="{second}"]')
    )
    await form.first.get_by_label("Amount received on INV-00002 (USD)").fill("1,000.00")
    await form.first.get_by_role("button", name="Record repayment on INV-00002").click()
    await expect(results(page).get_by_role("listitem")).to_have_text(
        ["INV-00002: repayment recorded; now FUNDED"]
    )
    await expect(page.get_by_role("table", name="Ledger postings made")).to_contain_text(
        "$1,000.00"
    )
    await shots.take(page, "servicing-repaid")

    # The lender API agrees.
    with live.lender_api() as lender:
        views = {
            d: expect_status(lender.get(f"/lender/v1/financing_invoices/{fi}"), 200)
            for d, fi in ids.items()
        }
    assert [views[d]["status"] for d in sorted(views)] == ["FUNDED", "FUNDED", "REJECTED"]
    assert views["INV-00001"]["repaid_amount"] == 500_000
    assert views["INV-00001"]["outstanding_amount"] == 750_000
    assert views["INV-00002"]["repaid_amount"] == 100_000

    # The audit log: each action, by the operator's name, the reason with the rejection.
    await page.get_by_role("link", name="Audit log").click()
    await page.get_by_label("Operator").fill(live.operator)
    await page.get_by_role("button", name="Filter").click()
    log = page.get_by_role("table", name="Audit entries")
    await shots.take(page, "audit")

    def entry(action: str, object_id: str) -> Locator:
        return (
            log.get_by_role("row")
            .filter(has=page.get_by_role("cell", name=action, exact=True))
            .filter(has_text=object_id[:8])
        )

    await expect(entry("issue_offer", business.offer_id)).to_have_count(1)
    for fi in (first, second):
        await expect(entry("approve", fi)).to_have_count(1)
        await expect(entry("fund", fi)).to_have_count(1)
        await expect(entry("record_repayment", fi)).to_have_count(1)
    await expect(entry("reject", third)).to_have_count(1)
    await expect(entry("reject", third)).to_contain_text(REASON)
    await expect(entry("record_repayment", first)).to_contain_text("amount 500000")
    signed_in = log.get_by_role("row").filter(has=page.get_by_role("cell", name="sign_in"))
    await expect(signed_in.first).to_contain_text(live.operator)
    for row in await log.get_by_role("row").all():
        if await row.get_by_role("cell").count():  # not the header
            await expect(row.get_by_role("cell").nth(1)).to_have_text(live.operator)


# --- The portfolio against the lender API ------------------------------------------------------


@pytest.fixture(scope="module")
def book(console_live: ConsoleLive) -> dict[str, str]:
    """A business with one invoice of each kind the pages show: funded and part repaid,
    repaid in full (PAID), and one waiting for review. Made through the lender API."""
    live = console_live
    with new_business(live) as business:
        lender_post(live, f"/financing_offers/{business.offer_id}/issue")
        ids = finance(live, business)
    for document, paid in (("INV-00001", 400_000), ("INV-00002", 432_000)):
        lender_post(live, f"/financing_invoices/{ids[document]}/fund")
        lender_post(live, f"/financing_invoices/{ids[document]}/repayments", {"amount": paid})
    return {"business": business.id, "funded": ids["INV-00001"], "new": ids["INV-00003"]}


OWING = ("FUNDED", "LATE", "DEFAULTED")
MONEY = re.compile(r"(-?)\$([\d,]+)\.(\d\d)")


def cents(text: str) -> int:
    """``$12,345.67`` (or ``-$5.00``) in cents."""
    found = MONEY.fullmatch(text.strip())
    assert found is not None, f"not an amount in dollars: {text!r}"
    sign, whole, part = found.groups()
    value = int(whole.replace(",", "")) * 100 + int(part)
    return -value if sign else value


def every(live: ConsoleLive, path: str) -> list[dict[str, Any]]:
    """Every item of a lender API list, page after page."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    with live.lender_api() as lender:
        while True:
            page = expect_status(lender.get(f"/lender/v1/{path}", params=params), 200)
            found += page["data"]
            if not page["next_pagination_token"]:
                return found
            params = {"pagination_token": page["next_pagination_token"]}


async def rows_of(table: Locator) -> list[list[str]]:
    """The text of each body row's cells."""
    rows: list[list[str]] = await table.locator("tbody tr").evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.innerText.trim()))"
    )
    return rows


async def test_the_portfolio_adds_up_to_the_lender_apis_figures(
    console_live: ConsoleLive, book: dict[str, str], page: Page, shots: Shots
) -> None:
    """Every figure of the portfolio's tables (USD), computed again from the invoices and
    offers ``GET /lender/v1/financing_invoices`` and ``/financing_offers`` list."""
    live = console_live
    invoices = [fi for fi in every(live, "financing_invoices") if fi["currency"] == "USD"]
    offers = [o for o in every(live, "financing_offers") if o["currency"] == "USD"]
    owing = [fi for fi in invoices if fi["status"] in OWING and fi["closed_at"] is None]
    funded = [fi for fi in invoices if fi["funded_at"] is not None]
    written_off = [fi for fi in invoices if fi["status"] == "DEFAULTED" and fi["closed_at"]]
    lines = [o for o in offers if o["status"] in ("CURRENT", "LATE")]
    outstanding = sum(fi["repayment_amount"] - fi["repaid_amount"] for fi in owing)
    assert outstanding == sum(fi["outstanding_amount"] for fi in invoices) > 0
    losses = sum(fi["repayment_amount"] - fi["repaid_amount"] for fi in written_off)
    expected_totals = {
        "Limits": sum(o["total_amount"] for o in lines),
        "Reserved": sum(o["reserved_amount"] for o in lines),
        "Outstanding": outstanding,
        "Available": sum(o["available_amount"] for o in lines),
        "Fees earned": sum(fi["fee_amount"] for fi in funded),
        "Losses": losses,
    }
    statuses = ("DRAFT", "NEW", "FUNDED", "LATE", "PAID", "DEFAULTED", "REJECTED")
    expected_funnel = [
        [
            status,
            str(len(these := [fi for fi in invoices if fi["status"] == status])),
            sum(fi["total_amount"] for fi in these),
            sum(fi["requested_amount"] or 0 for fi in these),
        ]
        for status in statuses
    ]
    business_of = {o["entity_id"]: o["business_id"] for o in offers}
    by_business: dict[str, list[int]] = {}
    for fi in owing:
        counted = by_business.setdefault(business_of[fi["entity_id"]], [0, 0])
        counted[0] += 1
        counted[1] += fi["repayment_amount"] - fi["repaid_amount"]
    assert {"NEW", "FUNDED", "PAID"} <= {fi["status"] for fi in invoices}

    await sign_in(page, live, "/lender/portfolio")
    await expect(page.get_by_role("heading", name="Portfolio", level=1)).to_be_visible()
    await shots.take(page, "portfolio")

    totals = page.locator("ul.portfolio-totals > li")
    shown = {}
    for label in expected_totals:
        item = totals.filter(has_text=re.compile(rf"^\s*{label}"))
        shown[label] = cents(await item.locator(".figure").inner_text())
    assert shown == expected_totals
    await expect(totals.filter(has_text="Outstanding")).to_contain_text(
        f"on {len(owing)} invoice{'' if len(owing) == 1 else 's'}"
    )

    funnel = await rows_of(page.get_by_role("table", name="Financing invoices by status"))
    assert [[s, n, cents(total), cents(financed)] for s, n, total, financed in funnel] == (
        expected_funnel
    )

    # The ledger's month by month: what funding added and repayments took off the financed
    # receivable is what the invoices say; its balance at the end is what they owe.
    months = await rows_of(page.get_by_role("table", name="Financed receivable by month"))
    assert months[0][0].startswith("Before")
    assert cents(months[0][3]) == 0  # a new book
    added = sum(cents(row[1]) for row in months[1:])
    reduced = sum(cents(row[2]) for row in months[1:])
    assert added == sum(fi["requested_amount"] for fi in funded)  # advance + fee
    assert reduced == sum(fi["repaid_amount"] for fi in funded) + losses
    assert cents(months[-1][3]) == outstanding

    exposures = page.get_by_role("table", name="Businesses by outstanding")
    links = await exposures.locator("tbody tr th a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    listed = {
        link.removeprefix("/lender/businesses/"): [int(row[2]), cents(row[3])]
        for link, row in zip(links, await rows_of(exposures), strict=True)
    }
    assert listed == by_business
    assert [row[0] for row in await rows_of(exposures)] == [
        str(n) for n in range(1, len(listed) + 1)
    ]

    # The funnel's CSV, as the link downloads it: the same numbers, in minor units.
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="Download the funnel as CSV").click()
    download = await downloading.value
    assert re.fullmatch(r"portfolio-funnel-USD-\d{4}-\d\d-\d\d\.csv", download.suggested_filename)
    text = Path(await download.path()).read_text()
    [header, *rows] = list(csv.reader(io.StringIO(text)))
    assert header[:4] == ["status", "count", "currency", "invoice_total_minor"]
    assert [[r[0], r[1], int(r[3]), int(r[5])] for r in rows] == expected_funnel


# --- Every page, for everyone -----------------------------------------------------------------


PAGES = {
    "queue": "/lender/queue",
    "invoice": "/lender/invoices/{funded}",
    "businesses": "/lender/businesses",
    "business": "/lender/businesses/{business}",
    "servicing": "/lender/servicing",
    "portfolio": "/lender/portfolio",
    "reconciliation": "/lender/reconciliation",
    "audit": "/lender/audit",
}


@pytest.mark.parametrize("context", ["desktop", "phone"], indirect=True)
async def test_every_page_is_accessible(
    console_live: ConsoleLive,
    book: dict[str, str],
    context: BrowserContext,
    page: Page,
    shots: Shots,
) -> None:
    """axe-core finds nothing serious on any page; on a phone no page scrolls sideways; no
    page breaks its CSP or asks another origin for anything."""
    live = console_live
    width = page.viewport_size["width"] if page.viewport_size else 0
    problems: dict[str, list[str]] = {}
    elsewhere: list[str] = []
    complaints: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith(f"{live.url}/") else elsewhere.append(r.url),
    )

    def complain(message: ConsoleMessage) -> None:
        # The console has no icon: Chromium's own request for /favicon.ico is not the page's.
        if message.type in ("error", "warning") and "/favicon.ico" not in message.location["url"]:
            complaints.append(f"{message.text} at {message.location['url']}")

    page.on("console", complain)
    page.on("pageerror", lambda e: complaints.append(f"uncaught: {e}"))
    page.on(
        "response",
        lambda r: complaints.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )

    async def check(name: str) -> None:
        await shots.take(page, name)
        found = await accessibility_problems(page)
        wide = await page.evaluate("document.documentElement.scrollWidth")
        if wide > width:
            found.append(f"the page is {wide} px wide, more than the {width} px screen")
        if found:
            problems[name] = found

    await page.goto(f"{live.url}/lender/sign-in")
    await check("sign-in")
    await sign_in(page, live)
    for name, path in PAGES.items():
        response = await page.goto(live.url + path.format(**book))
        assert response is not None
        assert response.status == 200, name
        await expect(page.get_by_role("heading", level=1)).to_be_visible()
        await check(name)
    assert problems == {}
    assert elsewhere == []
    assert complaints == []
