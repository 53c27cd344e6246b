"""The Connect widget's ``/connect/v1/views`` steps over HTTP, in-process: the onboarding
form, the offer, servicing, and confirming invoices (HTML and Kanmon events).

The browser tests (tests/browser/) click through the same pages; these check what the server
answers, fast, on both databases.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx

from fundline.kit import clock, pages
from tests.support.connect_pages import (
    Html,
    business,
    connect_token,
    financing_invoice,
    invoices_session,
    kinds,
    onboarding_session,
    state,
    view,
)
from tests.support.factories import BUSINESS_PAYLOAD, Tenant, create_issued_invoice, onboard

# The onboarding form's labels, in order; Address line 2 is the one optional field.
LABELS = [
    "Legal name",
    "EIN",
    "Address line 1",
    "Address line 2",
    "City",
    "State",
    "ZIP code",
    "Country",
    "Owner first name",
    "Owner last name",
    "Owner email",
    "Routing number",
    "Account number",
]
# A complete onboarding form, as the frame posts it.
COMPLETE_FORM = {
    "legal_name": BUSINESS_PAYLOAD["legal_name"],
    "ein": BUSINESS_PAYLOAD["ein"],
    **{f"address.{k}": v for k, v in BUSINESS_PAYLOAD["address"].items()},
    **{f"owner.{k}": v for k, v in BUSINESS_PAYLOAD["owner"].items()},
    **{f"bank_account.{k}": v for k, v in BUSINESS_PAYLOAD["bank_account"].items()},
}


# --- views: onboarding and the offer ---------------------------------------------------------


async def test_views_need_a_connect_session(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await onboarding_session(client, tenant)
    token = await connect_token(client, tenant)  # the token itself is not a session
    for authorization in [None, "Bearer nope", "Basic dXNlcjpwYXNz", tenant.token, token]:
        headers = {}
        if authorization is not None:
            headers["authorization"] = (
                authorization if " " in authorization else f"Bearer {authorization}"
            )
        for method, path in [
            ("GET", "current"),
            ("POST", "onboarding"),
            ("POST", f"offers/{uuid.uuid4()}/accept"),
            ("GET", "servicing"),
            ("GET", "invoices"),
            ("POST", "invoices/quote"),
            ("POST", "invoices/confirm"),
        ]:
            response = await client.request(
                method, f"/connect/v1/views/{path}", headers=headers, json={"fields": {}}
            )
            assert response.status_code == 401, (authorization, path, response.text)
            assert "message" in response.json()["error"]


async def test_a_fresh_business_gets_the_onboarding_form(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding_session(client, tenant)
    body = await view(client, "current", headers)
    page = Html(body["html"])
    assert page.texts["label"] == LABELS
    assert page.texts["button"] == ["Close", "Continue"]
    # Every input has its label, and the form posts to the view.
    ids = {a["for"] for a in page.tags["label"]}
    assert {a["id"] for a in page.tags["input"]} == ids
    [form] = page.tags["form"]
    assert form["data-view"] == "/connect/v1/views/onboarding"
    assert page.field("address.country")["value"] == "US"
    assert page.field("legal_name")["value"] == ""
    assert "aria-invalid" not in page.field("ein")
    assert body["events"] == [
        {
            "eventType": "USER_STATE_CHANGED",
            "data": {
                "userState": "START_FLOW",
                "section": "ONBOARDING",
                "actionRequired": True,
                "actionMessage": "Get paid early: tell us about your business",
            },
        }
    ]


async def test_a_bad_ein_comes_back_marked_and_nothing_is_saved(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding_session(client, tenant)
    fields = {"legal_name": "Acme Supplies LLC", "ein": "123456789", "address.city": "Austin"}
    body = await view(client, "onboarding", headers, fields)
    page = Html(body["html"])
    ein = page.field("ein")
    assert ein["aria-invalid"] == "true"
    assert ein["value"] == "123456789"  # as typed
    assert page.field("legal_name")["value"] == "Acme Supplies LLC"
    assert page.field("address.city")["value"] == "Austin"
    assert "aria-invalid" not in page.field("legal_name")
    assert page.error_of("ein") == (
        "Enter the EIN as two digits, a dash and seven digits (NN-NNNNNNN)."
    )
    assert "Please check this field" in page.text
    assert body["events"] == []
    saved = await business(client, headers)
    assert (saved["ein"], saved["legal_name"], saved["address"]["city"]) == (None, None, None)
    assert saved["business_status"] == "INPUT_REQUIRED"


REFUSALS = [
    (
        "bank_account.routing_number",
        "123456789",  # nine digits failing the ABA checksum
        "This is not a valid routing number: enter the nine digits exactly as printed on a check.",
    ),
    ("bank_account.routing_number", "02100002", None),
    ("bank_account.account_number", "12ab", "Enter 4 to 17 digits, without spaces."),
    ("owner.email", "jane-at-acme", "Enter an email address such as name@example.com."),
    ("address.country", "XX", "Enter a two-letter country code, such as US."),
    ("address.postal_code", "7" * 11, "Enter a ZIP code of at most 10 characters."),
]


async def test_each_refused_field_gets_its_message(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding_session(client, tenant)
    for name, value, error in REFUSALS:
        body = await view(client, "onboarding", headers, {"legal_name": "Acme", name: value})
        page = Html(body["html"])
        if error is not None:
            assert page.error_of(name) == error, name
        assert page.error_of(name), name
        assert page.field(name)["aria-invalid"] == "true"
        if name != "bank_account.account_number":
            assert page.field(name)["value"] == value
        assert page.error_of("legal_name") is None
    assert (await business(client, headers))["legal_name"] is None


async def test_a_partial_form_is_saved_and_asks_for_the_rest(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding_session(client, tenant)
    body = await view(
        client, "onboarding", headers, {"legal_name": "Acme Supplies LLC", "ein": "12-3456789"}
    )
    page = Html(body["html"])
    assert page.field("legal_name")["value"] == "Acme Supplies LLC"
    assert page.field("ein")["value"] == "12-3456789"
    assert page.error_of("legal_name") is None
    assert page.error_of("ein") is None
    assert page.error_of("address.line2") is None  # optional
    expected = {
        "address.line1": "Enter the address line 1.",
        "address.city": "Enter the city.",
        "address.state": "Enter the state.",
        "address.postal_code": "Enter the ZIP code.",
        "address.country": "Enter the country.",
        "owner.first_name": "Enter the owner first name.",
        "owner.last_name": "Enter the owner last name.",
        "owner.email": "Enter the owner email.",
        "bank_account.routing_number": "Enter the routing number.",
        "bank_account.account_number": "Enter the account number.",
    }
    assert {name: page.error_of(name) for name in expected} == expected
    assert "Please check these 10 fields" in page.text
    assert kinds(body) == [state("USER_INPUT_REQUIRED", "ONBOARDING")]
    saved = await business(client, headers)
    assert (saved["legal_name"], saved["ein"]) == ("Acme Supplies LLC", "12-3456789")
    assert saved["business_status"] == "INPUT_REQUIRED"

    # Opened again, the form shows what is saved, and the state stays the same.
    body = await view(client, "current", headers)
    page = Html(body["html"])
    assert page.field("legal_name")["value"] == "Acme Supplies LLC"
    assert page.error_of("address.city") is None
    assert kinds(body) == [state("USER_INPUT_REQUIRED", "ONBOARDING")]


async def test_the_account_number_is_never_sent_back(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding_session(client, tenant)
    fields = {"legal_name": "Acme", "bank_account.account_number": "000123456789"}
    page = Html((await view(client, "onboarding", headers, fields))["html"])
    account = page.field("bank_account.account_number")
    assert account["value"] == ""
    assert "000123456789" not in page.source
    assert "On file: the account ending in 6789" in page.text
    assert page.error_of("bank_account.account_number") is None


async def test_a_complete_form_shows_the_offer_on_the_businesss_own_invoice(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    invoice = await create_issued_invoice(client, tenant, amount=100_000, due_in_days=30)
    headers = await onboarding_session(client, tenant)
    body = await view(client, "onboarding", headers, COMPLETE_FORM)
    assert body["events"] == [
        {
            "eventType": "USER_STATE_CHANGED",
            "data": {
                "userState": "USER_INPUT_REQUIRED",
                "section": "OFFER",
                "actionRequired": True,
                "actionMessage": "Your offer is ready",
            },
        }
    ]
    page = Html(body["html"])
    assert "Accept offer" in page.texts["button"]
    today = clock.today()
    due = today + timedelta(days=30)
    text = page.text
    assert "A credit line of $50,000.00" in text
    assert f"Your invoice {invoice['document_id']} to Globex Corp has $1,000.00" in text
    # The sandbox plans on that invoice (as GET /connect/v1/invoices quotes them).
    for sentence in [
        f"Receive $980.00 now, repay $1,000.00 on {pages.day(today + timedelta(days=30))}.",
        f"Receive $970.00 now, repay $1,000.00 on {pages.day(today + timedelta(days=60))}.",
        "Receive $864.00 now, repay $900.00 in 3 parts, the last on "
        f"{pages.day(today + timedelta(days=90))}.",
        f"Receive $828.75 now, repay $850.00 on {pages.day(due + timedelta(days=7))}.",
    ]:
        assert sentence in text, sentence
    assert "Advance 100 % of the invoice · fee 2 % ($20.00)" in text
    assert "Advance 85 % of the invoice · fee 2.5 % ($21.25)" in text

    saved = await business(client, headers)
    assert saved["business_status"] == "ONBOARDED"
    offer_id = saved["offer"]["id"]
    [form] = page.tags["form"]
    assert form["data-view"] == f"/connect/v1/views/offers/{offer_id}/accept"

    # Accepted: the credit line, and the business is in servicing.
    body = await view(client, f"offers/{offer_id}/accept", headers, {})
    assert kinds(body) == [state("SERVICING", "SERVICING")]
    page = Html(body["html"])
    assert "Your financing" in page.text
    assert "Limit $50,000.00 Used $0.00 Available $50,000.00" in page.text
    assert "No invoice is financed yet." in page.text
    # Onboarded, the form no longer saves anything: it answers with the current step.
    again = await view(client, "onboarding", headers, {"legal_name": "Other LLC"})
    assert kinds(again) == [state("SERVICING", "SERVICING")]
    assert (await business(client, headers))["legal_name"] == BUSINESS_PAYLOAD["legal_name"]
    servicing = await view(client, "servicing", headers)
    assert kinds(servicing) == [state("SERVICING", "SERVICING")]


async def test_without_an_invoice_the_offer_shows_an_example(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding_session(client, tenant)
    page = Html((await view(client, "onboarding", headers, COMPLETE_FORM))["html"])
    today = clock.today()
    assert "For an invoice of $10,000.00" in page.text
    assert (
        f"Receive $9,800.00 now, repay $10,000.00 on {pages.day(today + timedelta(days=30))}."
        in page.text
    )
    # The example repays on "today" plus the grace days for the due-date plan.
    assert f"repay $8,500.00 on {pages.day(today + timedelta(days=7))}." in page.text


async def test_accepting_another_tenants_offer_is_404(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    headers = await onboarding_session(client, tenant)
    theirs = await onboarding_session(client, other_tenant)
    response = await client.put("/connect/v1/business", json=BUSINESS_PAYLOAD, headers=theirs)
    offer_id = response.json()["offer"]["id"]
    for target in (offer_id, str(uuid.uuid4())):
        response = await client.post(
            f"/connect/v1/views/offers/{target}/accept", json={}, headers=headers
        )
        assert response.status_code == 404, response.text
    assert (await business(client, theirs))["offer"]["status"] == "NEW"


# --- views: confirming invoices --------------------------------------------------------------


async def financed(
    client: httpx.AsyncClient, tenant: Tenant, amount: int = 100_000
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """An onboarded business with one issued invoice in a financing request: the accepted
    offer, the invoice, and the request's Connect session."""
    offer = await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant, amount=amount)
    return offer, invoice, await invoices_session(client, tenant, invoice)


async def test_the_invoices_view_asks_for_a_plan_and_an_amount(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    offer, invoice, headers = await financed(client, tenant)
    body = await view(client, "invoices", headers)
    page = Html(body["html"])
    assert "Confirm financing" in page.texts["button"]
    plans = [p["id"] for p in offer["pricing_plans"]]
    assert [o["value"] for o in page.tags["option"]] == plans
    assert page.tags["option"][0].get("selected") == ""
    assert page.texts["option"][0] == "Repay in 30 days · fee 2 % · up to $1,000.00"
    assert page.texts["option"][2] == "Repay in 3 parts over 90 days · fee 4 % · up to $900.00"
    assert page.field(f"invoices.{invoice['id']}.pricing_plan_id")["id"] == "inv-0-plan"
    amount = page.field(f"invoices.{invoice['id']}.amount")
    assert amount["value"] == "1,000.00"
    assert amount["inputmode"] == "decimal"
    assert {"Plan", "Amount to finance (USD)"} <= set(page.texts["label"])
    assert f"Invoice {invoice['document_id']} · Globex Corp" in page.text
    assert "Available credit: $50,000.00 of $50,000.00." in page.text
    assert "Remaining limit after this: $49,000.00." in page.text
    assert kinds(body) == [state("SERVICING", "SERVICING")]


async def test_an_onboarding_session_sees_no_invoices_and_an_invoices_one_accepts_nothing(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    offer, _, headers = await financed(client, tenant)
    onboarding_headers = await onboarding_session(client, tenant)
    for path in ("invoices", "invoices/quote", "invoices/confirm"):
        method = "GET" if path == "invoices" else "POST"
        response = await client.request(
            method, f"/connect/v1/views/{path}", headers=onboarding_headers, json={"fields": {}}
        )
        assert response.status_code == 403, (path, response.text)
    response = await client.post(
        f"/connect/v1/views/offers/{offer['id']}/accept", json={}, headers=headers
    )
    assert response.status_code == 403


async def test_the_quote_follows_the_form_and_saves_nothing(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    offer, invoice, headers = await financed(client, tenant)
    plans = [p["id"] for p in offer["pricing_plans"]]
    repay_by = pages.day(clock.today() + timedelta(days=30))

    body = await view(
        client, "invoices/quote", headers, {f"invoices.{invoice['id']}.amount": "500.00"}
    )
    assert body["events"] == []
    text = Html(body["html"]).text
    assert f"{invoice['document_id']} $490.00 $500.00 {repay_by}" in text
    assert "In total you receive $490.00 now and repay $500.00 (fees $10.00)." in text
    assert "Remaining limit after this: $49,500.00." in text

    # Another plan: its fee and its date.
    fields = {
        f"invoices.{invoice['id']}.amount": "$500",
        f"invoices.{invoice['id']}.pricing_plan_id": plans[1],
    }
    text = Html((await view(client, "invoices/quote", headers, fields))["html"]).text
    sixty = pages.day(clock.today() + timedelta(days=60))
    assert f"{invoice['document_id']} $485.00 $500.00 {sixty}" in text

    for amount, error in [
        ("1,000.01", "Enter an amount between $0.01 and $1,000.00."),
        ("0", "Enter an amount between $0.01 and $1,000.00."),
        ("-5", "Enter an amount between $0.01 and $1,000.00."),
        ("0.001", "Enter an amount such as $1,234.56."),
        ("lots", "Enter an amount such as $1,234.56."),
        ("NaN", "Enter an amount such as $1,234.56."),
    ]:
        body = await view(
            client, "invoices/quote", headers, {f"invoices.{invoice['id']}.amount": amount}
        )
        page = Html(body["html"])
        [cell] = [
            a for a in page.tags["td"] if a.get("class") == "error" and a.get("colspan") == "3"
        ]
        assert cell
        assert f"{invoice['document_id']} {error}" in page.text, amount
        assert "Remaining limit after this: $50,000.00." in page.text
    # The plan's maximum differs: 90 % of the invoice.
    fields = {
        f"invoices.{invoice['id']}.amount": "900.01",
        f"invoices.{invoice['id']}.pricing_plan_id": plans[2],
    }
    text = Html((await view(client, "invoices/quote", headers, fields))["html"]).text
    assert "Enter an amount between $0.01 and $900.00." in text

    financing = await financing_invoice(client, tenant, invoice["id"])
    assert (financing["status"], financing.get("requested_amount")) == ("DRAFT", None)


async def test_a_refused_amount_confirms_nothing(client: httpx.AsyncClient, tenant: Tenant) -> None:
    _, invoice, headers = await financed(client, tenant)
    body = await view(
        client, "invoices/confirm", headers, {f"invoices.{invoice['id']}.amount": "1,000.01"}
    )
    assert body["events"] == []
    page = Html(body["html"])
    assert "Financing was not confirmed" in page.text
    assert "Check the amounts marked below." in page.text
    amount = page.field(f"invoices.{invoice['id']}.amount")
    assert (amount["value"], amount["aria-invalid"]) == ("1,000.01", "true")
    assert (
        page.error_of(f"invoices.{invoice['id']}.amount")
        == "Enter an amount between $0.01 and $1,000.00."
    )
    assert (await financing_invoice(client, tenant, invoice["id"]))["status"] == "DRAFT"
    # The form can still be confirmed.
    listed = await client.get("/connect/v1/invoices", headers=headers)
    assert [i["invoice_id"] for i in listed.json()["invoices"]] == [invoice["id"]]


async def test_an_amount_above_the_available_credit_confirms_nothing(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    _, invoice, headers = await financed(client, tenant, amount=6_000_000)
    quote = await view(
        client, "invoices/quote", headers, {f"invoices.{invoice['id']}.amount": "60,000.00"}
    )
    assert "This is more than your available credit of $50,000.00." in Html(quote["html"]).text
    body = await view(
        client, "invoices/confirm", headers, {f"invoices.{invoice['id']}.amount": "60,000.00"}
    )
    assert body["events"] == []
    page = Html(body["html"])
    assert "Financing was not confirmed" in page.text
    assert "available" in page.text
    assert (await financing_invoice(client, tenant, invoice["id"]))["status"] == "DRAFT"
    offers = await client.get("/v1/financing_offers", headers=tenant.headers)
    assert offers.json()["offers"][0]["available_amount"] == 5_000_000
    # Within the limit, it goes through.
    body = await view(
        client, "invoices/confirm", headers, {f"invoices.{invoice['id']}.amount": "50,000.00"}
    )
    assert body["events"][0]["eventType"] == "USER_CONFIRMED_INVOICE"
    assert (await financing_invoice(client, tenant, invoice["id"]))["status"] == "FUNDED"


async def test_confirming_reports_the_invoice_with_the_apis_figures(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    _, invoice, headers = await financed(client, tenant)
    body = await view(
        client, "invoices/confirm", headers, {f"invoices.{invoice['id']}.amount": "500.00"}
    )
    assert [e["eventType"] for e in body["events"]] == [
        "USER_CONFIRMED_INVOICE",
        "USER_STATE_CHANGED",
    ]
    assert kinds(body)[1] == state("SERVICING", "SERVICING")
    sent = body["events"][0]["data"]["invoice"]
    fi = await financing_invoice(client, tenant, invoice["id"])
    offers = await client.get("/v1/financing_offers", headers=tenant.headers)
    [offer] = offers.json()["offers"]

    assert fi["status"] == "FUNDED"
    assert fi["requested_amount"] == sent["amountRequestedForFinancingCents"] == 50_000
    assert (sent["id"], sent["state"]) == (fi["id"], "INVOICE_FUNDED")
    assert sent["platformInvoiceId"] == fi["invoice_id"] == invoice["id"]
    assert sent["platformInvoiceNumber"] == fi["document_id"] == invoice["document_id"]
    assert sent["invoiceAmountCents"] == fi["total_amount"] == 100_000
    assert sent["principalAmountCents"] == fi["principal_amount"] == 49_000
    assert sent["repaymentAmountCents"] == fi["repayment_amount"] == 50_000
    assert sent["invoiceAdvanceAmountCents"] == fi["advance_amount"] == 49_000
    assert sent["feeAmountCents"] == fi["fee_amount"] == 1_000
    assert sent["advanceRatePercentage"] * 100 == fi["advance_rate_percentage"] == 10_000
    assert sent["transactionFeePercentage"] * 100 == fi["fee_percentage"] == 200
    assert sent["repaymentSchedule"]["schedule"] == [
        {
            "repaymentDate": i["due_date"],
            "repaymentAmountCents": i["amount"],
            "repaymentFeeAmountCents": i["fee_amount"],
            "repaymentPrincipalAmountCents": i["principal_amount"],
        }
        for i in fi["instalments"]
    ]
    assert len(sent["repaymentSchedule"]["schedule"]) == 1
    assert sent["issuedProductId"] == offer["id"]
    assert (sent["invoiceIssuedDate"], sent["invoiceDueDate"]) == (fi["issue_date"], fi["due_date"])
    assert (sent["payorType"], sent["payorBusinessName"]) == ("BUSINESS", "Globex Corp")
    assert sent["payorEmail"] == "ap@globex.example"
    assert sent["currency"] == "USD"
    assert sent["createdAt"].endswith("Z")
    assert offer["available_amount"] == 5_000_000 - 50_000

    page = Html(body["html"])
    assert f"Invoice {invoice['document_id']}: $490.00 to you, FUNDED." in page.text
    assert "Used $500.00 Available $49,500.00" in page.text
    assert "You receive $490.00 of this $1,000.00 invoice and repay $500.00 (fee $10.00)." in (
        page.text
    )

    # Confirmed already: the view says so, whichever step is asked.
    for path, fields in [
        ("invoices/confirm", {f"invoices.{invoice['id']}.amount": "500.00"}),
        ("invoices", None),
    ]:
        again = await view(client, path, headers, fields)
        assert "These invoices are already confirmed." in Html(again["html"]).text
        assert kinds(again) == [state("SERVICING", "SERVICING")]
    quote = await view(
        client, "invoices/quote", headers, {f"invoices.{invoice['id']}.amount": "500.00"}
    )
    assert quote == {"html": "", "events": []}
    assert (await financing_invoice(client, tenant, invoice["id"]))["requested_amount"] == 50_000


async def test_of_two_invoices_only_the_included_are_confirmed(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    offer = await onboard(client, tenant)
    first = await create_issued_invoice(client, tenant, amount=100_000)
    second = await create_issued_invoice(client, tenant, amount=200_000)
    headers = await invoices_session(client, tenant, first, second)
    page = Html((await view(client, "invoices", headers))["html"])
    assert [a["name"] for a in page.tags["input"] if a.get("type") == "checkbox"] == [
        f"invoices.{first['id']}.include",
        f"invoices.{second['id']}.include",
    ]
    body = await view(client, "invoices/confirm", headers, {})
    assert "Choose at least one invoice to finance." in Html(body["html"]).text
    fields = {
        f"invoices.{second['id']}.include": "1",
        f"invoices.{second['id']}.pricing_plan_id": offer["pricing_plans"][1]["id"],
        f"invoices.{second['id']}.amount": "2,000.00",
    }
    quote = Html((await view(client, "invoices/quote", headers, fields))["html"]).text
    assert f"{first['document_id']} Not financed" in quote
    assert "In total you receive $1,940.00 now and repay $2,000.00 (fees $60.00)." in quote
    body = await view(client, "invoices/confirm", headers, fields)
    [confirmed] = [e for e in body["events"] if e["eventType"] == "USER_CONFIRMED_INVOICE"]
    assert confirmed["data"]["invoice"]["platformInvoiceId"] == second["id"]
    assert confirmed["data"]["invoice"]["transactionFeePercentage"] == 3
    assert (await financing_invoice(client, tenant, first["id"]))["status"] == "DRAFT"
    assert (await financing_invoice(client, tenant, second["id"]))["status"] == "FUNDED"
    # The one left is still offered.
    page = Html((await view(client, "invoices", headers))["html"])
    assert page.field(f"invoices.{first['id']}.amount")["value"] == "1,000.00"
