"""One financing invoice's page (``/lender/invoices/{id}``): its facts, instalments, status
history and ledger, and the actions its status allows, posted back to it."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from fundline.kit import money
from fundline.kit.db import Database
from fundline.lending.policy import Policy
from fundline.models import AuditEntry, FinancingBusiness
from tests.console.conftest import Operator
from tests.console.test_queue import assert_readable
from tests.support.factories import Tenant
from tests.support.lending import load_invoice, make_financing_invoice, manual, serving_policy


def forms(html: str) -> list[str]:
    """The actions of the page's forms, after ``/lender/invoices/{id}/``."""
    return re.findall(r'action="/lender/invoices/[0-9a-f-]+/([a-z_]+)"', html)


def section(html: str, heading_id: str) -> str:
    """The page from the heading ``heading_id`` to the next ``<h2``."""
    return html.split(f'id="{heading_id}"', 1)[1].split("<h2", 1)[0]


async def test_the_page_shows_facts_instalments_history_and_ledger(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    fi = await load_invoice(db, fi_id)
    async with db.session() as session:
        business_id = await session.scalar(
            select(FinancingBusiness.id).where(FinancingBusiness.entity_id == fi.entity_id)
        )

    html = await operator.page(f"/lender/invoices/{fi_id}")

    facts = section(html, "facts-title")
    assert f'<a href="/lender/businesses/{business_id}">Tenant A Entity LLC</a>' in facts
    assert fi.document_id in facts
    assert "Globex Corp" in facts
    assert '<span class="status status-funded">FUNDED</span>' in facts
    for figure in ("$1,000.00", "80 % advance, 3 % fee", "30 days after funding", "$776.00"):
        assert figure in facts, figure
    instalments = section(html, "instalments")
    assert fi.repayment_date is not None
    assert money.display(80_000, "USD") in instalments
    assert f"{fi.repayment_date.day} " in instalments
    history = section(html, "history")
    assert "confirmed by the business" in history
    assert "test: fund" in history
    ledger = section(html, "ledger")
    assert "disbursement" in ledger
    assert "advance paid out" in ledger
    assert "fee" in ledger
    assert ledger.count('scope="rowgroup"') == 2  # two entries, each with its postings
    assert "$776.00" in ledger
    assert "-$776.00" in ledger
    assert forms(html) == ["repayment"]  # FUNDED, not late: nothing to write off
    assert 'value="800.00"' in html  # the repayment field holds what is still owed
    assert_readable(html)


@pytest.mark.parametrize(
    ("status", "actions"),
    [
        ("NEW", ["approve", "fund", "reject"]),
        ("FUNDED", ["repayment"]),
        ("LATE", ["repayment", "write_off"]),
        ("DEFAULTED", ["write_off"]),
        ("PAID", []),
        ("REJECTED", []),
    ],
)
async def test_the_page_offers_what_the_status_allows(
    operator: Operator,
    db: Database,
    tenant: Tenant,
    policy: Policy,
    status: str,
    actions: list[str],
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status=status)
    html = await operator.page(f"/lender/invoices/{fi_id}")
    assert forms(html) == actions
    assert f'<span class="status status-{status.lower()}">{status}</span>' in html
    assert_readable(html)


async def test_approving_then_funding_from_the_page(
    operator: Operator, app: FastAPI, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="NEW")
    with serving_policy(app, manual(policy)):
        approved = await operator.post(f"/lender/invoices/{fi_id}/approve", {})
        assert approved.status_code == 200, approved.text
        assert "approved; now NEW" in approved.text
        assert "approved, waiting to be funded" in approved.text
        assert forms(approved.text) == ["fund", "reject"]
        again = await operator.post(f"/lender/invoices/{fi_id}/approve", {})
        assert again.status_code == 200
        assert re.search(r'class="failed">[^<]*already approved', again.text)

        funded = await operator.post(f"/lender/invoices/{fi_id}/fund", {})
    assert funded.status_code == 200, funded.text
    assert "funded; now FUNDED" in funded.text
    postings = funded.text.split('class="postings"', 1)[1].split("</table>", 1)[0]
    assert "advance paid out" in postings
    assert "financing fee" in postings
    assert (await load_invoice(db, fi_id)).status == "FUNDED"
    assert forms(funded.text) == ["repayment"]


async def test_a_partial_repayment_leaves_it_funded_and_the_rest_pays_it(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    partial = await operator.post(f"/lender/invoices/{fi_id}/repayment", {"amount": "$300.00"})
    assert partial.status_code == 200, partial.text
    assert "repayment recorded; now FUNDED" in partial.text
    fi = await load_invoice(db, fi_id)
    assert fi.status == "FUNDED"
    assert fi.repaid_amount == 30_000
    postings = partial.text.split('class="postings"', 1)[1].split("</table>", 1)[0]
    assert "-$300.00" in postings
    assert 'value="500.00"' in partial.text  # the field now holds the rest

    full = await operator.post(f"/lender/invoices/{fi_id}/repayment", {"amount": "500.00"})
    assert full.status_code == 200, full.text
    assert "repayment recorded; now PAID" in full.text
    fi = await load_invoice(db, fi_id)
    assert fi.status == "PAID"
    assert fi.repaid_amount == 80_000
    assert forms(full.text) == []
    async with db.session() as session:
        notes = list(
            await session.scalars(
                select(AuditEntry.note)
                .where(AuditEntry.action == "record_repayment")
                .order_by(AuditEntry.at)
            )
        )
    assert notes == ["amount 30000", "amount 50000"]


async def test_a_repayment_amount_is_checked(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    typo = await operator.post(f"/lender/invoices/{fi_id}/repayment", {"amount": "3OO"})
    assert typo.status_code == 422
    assert 'aria-invalid="true"' in typo.text
    assert "is not an amount: write it like 1,234.56" in typo.text
    assert 'value="3OO"' in typo.text  # what was typed, to correct it
    too_much = await operator.post(f"/lender/invoices/{fi_id}/repayment", {"amount": "900"})
    assert too_much.status_code == 200
    assert re.search(r'class="failed">[^<]*more than the 80000 still owed', too_much.text)
    nothing = await operator.post(f"/lender/invoices/{fi_id}/repayment", {"amount": "0"})
    assert re.search(r'class="failed">[^<]*more than zero', nothing.text)
    assert (await load_invoice(db, fi_id)).repaid_amount == 0


async def test_rejecting_from_the_page_needs_a_reason(
    operator: Operator, app: FastAPI, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="NEW")
    with serving_policy(app, manual(policy)):
        bare = await operator.post(f"/lender/invoices/{fi_id}/reject", {"reason": " "})
        assert bare.status_code == 422
        assert "Give the reason for rejecting it" in bare.text
        assert (await load_invoice(db, fi_id)).status == "NEW"
        done = await operator.post(f"/lender/invoices/{fi_id}/reject", {"reason": "no PO"})
    assert done.status_code == 200, done.text
    assert "rejected; now REJECTED" in done.text
    assert "rejected by operator ana: no PO" in section(done.text, "history")
    async with db.session() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "reject"))
    assert entry is not None
    assert entry.note == "no PO"


async def test_writing_off_a_late_invoice(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="LATE")
    response = await operator.post(f"/lender/invoices/{fi_id}/write_off", {})
    assert response.status_code == 200, response.text
    assert "written off; now DEFAULTED" in response.text
    postings = response.text.split('class="postings"', 1)[1].split("</table>", 1)[0]
    assert "credit_losses" in postings
    assert "$800.00" in postings
    assert forms(response.text) == []  # written off once only


async def test_an_unknown_invoice_or_action_is_a_404_page(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    for path in (f"/lender/invoices/{uuid.uuid4()}", "/lender/invoices/not-an-id"):
        response = await operator.client.get(path)
        assert response.status_code == 404
        assert "Financing invoice not found" in response.text
        assert "<nav" in response.text  # the console's page, not an API error
    fi_id = await make_financing_invoice(db, tenant, policy, status="NEW")
    unknown = await operator.post(f"/lender/invoices/{fi_id}/explode", {})
    assert unknown.status_code == 404
    assert "No action &#39;explode&#39; here" in unknown.text
    gone = await operator.post(f"/lender/invoices/{uuid.uuid4()}/approve", {})
    assert gone.status_code == 404
    assert (await load_invoice(db, fi_id)).status == "NEW"


async def test_the_page_needs_a_signed_in_operator_and_its_forms_csrf(
    operator: Operator, anonymous: httpx.AsyncClient, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    page = await anonymous.get(f"/lender/invoices/{fi_id}")
    assert page.status_code == 303
    assert page.headers["location"] == f"/lender/sign-in?next=/lender/invoices/{fi_id}"
    posted = await anonymous.post(f"/lender/invoices/{fi_id}/repayment", data={"amount": "800"})
    assert posted.status_code == 303
    for csrf in (None, "0" * 64):
        data = {"amount": "800"} | ({"csrf": csrf} if csrf else {})
        forged = await operator.client.post(f"/lender/invoices/{fi_id}/repayment", data=data)
        assert forged.status_code == 403
    assert (await load_invoice(db, fi_id)).status == "FUNDED"


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1,234.56", "USD", 123_456),
        ("$1,234.56", "USD", 123_456),
        ("1234.56 USD", "USD", 123_456),
        (" 800 ", "USD", 80_000),
        ("1,234", "JPY", 1_234),
        ("1.234", "KWD", 1_234),
    ],
)
def test_parse_major_reads_what_people_type(text: str, currency: str, minor: int) -> None:
    assert money.parse_major(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "Enter an amount"),
        ("   ", "Enter an amount"),
        ("abc", "is not an amount"),
        ("1.234", "more decimals than USD"),
        ("1e999999", "is not an amount"),
        ("nan", "is not an amount"),
        ("$", "is not an amount"),
        ("12 EUR", "is not in USD"),
    ],
)
def test_parse_major_refuses_anything_else_with_a_message(text: str, why: str) -> None:
    with pytest.raises(money.AmountError, match=why):
        money.parse_major(text, "USD")
