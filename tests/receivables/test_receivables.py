"""Receivables (invoices): create, read, update, delete, the lifecycle with its illegal moves,
money totals, overdue from the clock, list filters, sort and pagination, events, and the
tenant boundary on every endpoint."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundline.kit import clock
from fundline.receivables.totals import document_totals, line_amounts
from tests.support.factories import (
    Tenant,
    create_counterpart,
    create_entity_user,
    create_issued_invoice,
    invoice_payload,
    token_for,
)

# --- helpers ---------------------------------------------------------------------------------


def line(
    price: int, quantity: Any = 1, tax: int | None = 0, name: str = "Item", currency: str = "USD"
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "quantity": quantity,
        "product": {"name": name, "price": {"currency": currency, "value": price}},
    }
    if tax is not None:
        item["tax_rate_value"] = tax
    return item


async def new_counterpart(
    client: httpx.AsyncClient, tenant: Tenant, name: str = "Globex Corp"
) -> dict[str, Any]:
    return await create_counterpart(
        client,
        tenant,
        organization={
            "legal_name": name,
            "is_customer": True,
            "is_vendor": False,
            "address": {
                "line1": "1 Main St",
                "city": "Boston",
                "postal_code": "02110",
                "state": "MA",
                "country": "US",
            },
        },
    )


async def new_draft(
    client: httpx.AsyncClient,
    tenant: Tenant,
    counterpart: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    counterpart = counterpart or await new_counterpart(client, tenant)
    response = await client.post(
        "/v1/receivables", json=invoice_payload(counterpart, **overrides), headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def act(
    client: httpx.AsyncClient,
    tenant: Tenant,
    receivable_id: str,
    action: str,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    return await client.post(
        f"/v1/receivables/{receivable_id}/{action}", json=body, headers=tenant.headers
    )


async def get(client: httpx.AsyncClient, tenant: Tenant, receivable_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/receivables/{receivable_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


# The calls from a fresh draft (due in 30 days, 100000 total) to each status; "overdue" and
# "uncollectible" also move the clock past the due date.
PATHS: dict[str, list[tuple[str, dict[str, Any] | None]]] = {
    "draft": [],
    "issued": [("issue", None)],
    "partially_paid": [("issue", None), ("mark_as_partially_paid", {"amount_paid": 40_000})],
    "paid": [("issue", None), ("mark_as_paid", None)],
    "canceled": [("issue", None), ("cancel", None)],
    "overdue": [("issue", None)],
    "uncollectible": [("issue", None), ("mark_as_uncollectible", None)],
}


async def invoice_in(client: httpx.AsyncClient, tenant: Tenant, status: str) -> dict[str, Any]:
    draft = await new_draft(client, tenant)
    for action, body in PATHS[status]:
        response = await act(client, tenant, draft["id"], action, body)
        assert response.status_code in (200, 204), response.text
        if action == "issue" and status in ("overdue", "uncollectible"):
            await travel(client, tenant, days=31)  # past the 30 days of its terms
    current = await get(client, tenant, draft["id"])
    assert current["status"] == status
    return current


async def travel(client: httpx.AsyncClient, tenant: Tenant, *, days: int) -> None:
    """Move the clock ``days`` from now. Tokens expire by the same clock, so the tenant gets a
    fresh one."""
    clock.set_offset(timedelta(days=days))
    tenant.token = await token_for(client, tenant.client_id, tenant.client_secret)
    tenant.headers["authorization"] = f"Bearer {tenant.token}"


async def receivable_events(
    client: httpx.AsyncClient, tenant: Tenant
) -> list[tuple[str, str, Any]]:
    response = await client.get(
        "/v1/events", params={"object_type": "receivable"}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    return [
        (e["action"], e["object"]["id"], e["object"].get("status")) for e in response.json()["data"]
    ]


async def list_ids(
    client: httpx.AsyncClient, tenant: Tenant, params: dict[str, Any] | None = None
) -> list[str]:
    response = await client.get("/v1/receivables", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["data"]]


MONEY_FIELDS = (
    "subtotal",
    "discounted_subtotal",
    "subtotal_after_vat",
    "total_vat_amount",
    "total_amount",
    "total_amount_with_credit_notes",
    "amount_due",
    "amount_paid",
    "amount_to_pay",
)


def assert_money_is_integers(body: dict[str, Any]) -> None:
    for name in MONEY_FIELDS:
        assert type(body[name]) is int, (name, body[name])
    for item in body["line_items"]:
        for name in ("total_before_vat", "total_after_vat"):
            assert type(item[name]) is int
        for name in ("price", "price_after_vat"):
            assert type(item["product"][name]["value"]) is int
    for group in body["total_vat_amounts"]:
        assert type(group["amount"]) is int
        assert type(group["taxable_amount"]) is int


# --- create and get --------------------------------------------------------------------------


async def test_create_draft_invoice(client: httpx.AsyncClient, tenant: Tenant) -> None:
    counterpart = await new_counterpart(client, tenant)
    payload = invoice_payload(
        counterpart,
        line_items=[
            {
                "quantity": 3,
                "product": {
                    "name": "Widget",
                    "description": "Blue",
                    "price": {"currency": "USD", "value": 1999},
                    "measure_unit": {"name": "pcs", "description": "pieces"},
                    "type": "product",
                },
                "tax_rate_value": 825,
                "tax_rate_name": "Texas sales tax",
            },
            line(10_000, quantity=1.5, tax=0, name="Hours"),
        ],
        payment_terms={"name": "Net 30", "term_final": {"number_of_days": 30}},
        memo="Thanks!",
        footer="Pay by wire",
        purchase_order="PO-7",
        partner_metadata={"crm_id": 42},
    )
    response = await client.post("/v1/receivables", json=payload, headers=tenant.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["type"] == "invoice"
    assert body["status"] == "draft"
    assert "document_id" not in body
    assert "issue_date" not in body
    # 3 * 1999 = 5997, tax 8.25 % = 494.75 → 495 (half-even rounds .75 up); 1.5 * 10000.
    first, second = body["line_items"]
    assert first["total_before_vat"] == 5997
    assert first["total_after_vat"] == 5997 + 495
    assert first["quantity"] == 3
    assert first["product"]["name"] == "Widget"
    assert first["product"]["description"] == "Blue"
    assert first["product"]["price"] == {"currency": "USD", "value": 1999}
    assert first["product"]["price_after_vat"] == {"currency": "USD", "value": 1999 + 165}
    assert first["product"]["vat_rate"] == {
        "country": "US",
        "value": 825,
        "name": "Texas sales tax",
        "is_custom": True,
    }
    assert first["product"]["measure_unit"] == {"name": "pcs", "description": "pieces"}
    assert second["quantity"] == 1.5
    assert second["total_before_vat"] == 15_000
    assert body["subtotal"] == 20_997
    assert body["total_vat_amount"] == 495
    assert body["total_amount"] == 21_492
    assert body["amount_due"] == 21_492
    assert body["amount_paid"] == 0
    assert body["total_vat_amounts"] == [
        {"amount": 0, "taxable_amount": 15_000, "value": 0},
        {"amount": 495, "taxable_amount": 5997, "value": 825},
    ]
    assert_money_is_integers(body)
    # The entity and the counterpart as the document shows them.
    assert body["entity"] == {
        "type": "organization",
        "name": "Tenant A Entity LLC",
        "email": "finance@acme.example",
        "tax_id": "12-3456789",
    }
    assert body["entity_address"]["city"] == "Austin"
    assert body["counterpart_id"] == counterpart["id"]
    assert body["counterpart_name"] == "Globex Corp"
    assert body["counterpart_type"] == "organization"
    assert body["counterpart_billing_address"] == {
        "id": counterpart["default_billing_address_id"],
        "line1": "1 Main St",
        "city": "Boston",
        "postal_code": "02110",
        "state": "MA",
        "country": "US",
    }
    assert body["file_language"] == "en"
    assert body["original_file_language"] == "en"
    assert body["related_documents"] == {"credit_note_ids": []}
    # Due date provisional: counted from today until the invoice is issued.
    assert body["due_date"] == (clock.today() + timedelta(days=30)).isoformat()
    assert body["payment_terms"] == {"name": "Net 30", "term_final": {"number_of_days": 30}}
    assert (body["memo"], body["footer"], body["purchase_order"]) == (
        "Thanks!",
        "Pay by wire",
        "PO-7",
    )
    assert body["partner_metadata"] == {"crm_id": 42}
    assert await get(client, tenant, body["id"]) == body
    assert await receivable_events(client, tenant) == [("receivable.created", body["id"], None)]


async def test_document_details_are_echoed_and_can_be_cleared(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    details: dict[str, Any] = {
        "memo": "Thanks",
        "footer": "Wire to ...",
        "fulfillment_date": "2026-03-01",
        "purchase_order": "PO-1",
        "trade_name": "Acme Trading",
        "partner_metadata": {"k": [1, 2]},
        "commercial_condition_description": "FOB",
        "counterpart_business_type": "retail",
        "payment_page_url": "https://pay.example/inv",
        "vat_exempt": False,
        "vat_exemption_rationale": "n/a",
        "document_rendering": {"display_line_items": True},
    }
    body = await new_draft(client, tenant, **details)
    assert {k: body[k] for k in details} == details
    response = await client.patch(
        f"/v1/receivables/{body['id']}",
        json={"invoice": {"memo": None, "trade_name": "New name"}},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    assert "memo" not in response.json()
    assert response.json()["trade_name"] == "New name"
    assert response.json()["footer"] == "Wire to ..."


async def test_individual_counterpart_and_shipping_address(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.post(
        "/v1/counterparts",
        json={
            "type": "individual",
            "individual": {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "is_customer": True,
                "is_vendor": False,
                "address": {
                    "line1": "2 Elm",
                    "city": "Reno",
                    "postal_code": "89501",
                    "country": "US",
                },
            },
        },
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    person = response.json()
    extra = await client.post(
        f"/v1/counterparts/{person['id']}/addresses",
        json={"line1": "9 Dock", "city": "Reno", "postal_code": "89502", "country": "US"},
        headers=tenant.headers,
    )
    assert extra.status_code == 201, extra.text
    body = await new_draft(
        client, tenant, person, counterpart_shipping_address_id=extra.json()["id"]
    )
    assert body["counterpart_type"] == "individual"
    assert body["counterpart_name"] == "Ada Lovelace"
    assert body["counterpart_shipping_address"]["line1"] == "9 Dock"
    assert body["counterpart_billing_address"]["line1"] == "2 Elm"


async def test_entity_overrides_show_on_the_document(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = await new_draft(
        client, tenant, entity={"email": "billing@acme.example", "phone": "+1 512 555 0100"}
    )
    assert body["entity"]["email"] == "billing@acme.example"
    assert body["entity"]["phone"] == "+1 512 555 0100"
    assert body["entity"]["name"] == "Tenant A Entity LLC"


@pytest.mark.parametrize("kind", ["quote", "credit_note"])
async def test_quotes_and_credit_notes_are_refused(
    client: httpx.AsyncClient, tenant: Tenant, kind: str
) -> None:
    counterpart = await new_counterpart(client, tenant)
    response = await client.post(
        "/v1/receivables", json=invoice_payload(counterpart, type=kind), headers=tenant.headers
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == (
        f"Only invoices are supported: Fundline does not create receivables of type {kind}"
    )
    assert await list_ids(client, tenant) == []


async def test_documents_based_on_another_are_refused(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    draft = await new_draft(client, tenant)
    response = await client.post(
        "/v1/receivables",
        json={"type": "invoice", "based_on": draft["id"]},
        headers=tenant.headers,
    )
    assert response.status_code == 422
    assert "Only invoices are supported" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("discount", {"type": "amount", "amount": 100}),
        ("payment_terms_id", "6f1c2d0e-7a51-4c1e-9a3f-3c0d1f2b8e11"),
        ("tag_ids", ["6f1c2d0e-7a51-4c1e-9a3f-3c0d1f2b8e11"]),
        ("vat_mode", "inclusive"),
        ("withholding_tax_rate", 500),
        ("deduction_amount", 10),
        ("is_einvoice", True),
    ],
)
async def test_unsupported_invoice_fields_are_refused(
    client: httpx.AsyncClient, tenant: Tenant, field: str, value: Any
) -> None:
    counterpart = await new_counterpart(client, tenant)
    payload = invoice_payload(counterpart, **{field: value})
    response = await client.post("/v1/receivables", json=payload, headers=tenant.headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == f"{field} is not supported by Fundline"


async def test_harmless_defaults_of_unsupported_fields_are_accepted(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = await new_draft(
        client, tenant, tag_ids=[], vat_mode="exclusive", withholding_tax_rate=0, discount=None
    )
    assert body["vat_mode"] == "exclusive"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"discount": {"type": "percentage", "amount": 500}}, "discount is not supported"),
        ({"product_id": "6f1c2d0e-7a51-4c1e-9a3f-3c0d1f2b8e11"}, "product_id is not supported"),
        ({"vat_rate_id": "6f1c2d0e-7a51-4c1e-9a3f-3c0d1f2b8e11"}, "vat_rate_id is not supported"),
    ],
)
async def test_unsupported_line_fields_are_refused(
    client: httpx.AsyncClient, tenant: Tenant, change: dict[str, Any], message: str
) -> None:
    counterpart = await new_counterpart(client, tenant)
    payload = invoice_payload(counterpart, line_items=[{**line(100), **change}])
    response = await client.post("/v1/receivables", json=payload, headers=tenant.headers)
    assert response.status_code == 422
    assert message in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        (
            {"line_items": [line(100, currency="EUR")]},
            ["body", "line_items", 0, "product", "price", "currency"],
        ),
        ({"line_items": [line(100, tax=None)]}, ["body", "line_items", 0, "tax_rate_value"]),
        ({"line_items": [line(100, tax=10_001)]}, ["body", "line_items", 0, "tax_rate_value"]),
        ({"line_items": [line(-1)]}, ["body", "line_items", 0, "product", "price", "value"]),
        ({"line_items": [line(100, quantity=-1)]}, ["body", "line_items", 0, "quantity"]),
        ({"line_items": [line(9007199254740991, quantity=2)]}, ["body", "line_items"]),
        ({"currency": "XXX"}, ["body", "currency"]),
        ({"payment_terms": {"term_final": {}}}, ["body", "payment_terms", "term_final"]),
        (
            {"payment_terms": {"term_final": {"number_of_days": 1, "end_date": "2030-01-01"}}},
            ["body", "payment_terms", "term_final"],
        ),
        (
            {"payment_terms": {"term_final": {"number_of_days": 10_001}}},
            ["body", "payment_terms", "term_final", "number_of_days"],
        ),
        (
            {"payment_terms": {"term_1": {"discount": 100}, "term_final": {"number_of_days": 1}}},
            ["body", "payment_terms"],
        ),
        (
            {"counterpart_billing_address_id": "6f1c2d0e-7a51-4c1e-9a3f-3c0d1f2b8e11"},
            ["body", "counterpart_billing_address_id"],
        ),
        (
            {"counterpart_shipping_address_id": "6f1c2d0e-7a51-4c1e-9a3f-3c0d1f2b8e11"},
            ["body", "counterpart_shipping_address_id"],
        ),
        ({"unknown_field": 1}, ["body", "unknown_field"]),
    ],
)
async def test_invalid_invoices_are_422(
    client: httpx.AsyncClient, tenant: Tenant, overrides: dict[str, Any], loc: list[Any]
) -> None:
    counterpart = await new_counterpart(client, tenant)
    payload = invoice_payload(counterpart, **overrides)
    response = await client.post("/v1/receivables", json=payload, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][: len(loc)] == loc


async def test_vat_exempt_invoice_needs_no_tax_and_allows_none(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = await new_draft(
        client,
        tenant,
        vat_exempt=True,
        vat_exemption_rationale="Reseller",
        line_items=[line(500, tax=None)],
    )
    assert body["total_amount"] == 500
    assert body["vat_exempt"] is True
    counterpart = await new_counterpart(client, tenant, "Other")
    taxed = invoice_payload(counterpart, vat_exempt=True, line_items=[line(500, tax=100)])
    response = await client.post("/v1/receivables", json=taxed, headers=tenant.headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "A VAT-exempt invoice cannot charge tax"


async def test_another_entitys_counterpart_is_404(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await new_counterpart(client, other_tenant)
    response = await client.post(
        "/v1/receivables", json=invoice_payload(theirs), headers=tenant.headers
    )
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "Counterpart not found"}}


async def test_address_of_another_counterpart_is_422(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    first = await new_counterpart(client, tenant, "First")
    second = await new_counterpart(client, tenant, "Second")
    payload = invoice_payload(
        first, counterpart_billing_address_id=second["default_billing_address_id"]
    )
    response = await client.post("/v1/receivables", json=payload, headers=tenant.headers)
    assert response.status_code == 422
    assert "is not an address of counterpart" in response.json()["detail"][0]["msg"]


async def test_get_unknown_receivable_is_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get(
        "/v1/receivables/6f1c2d0e-7a51-4c1e-9a3f-3c0d1f2b8e11", headers=tenant.headers
    )
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "Receivable not found"}}


async def test_entity_user_is_recorded(client: httpx.AsyncClient, tenant: Tenant) -> None:
    user = await create_entity_user(client, tenant)
    token = await token_for(
        client, tenant.client_id, tenant.client_secret, entity_user_id=user["id"]
    )
    as_user = {"authorization": f"Bearer {token}", "x-monite-entity-id": tenant.entity_id}
    counterpart = await new_counterpart(client, tenant)
    response = await client.post(
        "/v1/receivables", json=invoice_payload(counterpart), headers=as_user
    )
    assert response.status_code == 201, response.text
    assert response.json()["entity_user_id"] == user["id"]
    partner_made = await new_draft(client, tenant, counterpart)
    assert "entity_user_id" not in partner_made
    assert await list_ids(client, tenant, {"entity_user_id": user["id"]}) == [response.json()["id"]]
    assert await list_ids(client, tenant, {"entity_user_id__in": [user["id"]]}) == [
        response.json()["id"]
    ]


# --- money -----------------------------------------------------------------------------------


def reference_line(price: int, quantity: Decimal, rate: int) -> tuple[int, int]:
    """An independent oracle: exact fractions, Python's own half-even ``round``."""
    before = round(Fraction(price) * Fraction(quantity))
    return before, round(Fraction(before * rate, 10_000))


prices = st.integers(min_value=0, max_value=10**9)
quantities = st.decimals(min_value=0, max_value=10_000, places=3, allow_nan=False)
rates = st.integers(min_value=0, max_value=10_000)


@given(st.lists(st.tuples(prices, quantities, rates), max_size=12))
def test_totals_are_the_sums_of_exactly_rounded_lines(
    lines: list[tuple[int, Decimal, int]],
) -> None:
    amounts = [(rate, line_amounts(price, qty, rate)) for price, qty, rate in lines]
    for (price, qty, rate), (_, got) in zip(lines, amounts, strict=True):
        before, vat = reference_line(price, qty, rate)
        assert (got.total_before_vat, got.vat_amount) == (before, vat)
        assert got.total_after_vat == before + vat
        assert all(type(v) is int for v in (got.total_before_vat, got.vat_amount))
    totals = document_totals(amounts)
    assert totals.subtotal == sum(a.total_before_vat for _, a in amounts)
    assert totals.total_vat_amount == sum(a.vat_amount for _, a in amounts)
    assert totals.total_amount == sum(a.total_after_vat for _, a in amounts)
    assert sum(g.amount for g in totals.vat_groups) == totals.total_vat_amount
    assert [g.rate for g in totals.vat_groups] == sorted({rate for rate, _ in amounts})


api_lines = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10**7),
        st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False),
        st.integers(min_value=0, max_value=10_000),
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(lines=api_lines)
async def test_api_totals_equal_the_sum_of_line_items(
    client: httpx.AsyncClient, tenant: Tenant, lines: list[tuple[int, Decimal, int]]
) -> None:
    counterpart = await new_counterpart(client, tenant)
    items = [
        # The quantity goes out as the JSON number text of the Decimal, as a client writes it.
        {**line(price, tax=rate), "quantity": "QTY"}
        for price, _, rate in lines
    ]
    text = json.dumps(invoice_payload(counterpart, line_items=items))
    for _, qty, _ in lines:
        text = text.replace('"QTY"', str(qty), 1)
    response = await client.post(
        "/v1/receivables",
        content=text,
        headers={**tenant.headers, "content-type": "application/json"},
    )
    assert response.status_code == 201, response.text
    # No float anywhere but quantities: parse floats as a marker and look for it.
    body = json.loads(response.text, parse_float=lambda s: ("FLOAT", s))
    assert_money_is_integers(body)
    expected = [reference_line(price, qty, rate) for price, qty, rate in lines]
    got = body["line_items"]
    assert [(i["total_before_vat"], i["total_after_vat"] - i["total_before_vat"]) for i in got] == (
        expected
    )
    assert body["subtotal"] == sum(i["total_before_vat"] for i in got)
    assert body["total_amount"] == sum(i["total_after_vat"] for i in got)
    assert body["total_vat_amount"] == body["total_amount"] - body["subtotal"]
    assert body["amount_due"] == body["total_amount"]


async def test_zero_decimal_currency(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = await new_draft(
        client, tenant, currency="JPY", line_items=[line(1001, tax=1000, currency="JPY")]
    )
    # 1001 yen + 10 % = 100.1 → 100: amounts stay in whole yen.
    assert body["total_amount"] == 1101
    assert body["currency"] == "JPY"


# --- lifecycle -------------------------------------------------------------------------------


async def test_full_lifecycle_to_paid(client: httpx.AsyncClient, tenant: Tenant) -> None:
    draft = await new_draft(client, tenant, amount=100_000, due_in_days=30)
    await travel(client, tenant, days=2)  # issued two days after it was drafted
    response = await act(client, tenant, draft["id"], "issue")
    assert response.status_code == 200, response.text
    issued = response.json()
    assert issued["status"] == "issued"
    assert issued["document_id"] == "INV-00001"
    issued_at = datetime.fromisoformat(issued["issue_date"])
    assert abs(issued_at - clock.now()) < timedelta(minutes=5)
    assert issued["due_date"] == (clock.today() + timedelta(days=30)).isoformat()

    response = await act(
        client, tenant, draft["id"], "mark_as_partially_paid", {"amount_paid": 30_000}
    )
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["amount_paid"]) == ("partially_paid", 30_000)
    assert response.json()["amount_due"] == 70_000
    response = await act(
        client,
        tenant,
        draft["id"],
        "mark_as_partially_paid",
        {"amount_paid": 60_000, "comment": "second wire"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["amount_due"] == 40_000
    assert response.json()["comment"] == "second wire"

    response = await act(client, tenant, draft["id"], "mark_as_paid", {"comment": "all in"})
    assert response.status_code == 200, response.text
    paid = response.json()
    assert paid["status"] == "paid"
    assert (paid["amount_paid"], paid["amount_due"]) == (100_000, 0)
    assert abs(datetime.fromisoformat(paid["paid_at"]) - clock.now()) < timedelta(minutes=5)
    assert paid["document_id"] == "INV-00001"
    assert await receivable_events(client, tenant) == [
        ("receivable.created", draft["id"], None),
        ("receivable.status_changed", draft["id"], "issued"),
        ("receivable.status_changed", draft["id"], "partially_paid"),
        ("receivable.updated", draft["id"], None),
        ("receivable.status_changed", draft["id"], "paid"),
    ]


async def test_mark_as_paid_with_paid_at_and_from_issued(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    issued = await create_issued_invoice(client, tenant)
    response = await act(
        client, tenant, issued["id"], "mark_as_paid", {"paid_at": "2026-01-02T03:04:05Z"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["paid_at"] == "2026-01-02T03:04:05Z"
    assert response.json()["amount_due"] == 0


async def test_document_numbers_are_sequential_per_entity(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    numbers = [(await create_issued_invoice(client, tenant))["document_id"] for _ in range(3)]
    assert numbers == ["INV-00001", "INV-00002", "INV-00003"]
    assert (await create_issued_invoice(client, other_tenant))["document_id"] == "INV-00001"


async def test_concurrent_issuing_gives_distinct_consecutive_numbers(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    counterpart = await new_counterpart(client, tenant)
    drafts = [await new_draft(client, tenant, counterpart) for _ in range(8)]
    responses = await asyncio.gather(*(act(client, tenant, d["id"], "issue") for d in drafts))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    numbers = sorted(r.json()["document_id"] for r in responses)
    assert numbers == [f"INV-{n:05d}" for n in range(1, 9)]


async def test_given_document_id_is_kept_and_skipped_by_the_counter(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    counterpart = await new_counterpart(client, tenant)
    custom = await new_draft(client, tenant, counterpart, document_id="INV-00001")
    assert custom["document_id"] == "INV-00001"
    response = await client.post(
        "/v1/receivables",
        json=invoice_payload(counterpart, document_id="INV-00001"),
        headers=tenant.headers,
    )
    assert response.status_code == 409
    assert response.json() == {
        "error": {"message": "A receivable with document_id 'INV-00001' already exists"}
    }
    response = await act(client, tenant, custom["id"], "issue")
    assert response.json()["document_id"] == "INV-00001"
    generated = await create_issued_invoice(client, tenant, counterpart_id=counterpart["id"])
    assert generated["document_id"] == "INV-00002"


async def test_cancel_issued_and_overdue(client: httpx.AsyncClient, tenant: Tenant) -> None:
    issued = await create_issued_invoice(client, tenant)
    response = await act(client, tenant, issued["id"], "cancel")
    assert response.status_code == 204
    assert response.content == b""
    assert (await get(client, tenant, issued["id"]))["status"] == "canceled"
    overdue = await create_issued_invoice(client, tenant, due_in_days=-3)
    assert (await get(client, tenant, overdue["id"]))["status"] == "overdue"
    assert (await act(client, tenant, overdue["id"], "cancel")).status_code == 204
    canceled = await get(client, tenant, overdue["id"])
    assert canceled["status"] == "canceled"
    assert (await receivable_events(client, tenant))[-1] == (
        "receivable.status_changed",
        overdue["id"],
        "canceled",
    )


async def test_mark_overdue_invoices_uncollectible(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    overdue = await create_issued_invoice(client, tenant, due_in_days=-1)
    response = await act(
        client, tenant, overdue["id"], "mark_as_uncollectible", {"comment": "bankrupt"}
    )
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["comment"]) == ("uncollectible", "bankrupt")
    # A partially paid invoice past its due date is overdue too.
    partly = await create_issued_invoice(client, tenant, due_in_days=5)
    await act(client, tenant, partly["id"], "mark_as_partially_paid", {"amount_paid": 1})
    await travel(client, tenant, days=6)
    response = await act(client, tenant, partly["id"], "mark_as_uncollectible")
    assert response.status_code == 200, response.text
    assert response.json()["amount_paid"] == 1


async def test_paying_an_overdue_invoice(client: httpx.AsyncClient, tenant: Tenant) -> None:
    overdue = await create_issued_invoice(client, tenant, due_in_days=-1)
    response = await act(
        client, tenant, overdue["id"], "mark_as_partially_paid", {"amount_paid": 10}
    )
    assert response.status_code == 200
    # Still past due: a partial payment does not make it current.
    assert response.json()["status"] == "overdue"
    response = await act(client, tenant, overdue["id"], "mark_as_paid")
    assert response.json()["status"] == "paid"


# Which action each status allows; everything else is a 409 naming the status.
ALLOWED = {
    "issue": {"draft"},
    "mark_as_partially_paid": {"issued", "overdue", "partially_paid"},
    "mark_as_paid": {"issued", "overdue", "partially_paid"},
    "cancel": {"issued", "overdue"},
    "mark_as_uncollectible": {"overdue"},
    "PATCH": {"draft"},
    "DELETE": {"draft"},
}
ILLEGAL = [
    (status, action) for action in ALLOWED for status in PATHS if status not in ALLOWED[action]
]


@pytest.mark.parametrize(("status", "action"), ILLEGAL)
async def test_illegal_transitions_are_409_naming_the_status(
    client: httpx.AsyncClient, tenant: Tenant, status: str, action: str
) -> None:
    current = await invoice_in(client, tenant, status)
    url = f"/v1/receivables/{current['id']}"
    if action == "PATCH":
        response = await client.patch(url, json={"invoice": {"memo": "x"}}, headers=tenant.headers)
    elif action == "DELETE":
        response = await client.delete(url, headers=tenant.headers)
    else:
        body = {"amount_paid": 1} if action == "mark_as_partially_paid" else None
        response = await act(client, tenant, current["id"], action, body)
    assert response.status_code == 409, response.text
    message = response.json()["error"]["message"]
    assert f"is {status}" in message
    assert await get(client, tenant, current["id"]) == current


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (100_000, "amount_paid must be less than the total amount (100000)"),
        (100_001, "amount_paid must be less than the total amount (100000)"),
        (40_000, "must exceed the 40000 already recorded"),
        (39_999, "must exceed the 40000 already recorded"),
    ],
)
async def test_partial_payment_bounds(
    client: httpx.AsyncClient, tenant: Tenant, amount: int, message: str
) -> None:
    partly = await invoice_in(client, tenant, "partially_paid")
    response = await act(
        client, tenant, partly["id"], "mark_as_partially_paid", {"amount_paid": amount}
    )
    assert response.status_code == 422
    assert message in response.json()["detail"][0]["msg"]
    assert response.json()["detail"][0]["loc"] == ["body", "amount_paid"]
    zero = await act(client, tenant, partly["id"], "mark_as_partially_paid", {"amount_paid": 0})
    assert zero.status_code == 422


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"payment_terms": None}, ["body", "payment_terms"]),
        ({"line_items": []}, ["body", "line_items"]),
        (
            {"payment_terms": {"term_final": {"end_date": "2020-01-01"}}},
            ["body", "payment_terms", "term_final", "end_date"],
        ),
    ],
)
async def test_issue_needs_lines_and_terms_due_after_issue(
    client: httpx.AsyncClient, tenant: Tenant, overrides: dict[str, Any], loc: list[str]
) -> None:
    draft = await new_draft(client, tenant, **overrides)
    response = await act(client, tenant, draft["id"], "issue")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc
    assert (await get(client, tenant, draft["id"]))["status"] == "draft"


async def test_end_date_terms_fix_the_due_date(client: httpx.AsyncClient, tenant: Tenant) -> None:
    due = clock.today() + timedelta(days=45)
    draft = await new_draft(
        client, tenant, payment_terms={"term_final": {"end_date": due.isoformat()}}
    )
    assert draft["due_date"] == due.isoformat()
    issued = (await act(client, tenant, draft["id"], "issue")).json()
    assert issued["due_date"] == due.isoformat()


# --- overdue from the clock ------------------------------------------------------------------


async def test_overdue_is_read_from_the_clock(client: httpx.AsyncClient, tenant: Tenant) -> None:
    issued = await create_issued_invoice(client, tenant, due_in_days=10)
    partly = await create_issued_invoice(client, tenant, due_in_days=10)
    await act(client, tenant, partly["id"], "mark_as_partially_paid", {"amount_paid": 5})
    paid = await create_issued_invoice(client, tenant, due_in_days=10)
    await act(client, tenant, paid["id"], "mark_as_paid")
    draft = await new_draft(client, tenant, due_in_days=10)

    await travel(client, tenant, days=10)  # due today: not yet overdue
    assert (await get(client, tenant, issued["id"]))["status"] == "issued"
    assert await list_ids(client, tenant, {"status": "overdue"}) == []

    await travel(client, tenant, days=11)
    assert (await get(client, tenant, issued["id"]))["status"] == "overdue"
    assert (await get(client, tenant, partly["id"]))["status"] == "overdue"
    assert (await get(client, tenant, paid["id"]))["status"] == "paid"
    assert (await get(client, tenant, draft["id"]))["status"] == "draft"
    assert await list_ids(client, tenant, {"status": "overdue"}) == [issued["id"], partly["id"]]
    assert await list_ids(client, tenant, {"status": "issued"}) == []
    assert await list_ids(client, tenant, {"status": "partially_paid"}) == []
    assert await list_ids(client, tenant, {"status__in": ["overdue", "paid"]}) == [
        issued["id"],
        partly["id"],
        paid["id"],
    ]
    listed = {
        r["id"]: r["status"]
        for r in (await client.get("/v1/receivables", headers=tenant.headers)).json()["data"]
    }
    assert listed[issued["id"]] == "overdue"

    await travel(client, tenant, days=0)
    assert await list_ids(client, tenant, {"status": "issued"}) == [issued["id"]]
    assert await list_ids(client, tenant, {"status": "partially_paid"}) == [partly["id"]]


# --- update and delete -----------------------------------------------------------------------


async def test_patch_a_draft(client: httpx.AsyncClient, tenant: Tenant) -> None:
    draft = await new_draft(
        client, tenant, line_items=[line(1000, quantity=2, tax=0), line(500, tax=1000)]
    )
    response = await client.patch(
        f"/v1/receivables/{draft['id']}",
        json={
            "invoice": {
                "memo": "Updated",
                "footer": None,
                "line_items": [{"quantity": 3}, {"price": 700, "tax_rate_value": 500}],
                "payment_terms": {"term_final": {"number_of_days": 60}},
            }
        },
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["memo"] == "Updated"
    assert [i["total_before_vat"] for i in body["line_items"]] == [3000, 700]
    assert body["total_vat_amount"] == 35
    assert body["total_amount"] == 3735
    assert body["due_date"] == (clock.today() + timedelta(days=60)).isoformat()
    assert body["updated_at"] >= draft["updated_at"]
    assert body["line_items"][0]["product"]["id"] == draft["line_items"][0]["product"]["id"]
    assert await get(client, tenant, draft["id"]) == body
    assert (await receivable_events(client, tenant))[-1] == (
        "receivable.updated",
        draft["id"],
        None,
    )


async def test_patch_currency_and_counterpart(client: httpx.AsyncClient, tenant: Tenant) -> None:
    draft = await new_draft(client, tenant)
    other = await new_counterpart(client, tenant, "Initech")
    response = await client.patch(
        f"/v1/receivables/{draft['id']}",
        json={"invoice": {"counterpart_id": other["id"]}},
        headers=tenant.headers,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == [
        "body",
        "invoice",
        "counterpart_billing_address_id",
    ]
    response = await client.patch(
        f"/v1/receivables/{draft['id']}",
        json={
            "invoice": {
                "counterpart_id": other["id"],
                "counterpart_billing_address_id": other["default_billing_address_id"],
                "currency": "EUR",
            }
        },
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["counterpart_id"], body["counterpart_name"]) == (other["id"], "Initech")
    assert body["counterpart_billing_address"]["id"] == other["default_billing_address_id"]
    assert body["currency"] == "EUR"
    assert body["line_items"][0]["product"]["price"]["currency"] == "EUR"
    assert await list_ids(client, tenant, {"counterpart_id": other["id"]}) == [draft["id"]]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"invoice": {"line_items": [{}, {}]}}, ["body", "invoice", "line_items"]),
        ({"invoice": {"discount": {"type": "amount", "amount": 1}}}, ["body", "invoice"]),
        ({"quote": {"memo": "x"}}, ["body"]),
        ({"credit_note": {}}, ["body"]),
        ({"issued_invoice": {"memo": "x"}}, ["body", "issued_invoice"]),
        ({}, ["body"]),
        ({"invoice": {}, "quote": {}}, ["body"]),
        (
            {
                "invoice": {
                    "counterpart_shipping_address_id": "6f1c2d0e-7a51-4c1e-9a3f-3c0d1f2b8e11"
                }
            },
            ["body", "invoice", "counterpart_shipping_address_id"],
        ),
    ],
)
async def test_invalid_patches_are_422(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], loc: list[str]
) -> None:
    draft = await new_draft(client, tenant)
    response = await client.patch(
        f"/v1/receivables/{draft['id']}", json=body, headers=tenant.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc
    assert await get(client, tenant, draft["id"]) == draft


async def test_patch_shipping_address_alone(client: httpx.AsyncClient, tenant: Tenant) -> None:
    counterpart = await new_counterpart(client, tenant)
    draft = await new_draft(client, tenant, counterpart)
    url = f"/v1/receivables/{draft['id']}"
    response = await client.patch(
        url,
        json={
            "invoice": {
                "counterpart_shipping_address_id": counterpart["default_billing_address_id"]
            }
        },
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["counterpart_shipping_address"]["line1"] == "1 Main St"
    response = await client.patch(
        url, json={"invoice": {"counterpart_shipping_address_id": None}}, headers=tenant.headers
    )
    assert "counterpart_shipping_address" not in response.json()


async def test_delete_a_draft(client: httpx.AsyncClient, tenant: Tenant) -> None:
    draft = await new_draft(client, tenant)
    response = await client.delete(f"/v1/receivables/{draft['id']}", headers=tenant.headers)
    assert response.status_code == 204
    assert response.content == b""
    response = await client.get(f"/v1/receivables/{draft['id']}", headers=tenant.headers)
    assert response.status_code == 404
    assert await list_ids(client, tenant) == []
    assert (await receivable_events(client, tenant))[-1] == (
        "receivable.deleted",
        draft["id"],
        None,
    )


# --- list: filters, sort, pagination ---------------------------------------------------------


async def test_list_filters(client: httpx.AsyncClient, tenant: Tenant) -> None:
    acme = await new_counterpart(client, tenant, "Acme Rockets")
    globex = await new_counterpart(client, tenant, "Globex Corp")
    a = await create_issued_invoice(client, tenant, acme["id"], due_in_days=10, amount=1000)
    await travel(client, tenant, days=1)
    b = await create_issued_invoice(client, tenant, globex["id"], due_in_days=20, amount=5000)
    await travel(client, tenant, days=2)
    c = await new_draft(client, tenant, acme, amount=3000, due_in_days=5)
    await act(client, tenant, b["id"], "mark_as_paid")
    await travel(client, tenant, days=0)
    day0 = datetime.fromisoformat(a["issue_date"])

    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({}, [a["id"], b["id"], c["id"]]),
        ({"status": "issued"}, [a["id"]]),
        ({"status": "draft"}, [c["id"]]),
        ({"status__in": ["draft", "paid"]}, [b["id"], c["id"]]),
        ({"counterpart_id": acme["id"]}, [a["id"], c["id"]]),
        ({"counterpart_name": "Globex Corp"}, [b["id"]]),
        ({"counterpart_name": "globex corp"}, []),
        ({"counterpart_name__contains": "Rock"}, [a["id"], c["id"]]),
        ({"counterpart_name__contains": "rock"}, []),
        ({"counterpart_name__icontains": "ROCK"}, [a["id"], c["id"]]),
        ({"document_id": "INV-00002"}, [b["id"]]),
        ({"document_id__contains": "INV-"}, [a["id"], b["id"]]),
        ({"document_id__icontains": "inv-00001"}, [a["id"]]),
        ({"total_amount": 3000}, [c["id"]]),
        ({"total_amount__gt": 1000}, [b["id"], c["id"]]),
        ({"total_amount__gte": 3000}, [b["id"], c["id"]]),
        ({"total_amount__lt": 3000}, [a["id"]]),
        ({"total_amount__lte": 3000}, [a["id"], c["id"]]),
        ({"total_amount__gt": 1000, "total_amount__lt": 5000}, [c["id"]]),
        ({"discounted_subtotal": 5000}, [b["id"]]),
        ({"discounted_subtotal__gte": 5000}, [b["id"]]),
        ({"discounted_subtotal__lt": 3000}, [a["id"]]),
        ({"discounted_subtotal__gt": 3000}, [b["id"]]),
        ({"discounted_subtotal__lte": 1000}, [a["id"]]),
        ({"issue_date__gt": (day0 + timedelta(hours=1)).isoformat()}, [b["id"]]),
        ({"issue_date__gte": day0.isoformat()}, [a["id"], b["id"]]),
        ({"issue_date__lt": (day0 + timedelta(hours=1)).isoformat()}, [a["id"]]),
        ({"issue_date__lte": day0.isoformat()}, [a["id"]]),
        ({"due_date__gt": a["due_date"]}, [b["id"]]),
        ({"due_date__gte": a["due_date"]}, [a["id"], b["id"]]),
        ({"due_date__lt": a["due_date"]}, [c["id"]]),
        ({"due_date__lte": a["due_date"]}, [a["id"], c["id"]]),
        # Monite's own examples write dates as midnight date-times.
        ({"due_date__gte": f"{b['due_date']}T00:00:00Z"}, [b["id"]]),
        ({"created_at__gt": (day0 + timedelta(hours=1)).isoformat()}, [b["id"], c["id"]]),
        ({"created_at__gte": (day0 + timedelta(days=2)).isoformat()}, [c["id"]]),
        ({"created_at__lt": (day0 + timedelta(hours=1)).isoformat()}, [a["id"]]),
        ({"created_at__lte": (day0 + timedelta(days=1, hours=1)).isoformat()}, [a["id"], b["id"]]),
        ({"id__in": [a["id"], c["id"]]}, [a["id"], c["id"]]),
        ({"type": "invoice"}, [a["id"], b["id"], c["id"]]),
        ({"type": "quote"}, []),
        ({"tag_ids__in": [a["id"]]}, []),
        ({"tag_ids": [a["id"]]}, []),
        ({"product_ids__in": [a["id"]]}, []),
        ({"product_ids": [a["id"]]}, []),
        ({"project_id": a["id"]}, []),
        ({"project_id__in": [a["id"]]}, []),
        ({"based_on": a["id"]}, []),
        ({"entity_user_id": a["id"]}, []),
    ]
    for params, expected in cases:
        assert await list_ids(client, tenant, params) == expected, params


@pytest.mark.parametrize(
    "params",
    [
        {"status": "nope"},
        {"limit": 0},
        {"limit": 251},
        {"sort": "nope"},
        {"order": "up"},
        {"total_amount__gt": "many"},
        {"due_date__lt": "2026-01-01T10:00:00Z"},
        {"unknown": "x"},
    ],
)
async def test_invalid_list_params_are_422(
    client: httpx.AsyncClient, tenant: Tenant, params: dict[str, Any]
) -> None:
    response = await client.get("/v1/receivables", params=params, headers=tenant.headers)
    assert response.status_code == 422, response.text


async def test_limit_up_to_250(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/v1/receivables", params={"limit": 250}, headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == {"data": []}


SORTS = {
    "created_at": lambda r: r["created_at"],
    "project_id": lambda r: r["created_at"],
    "counterpart_name": lambda r: r["counterpart_name"],
    "counterpart_id": lambda r: r["counterpart_id"],
    "amount": lambda r: r["total_amount"],
    "total_amount": lambda r: r["total_amount"],
    "discounted_subtotal": lambda r: r["subtotal"],
    "status": lambda r: r["status"],
    # Drafts have no number or issue date: they sort after the issued in ascending order
    # (issue date), before them (document number).
    "due_date": lambda r: r.get("due_date", "9999-12-31"),
    "issue_date": lambda r: r.get("issue_date", "9999"),
    "document_id": lambda r: r.get("document_id", ""),
}


@pytest.mark.parametrize("sort", list(SORTS))
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_sort_and_walk_every_page(
    client: httpx.AsyncClient, tenant: Tenant, sort: str, order: str
) -> None:
    made = []
    for i, name in enumerate(["Bravo", "Alpha", "Charlie", "Alpha"]):
        clock.set_offset(timedelta(hours=i))
        counterpart = await new_counterpart(client, tenant, name)
        made.append(
            await create_issued_invoice(
                client, tenant, counterpart["id"], amount=(i % 2 + 1) * 1000, due_in_days=i % 3
            )
        )
        made.append(await new_draft(client, tenant, counterpart, amount=500 + i, due_in_days=i))
    clock.set_offset(timedelta())
    rows = [await get(client, tenant, r["id"]) for r in made]
    expected = sorted(rows, key=lambda r: (SORTS[sort](r), r["id"]), reverse=order == "desc")

    seen: list[str] = []
    params: dict[str, Any] = {"sort": sort, "order": order, "limit": 3}
    while True:
        response = await client.get("/v1/receivables", params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [r["id"] for r in page["data"]]
        if "next_pagination_token" not in page:
            break
        params = {"pagination_token": page["next_pagination_token"]}
    assert seen == [r["id"] for r in expected]
    # And back from the last page with the prev tokens, to the first.
    backwards = [r["id"] for r in page["data"]]
    while "prev_pagination_token" in page:
        params = {"pagination_token": page["prev_pagination_token"]}
        page = (await client.get("/v1/receivables", params=params, headers=tenant.headers)).json()
        backwards = [r["id"] for r in page["data"]] + backwards
    assert backwards == seen


async def test_list_is_scoped_to_the_entity(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    ours = await create_issued_invoice(client, tenant)
    theirs = await create_issued_invoice(client, other_tenant)
    assert await list_ids(client, tenant) == [ours["id"]]
    assert await list_ids(client, other_tenant) == [theirs["id"]]
    assert await list_ids(client, tenant, {"id__in": [theirs["id"]]}) == []


# --- tenant boundary -------------------------------------------------------------------------

ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("PATCH", "", {"invoice": {"memo": "mine now"}}),
    ("DELETE", "", None),
    ("POST", "/issue", None),
    ("POST", "/mark_as_partially_paid", {"amount_paid": 1}),
    ("POST", "/mark_as_paid", None),
    ("POST", "/cancel", None),
    ("POST", "/mark_as_uncollectible", None),
]


@pytest.mark.parametrize(("method", "suffix", "body"), ENDPOINTS)
async def test_another_tenants_receivable_is_404(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    theirs = await new_draft(client, other_tenant)
    # Their receivable id with our entity, and our entity with their token.
    response = await client.request(
        method, f"/v1/receivables/{theirs['id']}{suffix}", json=body, headers=tenant.headers
    )
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "Receivable not found"}}
    mixed = {**other_tenant.auth, "x-monite-entity-id": tenant.entity_id}
    ours = await new_draft(client, tenant)
    response = await client.request(
        method, f"/v1/receivables/{ours['id']}{suffix}", json=body, headers=mixed
    )
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "Entity not found"}}
    assert await get(client, other_tenant, theirs["id"]) == theirs
    assert await get(client, tenant, ours["id"]) == ours


async def test_collection_endpoints_refuse_a_foreign_entity(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    counterpart = await new_counterpart(client, tenant)
    mixed = {**other_tenant.auth, "x-monite-entity-id": tenant.entity_id}
    response = await client.get("/v1/receivables", headers=mixed)
    assert response.status_code == 404
    response = await client.post(
        "/v1/receivables", json=invoice_payload(counterpart), headers=mixed
    )
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "Entity not found"}}
    assert await list_ids(client, tenant) == []


# --- the factory the financing work uses -----------------------------------------------------


async def test_create_issued_invoice_factory(client: httpx.AsyncClient, tenant: Tenant) -> None:
    invoice = await create_issued_invoice(client, tenant, due_in_days=14, amount=250_00)
    assert invoice["status"] == "issued"
    assert invoice["total_amount"] == 250_00
    assert invoice["due_date"] == (clock.today() + timedelta(days=14)).isoformat()
    late = await create_issued_invoice(client, tenant, due_in_days=-5, currency="EUR")
    assert late["due_date"] == (clock.today() - timedelta(days=5)).isoformat()
    assert (await get(client, tenant, late["id"]))["status"] == "overdue"
    assert clock.offset() == timedelta()
    assert date.fromisoformat(late["issue_date"][:10]) == clock.today() - timedelta(days=5)
