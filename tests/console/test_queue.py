"""The review queue (``/lender/queue``): what waits for a decision, oldest first, with its
figures, paged; bulk approve, fund and reject, each invoice judged on its own."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from html.parser import HTMLParser

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from fundline.console import queue
from fundline.kit import clock, money
from fundline.kit.db import Database
from fundline.lending import servicing
from fundline.lending.policy import Policy
from fundline.models import AuditEntry, FinancingBusiness, FinancingInvoice, FinancingOffer
from tests.console.conftest import Operator
from tests.support.factories import Tenant
from tests.support.lending import load_invoice, make_financing_invoice, manual, serving_policy


def row_of(html: str, document_id: str) -> str:
    """The queue table's row of ``document_id`` (its ``<tr>``), or ``""``."""
    for row in re.findall(r"<tr>.*?</tr>", html, flags=re.S):
        if f">{document_id}</a>" in row:
            return str(row)
    return ""


def queue_order(html: str) -> list[str]:
    """The document ids of the queue's rows, in the page's order."""
    table = html.split('class="queue-table"', 1)[1]
    return re.findall(r'<a href="/lender/invoices/[0-9a-f-]+">([^<]+)</a>', table)


class _Controls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: list[str] = []
        self.labels: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag in ("input", "select", "textarea") and named.get("type") != "hidden":
            self.fields.append(named.get("id") or "")
        if tag == "label" and named.get("for"):
            self.labels.add(str(named["for"]))


def assert_readable(html: str) -> None:
    """Every field has a label; every table sits in a ``.scroll`` wrapper (390 px phones) and
    has a caption; no inline style (the CSP forbids it)."""
    controls = _Controls()
    controls.feed(html)
    unlabelled = [f for f in controls.fields if not f or f not in controls.labels]
    assert not unlabelled, unlabelled
    tables = html.count("<table")
    assert tables == len(re.findall(r'<div class="scroll"[^>]*>\s*<table', html)) + html.count(
        'class="postings"'
    )
    assert html.count("<caption") == tables
    assert "style=" not in html
    assert "<style" not in html


async def waiting_since(db: Database, fi_id: uuid.UUID, ago: timedelta) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            update(FinancingInvoice)
            .where(FinancingInvoice.id == fi_id)
            .values(confirmed_at=clock.now() - ago)
        )


async def approve_in_db(db: Database, fi_id: uuid.UUID, policy: Policy) -> None:
    async with db.session() as session, session.begin():
        fi = await session.get(FinancingInvoice, fi_id)
        assert fi is not None
        await servicing.approve(session, fi, cause="test: approve", policy=manual(policy))


async def available(db: Database, fi_id: uuid.UUID) -> str:
    async with db.session() as session:
        fi = await session.get(FinancingInvoice, fi_id)
        assert fi is not None
        offer = await session.get(FinancingOffer, fi.offer_id)
        assert offer is not None
        return money.display(offer.available_amount, offer.currency)


async def doc(db: Database, fi_id: uuid.UUID) -> str:
    return (await load_invoice(db, fi_id)).document_id


async def test_the_queue_lists_what_waits_oldest_first_with_its_figures(
    operator: Operator, db: Database, tenant: Tenant, other_tenant: Tenant, policy: Policy
) -> None:
    newer = await make_financing_invoice(db, tenant, policy, status="NEW")
    older = await make_financing_invoice(
        db, other_tenant, policy, status="NEW", total_amount=250_000
    )
    approved = await make_financing_invoice(db, tenant, policy, status="NEW")
    await approve_in_db(db, approved, policy)
    done = [
        await make_financing_invoice(db, tenant, policy, status=status)
        for status in ("DRAFT", "FUNDED", "REJECTED", "PAID", "LATE")
    ]
    await waiting_since(db, newer, timedelta(days=1))
    await waiting_since(db, older, timedelta(days=2))
    await waiting_since(db, approved, timedelta(hours=3))
    # The lender's legal name wins over the entity's name once onboarding gave one.
    async with db.session() as session, session.begin():
        await session.execute(
            update(FinancingBusiness)
            .where(FinancingBusiness.entity_id == uuid.UUID(other_tenant.entity_id))
            .values(legal_name="Beta Trading Co")
        )

    html = await operator.page("/lender/queue")

    assert queue_order(html) == [
        await doc(db, older),
        await doc(db, newer),
        await doc(db, approved),
    ]
    for fi_id in done:
        assert not row_of(html, await doc(db, fi_id))
    row = row_of(html, await doc(db, newer))
    # $1,000.00 at 80 % advance and 3 % fee (tests/support/lending.PLAN): requested $800.00,
    # fee $24.00, advance $776.00, repaid $800.00 in 30 days.
    for figure in (
        "Tenant A Entity LLC",
        "Globex Corp",
        "$1,000.00",
        "80 % advance",
        "3 % fee",
        "FIXED_DURATION: 30 days after funding",
        "$800.00",
        "$24.00",
        "$776.00",
        "to review",
        "FIXED_DURATION: 30 days",
        await available(db, newer),
    ):
        assert figure in row, (figure, row)
    # The tenant's $50,000.00 line less two $800.00 reservations (NEW) and two $800.00 still
    # owed (FUNDED, LATE).
    assert await available(db, newer) == "$46,800.00"
    assert f'value="approve:{newer}"' in row
    older_row = row_of(html, await doc(db, older))
    assert "Beta Trading Co" in older_row
    assert "$2,500.00" in older_row
    assert "$2,000.00" in older_row  # 80 % of $2,500.00
    assert "$48,000.00" in older_row  # Tenant B's line less its one reservation
    approved_row = row_of(html, await doc(db, approved))
    assert "approved, to fund" in approved_row
    assert f'value="approve:{approved}"' not in approved_row  # approved once only
    assert f'value="fund:{approved}"' in approved_row
    # What waits, in one aggregate: 2 to review, 1 to fund, $3,600.00 requested.
    totals = html.split('class="totals"', 1)[1].split(">", 1)[1].split("</ul>", 1)[0]
    assert re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", totals)).split() == (
        "2 to review (USD) 1 approved, to fund (USD) $3,600.00 requested in all".split()
    )
    assert_readable(html)

    review = await operator.page("/lender/queue?stage=review")
    assert queue_order(review) == [await doc(db, older), await doc(db, newer)]
    to_fund = await operator.page("/lender/queue?stage=fund")
    assert queue_order(to_fund) == [await doc(db, approved)]


async def test_the_queue_is_paged_after_a_signed_cursor(
    operator: Operator,
    db: Database,
    tenant: Tenant,
    policy: Policy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queue, "PAGE_SIZE", 2)
    ids = [await make_financing_invoice(db, tenant, policy, status="NEW") for _ in range(5)]
    for age, fi_id in enumerate(ids):
        await waiting_since(db, fi_id, timedelta(hours=10 - age))
    expected = [await doc(db, fi_id) for fi_id in ids]
    seen: list[str] = []
    path: str | None = "/lender/queue"
    pages = 0
    while path is not None:
        html = await operator.page(path)
        seen += queue_order(html)
        found = re.search(r'href="(/lender/queue\?stage=all&amp;after=[^"]+)"', html)
        path = found.group(1).replace("&amp;", "&") if found else None
        pages += 1
    assert seen == expected
    assert pages == 3
    # A cursor that is not the console's starts from the oldest.
    forged = await operator.page("/lender/queue?after=not-a-cursor")
    assert queue_order(forged) == expected[:2]


async def test_bulk_actions_judge_each_invoice_on_its_own(
    operator: Operator, app: FastAPI, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fundable = await make_financing_invoice(db, tenant, policy, status="NEW")
    rejected = await make_financing_invoice(db, tenant, policy, status="REJECTED")
    ok, refused = await doc(db, fundable), await doc(db, rejected)
    with serving_policy(app, manual(policy)):
        response = await operator.post(
            "/lender/queue", {"action": "approve", "ids": [str(fundable), str(rejected)]}
        )
        assert response.status_code == 200, response.text
        assert f"{ok}: approved; now NEW" in response.text
        assert re.search(rf'class="failed">{refused}: [^<]*REJECTED', response.text)
        after = await load_invoice(db, fundable)
        assert after.status == "NEW"
        assert after.approved_at is not None
        assert "approved, to fund" in row_of(response.text, ok)

        funded = await operator.post(
            "/lender/queue", {"action": "fund", "ids": [str(rejected), str(fundable)]}
        )
    assert funded.status_code == 200, funded.text
    assert f"{ok}: funded; now FUNDED" in funded.text
    assert re.search(rf'class="failed">{refused}: ', funded.text)
    assert (await load_invoice(db, fundable)).status == "FUNDED"
    assert (await load_invoice(db, rejected)).status == "REJECTED"
    # The postings funding made: the advance paid out and the fee.
    postings = funded.text.split('class="postings"', 1)[1].split("</table>", 1)[0]
    assert "advance paid out" in postings
    assert "financing fee" in postings
    assert "$776.00" in postings
    assert "$24.00" in postings
    assert not row_of(funded.text, ok)  # no longer waiting


async def test_several_invoices_of_several_offers_are_funded_in_one_go(
    operator: Operator,
    app: FastAPI,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    policy: Policy,
) -> None:
    # Invoices of two offers, selected in no particular order: the locks are still taken in
    # the one order (tests/support/lock_order.py fails the request otherwise).
    ids = [
        await make_financing_invoice(db, t, policy, status="NEW")
        for t in (tenant, other_tenant, tenant, other_tenant)
    ]
    with serving_policy(app, manual(policy)):
        response = await operator.post(
            "/lender/queue", {"action": "fund", "ids": [str(i) for i in reversed(ids)]}
        )
    assert response.status_code == 200, response.text
    assert response.text.count("funded; now FUNDED") == 4
    for fi_id in ids:
        assert (await load_invoice(db, fi_id)).status == "FUNDED"


async def test_rejecting_needs_a_reason_and_records_it(
    operator: Operator,
    app: FastAPI,
    db: Database,
    client: httpx.AsyncClient,
    tenant: Tenant,
    policy: Policy,
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="NEW")
    with serving_policy(app, manual(policy)):
        bare = await operator.post("/lender/queue", {"action": "reject", "ids": [str(fi_id)]})
        assert bare.status_code == 422
        assert "Give the reason for rejecting" in bare.text
        assert (await load_invoice(db, fi_id)).status == "NEW"

        done = await operator.post(
            "/lender/queue",
            {"action": "reject", "ids": [str(fi_id)], "reason": "  payer is in dispute  "},
        )
    assert done.status_code == 200, done.text
    assert "rejected; now REJECTED" in done.text
    assert (await load_invoice(db, fi_id)).status == "REJECTED"
    audit = await client.get(
        "/lender/v1/audit",
        params={"action": "reject"},
        headers={"authorization": f"Bearer {operator.key}"},
    )
    [entry] = audit.json()["data"]
    assert entry["note"] == "payer is in dispute"
    assert entry["operator"] == "ana"
    assert entry["object_id"] == str(fi_id)
    assert entry["before"]["status"] == "NEW"
    assert entry["after"]["status"] == "REJECTED"
    page = await operator.page(f"/lender/invoices/{fi_id}")
    assert "rejected by operator ana: payer is in dispute" in page


async def test_a_rows_button_acts_on_its_invoice_only(
    operator: Operator, app: FastAPI, db: Database, tenant: Tenant, policy: Policy
) -> None:
    one = await make_financing_invoice(db, tenant, policy, status="NEW")
    other = await make_financing_invoice(db, tenant, policy, status="NEW")
    with serving_policy(app, manual(policy)):
        response = await operator.post(
            "/lender/queue", {"row": f"reject:{one}", "ids": [str(other)], "reason": "duplicate"}
        )
    assert response.status_code == 200, response.text
    assert (await load_invoice(db, one)).status == "REJECTED"
    assert (await load_invoice(db, other)).status == "NEW"


async def test_a_bulk_post_without_a_selection_or_with_an_unknown_action_says_so(
    operator: Operator, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="NEW")
    none = await operator.post("/lender/queue", {"action": "approve"})
    assert none.status_code == 422
    assert "Select at least one invoice" in none.text
    unknown = await operator.post("/lender/queue", {"action": "explode", "ids": [str(fi_id)]})
    assert unknown.status_code == 422
    assert "There is no action &#39;explode&#39;" in unknown.text
    many = await operator.post(
        "/lender/queue", {"action": "approve", "ids": [str(uuid.uuid4()) for _ in range(101)]}
    )
    assert many.status_code == 422
    assert "Select at most 100 invoices at a time" in many.text
    junk = await operator.post("/lender/queue", {"action": "approve", "ids": ["nope"]})
    assert junk.status_code == 200
    assert "nope: not a financing invoice id" in junk.text
    assert (await load_invoice(db, fi_id)).status == "NEW"
    async with db.session() as session:
        assert not list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action != "sign_in"))
        )


async def test_the_queue_needs_a_signed_in_operator_and_csrf(
    operator: Operator, anonymous: httpx.AsyncClient, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="NEW")
    page = await anonymous.get("/lender/queue")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/lender/sign-in?next=/lender/queue")
    posted = await anonymous.post("/lender/queue", data={"action": "reject", "ids": str(fi_id)})
    assert posted.status_code == 303
    forged = await operator.client.post(
        "/lender/queue", data={"action": "reject", "ids": str(fi_id), "reason": "x"}
    )
    assert forged.status_code == 403
    assert (await load_invoice(db, fi_id)).status == "NEW"
