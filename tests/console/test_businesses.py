"""The console's businesses: the search (name, EIN, paging, the offers' aggregates), a
business's page (onboarding data with the account number masked, offers and their use,
financed invoices, ledger, status history), and the offers' issue and close actions."""

from __future__ import annotations

import html
import re
import uuid
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from fundline.kit import money
from fundline.kit.db import Database
from fundline.models import (
    AuditEntry,
    Entity,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
)
from tests.console.conftest import Operator
from tests.support.factories import BUSINESS_PAYLOAD, US_ADDRESS, Tenant, onboard
from tests.support.lending import make_draft, make_offer, plans_of, walk

ACCOUNT_NUMBER = BUSINESS_PAYLOAD["bank_account"]["account_number"]  # 000123456789


def section(page: str, title_id: str) -> str:
    """The ``<section aria-labelledby=title_id>`` of ``page``."""
    found = re.search(
        rf'<section[^>]*aria-labelledby="{title_id}".*?</section>', page, flags=re.DOTALL
    )
    assert found, f"no section {title_id}"
    return found.group(0)


def text(fragment: str) -> str:
    """The text of an HTML fragment, tags dropped and spaces squeezed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def rows(page: str) -> list[str]:
    """The text of each row of the businesses table's body."""
    body = re.search(r"<tbody>(.*?)</tbody>", page, flags=re.DOTALL)
    assert body
    return [text(row) for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), flags=re.DOTALL)]


async def business_of(db: Database, tenant: Tenant) -> FinancingBusiness:
    async with db.session() as session:
        business = await session.scalar(
            select(FinancingBusiness).where(
                FinancingBusiness.entity_id == uuid.UUID(tenant.entity_id)
            )
        )
        assert business is not None
        return business


async def offer_status(db: Database, offer_id: uuid.UUID) -> str:
    async with db.session() as session:
        offer = await session.get(FinancingOffer, offer_id)
        assert offer is not None
        return str(offer.status)


async def funded_on_current_offer(
    db: Database, tenant: Tenant, status: str = "FUNDED"
) -> uuid.UUID:
    """A financing invoice of the onboarded ``tenant`` on its CURRENT offer, in ``status``."""
    async with db.session() as session, session.begin():
        offer = await session.scalar(
            select(FinancingOffer).where(
                FinancingOffer.entity_id == uuid.UUID(tenant.entity_id),
                FinancingOffer.status == "CURRENT",
            )
        )
        assert offer is not None
        plan = (await plans_of(session, offer))[0]
        fi = await make_draft(session, offer, total_amount=250_000)
        fi = await walk(session, fi, status, plan=plan)
        return fi.id


# --- the search --------------------------------------------------------------------------------


async def test_search_finds_a_business_by_a_fragment_of_its_names(
    operator: Operator,
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    db: Database,
) -> None:
    await onboard(client, tenant)  # legal name "Acme Supplies LLC", entity "Tenant A Entity LLC"
    async with db.session() as session, session.begin():
        await make_offer(
            session, other_tenant, status="NEW"
        )  # no legal name: "Tenant B Entity LLC"
    page = await operator.page("/lender/businesses?q=SUPPLIES")
    assert [r.split(" 12-")[0] for r in rows(page)] == ["Acme Supplies LLC"]
    # The entity's name counts too, any case.
    page = await operator.page("/lender/businesses?q=tenant%20b%20entity")
    [row] = rows(page)
    assert row.startswith("Tenant B Entity LLC")
    assert "Tenant B" in row  # the partner
    business = await business_of(db, other_tenant)
    assert f'href="/lender/businesses/{business.id}"' in page
    # Both businesses share "Entity LLC" in their entities' names.
    assert len(rows(await operator.page("/lender/businesses?q=entity%20llc"))) == 2
    assert '<label for="q">Name or EIN</label>' in page
    assert 'value="tenant b entity"' in page


async def test_search_finds_a_business_by_ein_with_or_without_the_dash(
    operator: Operator,
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    db: Database,
) -> None:
    await onboard(client, tenant)  # EIN 12-3456789
    async with db.session() as session, session.begin():
        await make_offer(session, other_tenant, status="NEW")
    for q in ("12-3456789", "123456789", "3456789", "2-345"):
        [row] = rows(await operator.page(f"/lender/businesses?q={q}"))
        assert row.startswith("Acme Supplies LLC 12-3456789 ONBOARDED"), (q, row)


async def test_a_search_that_matches_nothing_says_so(
    operator: Operator, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await onboard(client, tenant)
    for q in ("Zebra", "%", "_", "98-7654321", "Acme%LLC"):
        page = await operator.page(f"/lender/businesses?{urlencode({'q': q})}")
        assert rows(page) == [f"No business matches “{q}”."], q


async def test_the_list_counts_and_sums_each_businesss_offers(
    operator: Operator, tenant: Tenant, other_tenant: Tenant, db: Database
) -> None:
    async with db.session() as session, session.begin():
        current = await make_offer(session, tenant, status="CURRENT", total_amount=1_000_000)
        current.outstanding_amount = 300_000
        late = await make_offer(session, tenant, status="LATE", total_amount=200_000)
        late.outstanding_amount = 150_000
        await make_offer(session, tenant, status="EXPIRED", total_amount=5_000_000)
        await make_offer(session, tenant, status="ACCEPTED", total_amount=700_000)
    async with db.session() as session, session.begin():
        await make_offer(session, other_tenant, status="NEW", total_amount=900_000)
    page = await operator.page("/lender/businesses")
    # The newest first; a business without a legal name shows its entity's.
    assert rows(page) == [
        "Tenant B Entity LLC — ONBOARDED Tenant B Entity LLC Tenant B 1 $0.00 $0.00",
        "Tenant A Entity LLC — ONBOARDED Tenant A Entity LLC Tenant A 4 $12,000.00 $4,500.00",
    ]


async def test_the_list_pages_by_fifty(operator: Operator, tenant: Tenant, db: Database) -> None:
    async with db.session() as session, session.begin():
        for i in range(53):
            entity = Entity(
                partner_id=tenant.partner_id,
                type="organization",
                address=dict(US_ADDRESS),
                organization={"legal_name": f"Bulk {i:02d} LLC"},
            )
            session.add(entity)
            await session.flush()
            session.add(FinancingBusiness(entity_id=entity.id, partner_id=tenant.partner_id))
    first = await operator.page("/lender/businesses?q=bulk")
    assert len(rows(first)) == 50
    assert "Newer businesses" not in first
    older = re.search(
        r'href="(/lender/businesses\?pagination_token=[^"]+)">Older businesses', first
    )
    assert older
    second = await operator.page(html.unescape(older.group(1)))
    assert len(rows(second)) == 3
    assert "Older businesses" not in second
    assert "Newer businesses" in second
    names = {r.split(" — ")[0] for r in rows(first) + rows(second)}
    assert names == {f"Bulk {i:02d} LLC" for i in range(53)}


# --- a business's page -------------------------------------------------------------------------


async def test_the_business_page_shows_its_onboarding_with_the_account_number_masked(
    operator: Operator, client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    await onboard(client, tenant)
    business = await business_of(db, tenant)
    page = await operator.page(f"/lender/businesses/{business.id}")
    onboarding = text(section(page, "onboarding-title"))
    for shown in (
        "Legal name Acme Supplies LLC",
        "EIN 12-3456789",
        "Entity Tenant A Entity LLC",
        "Partner Tenant A",
        "100 Congress Ave",
        "Austin, TX 78701",
        "Jane Doe",
        "jane@acme.example",
        "Routing number 021000021",
        "Account number •••• 6789",
    ):
        assert shown in onboarding, shown
    assert ACCOUNT_NUMBER not in page
    assert ACCOUNT_NUMBER[1:] not in page


async def test_the_business_page_shows_offers_invoices_ledger_and_history(
    operator: Operator, client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    await onboard(client, tenant)
    fi_id = await funded_on_current_offer(db, tenant)
    business = await business_of(db, tenant)
    async with db.session() as session:
        fi = await session.get(FinancingInvoice, fi_id)
        assert fi is not None
        assert fi.repayment_amount
        offer = await session.get(FinancingOffer, fi.offer_id)
        assert offer is not None
    page = await operator.page(f"/lender/businesses/{business.id}")

    offers = section(page, "offers-title")
    row = text(re.search(rf'<tr id="offer-{offer.id}">.*?</tr>', offers, re.DOTALL).group(0))  # type: ignore[union-attr]
    assert "CURRENT" in row
    total, outstanding = offer.total_amount, offer.outstanding_amount
    assert outstanding == fi.repayment_amount  # what it owes: the requested amount
    for amount in (total, 0, outstanding, total - outstanding):
        assert money.display(amount, "USD") in row, (amount, row)
    assert "Fixed duration: 100 % advance, 2 % fee, 30 days" in row
    assert "Multiple duration: 90 % advance, 4 % fee, 90 days in 3 instalments" in row
    assert "Fixed date: 85 % advance, 2.5 % fee, due date + 7 days" in row
    assert f'action="/lender/offers/{offer.id}/close"' in offers  # CURRENT: may be closed
    assert f'action="/lender/offers/{offer.id}/issue"' not in offers  # only ACCEPTED is issued

    invoices = section(page, "invoices-title")
    assert f'<a href="/lender/invoices/{fi_id}">{fi.document_id}</a>' in invoices
    invoice_text = text(invoices)
    assert "FUNDED" in invoice_text
    assert "$2,500.00" in invoice_text  # its total
    repayment = money.display(fi.repayment_amount, "USD")
    assert invoice_text.count(repayment) >= 2  # to repay, and the ledger balance

    ledger = text(section(page, "ledger-title"))
    for shown in ("disbursement", "fee", "financed_receivable", "cash", "fee_income"):
        assert shown in ledger, shown
    assert fi.document_id in ledger

    history = text(section(page, "history-title"))
    assert "Business status changed NEW → INPUT_REQUIRED" in history
    assert "Business status changed INPUT_REQUIRED → ONBOARDED" in history
    assert "Business details given" in history
    assert f"Offer {str(offer.id)[:8]} created NEW" in history
    assert "ACCEPTED → CURRENT" in history


async def test_an_unknown_business_is_a_404_page(operator: Operator) -> None:
    for path in (f"/lender/businesses/{uuid.uuid4()}", "/lender/businesses/not-an-id"):
        response = await operator.client.get(path)
        assert response.status_code == 404
        assert "No such business" in response.text
        assert "text/html" in response.headers["content-type"]


# --- the offers' actions -----------------------------------------------------------------------


async def audit_actions(db: Database, offer_id: uuid.UUID) -> list[tuple[str, str, str]]:
    async with db.session() as session:
        entries = await session.scalars(
            select(AuditEntry).where(AuditEntry.object_id == offer_id).order_by(AuditEntry.at)
        )
        return [(e.operator, e.action, (e.after or {}).get("status", "")) for e in entries]


async def test_an_operator_issues_an_accepted_offer_and_closes_another(
    operator: Operator, tenant: Tenant, db: Database
) -> None:
    async with db.session() as session, session.begin():
        accepted = await make_offer(session, tenant, status="ACCEPTED", total_amount=400_000)
        new = await make_offer(session, tenant, status="NEW", total_amount=300_000)
    business = await business_of(db, tenant)
    page = await operator.page(f"/lender/businesses/{business.id}")
    assert f'action="/lender/offers/{accepted.id}/issue"' in page
    assert re.search(r'data-confirm="Issue this offer of \$4,000\.00\?', page)
    assert re.search(r'data-confirm="Close this offer of \$3,000\.00\?', page)

    response = await operator.post(f"/lender/offers/{accepted.id}/issue", {})
    assert response.status_code == 200
    done = text(section(response.text, "results-title"))
    assert f"Offer {str(accepted.id)[:8]} ($4,000.00): issued; now CURRENT" in done
    assert await offer_status(db, accepted.id) == "CURRENT"
    assert await audit_actions(db, accepted.id) == [("ana", "issue_offer", "CURRENT")]
    # The page answered is the business's, as it is now.
    assert f'action="/lender/offers/{accepted.id}/issue"' not in response.text
    assert "ACCEPTED → CURRENT" in text(section(response.text, "history-title"))

    response = await operator.post(f"/lender/offers/{new.id}/close", {})
    assert response.status_code == 200
    assert "closed; now CLOSED" in text(section(response.text, "results-title"))
    assert await offer_status(db, new.id) == "CLOSED"
    assert await audit_actions(db, new.id) == [("ana", "close_offer", "CLOSED")]
    history = text(section(response.text, "history-title"))
    assert "NEW → CLOSED closed by operator ana" in history


async def test_closing_an_offer_with_a_funded_invoice_is_refused_on_the_page(
    operator: Operator, client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    await onboard(client, tenant)
    fi_id = await funded_on_current_offer(db, tenant)
    async with db.session() as session:
        fi = await session.get(FinancingInvoice, fi_id)
        assert fi is not None
        offer_id = fi.offer_id
    response = await operator.post(f"/lender/offers/{offer_id}/close", {})
    assert response.status_code == 200
    refused = section(response.text, "results-title")
    assert 'class="failed"' in refused
    assert "with invoices still FUNDED; it can be closed once they are settled" in text(refused)
    assert await offer_status(db, offer_id) == "CURRENT"
    assert await audit_actions(db, offer_id) == []
    # Issuing a CURRENT offer is refused too, by the lender API's rule.
    response = await operator.post(f"/lender/offers/{offer_id}/issue", {})
    assert "it can be issued only when ACCEPTED" in text(section(response.text, "results-title"))


async def test_actions_need_the_csrf_token_and_a_known_offer(
    operator: Operator, tenant: Tenant, db: Database
) -> None:
    async with db.session() as session, session.begin():
        accepted = await make_offer(session, tenant, status="ACCEPTED")
    for data in ({}, {"csrf": "0" * 64}):
        response = await operator.client.post(f"/lender/offers/{accepted.id}/issue", data=data)
        assert response.status_code == 403
        response = await operator.client.post(f"/lender/offers/{accepted.id}/close", data=data)
        assert response.status_code == 403
    assert await offer_status(db, accepted.id) == "ACCEPTED"
    assert await audit_actions(db, accepted.id) == []
    for path in (f"/lender/offers/{uuid.uuid4()}/issue", "/lender/offers/nope/close"):
        response = await operator.post(path, {})
        assert response.status_code == 404
        assert "No such offer" in response.text


async def test_the_signed_out_are_sent_to_sign_in(
    anonymous: httpx.AsyncClient, app: FastAPI, tenant: Tenant, db: Database
) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant, status="ACCEPTED")
    business = await business_of(db, tenant)
    for method, path in (
        ("GET", "/lender/businesses?q=acme"),
        ("GET", f"/lender/businesses/{business.id}"),
        ("POST", f"/lender/offers/{offer.id}/issue"),
        ("POST", f"/lender/offers/{offer.id}/close"),
    ):
        response = await anonymous.request(method, path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/lender/sign-in?next="), path
    assert await offer_status(db, offer.id) == "ACCEPTED"
    async with db.session() as session:
        assert await session.scalar(select(func.count(AuditEntry.id))) == 0
