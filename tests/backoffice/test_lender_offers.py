"""The operator's offer actions: listing offers, issuing an accepted one under manual review
(the step that opens the credit line in production) and closing one — over /lender/v1 and
with ``fundline lender offers | issue-offer | close-offer``."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from fundline.kit.db import Database
from fundline.lending.policy import Policy
from fundline.models import Event, FinancingInvoice
from tests.support.cli import as_json, failed, fundline
from tests.support.factories import Tenant, create_issued_invoice, onboard
from tests.support.lending import load_invoice, make_financing_invoice, serving_policy

OFFERS = "/lender/v1/financing_offers"


@pytest.fixture
def manual_review(app: FastAPI, policy: Policy) -> Iterator[None]:
    with serving_policy(app, dataclasses.replace(policy, review="manual", auto_fund=False)):
        yield


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["error"]["message"])


async def _offer_events(db: Database, offer_id: str) -> list[str]:
    async with db.session() as session:
        return list(
            await session.scalars(
                select(Event.action)
                .where(Event.object_id == uuid.UUID(offer_id))
                .order_by(Event.created_at, Event.id)
            )
        )


# --- issuing -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("manual_review")
async def test_manual_review_waits_for_the_operator_to_issue(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, operator: dict[str, str]
) -> None:
    offer = await onboard(client, tenant)
    assert offer["status"] == "ACCEPTED"
    # Not issued yet: requesting financing names the offer's status.
    invoice = await create_issued_invoice(client, tenant)
    body = {"invoices": [{"id": invoice["id"], "type": "receivable"}]}
    refused = await client.post("/v1/financing_invoices", json=body, headers=tenant.headers)
    assert "latest offer is ACCEPTED" in _error(refused, 409)

    waiting = await client.get(OFFERS, params={"status": "ACCEPTED"}, headers=operator)
    assert waiting.status_code == 200, waiting.text
    [listed] = waiting.json()["data"]
    assert (listed["id"], listed["entity_id"]) == (offer["id"], tenant.entity_id)
    assert listed["issued_at"] is None

    issued = await client.post(f"{OFFERS}/{offer['id']}/issue", headers=operator)
    assert issued.status_code == 200, issued.text
    assert issued.json()["status"] == "CURRENT"
    assert issued.json()["issued_at"] is not None
    monite = await client.get("/v1/financing_offers", headers=tenant.headers)
    assert monite.json()["offers"][0]["status"] == "CURRENT"
    assert "financing_offer.status_changed" in await _offer_events(db, offer["id"])

    again = await client.post(f"{OFFERS}/{offer['id']}/issue", headers=operator)
    assert _error(again, 409) == ("Financing offer is CURRENT; it can be issued only when ACCEPTED")
    # Now the business can request financing.
    response = await client.post("/v1/financing_invoices", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text


async def test_issue_and_close_of_an_unknown_offer_are_404(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    for action in ("issue", "close"):
        response = await client.post(f"{OFFERS}/{uuid.uuid4()}/{action}", headers=operator)
        assert _error(response, 404) == "Financing offer not found"


async def test_offer_routes_need_an_operator_key(client: httpx.AsyncClient, tenant: Tenant) -> None:
    offer_id = uuid.uuid4()
    for method, path in (
        ("GET", OFFERS),
        ("POST", f"{OFFERS}/{offer_id}/issue"),
        ("POST", f"{OFFERS}/{offer_id}/close"),
    ):
        response = await client.request(method, path, headers=tenant.auth)
        assert _error(response, 401) == "Invalid operator key", (method, path)


# --- listing -------------------------------------------------------------------------------------


async def test_list_filters_and_pages(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    operator: dict[str, str],
    policy: Policy,
) -> None:
    await make_financing_invoice(db, tenant, policy, status="FUNDED", total_amount=100_000)
    await make_financing_invoice(db, other_tenant, policy, status="NEW", total_amount=50_000)
    everyone = (await client.get(OFFERS, headers=operator)).json()["data"]
    assert [o["entity_id"] for o in everyone] == [tenant.entity_id, other_tenant.entity_id]
    mine, theirs = everyone
    # The fixture plan advances 80 %: 80,000 funded (outstanding), 40,000 confirmed (reserved).
    assert (mine["outstanding_amount"], mine["reserved_amount"]) == (80_000, 0)
    assert (theirs["outstanding_amount"], theirs["reserved_amount"]) == (0, 40_000)
    assert mine["available_amount"] == mine["total_amount"] - 80_000

    only = await client.get(OFFERS, params={"entity_id": other_tenant.entity_id}, headers=operator)
    assert [o["id"] for o in only.json()["data"]] == [theirs["id"]]
    closed = await client.get(OFFERS, params={"status__in": ["CLOSED"]}, headers=operator)
    assert closed.json()["data"] == []
    first = await client.get(OFFERS, params={"limit": 1}, headers=operator)
    assert [o["id"] for o in first.json()["data"]] == [mine["id"]]
    token = first.json()["next_pagination_token"]
    second = await client.get(OFFERS, params={"pagination_token": token}, headers=operator)
    assert [o["id"] for o in second.json()["data"]] == [theirs["id"]]
    bad = await client.get(OFFERS, params={"status": "OPEN"}, headers=operator)
    assert bad.status_code == 422


# --- closing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("busy", ["NEW", "FUNDED", "LATE"])
async def test_an_offer_with_live_invoices_cannot_close(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    operator: dict[str, str],
    policy: Policy,
    busy: str,
) -> None:
    fi = await load_invoice(db, await make_financing_invoice(db, tenant, policy, status=busy))
    response = await client.post(f"{OFFERS}/{fi.offer_id}/close", headers=operator)
    assert _error(response, 409) == (
        f"Financing offer is {'LATE' if busy == 'LATE' else 'CURRENT'} with invoices still "
        f"{busy}; it can be closed once they are settled"
    )


async def test_closing_releases_drafts_and_is_final(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    operator: dict[str, str],
    policy: Policy,
) -> None:
    paid = await load_invoice(db, await make_financing_invoice(db, tenant, policy, status="PAID"))
    draft = await make_financing_invoice(db, tenant, policy, status="DRAFT")
    response = await client.post(f"{OFFERS}/{paid.offer_id}/close", headers=operator)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CLOSED"
    async with db.session() as session:
        assert await session.get(FinancingInvoice, draft) is None  # released
    events = await _offer_events(db, str(paid.offer_id))
    assert events[-1] == "financing_offer.status_changed"
    monite = await client.get("/v1/financing_offers", headers=tenant.headers)
    assert monite.json()["offers"][0]["status"] == "CLOSED"

    again = await client.post(f"{OFFERS}/{paid.offer_id}/close", headers=operator)
    assert _error(again, 409) == (
        "Financing offer is CLOSED; it can be closed only when NEW or ACCEPTED or CURRENT or LATE"
    )
    issue = await client.post(f"{OFFERS}/{paid.offer_id}/issue", headers=operator)
    assert _error(issue, 409) == "Financing offer is CLOSED; it can be issued only when ACCEPTED"


# --- the command line ---------------------------------------------------------------------------


async def test_cli_lists_issues_and_closes(
    client: httpx.AsyncClient,
    app: FastAPI,
    env: dict[str, str],
    tenant: Tenant,
    policy: Policy,
) -> None:
    with serving_policy(app, dataclasses.replace(policy, review="manual")):
        offer = await onboard(client, tenant)
    listed = as_json(await fundline(env, "lender", "offers", "--status", "ACCEPTED", "--json"))
    assert [o["id"] for o in listed["data"]] == [offer["id"]]
    table = await fundline(env, "lender", "offers")
    assert table.exit_code == 0, table.output
    assert offer["id"] in table.stdout

    issued = as_json(await fundline(env, "lender", "issue-offer", offer["id"], "--json"))
    assert issued["status"] == "CURRENT"
    assert "CURRENT" in failed(await fundline(env, "lender", "issue-offer", offer["id"]))

    closed = await fundline(env, "lender", "close-offer", offer["id"])
    assert closed.exit_code == 0, closed.output
    assert "CLOSED" in closed.stdout
    unknown = failed(await fundline(env, "lender", "close-offer", str(uuid.uuid4())))
    assert "Financing offer not found" in unknown
