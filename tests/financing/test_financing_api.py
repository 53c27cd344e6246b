"""The four Monite financing endpoints: tokens, offers, requesting financing (every eligibility
rule, all or nothing), listing (every filter, sort and pagination rule), and the tenant
boundary on each. Every /v1 response is checked against Monite's spec by the client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from fundline.kit import clock
from fundline.kit.db import Base, Database
from fundline.kit.security import token_digest
from fundline.lending import servicing
from fundline.models import (
    ConnectToken,
    Event,
    FinancingBusiness,
    FinancingInvoice,
    FinancingRequest,
)
from tests.support.factories import (
    BUSINESS_PAYLOAD,
    US_ADDRESS,
    Tenant,
    connect_session,
    create_counterpart,
    create_entity,
    create_issued_invoice,
    create_payable,
    invoice_payload,
    onboard,
)

Item = tuple[str, str]  # (invoice id, "receivable" | "payable")


# --- helpers ---------------------------------------------------------------------------------


def receivable(invoice: dict[str, Any]) -> Item:
    return str(invoice["id"]), "receivable"


def payable(invoice: dict[str, Any]) -> Item:
    return str(invoice["id"]), "payable"


async def request_financing(
    client: httpx.AsyncClient, tenant: Tenant, *items: Item, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(
        "/v1/financing_invoices",
        json={"invoices": [{"id": i, "type": t} for i, t in items]},
        headers=headers or tenant.headers,
    )


async def count(db: Database, model: type[Base]) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def tick(app: FastAPI) -> dict[str, int]:
    async with app.state.db.session() as session, session.begin():
        return await servicing.tick(session, policy=app.state.policy)


async def events(db: Database, object_type: str) -> list[tuple[str, uuid.UUID]]:
    async with db.session() as session:
        rows = await session.execute(
            select(Event.action, Event.object_id)
            .where(Event.object_type == object_type)
            .order_by(Event.created_at)
        )
        return [(action, object_id) for action, object_id in rows]


async def individual_customer(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    response = await client.post(
        "/v1/counterparts",
        json={
            "type": "individual",
            "individual": {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "is_customer": True,
                "is_vendor": False,
                "email": "ada@example.com",
                "address": dict(US_ADDRESS),
            },
        },
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def draft_receivable(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    counterpart = await create_counterpart(client, tenant)
    response = await client.post(
        "/v1/receivables", json=invoice_payload(counterpart), headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def receivable_in(client: httpx.AsyncClient, tenant: Tenant, status: str) -> dict[str, Any]:
    """A receivable in ``status`` (due in 30 days unless overdue)."""
    if status == "draft":
        return await draft_receivable(client, tenant)
    if status == "overdue":
        return await create_issued_invoice(client, tenant, due_in_days=-3)
    invoice = await create_issued_invoice(client, tenant)
    action, body = {
        "issued": (None, None),
        "partially_paid": ("mark_as_partially_paid", {"amount_paid": 40_000}),
        "paid": ("mark_as_paid", None),
        "canceled": ("cancel", None),
    }[status]
    if action is not None:
        response = await client.post(
            f"/v1/receivables/{invoice['id']}/{action}", json=body, headers=tenant.headers
        )
        assert response.status_code in (200, 204), response.text
        response = await client.get(f"/v1/receivables/{invoice['id']}", headers=tenant.headers)
        invoice = response.json()
    assert invoice["status"] == status
    return invoice


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


# --- POST /v1/financing_tokens and GET /v1/financing_offers ----------------------------------


async def test_offers_before_any_token(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/v1/financing_offers", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == {"business_status": "NEW", "offers": []}


async def test_tokens_create_the_business_once_and_a_new_token_each_time(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    first = await client.post("/v1/financing_tokens", headers=tenant.headers)
    second = await client.post("/v1/financing_tokens", headers=tenant.headers)
    assert first.status_code == second.status_code == 201
    assert set(first.json()) == {"connect_token"}
    tokens = [first.json()["connect_token"], second.json()["connect_token"]]
    assert tokens[0] != tokens[1]

    assert await count(db, FinancingBusiness) == 1
    business_events = await events(db, "financing_business")
    assert [action for action, _ in business_events] == ["financing_business.created"]
    async with db.session() as session:
        for token in tokens:
            row = await session.get(ConnectToken, token_digest(token))
            assert row is not None  # stored by digest, never in clear
            assert row.kind == "connect"
            assert row.request_id is None
            assert row.used_at is None
            assert row.expires_at - row.created_at == timedelta(hours=24)
        stored = await session.scalars(select(ConnectToken.token_hash))
        assert not set(tokens) & set(stored)

    response = await client.get("/v1/financing_offers", headers=tenant.headers)
    assert response.json() == {"business_status": "NEW", "offers": []}


async def test_concurrent_first_tokens_create_one_business(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    responses = await asyncio.gather(
        *(client.post("/v1/financing_tokens", headers=tenant.headers) for _ in range(4))
    )
    assert [r.status_code for r in responses] == [201] * 4
    assert await count(db, FinancingBusiness) == 1


async def test_offers_after_onboarding(client: httpx.AsyncClient, tenant: Tenant) -> None:
    accepted = await onboard(client, tenant)
    response = await client.get("/v1/financing_offers", headers=tenant.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["business_status"] == "ONBOARDED"
    [offer] = body["offers"]
    assert offer["id"] == accepted["id"]
    assert offer["status"] == "CURRENT"
    assert offer["currency"] == "USD"
    # The sandbox policy's floor: 50,000.00 USD, nothing used yet.
    assert offer["total_amount"] == offer["available_amount"] == 5_000_000
    plans = offer["pricing_plans"]
    assert [p["repayment_type"] for p in plans] == [
        "FIXED_DURATION",
        "FIXED_DURATION",
        "MULTIPLE_DURATION",
        "FIXED_DATE",
    ]
    assert plans[0] | {"id": None} == {
        "id": None,
        "advance_rate_percentage": 10000,
        "fee_percentage": 200,
        "repayment_type": "FIXED_DURATION",
        "repayment_duration_days": 30,
        "instalments": 1,
        "grace_days": 0,
    }
    assert "repayment_duration_days" not in plans[3]  # FIXED_DATE has none: left out, not null


async def test_offers_show_onboarding_in_progress(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.post("/v1/financing_tokens", headers=tenant.headers)
    await connect_session(client, response.json()["connect_token"])
    response = await client.get("/v1/financing_offers", headers=tenant.headers)
    assert response.json() == {"business_status": "INPUT_REQUIRED", "offers": []}


# --- POST /v1/financing_invoices: success ----------------------------------------------------


async def test_request_creates_drafts_tokens_and_events(
    client: httpx.AsyncClient, tenant: Tenant, app: FastAPI, db: Database
) -> None:
    await onboard(client, tenant)
    person = await individual_customer(client, tenant)
    vendor = await create_counterpart(
        client,
        tenant,
        organization={
            "legal_name": "Initech Inc",
            "is_customer": False,
            "is_vendor": True,
            "address": dict(US_ADDRESS),
        },
    )
    business_invoice = await create_issued_invoice(client, tenant, amount=120_000)
    person_invoice = await create_issued_invoice(
        client, tenant, counterpart_id=person["id"], amount=80_000, due_in_days=14
    )
    bill = await create_payable(
        client, tenant, counterpart_id=vendor["id"], amount=50_000, due_in_days=45
    )
    tokens_before = await count(db, ConnectToken)

    response = await request_financing(
        client, tenant, receivable(business_invoice), receivable(person_invoice), payable(bill)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"connect_token", "session_token"}
    assert body["connect_token"] != body["session_token"]

    async with db.session() as session:
        [request] = (await session.scalars(select(FinancingRequest))).all()
        assert request.status == "open"
        ttl = timedelta(seconds=app.state.policy.request_ttl_seconds)
        assert request.expires_at - request.created_at == pytest.approx(
            ttl, abs=timedelta(seconds=5)
        )
        session_row = await session.get(ConnectToken, token_digest(body["session_token"]))
        connect_row = await session.get(ConnectToken, token_digest(body["connect_token"]))
        assert session_row is not None
        assert connect_row is not None
        assert (session_row.kind, session_row.request_id) == ("session", request.id)
        assert session_row.expires_at == request.expires_at
        assert (connect_row.kind, connect_row.request_id) == ("connect", None)
        fis = {
            fi.invoice_id: fi
            for fi in await session.scalars(
                select(FinancingInvoice).where(FinancingInvoice.request_id == request.id)
            )
        }
    assert await count(db, ConnectToken) == tokens_before + 2

    today = clock.today()
    first = fis[uuid.UUID(business_invoice["id"])]
    assert (first.status, first.type, first.live_invoice_id) == (
        "DRAFT",
        "receivable",
        first.invoice_id,
    )
    assert first.document_id == business_invoice["document_id"]
    assert (first.total_amount, first.currency) == (120_000, "USD")
    assert (first.issue_date, first.due_date) == (today, today + timedelta(days=30))
    assert first.description == "Thank you for your business"
    assert (first.payer_type, first.payer_business_name) == ("BUSINESS", "Globex Corp")
    assert first.payer_first_name is None
    assert first.payer_last_name is None
    second = fis[uuid.UUID(person_invoice["id"])]
    assert (second.payer_type, second.payer_first_name, second.payer_last_name) == (
        "INDIVIDUAL",
        "Ada",
        "Lovelace",
    )
    assert second.payer_business_name is None
    third = fis[uuid.UUID(bill["id"])]
    assert (third.type, third.total_amount, third.document_id) == (
        "payable",
        50_000,
        bill["document_id"],
    )
    assert (third.payer_type, third.payer_business_name) == ("BUSINESS", "Initech Inc")
    assert third.due_date == today + timedelta(days=45)
    assert third.description == bill["description"]

    created = [
        object_id
        for action, object_id in await events(db, "financing_invoice")
        if action == "financing_invoice.created"
    ]
    assert sorted(created) == sorted(fi.id for fi in fis.values())


@pytest.mark.parametrize("status", ["issued", "partially_paid"])
async def test_open_receivables_are_eligible(
    client: httpx.AsyncClient, tenant: Tenant, status: str
) -> None:
    await onboard(client, tenant)
    invoice = await receivable_in(client, tenant, status)
    response = await request_financing(client, tenant, receivable(invoice))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("status", ["waiting_to_be_paid", "partially_paid"])
async def test_open_payables_are_eligible(
    client: httpx.AsyncClient, tenant: Tenant, status: str
) -> None:
    await onboard(client, tenant)
    bill = await create_payable(client, tenant, status=status)
    response = await request_financing(client, tenant, payable(bill))
    assert response.status_code == 201, response.text


async def test_due_in_exactly_the_minimum_is_eligible(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant, due_in_days=7)
    response = await request_financing(client, tenant, receivable(invoice))
    assert response.status_code == 201, response.text


# --- POST /v1/financing_invoices: every eligibility failure ----------------------------------


async def assert_refused(
    client: httpx.AsyncClient,
    tenant: Tenant,
    db: Database,
    items: list[Item],
    *,
    status: int,
    reasons: dict[str, list[str]],
    entity: list[str] | None = None,
) -> dict[str, Any]:
    """The request fails with ``status``, names exactly ``reasons`` per invoice (substrings,
    in order) and creates nothing."""
    tokens_before = await count(db, ConnectToken)
    response = await request_financing(client, tenant, *items)
    assert response.status_code == status, response.text
    error = error_of(response)
    listed: dict[str, list[str]] = {}
    for failure in error["invoices"]:
        listed.setdefault(failure["id"], []).append(failure["reason"])
        assert f"Invoice {failure['id']}: {failure['reason']}" in error["message"]
    assert list(listed) == list(reasons)
    for invoice_id, expected in reasons.items():
        assert len(listed[invoice_id]) == len(expected), listed[invoice_id]
        for got, want in zip(listed[invoice_id], expected, strict=True):
            assert want in got
    for reason in entity or []:
        assert any(reason in r for r in error["entity"]), error["entity"]
        assert reason in error["message"]
    if entity is None:
        assert error["entity"] == []
    assert await count(db, FinancingRequest) == 0
    assert await count(db, FinancingInvoice) == 0
    assert await count(db, ConnectToken) == tokens_before
    return error


@pytest.mark.parametrize(
    ("status", "extra"),
    [
        ("draft", ["has no document number", "has no issue date"]),
        ("paid", []),
        ("canceled", []),
        ("overdue", ["due date passed 3 days ago; at least 7 required"]),
    ],
)
async def test_receivable_status_not_financeable(
    client: httpx.AsyncClient, tenant: Tenant, db: Database, status: str, extra: list[str]
) -> None:
    await onboard(client, tenant)
    invoice = await receivable_in(client, tenant, status)
    await assert_refused(
        client,
        tenant,
        db,
        [receivable(invoice)],
        status=409,
        reasons={invoice["id"]: [f"status {status} is not financeable", *extra]},
    )


@pytest.mark.parametrize(
    "status", ["draft", "new", "approve_in_progress", "paid", "rejected", "canceled"]
)
async def test_payable_status_not_financeable(
    client: httpx.AsyncClient, tenant: Tenant, db: Database, status: str
) -> None:
    await onboard(client, tenant)
    bill = await create_payable(client, tenant, status=status)
    expected = [f"status {status} is not financeable"]
    if status == "draft":
        expected.append("has no document number")
    await assert_refused(
        client, tenant, db, [payable(bill)], status=409, reasons={bill["id"]: expected}
    )


@pytest.mark.parametrize("days", [0, 3, 6])
async def test_due_too_soon(
    client: httpx.AsyncClient, tenant: Tenant, db: Database, days: int
) -> None:
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant, due_in_days=days)
    await assert_refused(
        client,
        tenant,
        db,
        [receivable(invoice)],
        status=409,
        reasons={invoice["id"]: [f"due in {days} days; at least 7 required"]},
    )


async def test_payable_due_too_soon(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    await onboard(client, tenant)
    bill = await create_payable(client, tenant, due_in_days=5)
    await assert_refused(
        client,
        tenant,
        db,
        [payable(bill)],
        status=409,
        reasons={bill["id"]: ["due in 5 days; at least 7 required"]},
    )


async def test_other_currency(client: httpx.AsyncClient, tenant: Tenant, db: Database) -> None:
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant, currency="EUR")
    bill = await create_payable(client, tenant, currency="GBP")
    await assert_refused(
        client,
        tenant,
        db,
        [receivable(invoice), payable(bill)],
        status=409,
        reasons={
            invoice["id"]: ["currency EUR differs from the offer's USD"],
            bill["id"]: ["currency GBP differs from the offer's USD"],
        },
    )


async def test_already_in_a_live_financing(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant)
    first = await request_financing(client, tenant, receivable(invoice))
    assert first.status_code == 201
    tokens = await count(db, ConnectToken)
    again = await request_financing(client, tenant, receivable(invoice))
    assert again.status_code == 409
    assert error_of(again)["invoices"] == [
        {
            "id": invoice["id"],
            "type": "receivable",
            "reason": "already in a live financing (status DRAFT)",
        }
    ]
    assert await count(db, FinancingInvoice) == 1
    assert await count(db, FinancingRequest) == 1
    assert await count(db, ConnectToken) == tokens

    # Confirmed and funded (sandbox policy): still live.
    headers = await connect_session(client, first.json()["session_token"])
    listed = await client.get("/connect/v1/invoices", headers=headers)
    plan_id = listed.json()["invoices"][0]["quotes"][0]["pricing_plan_id"]
    confirmed = await client.post(
        "/connect/v1/invoices/confirm",
        json={"invoices": [{"invoice_id": invoice["id"], "pricing_plan_id": plan_id}]},
        headers=headers,
    )
    assert confirmed.status_code == 200, confirmed.text
    again = await request_financing(client, tenant, receivable(invoice))
    assert again.status_code == 409
    assert error_of(again)["invoices"][0]["reason"] == "already in a live financing (status FUNDED)"


async def test_unknown_foreign_and_mistyped_ids_are_404(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, db: Database
) -> None:
    await onboard(client, tenant)
    foreign = await create_issued_invoice(client, other_tenant)
    own = await create_issued_invoice(client, tenant)
    unknown = str(uuid.uuid4())
    error = await assert_refused(
        client,
        tenant,
        db,
        [(unknown, "receivable"), receivable(foreign), (own["id"], "payable")],
        status=404,
        reasons={
            unknown: ["no receivable found"],
            foreign["id"]: ["no receivable found"],
            own["id"]: ["no payable found"],
        },
    )
    assert error["message"].startswith(f"Invoice {unknown}: no receivable found")


async def test_mixed_failures_name_every_invoice_and_404_wins(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    await onboard(client, tenant)
    good = await create_issued_invoice(client, tenant)
    soon = await create_issued_invoice(client, tenant, due_in_days=3)
    draft = await draft_receivable(client, tenant)
    unknown = str(uuid.uuid4())
    error = await assert_refused(
        client,
        tenant,
        db,
        [receivable(good), receivable(soon), (unknown, "payable"), receivable(draft)],
        status=404,
        reasons={
            soon["id"]: ["due in 3 days; at least 7 required"],
            unknown: ["no payable found"],
            draft["id"]: ["status draft is not financeable", "no document", "no issue"],
        },
    )
    assert error["message"].startswith(
        f"Invoice {soon['id']}: due in 3 days; at least 7 required; Invoice {unknown}: "
    )
    # Without the unknown id the same failures are a 409.
    response = await request_financing(client, tenant, receivable(soon), receivable(draft))
    assert response.status_code == 409
    assert good["id"] not in response.text


async def test_entity_without_financing_business(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    invoice = await create_issued_invoice(client, tenant)
    await assert_refused(
        client,
        tenant,
        db,
        [receivable(invoice)],
        status=409,
        reasons={},
        entity=["has not completed onboarding for financing (business_status NEW)"],
    )


async def test_entity_still_onboarding(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    response = await client.post("/v1/financing_tokens", headers=tenant.headers)
    headers = await connect_session(client, response.json()["connect_token"])
    partial = {"legal_name": "Acme Supplies LLC"}
    response = await client.put("/connect/v1/business", json=partial, headers=headers)
    assert response.status_code == 200
    invoice = await create_issued_invoice(client, tenant, due_in_days=3)
    await assert_refused(
        client,
        tenant,
        db,
        [receivable(invoice)],
        status=409,
        reasons={invoice["id"]: ["due in 3 days; at least 7 required"]},
        entity=["(business_status INPUT_REQUIRED)"],
    )


async def test_entity_with_an_offer_not_accepted(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    response = await client.post("/v1/financing_tokens", headers=tenant.headers)
    headers = await connect_session(client, response.json()["connect_token"])
    response = await client.put("/connect/v1/business", json=BUSINESS_PAYLOAD, headers=headers)
    assert response.json()["offer"]["status"] == "NEW"
    invoice = await create_issued_invoice(client, tenant)
    await assert_refused(
        client,
        tenant,
        db,
        [receivable(invoice)],
        status=409,
        reasons={},
        entity=["The business has no CURRENT financing offer (its latest offer is NEW)"],
    )


async def test_entity_outside_the_us(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    berlin = {
        "line1": "Unter den Linden 1",
        "city": "Berlin",
        "postal_code": "10117",
        "country": "DE",
    }
    entity_id = await create_entity(client, tenant.token, name="Acme GmbH", address=berlin)
    german = Tenant(
        tenant.partner_id,
        tenant.client_id,
        tenant.client_secret,
        tenant.token,
        entity_id,
        {**tenant.auth, "x-monite-entity-id": entity_id},
    )
    response = await client.post("/v1/financing_tokens", headers=german.headers)
    headers = await connect_session(client, response.json()["connect_token"])
    response = await client.put("/connect/v1/business", json=BUSINESS_PAYLOAD, headers=headers)
    assert response.json()["business_status"] == "ONBOARDED"
    assert response.json()["offer"] is None  # declined by underwriting
    invoice = await create_issued_invoice(client, german)
    await assert_refused(
        client,
        german,
        db,
        [receivable(invoice)],
        status=409,
        reasons={},
        entity=[
            "only available to US entities (this entity is in DE)",
            "The business has no CURRENT financing offer",
        ],
    )


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "invoices"]),
        ({"invoices": []}, ["body", "invoices"]),
        ({"invoices": [{"id": "not-a-uuid", "type": "receivable"}]}, ["body", "invoices", 0, "id"]),
        (
            {"invoices": [{"id": str(uuid.uuid4()), "type": "quote"}]},
            ["body", "invoices", 0, "type"],
        ),
        ({"invoices": [{"id": str(uuid.uuid4())}]}, ["body", "invoices", 0, "type"]),
        (
            {"invoices": [{"id": str(uuid.uuid4()), "type": "payable"} for _ in range(11)]},
            ["body", "invoices"],
        ),
    ],
)
async def test_malformed_requests_are_422(
    client: httpx.AsyncClient, tenant: Tenant, db: Database, body: dict[str, Any], loc: list[Any]
) -> None:
    await onboard(client, tenant)
    response = await client.post("/v1/financing_invoices", json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert loc in [d["loc"] for d in response.json()["detail"]]
    assert await count(db, FinancingRequest) == 0


async def test_an_invoice_listed_twice_is_422(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant)
    other = await create_issued_invoice(client, tenant)
    response = await request_financing(
        client, tenant, receivable(invoice), receivable(other), receivable(invoice)
    )
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", "invoices", 2, "id"]
    assert invoice["id"] in detail["msg"]
    assert await count(db, FinancingInvoice) == 0


async def test_concurrent_requests_for_one_invoice_create_one_financing(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant)
    responses = await asyncio.gather(
        *(request_financing(client, tenant, receivable(invoice)) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    assert await count(db, FinancingInvoice) == 1
    assert await count(db, FinancingRequest) == 1


async def test_draft_released_when_the_request_expires(
    client: httpx.AsyncClient, tenant: Tenant, app: FastAPI, db: Database
) -> None:
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant)
    first = await request_financing(client, tenant, receivable(invoice))
    assert first.status_code == 201
    ttl = app.state.policy.request_ttl_seconds

    clock.set_offset(timedelta(seconds=ttl - 5))
    assert (await tick(app))["drafts_released"] == 0
    assert (await request_financing(client, tenant, receivable(invoice))).status_code == 409

    clock.set_offset(timedelta(seconds=ttl + 1))
    counts = await tick(app)
    assert counts["drafts_released"] == 1
    assert counts["requests_expired"] == 1
    assert await count(db, FinancingInvoice) == 0
    # The session token died with its request.
    response = await client.post(
        "/connect/v1/sessions", json={"token": first.json()["session_token"]}
    )
    assert response.status_code == 401
    listed = await client.get("/v1/financing_invoices", headers=tenant.headers)
    assert listed.json() == {"data": []}

    again = await request_financing(client, tenant, receivable(invoice))
    assert again.status_code == 201, again.text


async def test_lapsed_draft_is_released_by_the_next_request(
    client: httpx.AsyncClient, tenant: Tenant, app: FastAPI, db: Database
) -> None:
    """No need to wait for the worker: a new request frees the invoice of an expired one."""
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant)
    first = await request_financing(client, tenant, receivable(invoice))
    assert first.status_code == 201
    first_draft = (await client.get("/v1/financing_invoices", headers=tenant.headers)).json()
    clock.set_offset(timedelta(seconds=app.state.policy.request_ttl_seconds + 1))

    again = await request_financing(client, tenant, receivable(invoice))
    assert again.status_code == 201, again.text
    listed = (await client.get("/v1/financing_invoices", headers=tenant.headers)).json()["data"]
    assert [f["status"] for f in listed] == ["DRAFT"]
    assert listed[0]["id"] != first_draft["data"][0]["id"]
    assert await count(db, FinancingInvoice) == 1


# --- GET /v1/financing_invoices ---------------------------------------------------------------


@dataclass
class Portfolio:
    """Three financing invoices: ``a`` (receivable, DRAFT, issued 10 days ago, due in 30,
    100000), ``b`` (receivable to a person, FUNDED, issued today, due in 20, 250000) and ``c``
    (payable, DRAFT, issued today, due in 45, 50000, requested a minute later)."""

    today: date
    invoices: dict[str, dict[str, Any]]  # name → the Monite invoice (receivable or payable)
    ids: dict[str, str]  # name → invoice id
    created: dict[str, datetime]  # name → the financing invoice's created_at
    fi_ids: dict[str, str]  # name → the financing invoice's own id

    def name_of(self, invoice_id: str) -> str:
        return next(n for n, i in self.ids.items() if i == invoice_id)


@pytest.fixture
async def portfolio(client: httpx.AsyncClient, tenant: Tenant, db: Database) -> Portfolio:
    await onboard(client, tenant)
    today = clock.today()
    clock.set_offset(timedelta(days=-10))
    a = await create_issued_invoice(client, tenant, due_in_days=40, amount=100_000)
    clock.reset()
    person = await individual_customer(client, tenant)
    b = await create_issued_invoice(
        client, tenant, counterpart_id=person["id"], due_in_days=20, amount=250_000
    )
    c = await create_payable(client, tenant, due_in_days=45, amount=50_000)
    first = await request_financing(client, tenant, receivable(a), receivable(b))
    assert first.status_code == 201, first.text
    clock.set_offset(timedelta(minutes=1))
    second = await request_financing(client, tenant, payable(c))
    assert second.status_code == 201, second.text

    headers = await connect_session(client, first.json()["session_token"])
    listed = await client.get("/connect/v1/invoices", headers=headers)
    plan_id = listed.json()["invoices"][0]["quotes"][0]["pricing_plan_id"]
    confirmed = await client.post(
        "/connect/v1/invoices/confirm",
        json={"invoices": [{"invoice_id": b["id"], "pricing_plan_id": plan_id}]},
        headers=headers,
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["invoices"][0]["status"] == "FUNDED"

    invoices = {"a": a, "b": b, "c": c}
    ids = {name: str(inv["id"]) for name, inv in invoices.items()}
    async with db.session() as session:
        rows = {str(fi.invoice_id): fi for fi in await session.scalars(select(FinancingInvoice))}
    return Portfolio(
        today,
        invoices,
        ids,
        {name: rows[i].created_at for name, i in ids.items()},
        {name: str(rows[i].id) for name, i in ids.items()},
    )


async def list_names(
    client: httpx.AsyncClient, tenant: Tenant, p: Portfolio, params: Any
) -> list[str]:
    response = await client.get("/v1/financing_invoices", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert "next_pagination_token" not in response.json()
    assert "prev_pagination_token" not in response.json()
    return [p.name_of(item["invoice_id"]) for item in response.json()["data"]]


def midnight(day: date) -> str:
    return datetime.combine(day, time(0), UTC).isoformat()


def noon(day: date) -> str:
    return datetime.combine(day, time(12), UTC).isoformat()


def days(p: Portfolio, n: int) -> date:
    return p.today + timedelta(days=n)


# (params, expected names) for each filter; built from the portfolio.
FILTER_CASES: list[tuple[str, Callable[[Portfolio], Any], set[str]]] = [
    ("none", lambda p: {}, {"a", "b", "c"}),
    ("invoice_id", lambda p: {"invoice_id": p.ids["a"]}, {"a"}),
    ("invoice_id unknown", lambda p: {"invoice_id": str(uuid.uuid4())}, set()),
    (
        "invoice_id__in",
        lambda p: [("invoice_id__in", p.ids["a"]), ("invoice_id__in", p.ids["c"])],
        {"a", "c"},
    ),
    ("status DRAFT", lambda p: {"status": "DRAFT"}, {"a", "c"}),
    ("status FUNDED", lambda p: {"status": "FUNDED"}, {"b"}),
    ("status PAID", lambda p: {"status": "PAID"}, set()),
    ("status__in", lambda p: [("status__in", "FUNDED"), ("status__in", "NEW")], {"b"}),
    ("type payable", lambda p: {"type": "payable"}, {"c"}),
    ("type__in", lambda p: [("type__in", "receivable")], {"a", "b"}),
    (
        "type__in both",
        lambda p: [("type__in", "receivable"), ("type__in", "payable")],
        {"a", "b", "c"},
    ),
    ("document_id", lambda p: {"document_id": p.invoices["b"]["document_id"]}, {"b"}),
    (
        "document_id__in",
        lambda p: [
            ("document_id__in", p.invoices["a"]["document_id"]),
            ("document_id__in", p.invoices["c"]["document_id"]),
        ],
        {"a", "c"},
    ),
    ("issue_date__lt midnight", lambda p: {"issue_date__lt": midnight(p.today)}, {"a"}),
    ("issue_date__lt noon", lambda p: {"issue_date__lt": noon(p.today)}, {"a", "b", "c"}),
    ("issue_date__lte", lambda p: {"issue_date__lte": midnight(days(p, -1))}, {"a"}),
    ("issue_date__gt", lambda p: {"issue_date__gt": midnight(days(p, -10))}, {"b", "c"}),
    (
        "issue_date__gte midnight",
        lambda p: {"issue_date__gte": midnight(days(p, -10))},
        {"a", "b", "c"},
    ),
    ("issue_date__gte noon", lambda p: {"issue_date__gte": noon(days(p, -10))}, {"b", "c"}),
    ("due_date__gt", lambda p: {"due_date__gt": midnight(days(p, 20))}, {"a", "c"}),
    ("due_date__gt noon", lambda p: {"due_date__gt": noon(days(p, 19))}, {"a", "b", "c"}),
    ("due_date__gte", lambda p: {"due_date__gte": midnight(days(p, 30))}, {"a", "c"}),
    ("due_date__lt", lambda p: {"due_date__lt": midnight(days(p, 30))}, {"b"}),
    ("due_date__lte", lambda p: {"due_date__lte": midnight(days(p, 30))}, {"a", "b"}),
    ("due_date__lte noon", lambda p: {"due_date__lte": noon(days(p, 30))}, {"a", "b"}),
    (
        "due_date range",
        lambda p: {"due_date__gt": midnight(days(p, 20)), "due_date__lt": midnight(days(p, 45))},
        {"a"},
    ),
    (
        "issue_date offset",  # 2 a.m. in UTC+3 is 23:00 UTC the day before: "< today 00:00"
        lambda p: {"issue_date__lt": f"{p.today.isoformat()}T02:00:00+03:00"},
        {"a"},
    ),
    (
        "created_at__gt",
        lambda p: {"created_at__gt": (p.created["c"] - timedelta(seconds=30)).isoformat()},
        {"c"},
    ),
    (
        "created_at__lt",
        lambda p: {"created_at__lt": (p.created["c"] - timedelta(seconds=30)).isoformat()},
        {"a", "b"},
    ),
    ("created_at__gte", lambda p: {"created_at__gte": p.created["c"].isoformat()}, {"c"}),
    (
        "created_at__lte",
        lambda p: {"created_at__lte": max(p.created["a"], p.created["b"]).isoformat()},
        {"a", "b"},
    ),
    ("total_amount", lambda p: {"total_amount": 100_000}, {"a"}),
    ("total_amount__gt", lambda p: {"total_amount__gt": 100_000}, {"b"}),
    ("total_amount__gte", lambda p: {"total_amount__gte": 100_000}, {"a", "b"}),
    ("total_amount__lt", lambda p: {"total_amount__lt": 100_000}, {"c"}),
    ("total_amount__lte", lambda p: {"total_amount__lte": 100_000}, {"a", "c"}),
    ("combined", lambda p: {"type": "receivable", "status": "DRAFT"}, {"a"}),
]


@pytest.mark.parametrize(
    ("params", "expected"),
    [pytest.param(build, expected, id=name) for name, build, expected in FILTER_CASES],
)
async def test_filters(
    client: httpx.AsyncClient,
    tenant: Tenant,
    portfolio: Portfolio,
    params: Callable[[Portfolio], Any],
    expected: set[str],
) -> None:
    assert set(await list_names(client, tenant, portfolio, params(portfolio))) == expected


async def test_fields_of_each_financing_invoice(
    client: httpx.AsyncClient, tenant: Tenant, portfolio: Portfolio
) -> None:
    response = await client.get("/v1/financing_invoices", headers=tenant.headers)
    by_name = {portfolio.name_of(i["invoice_id"]): i for i in response.json()["data"]}
    p = portfolio
    a = by_name["a"]
    assert a == {
        "id": p.fi_ids["a"],
        "type": "receivable",
        "status": "DRAFT",
        "invoice_id": p.ids["a"],
        "document_id": p.invoices["a"]["document_id"],
        "issue_date": days(p, -10).isoformat(),
        "due_date": days(p, 30).isoformat(),
        "total_amount": 100_000,
        "currency": "USD",
        "description": "Thank you for your business",
        "payer_type": "BUSINESS",
        "payer_business_name": "Globex Corp",
        "instalments": [],
        "status_history": [
            {
                "to_status": "DRAFT",
                "cause": "financing requested",
                "at": a["status_history"][0]["at"],
            }
        ],
    }
    b = by_name["b"]
    funded_on = clock.today()
    assert b["status"] == "FUNDED"
    assert (b["payer_type"], b["payer_first_name"], b["payer_last_name"]) == (
        "INDIVIDUAL",
        "Ada",
        "Lovelace",
    )
    assert "payer_business_name" not in b
    # The first sandbox plan: 100 % advance, 2 % fee, repaid 30 days after funding.
    assert (b["advance_rate_percentage"], b["fee_percentage"]) == (10000, 200)
    assert b["requested_amount"] == b["repayment_amount"] == 250_000
    assert b["fee_amount"] == 5_000
    assert b["principal_amount"] == b["advance_amount"] == 245_000
    assert b["repayment_schedule"] == {
        "repayment_date": (funded_on + timedelta(days=30)).isoformat(),
        "repayment_amount": 250_000,
        "repayment_fee_amount": 5_000,
        "repayment_principal_amount": 245_000,
    }
    assert b["instalments"] == [
        {
            "sequence": 1,
            "due_date": (funded_on + timedelta(days=30)).isoformat(),
            "amount": 250_000,
            "fee_amount": 5_000,
            "principal_amount": 245_000,
            "paid_amount": 0,
        }
    ]
    history = [(h.get("from_status"), h["to_status"]) for h in b["status_history"]]
    assert history[0] == (None, "DRAFT")
    assert ("DRAFT", "NEW") in history
    assert history[-1] == ("NEW", "FUNDED")
    c = by_name["c"]
    assert (c["type"], c["status"], c["total_amount"]) == ("payable", "DRAFT", 50_000)
    assert c["document_id"] == p.invoices["c"]["document_id"]
    assert c["issue_date"] == p.today.isoformat()
    assert c["due_date"] == days(p, 45).isoformat()
    assert c["payer_type"] == "BUSINESS"


def expected_order(p: Portfolio, sort: str, order: str) -> list[str]:
    keys = {
        name: (
            p.created[name] if sort == "created_at" else uuid.UUID(p.fi_ids[name]),
            uuid.UUID(p.fi_ids[name]),
        )
        for name in p.ids
    }
    return sorted(keys, key=lambda n: keys[n], reverse=order == "desc")


@pytest.mark.parametrize("sort", [None, "created_at", "id"])
@pytest.mark.parametrize("order", [None, "asc", "desc"])
async def test_sort_and_order(
    client: httpx.AsyncClient,
    tenant: Tenant,
    portfolio: Portfolio,
    sort: str | None,
    order: str | None,
) -> None:
    params = {k: v for k, v in {"sort": sort, "order": order}.items() if v is not None}
    names = await list_names(client, tenant, portfolio, params)
    assert names == expected_order(portfolio, sort or "created_at", order or "asc")


@pytest.mark.parametrize("sort", ["created_at", "id"])
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_pagination_walks_both_ways(
    client: httpx.AsyncClient, tenant: Tenant, portfolio: Portfolio, sort: str, order: str
) -> None:
    expected = expected_order(portfolio, sort, order)
    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1, "sort": sort, "order": order}
    while True:
        response = await client.get("/v1/financing_invoices", params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        token = response.json().get("next_pagination_token")
        if token is None:
            break
        params = {"pagination_token": token}
    assert [portfolio.name_of(p["data"][0]["invoice_id"]) for p in pages] == expected
    # The ends leave the keys out (Monite declares them non-nullable strings).
    assert "prev_pagination_token" not in pages[0]
    assert "next_pagination_token" not in pages[-1]
    assert all("next_pagination_token" in p for p in pages[:-1])
    assert all("prev_pagination_token" in p for p in pages[1:])

    back = []
    token = pages[-1]["prev_pagination_token"]
    while token is not None:
        response = await client.get(
            "/v1/financing_invoices", params={"pagination_token": token}, headers=tenant.headers
        )
        back.append(portfolio.name_of(response.json()["data"][0]["invoice_id"]))
        token = response.json().get("prev_pagination_token")
    assert back == list(reversed(expected[:-1]))


async def test_a_token_carries_its_query_and_overrides_other_params(
    client: httpx.AsyncClient, tenant: Tenant, portfolio: Portfolio
) -> None:
    first = await client.get(
        "/v1/financing_invoices",
        params={"status": "DRAFT", "limit": 1},
        headers=tenant.headers,
    )
    token = first.json()["next_pagination_token"]
    second = await client.get(
        "/v1/financing_invoices",
        params={"pagination_token": token, "status": "FUNDED", "limit": 100, "type": "payable"},
        headers=tenant.headers,
    )
    assert second.status_code == 200
    names = [portfolio.name_of(first.json()["data"][0]["invoice_id"])]
    names += [portfolio.name_of(i["invoice_id"]) for i in second.json()["data"]]
    assert sorted(names) == ["a", "c"]
    assert "next_pagination_token" not in second.json()


async def test_limit_and_the_whole_page(
    client: httpx.AsyncClient, tenant: Tenant, portfolio: Portfolio
) -> None:
    response = await client.get(
        "/v1/financing_invoices", params={"limit": 2}, headers=tenant.headers
    )
    assert len(response.json()["data"]) == 2
    assert "next_pagination_token" in response.json()
    response = await client.get(
        "/v1/financing_invoices", params={"limit": 3}, headers=tenant.headers
    )
    assert len(response.json()["data"]) == 3
    assert set(response.json()) == {"data"}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"pagination_token": "forged"}, 400),
        ({"limit": 0}, 422),
        ({"limit": 101}, 422),
        ({"sort": "due_date"}, 422),
        ({"order": "up"}, 422),
        ({"status": "APPROVED"}, 422),
        ({"type": "quote"}, 422),
        ({"invoice_id": "nope"}, 422),
        ({"due_date__gt": "soon"}, 422),
        ({"total_amount__gt": "many"}, 422),
        ({"colour": "red"}, 422),
    ],
)
async def test_bad_list_params(
    client: httpx.AsyncClient, tenant: Tenant, params: dict[str, Any], status: int
) -> None:
    response = await client.get("/v1/financing_invoices", params=params, headers=tenant.headers)
    assert response.status_code == status, response.text


async def test_list_is_scoped_to_the_entity(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, portfolio: Portfolio
) -> None:
    response = await client.get("/v1/financing_invoices", headers=other_tenant.headers)
    assert response.json() == {"data": []}
    response = await client.get(
        "/v1/financing_invoices",
        params={"invoice_id": portfolio.ids["a"]},
        headers=other_tenant.headers,
    )
    assert response.json() == {"data": []}


# --- the tenant boundary ---------------------------------------------------------------------


async def test_every_endpoint_refuses_another_tenants_entity(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, db: Database
) -> None:
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant)
    # The other tenant's token naming this tenant's entity.
    foreign = {**other_tenant.auth, "x-monite-entity-id": tenant.entity_id}
    calls = [
        client.post("/v1/financing_tokens", headers=foreign),
        client.get("/v1/financing_offers", headers=foreign),
        request_financing(client, tenant, receivable(invoice), headers=foreign),
        client.get("/v1/financing_invoices", headers=foreign),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 404, response.text
        assert error_of(response)["message"] == "Entity not found"
    assert await count(db, FinancingRequest) == 0
    assert await count(db, FinancingBusiness) == 1
