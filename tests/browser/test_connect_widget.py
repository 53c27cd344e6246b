"""The Connect widget in Chromium, as a business user meets it on the demo platform's page.

The flow (onboarding with a mistake first → offer → accept → "Get paid now" → confirm →
servicing) runs at desktop and phone sizes; the events the host page receives are checked in
order, the confirmed invoice's figures against ``GET /v1/financing_invoices``, and every page
against axe-core. Other origins, the script's contract and the keyboard have their own tests.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Frame, FrameLocator, Page, expect

from tests.browser.conftest import HostPage, Live, Shots, accessibility_problems

ONBOARDING = {
    "Legal name": "Northwind Traders LLC",
    "Address line 1": "100 Congress Ave",
    "City": "Austin",
    "State": "TX",
    "ZIP code": "78701",
    "Owner first name": "Nancy",
    "Owner last name": "Davolio",
    "Owner email": "nancy@northwind.example",
    "Routing number": "021000021",
    "Account number": "000123456789",
}
TOKEN_PREFIXES = ("fct_", "fst_", "fcs_")  # connect, session and Connect-session tokens


def widget(page: Page) -> FrameLocator:
    return page.frame_locator("iframe[title=Financing]")


def widget_frame(page: Page) -> Frame:
    frame = next((f for f in page.frames if "/connect/v1/frame" in f.url), None)
    assert frame is not None, "the widget's frame is not on the page"
    return frame


async def events(page: Page) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = await page.evaluate("window.fundlineDemoEvents")
    return received


async def check_accessibility(target: Page | Frame, where: str) -> None:
    problems = await accessibility_problems(target)
    assert problems == [], f"axe-core on {where}: " + "; ".join(problems)


def new_demo(live: Live) -> None:
    """A fresh demo business (nothing onboarded), through the demo page's own button."""
    import httpx

    response = httpx.post(f"{live.url}/demo/setup", timeout=60)
    assert response.status_code == 303


@pytest.mark.parametrize("context", ["desktop", "phone"], indirect=True)
async def test_the_whole_flow_on_the_demo_page(
    live: Live, context: BrowserContext, page: Page, shots: Shots
) -> None:
    new_demo(live)
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))

    await page.goto(f"{live.url}/demo")
    await expect(page.get_by_role("button", name="Open financing")).to_be_enabled()
    await shots.take(page, "demo")
    await check_accessibility(page, "the demo page")

    # start() reported where the business stands; show() opens its current step.
    await page.get_by_role("button", name="Open financing").click()
    frame = widget(page)
    await expect(frame.get_by_role("heading", name="Tell us about your business")).to_be_visible()
    await shots.take(page, "onboarding")
    await check_accessibility(widget_frame(page), "onboarding")

    # A wrong EIN first: the message sits beside the field, and what was typed stays.
    for label, value in ONBOARDING.items():
        await frame.get_by_label(label, exact=True).fill(value)
    await frame.get_by_label("EIN", exact=True).fill("12-34567")
    await frame.get_by_role("button", name="Continue").click()
    ein = frame.get_by_label("EIN", exact=True)
    await expect(ein).to_have_attribute("aria-invalid", "true")
    await expect(frame.get_by_text("Enter the EIN as two digits")).to_have_count(2)
    await expect(ein).to_have_value("12-34567")
    await expect(frame.get_by_label("Legal name", exact=True)).to_have_value(
        ONBOARDING["Legal name"]
    )
    await shots.take(page, "onboarding-invalid-ein")
    await check_accessibility(widget_frame(page), "onboarding with an error")

    await ein.fill("12-3456789")
    await frame.get_by_role("button", name="Continue").click()
    await expect(frame.get_by_role("heading", name="Your offer is ready")).to_be_visible()
    # Every plan explained in money, on one of the business's own invoices.
    await expect(frame.get_by_text("Your invoice INV-00001 to Globex Corporation")).to_be_visible()
    await expect(
        frame.get_by_text(re.compile(r"Receive \$12,250\.00 now, repay \$12,500\.00 on "))
    ).to_be_visible()
    await shots.take(page, "offer")
    await check_accessibility(widget_frame(page), "the offer")

    await frame.get_by_role("button", name="Accept offer").click()
    await expect(frame.get_by_role("heading", name="Your financing")).to_be_visible()
    await shots.take(page, "servicing-empty")
    await frame.get_by_role("button", name="Close").click()
    await expect(page.locator("iframe[title=Financing]")).to_be_hidden()

    # "Get paid now" on the first invoice: the partner's backend requests financing.
    row = page.get_by_role("row").filter(has_text="INV-00001")
    await expect(row.get_by_role("button", name="Get paid now")).to_be_enabled()
    await row.get_by_role("button", name="Get paid now").click()
    await expect(frame.get_by_role("heading", name="Confirm financing")).to_be_visible()
    await expect(frame.get_by_text("Available credit: $50,000.00")).to_be_visible()
    await shots.take(page, "confirm")
    await check_accessibility(widget_frame(page), "invoice confirmation")

    # The live quote follows the amount.
    await frame.get_by_label("Amount to finance (USD)").fill("10,000.00")
    quote = frame.get_by_role("region", name="Your quote")
    await expect(quote).to_contain_text("$9,800.00")
    await expect(quote).to_contain_text("Remaining limit after this: $40,000.00")
    await shots.take(page, "confirm-quoted")
    await frame.get_by_role("button", name="Confirm financing").click()

    await expect(frame.get_by_role("heading", name="Financing confirmed")).to_be_visible()
    financed = frame.get_by_role("listitem").filter(has_text="Invoice INV-00001")
    await expect(financed).to_contain_text("FUNDED")
    await expect(financed).to_contain_text("Next repayment: $10,000.00 on")
    await shots.take(page, "servicing-funded")
    await check_accessibility(widget_frame(page), "servicing")

    await frame.get_by_role("button", name="Close").click()
    await expect(page.locator("[data-financing-status=FUNDED]")).to_have_count(1)
    await shots.take(page, "demo-after")

    # The events, in order, with their data.
    got = await events(page)
    kinds = [
        (e["eventType"], e.get("data", {}).get("userState"), e.get("data", {}).get("section"))
        for e in got
    ]
    assert kinds == [
        ("USER_STATE_CHANGED", "START_FLOW", "ONBOARDING"),
        ("USER_STATE_CHANGED", "USER_INPUT_REQUIRED", "OFFER"),
        ("USER_STATE_CHANGED", "SERVICING", "SERVICING"),
        ("HIDE", None, None),
        ("USER_CONFIRMED_INVOICE", None, None),
        ("HIDE", None, None),
    ]
    assert got[0]["data"]["actionRequired"] is True
    assert got[1]["data"]["actionRequired"] is True
    assert isinstance(got[1]["data"]["actionMessage"], str)

    # The confirmed invoice, figure by figure, against the partner API.
    invoice = got[4]["data"]["invoice"]
    with live.partner_api() as api:
        [fi] = api.get("/v1/financing_invoices", params={"status": "FUNDED"}).json()["data"]
        offer = api.get("/v1/financing_offers").json()["offers"][0]
    assert invoice["id"] == fi["id"]
    assert invoice["state"] == "INVOICE_FUNDED"
    assert invoice["platformInvoiceId"] == fi["invoice_id"]
    assert invoice["platformInvoiceNumber"] == fi["document_id"] == "INV-00001"
    assert invoice["invoiceAmountCents"] == fi["total_amount"] == 1_250_000
    assert invoice["invoiceIssuedDate"] == fi["issue_date"]
    assert invoice["invoiceDueDate"] == fi["due_date"]
    assert invoice["payorType"] == fi["payer_type"]
    assert invoice["payorBusinessName"] == fi["payer_business_name"] == "Globex Corporation"
    assert invoice["payorEmail"] == "ap@globex.example"
    assert invoice["amountRequestedForFinancingCents"] == fi["requested_amount"] == 1_000_000
    assert invoice["principalAmountCents"] == fi["principal_amount"] == 980_000
    assert invoice["invoiceAdvanceAmountCents"] == fi["advance_amount"] == 980_000
    assert invoice["repaymentAmountCents"] == fi["repayment_amount"] == 1_000_000
    assert invoice["feeAmountCents"] == fi["fee_amount"] == 20_000
    assert invoice["advanceRatePercentage"] * 100 == fi["advance_rate_percentage"]
    assert invoice["transactionFeePercentage"] * 100 == fi["fee_percentage"]
    schedule = fi["repayment_schedule"]
    assert invoice["repaymentSchedule"]["schedule"] == [
        {
            "repaymentDate": schedule["repayment_date"],
            "repaymentAmountCents": schedule["repayment_amount"],
            "repaymentFeeAmountCents": schedule["repayment_fee_amount"],
            "repaymentPrincipalAmountCents": schedule["repayment_principal_amount"],
        }
    ]
    assert invoice["issuedProductId"] == offer["id"]
    assert invoice["createdAt"].endswith("Z")

    # No token in a URL the browser requested, nor in a line the server logged.
    leaked = [u for u in urls if any(p in u for p in TOKEN_PREFIXES)]
    assert leaked == []
    logged = live.log.read_text()
    assert "/connect/v1/views/invoices/confirm" in logged  # the log is the right one
    assert not any(p in logged for p in TOKEN_PREFIXES)


async def _connect_token(live: Live) -> str:
    import httpx

    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{live.url}/demo/api/financing_token")
    assert response.status_code == 200, response.text
    return str(response.json()["connect_token"])


START = """token => new Promise(resolve => {
  window.KANMON_CONNECT.start({
    connectToken: token,
    onEvent: e => { window.received.push(e); resolve("event"); },
    onError: e => { window.errors.push(e); resolve("error"); },
  });
})"""


async def test_a_page_on_an_unregistered_origin_gets_an_error_and_no_event(
    live: Live, page: Page, host_page: HostPage
) -> None:
    new_demo(live)
    await page.goto(host_page.url("unregistered.test"))
    outcome = await page.evaluate(START, await _connect_token(live))
    assert outcome == "error"
    errors = await page.evaluate("window.errors")
    assert errors[0]["errorType"] == "ORIGIN_NOT_ALLOWED"
    assert "http://unregistered.test:" in errors[0]["message"]
    assert "fundline partner origins add" in errors[0]["message"]
    await page.wait_for_timeout(500)  # nothing arrives later either
    assert await page.evaluate("window.received") == []
    assert await page.locator("iframe").count() == 0


async def test_a_registered_origin_embeds_the_widget(
    live: Live, page: Page, host_page: HostPage
) -> None:
    new_demo(live)
    origin = host_page.url("shop.test").rstrip("/")
    added = live.fundline("partner", "origins", "add", live.demo()["partner_id"], origin)
    assert added.returncode == 0, added.stderr
    await page.goto(host_page.url("shop.test"))
    outcome = await page.evaluate(START, await _connect_token(live))
    assert outcome == "event"
    received = await page.evaluate("window.received")
    assert received[0]["data"]["userState"] == "START_FLOW"
    assert await page.evaluate("window.errors") == []


async def test_the_scripts_contract(live: Live, page: Page, host_page: HostPage) -> None:
    new_demo(live)
    logged: list[str] = []
    page.on("console", lambda message: logged.append(message.text))
    page.on("pageerror", lambda error: logged.append(f"uncaught: {error}"))
    await page.goto(host_page.url("localhost"))
    assert await page.evaluate("window.FundlineConnect === window.KANMON_CONNECT")

    # show() before start(): reported, never thrown into the page.
    reported = await page.evaluate(
        """() => { const seen = [];
          window.KANMON_CONNECT.show({ onError: e => seen.push(e) }); return seen; }"""
    )
    assert reported[0]["errorType"] == "NOT_STARTED"
    assert any("show() was called before start()" in line for line in logged)

    token = await _connect_token(live)
    assert await page.evaluate(START, token) == "event"
    await page.evaluate("t => window.KANMON_CONNECT.start({ connectToken: t })", token)
    await page.wait_for_timeout(300)
    assert await page.locator("iframe").count() == 1  # start twice is harmless

    await page.evaluate("window.KANMON_CONNECT.show()")
    await expect(
        widget(page).get_by_role("heading", name="Tell us about your business")
    ).to_be_visible()
    await page.evaluate("window.KANMON_CONNECT.stop()")
    assert await page.locator("iframe").count() == 0
    assert not any(line.startswith("uncaught") for line in logged)

    script = await page.request.get(f"{live.url}/connect/v1/connect.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "max-age" in script.headers["cache-control"]
    again = await page.request.get(
        f"{live.url}/connect/v1/connect.js", headers={"if-none-match": script.headers["etag"]}
    )
    assert again.status == 304


async def test_onboarding_and_the_offer_by_keyboard_alone(live: Live, page: Page) -> None:
    new_demo(live)
    await page.goto(f"{live.url}/demo")
    opener = page.get_by_role("button", name="Open financing")
    await expect(opener).to_be_enabled()
    await opener.focus()
    await page.keyboard.press("Enter")
    frame = widget(page)
    await expect(frame.get_by_role("heading", name="Tell us about your business")).to_be_focused()

    await page.keyboard.press("Tab")
    await expect(frame.get_by_role("button", name="Close")).to_be_focused()
    values = dict(ONBOARDING)
    values["EIN"] = "12-3456789"
    order = ["Legal name", "EIN", "Address line 1", "Address line 2", "City", "State",
             "ZIP code", "Country", "Owner first name", "Owner last name", "Owner email",
             "Routing number", "Account number"]  # fmt: skip
    for label in order:
        await page.keyboard.press("Tab")
        await expect(frame.get_by_label(label, exact=True)).to_be_focused()
        if label in values:
            await page.keyboard.type(values[label])
    await page.keyboard.press("Enter")  # submits the form from its last field

    # The offer opens at its top (its heading has focus); the button is two tabs away.
    await expect(frame.get_by_role("heading", name="Your offer is ready")).to_be_focused()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await expect(frame.get_by_role("button", name="Accept offer")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(frame.get_by_role("heading", name="Your financing")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.locator("iframe[title=Financing]")).to_be_hidden()
    await expect(opener).to_be_focused()  # focus returns to where the user was
    kinds = [e["eventType"] for e in await events(page)]
    assert kinds[-1] == "HIDE"
