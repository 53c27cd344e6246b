"""The reconciliation page: clean on what the servicing functions leave, and each difference
(a tampered posting, a tampered offer counter) highlighted with a link to what it concerns."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select, update

from fundline.kit.db import Database
from fundline.lending import ledger, servicing
from fundline.lending.policy import Policy
from fundline.models import FinancingInvoice, FinancingOffer, Posting
from tests.console.conftest import Operator
from tests.console.test_servicing import tables, text_of, usd
from tests.support.factories import Tenant
from tests.support.lending import load_invoice, make_financing_invoice

DIFFERENCES = "Differences between the ledger and the invoices and offers"
BALANCES = "Account balances per currency"


async def test_consistent_data_is_clean_with_each_accounts_balance(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    assert "Nothing posted yet." in text_of(await operator.page("/lender/reconciliation"))
    funded = await load_invoice(db, await make_financing_invoice(db, tenant, policy))
    lost_id = await make_financing_invoice(db, tenant, policy, status="LATE")
    await make_financing_invoice(db, tenant, policy, status="PAID")
    await make_financing_invoice(db, tenant, policy, status="NEW")
    async with db.session() as session, session.begin():
        fi = await session.get(FinancingInvoice, lost_id)
        assert fi is not None
        await servicing.write_off(session, fi, cause="test")
    lost = await load_invoice(db, lost_id)

    html = await operator.page("/lender/reconciliation")
    page = text_of(html)
    assert "Clean The ledger agrees with every invoice and offer" in page
    assert 'class="diff"' not in html
    assert DIFFERENCES not in tables(html)
    [body, foot] = tables(html)[BALANCES].bodies
    balances = dict(body)
    fees = (funded.fee_amount or 0) + (lost.fee_amount or 0)
    assert balances["financed_receivable"] == usd(funded.repayment_amount or 0)
    assert balances["credit_losses"] == usd(lost.repayment_amount or 0)
    # The PAID invoice's advance came back with its fee: cash is short the other two advances
    # and ahead by that fee.
    paid_fee = await _paid_fee(db)
    principal = (funded.principal_amount or 0) + (lost.principal_amount or 0)
    assert balances["cash"] == usd(-principal + paid_fee)
    assert balances["fee_income"] == usd(-(fees + paid_fee))
    assert foot == [["Sum", "balanced"]]


async def _paid_fee(db: Database) -> int:
    async with db.session() as session:
        fee = await session.scalar(
            select(FinancingInvoice.fee_amount).where(FinancingInvoice.status == "PAID")
        )
    return int(fee or 0)


async def test_a_tampered_posting_is_highlighted_with_its_invoice(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy)
    fi = await load_invoice(db, fi_id)
    async with db.session() as session, session.begin():
        posting = await session.scalar(
            select(Posting).where(
                Posting.financing_invoice_id == fi_id,
                Posting.account == ledger.FINANCED_RECEIVABLE,
            )
        )
        assert posting is not None
        await session.execute(
            update(Posting).where(Posting.id == posting.id).values(amount=posting.amount + 500)
        )

    html = await operator.page("/lender/reconciliation")
    assert "Not clean 2 differences found; the postings in USD do not sum to zero." in text_of(html)
    rows = tables(html)[DIFFERENCES].bodies[0]
    assert len(re.findall(r'<tr class="diff">', html)) == 2
    by_kind = {row[0].rsplit(" ", 1)[1]: row for row in rows}
    unbalanced, mismatch = by_kind["unbalanced_entry"], by_kind["outstanding_mismatch"]
    assert unbalanced[1].startswith(f"Financing invoice {fi.document_id} entry ")
    assert unbalanced[2:] == [usd(500), usd(0), usd(500)]
    repayment = fi.repayment_amount or 0
    assert mismatch[1] == f"Financing invoice {fi.document_id} status FUNDED"
    assert mismatch[2:] == [usd(repayment + 500), usd(repayment), usd(500)]
    assert html.count(f'<a href="/lender/invoices/{fi_id}">') == 2
    assert tables(html)[BALANCES].bodies[1] == [["Sum", "unbalanced"]]
    assert '<td class="num diff"><strong>unbalanced</strong></td>' in html


async def test_a_tampered_offer_is_highlighted_with_its_business(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi = await load_invoice(db, await make_financing_invoice(db, tenant, policy))
    async with db.session() as session, session.begin():
        offer = await session.get(FinancingOffer, fi.offer_id)
        assert offer is not None
        business_id, stored = offer.business_id, offer.outstanding_amount
        offer.outstanding_amount = stored - 1_000

    html = await operator.page("/lender/reconciliation")
    assert "Not clean 1 difference found." in text_of(html)
    [row] = tables(html)[DIFFERENCES].bodies[0]
    assert row[0].endswith("offer_outstanding_mismatch")
    assert row[1] == f"Offer {str(fi.offer_id)[:8]} of Tenant A Entity LLC"
    assert row[2:] == [usd(stored - 1_000), usd(stored), usd(-1_000)]
    assert f'<a href="/lender/businesses/{business_id}">' in html
    # The ledger itself still balances.
    assert tables(html)[BALANCES].bodies[1] == [["Sum", "balanced"]]


async def test_the_signed_out_are_sent_to_sign_in(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/lender/reconciliation")
    assert response.status_code == 303
    assert response.headers["location"] == "/lender/sign-in?next=/lender/reconciliation"
