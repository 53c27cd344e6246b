"""What a receivable's or payable's partial payment, cancellation or write-off does to its
financing (``lending/documents.py``), through the Monite endpoints that record them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from fundline.kit import clock
from fundline.kit.db import Database
from fundline.lending import ledger, servicing
from fundline.models import (
    FinancingInvoice,
    FinancingOffer,
    FinancingStatusChange,
    Instalment,
    JournalEntry,
)
from fundline.models.financing import WCInvoiceStatus
from tests.support.factories import Tenant, create_issued_invoice, create_payable
from tests.support.lending import LIMIT, MANUAL, make_draft, make_offer, plans_of, walk

FIXED, MULTIPLE = 0, 1  # the plans of make_offer: 100 % advance, 3 % fee; 90 %, 4 %, 3 parts


async def _financed(
    db: Database,
    tenant: Tenant,
    document: dict[str, Any],
    status: str,
    *,
    invoice_type: str = "receivable",
    plan: int = FIXED,
) -> tuple[uuid.UUID, uuid.UUID]:
    """A financing of ``document`` in ``status``; (its id, its offer's id)."""
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant)
        chosen = (await plans_of(session, offer))[plan]
        draft = await make_draft(
            session,
            offer,
            total_amount=document["total_amount"],
            invoice_id=uuid.UUID(document["id"]),
            invoice_type=invoice_type,
        )
        fi = await walk(session, draft, status, plan=chosen)
        return fi.id, offer.id


async def _state(db: Database, fi_id: uuid.UUID) -> tuple[FinancingInvoice | None, FinancingOffer]:
    async with db.session() as session:
        fi = await session.get(FinancingInvoice, fi_id)
        offer = await session.scalar(select(FinancingOffer))
        assert offer is not None
        return fi, offer


async def _paid_parts(db: Database, fi_id: uuid.UUID) -> list[int]:
    async with db.session() as session:
        return list(
            await session.scalars(
                select(Instalment.paid_amount)
                .where(Instalment.financing_invoice_id == fi_id)
                .order_by(Instalment.sequence)
            )
        )


async def _repayments(db: Database, fi_id: uuid.UUID) -> list[str]:
    async with db.session() as session:
        return list(
            await session.scalars(
                select(JournalEntry.memo)
                .where(JournalEntry.financing_invoice_id == fi_id, JournalEntry.kind == "repayment")
                .order_by(JournalEntry.created_at)
            )
        )


async def _last_cause(db: Database, fi_id: uuid.UUID) -> str:
    async with db.session() as session:
        causes = list(
            await session.scalars(
                select(FinancingStatusChange.cause)
                .where(FinancingStatusChange.financing_invoice_id == fi_id)
                .order_by(FinancingStatusChange.at, FinancingStatusChange.id)
            )
        )
        return causes[-1]


async def _clean(db: Database) -> None:
    async with db.session() as session:
        assert await ledger.reconcile(session) == []


async def _act(
    client: httpx.AsyncClient, tenant: Tenant, path: str, body: dict[str, Any] | None = None
) -> None:
    response = await client.post(path, json=body, headers=tenant.headers)
    assert response.status_code in (200, 204), response.text


# --- partial payments ------------------------------------------------------------------------


async def test_partial_payments_of_a_funded_receivable_repay_its_financing_until_paid(
    db: Database, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    invoice = await create_issued_invoice(client, tenant, amount=100_000)
    fi_id, _ = await _financed(db, tenant, invoice, "FUNDED")  # 100000 = 97000 + fee 3000
    path = f"/v1/receivables/{invoice['id']}"

    await _act(client, tenant, f"{path}/mark_as_partially_paid", {"amount_paid": 40_000})
    fi, offer = await _state(db, fi_id)
    assert fi is not None
    assert (fi.status, fi.repaid_amount) == ("FUNDED", 40_000)
    assert (offer.outstanding_amount, offer.available_amount) == (60_000, LIMIT - 60_000)
    assert await _paid_parts(db, fi_id) == [40_000]
    # The sum paid so far is what Monite sends: only the 30000 more is repaid next.
    await _act(client, tenant, f"{path}/mark_as_partially_paid", {"amount_paid": 70_000})
    fi, offer = await _state(db, fi_id)
    assert fi is not None
    assert (fi.status, fi.repaid_amount, offer.outstanding_amount) == ("FUNDED", 70_000, 30_000)
    await _act(client, tenant, f"{path}/mark_as_paid")
    fi, offer = await _state(db, fi_id)
    assert fi is not None
    assert (fi.status, fi.repaid_amount, offer.available_amount) == ("PAID", 100_000, LIMIT)
    memos = await _repayments(db, fi_id)
    assert [m.split(": ", 1)[1] for m in memos] == [
        "repaid 40000 (fee 3000, principal 37000): the receivable was partly paid (40000 more)",
        "repaid 30000 (fee 0, principal 30000): the receivable was partly paid (30000 more)",
        "repaid 30000 (fee 0, principal 30000): the receivable was paid",
    ]
    async with db.session() as session:
        assert await ledger.outstanding(session, fi_id) == 0
    await _clean(db)


async def test_a_partial_payment_goes_to_the_earliest_instalment_fee_first(
    db: Database, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    invoice = await create_issued_invoice(client, tenant, amount=100_000)
    # 90 % of 100000 = 90000, fee 4 % = 3600: three instalments of 30000 = 1200 + 28800.
    fi_id, _ = await _financed(db, tenant, invoice, "FUNDED", plan=MULTIPLE)
    await _act(
        client,
        tenant,
        f"/v1/receivables/{invoice['id']}/mark_as_partially_paid",
        {"amount_paid": 45_000},
    )
    assert await _paid_parts(db, fi_id) == [30_000, 15_000, 0]
    [memo] = await _repayments(db, fi_id)
    assert "repaid 45000 (fee 2400, principal 42600)" in memo
    fi, _ = await _state(db, fi_id)
    assert fi is not None
    assert (fi.status, fi.repaid_amount) == ("FUNDED", 45_000)
    await _clean(db)


async def test_a_partial_payment_above_what_is_owed_repays_it_all(
    db: Database, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    invoice = await create_issued_invoice(client, tenant, amount=100_000)
    fi_id, _ = await _financed(db, tenant, invoice, "FUNDED", plan=MULTIPLE)  # owes 90000
    await _act(
        client,
        tenant,
        f"/v1/receivables/{invoice['id']}/mark_as_partially_paid",
        {"amount_paid": 95_000},
    )
    fi, offer = await _state(db, fi_id)
    assert fi is not None
    assert (fi.status, fi.repaid_amount, offer.outstanding_amount) == ("PAID", 90_000, 0)
    assert fi.live_invoice_id is None
    assert await _paid_parts(db, fi_id) == [30_000, 30_000, 30_000]
    # The rest of the invoice is the business's own money: marking it paid changes nothing.
    await _act(client, tenant, f"/v1/receivables/{invoice['id']}/mark_as_paid")
    assert len(await _repayments(db, fi_id)) == 1
    await _clean(db)


async def test_a_partial_payment_that_clears_what_is_overdue_brings_a_late_one_back(
    db: Database, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    invoice = await create_issued_invoice(client, tenant, amount=100_000, due_in_days=60)
    fi_id, _ = await _financed(db, tenant, invoice, "FUNDED", plan=MULTIPLE)
    clock.set_offset(timedelta(days=31))  # the first instalment (day 30) is overdue
    async with db.session() as session, session.begin():
        await servicing.tick(session, policy=MANUAL)
    fi, offer = await _state(db, fi_id)
    assert fi is not None
    assert (fi.status, offer.status) == ("LATE", "LATE")
    await _act(
        client,
        tenant,
        f"/v1/receivables/{invoice['id']}/mark_as_partially_paid",
        {"amount_paid": 30_000},
    )
    fi, offer = await _state(db, fi_id)
    assert fi is not None
    assert (fi.status, offer.status, fi.repaid_amount) == ("FUNDED", "CURRENT", 30_000)
    await _clean(db)


async def test_a_partial_payment_of_a_funded_payable_repays_its_financing(
    db: Database, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    payable = await create_payable(client, tenant, amount=100_000)
    fi_id, _ = await _financed(db, tenant, payable, "FUNDED", invoice_type="payable")
    path = f"/v1/payables/{payable['id']}"
    await _act(client, tenant, f"{path}/mark_as_partially_paid", {"amount_paid": 25_000})
    fi, offer = await _state(db, fi_id)
    assert fi is not None
    assert (fi.status, fi.repaid_amount, offer.outstanding_amount) == ("FUNDED", 25_000, 75_000)
    # The same sum again adds nothing.
    await _act(client, tenant, f"{path}/mark_as_partially_paid", {"amount_paid": 25_000})
    assert len(await _repayments(db, fi_id)) == 1
    await _act(client, tenant, f"{path}/mark_as_paid")
    fi, _ = await _state(db, fi_id)
    assert fi is not None
    assert (fi.status, fi.repaid_amount) == ("PAID", 100_000)
    await _clean(db)


@pytest.mark.parametrize("status", ["DRAFT", "NEW"])
async def test_a_partial_payment_before_funding_leaves_the_financing_as_it_is(
    db: Database, client: httpx.AsyncClient, tenant: Tenant, status: str
) -> None:
    invoice = await create_issued_invoice(client, tenant, amount=100_000)
    fi_id, _ = await _financed(db, tenant, invoice, status)
    _, before = await _state(db, fi_id)
    await _act(
        client,
        tenant,
        f"/v1/receivables/{invoice['id']}/mark_as_partially_paid",
        {"amount_paid": 40_000},
    )
    fi, offer = await _state(db, fi_id)
    assert fi is not None
    assert (fi.status, fi.repaid_amount) == (status, 0)
    assert offer.reserved_amount == before.reserved_amount
    await _clean(db)


# --- cancelled and uncollectible invoices ------------------------------------------------------

CANCEL = ("cancel", None, "canceled")
UNCOLLECTIBLE = (
    "mark_as_uncollectible",
    {"comment": "the customer is gone"},
    "marked uncollectible",
)
OUTCOMES = [pytest.param(*CANCEL, id="cancel"), pytest.param(*UNCOLLECTIBLE, id="uncollectible")]


async def _end_invoice(
    client: httpx.AsyncClient, tenant: Tenant, invoice: dict[str, Any], action: str, body: Any
) -> None:
    if action == "mark_as_uncollectible":
        clock.set_offset(timedelta(days=31))  # uncollectible needs it overdue (due in 30 days)
    await _act(client, tenant, f"/v1/receivables/{invoice['id']}/{action}", body)


@pytest.mark.parametrize(("action", "body", "outcome"), OUTCOMES)
async def test_ending_an_invoice_releases_its_draft(
    db: Database,
    client: httpx.AsyncClient,
    tenant: Tenant,
    action: str,
    body: Any,
    outcome: str,
) -> None:
    invoice = await create_issued_invoice(client, tenant, amount=100_000)
    fi_id, _ = await _financed(db, tenant, invoice, "DRAFT")
    await _end_invoice(client, tenant, invoice, action, body)
    fi, offer = await _state(db, fi_id)
    assert fi is None
    assert offer.available_amount == LIMIT
    await _clean(db)


@pytest.mark.parametrize(("action", "body", "outcome"), OUTCOMES)
async def test_ending_an_invoice_withdraws_its_unfunded_financing(
    db: Database,
    client: httpx.AsyncClient,
    tenant: Tenant,
    action: str,
    body: Any,
    outcome: str,
) -> None:
    invoice = await create_issued_invoice(client, tenant, amount=100_000)
    fi_id, _ = await _financed(db, tenant, invoice, "NEW")
    _, before = await _state(db, fi_id)
    assert before.reserved_amount == 100_000
    await _end_invoice(client, tenant, invoice, action, body)
    fi, offer = await _state(db, fi_id)
    assert fi is not None
    assert (fi.status, fi.live_invoice_id) == (WCInvoiceStatus.REJECTED, None)
    assert (offer.reserved_amount, offer.available_amount) == (0, LIMIT)
    assert await _last_cause(db, fi_id) == (
        f"withdrawn: the receivable was {outcome} before it was funded"
    )
    await _clean(db)


@pytest.mark.parametrize(("action", "body", "outcome"), OUTCOMES)
@pytest.mark.parametrize("status", ["FUNDED", "LATE"])
async def test_ending_an_invoice_leaves_its_funded_financing_owed_by_the_business(
    db: Database,
    client: httpx.AsyncClient,
    tenant: Tenant,
    operator: dict[str, str],
    status: str,
    action: str,
    body: Any,
    outcome: str,
) -> None:
    invoice = await create_issued_invoice(client, tenant, amount=100_000)
    fi_id, _ = await _financed(db, tenant, invoice, status)
    await _end_invoice(client, tenant, invoice, action, body)
    fi, offer = await _state(db, fi_id)
    assert fi is not None
    assert (fi.status, fi.repaid_amount, fi.live_invoice_id) == (status, 0, fi.invoice_id)
    assert offer.outstanding_amount == 100_000
    assert await _last_cause(db, fi_id) == (
        f"the receivable was {outcome}; the business still owes 100000"
    )
    # Still owed: the lender collects it from the business.
    response = await client.post(
        f"/lender/v1/financing_invoices/{fi_id}/repayments",
        json={"amount": 100_000},
        headers=operator,
    )
    assert response.status_code == 200, response.text
    fi, offer = await _state(db, fi_id)
    assert fi is not None
    assert (fi.status, offer.available_amount) == ("PAID", LIMIT)
    await _clean(db)
