"""Financing a partially paid invoice: quotes, the requestable maximum and the confirmed
amounts are based on what the invoice still owes (its amount due), while the financing
invoice keeps the invoice's total as Monite's ``total_amount``."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from fundline.connect.service import plans_of
from fundline.kit.db import Database
from fundline.kit.errors import Unprocessable
from fundline.lending import servicing
from fundline.models import FinancingInvoice
from tests.support.factories import (
    Tenant,
    connect_session,
    create_issued_invoice,
    create_payable,
    onboard,
)
from tests.support.lending import MANUAL

# The advance rates of the shipped sandbox policy's four plans, in order.
SANDBOX_ADVANCE_RATES = (10_000, 10_000, 9_000, 8_500)


async def _invoices_session(
    client: httpx.AsyncClient, tenant: Tenant, invoice_id: str, kind: str
) -> dict[str, str]:
    response = await client.post(
        "/v1/financing_invoices",
        json={"invoices": [{"id": invoice_id, "type": kind}]},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    return await connect_session(client, response.json()["session_token"])


async def _quoted(client: httpx.AsyncClient, session: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/connect/v1/invoices", headers=session)
    assert response.status_code == 200, response.text
    [invoice] = response.json()["invoices"]
    assert isinstance(invoice, dict)
    return invoice


async def _partially_paid_receivable(
    client: httpx.AsyncClient, tenant: Tenant, *, total: int, paid: int
) -> dict[str, Any]:
    invoice = await create_issued_invoice(client, tenant, amount=total)
    response = await client.post(
        f"/v1/receivables/{invoice['id']}/mark_as_partially_paid",
        json={"amount_paid": paid},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    return invoice


async def test_quotes_of_a_partially_paid_receivable_are_based_on_its_amount_due(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await onboard(client, tenant)
    invoice = await _partially_paid_receivable(client, tenant, total=100_000, paid=40_000)
    session = await _invoices_session(client, tenant, invoice["id"], "receivable")

    quoted = await _quoted(client, session)
    assert (quoted["total_amount"], quoted["amount_due"]) == (100_000, 60_000)
    assert [q["max_requested_amount"] for q in quoted["quotes"]] == [
        60_000 * rate // 10_000 for rate in SANDBOX_ADVANCE_RATES
    ]
    plan_id = quoted["quotes"][0]["pricing_plan_id"]

    # One minor unit above the maximum on the amount due is refused, naming the item.
    too_much = await client.post(
        "/connect/v1/invoices/confirm",
        json={
            "invoices": [
                {
                    "invoice_id": invoice["id"],
                    "pricing_plan_id": plan_id,
                    "requested_amount": 60_001,
                }
            ]
        },
        headers=session,
    )
    assert too_much.status_code == 422, too_much.text
    assert too_much.json()["detail"][0]["loc"] == ["body", "invoices", 0, "requested_amount"]

    # The default is the maximum: 100 % of the 60,000 still owed, 2 % fee.
    confirmed = await client.post(
        "/connect/v1/invoices/confirm",
        json={"invoices": [{"invoice_id": invoice["id"], "pricing_plan_id": plan_id}]},
        headers=session,
    )
    assert confirmed.status_code == 200, confirmed.text
    [fi] = confirmed.json()["invoices"]
    assert fi["status"] == "FUNDED"
    assert fi["total_amount"] == 100_000  # Monite's field: the invoice's total
    assert (fi["requested_amount"], fi["fee_amount"], fi["advance_amount"]) == (
        60_000,
        1_200,
        58_800,
    )
    assert fi["repayment_amount"] == fi["principal_amount"] + fi["fee_amount"]

    listed = await client.get(
        "/v1/financing_invoices", params={"invoice_id": invoice["id"]}, headers=tenant.headers
    )
    assert listed.json()["data"] == [fi]


async def test_a_payment_after_the_request_lowers_the_maximum(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant, amount=100_000)
    session = await _invoices_session(client, tenant, invoice["id"], "receivable")
    before = await _quoted(client, session)
    assert before["amount_due"] == 100_000
    assert before["quotes"][0]["max_requested_amount"] == 100_000

    response = await client.post(
        f"/v1/receivables/{invoice['id']}/mark_as_partially_paid",
        json={"amount_paid": 25_000},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text

    after = await _quoted(client, session)
    assert after["amount_due"] == 75_000
    assert after["quotes"][0]["max_requested_amount"] == 75_000
    refused = await client.post(
        "/connect/v1/invoices/confirm",
        json={
            "invoices": [
                {
                    "invoice_id": invoice["id"],
                    "pricing_plan_id": after["quotes"][0]["pricing_plan_id"],
                    "requested_amount": 100_000,
                }
            ]
        },
        headers=session,
    )
    assert refused.status_code == 422, refused.text
    assert "75000" in refused.json()["detail"][0]["msg"]


async def test_a_partially_paid_payable_is_quoted_on_its_amount_due(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await onboard(client, tenant)
    bill = await create_payable(client, tenant, status="partially_paid", amount=80_000)
    session = await _invoices_session(client, tenant, bill["id"], "payable")
    quoted = await _quoted(client, session)
    assert (quoted["total_amount"], quoted["amount_due"]) == (80_000, 40_000)
    assert [q["max_requested_amount"] for q in quoted["quotes"]] == [
        40_000 * rate // 10_000 for rate in SANDBOX_ADVANCE_RATES
    ]


async def test_servicing_confirms_within_the_amount_due(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    """``servicing.confirm_invoice`` itself enforces the cap, whoever calls it."""
    await onboard(client, tenant)
    invoice = await _partially_paid_receivable(client, tenant, total=50_000, paid=20_000)
    await _invoices_session(client, tenant, invoice["id"], "receivable")
    async with db.session() as session:
        fi = await session.scalar(
            select(FinancingInvoice).where(FinancingInvoice.invoice_id == uuid.UUID(invoice["id"]))
        )
        assert fi is not None
        [plan, *_] = await plans_of(session, fi.offer_id)
        with pytest.raises(Unprocessable, match="between 1 and 30000, not 30001"):
            await servicing.confirm_invoice(
                session, fi, plan=plan, requested_amount=30_001, policy=MANUAL
            )
    async with db.session() as session, session.begin():
        fi = await session.scalar(
            select(FinancingInvoice).where(FinancingInvoice.invoice_id == uuid.UUID(invoice["id"]))
        )
        assert fi is not None
        confirmed = await servicing.confirm_invoice(
            session, fi, plan=plan, requested_amount=None, policy=MANUAL
        )
        assert (confirmed.status, confirmed.requested_amount) == ("NEW", 30_000)
        assert confirmed.total_amount == 50_000
