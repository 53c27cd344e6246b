"""The sandbox API, /sandbox/v1: absent in production, the shared clock driving servicing,
simulated events, resetting a business, and tenant scoping."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from fundline.app import create_app, shutdown
from fundline.kit import clock
from fundline.kit.db import Database
from fundline.lending.policy import Policy
from fundline.models import (
    ConnectToken,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
    FinancingStatusChange,
    Instalment,
    JournalEntry,
    Posting,
    PricingPlan,
    SandboxClock,
)
from fundline.sandbox.service import MAX_OFFSET_DAYS
from tests.support.apps import make_client, make_settings
from tests.support.factories import (
    Tenant,
    create_entity,
    create_entity_user,
    make_operator_key,
    token_for,
)
from tests.support.lending import load_invoice, make_financing_invoice

DAY = 86_400


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message = response.json()["error"]["message"]
    assert isinstance(message, str)
    return message


async def _simulate(
    client: httpx.AsyncClient, tenant: Tenant, fi_id: uuid.UUID, event: Any
) -> httpx.Response:
    return await client.post(
        f"/sandbox/v1/financing_invoices/{fi_id}/simulate",
        json={"event": event},
        headers=tenant.auth,
    )


async def _advance(client: httpx.AsyncClient, tenant: Tenant, days: Any) -> httpx.Response:
    """Move the clock; then give ``tenant`` a new token, since its own expires with time."""
    response = await client.post(
        "/sandbox/v1/clock/advance", json={"days": days}, headers=tenant.auth
    )
    tenant.token = await token_for(client, tenant.client_id, tenant.client_secret)
    tenant.headers["authorization"] = f"Bearer {tenant.token}"
    return response


# --- production --------------------------------------------------------------------------------


@pytest.fixture
async def production_app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(database_url, mode="production"))
    yield application
    await shutdown(application)


async def test_absent_in_production(
    app: FastAPI, production_app: FastAPI, tenant: Tenant, policy: Policy
) -> None:
    assert not [path for path in production_app.openapi()["paths"] if "sandbox" in path]
    assert _sandbox_routes(app)  # the sandbox app (the default mode) does serve them
    fi_id = await make_financing_invoice(app.state.db, tenant, policy, status="FUNDED")
    calls = [
        ("GET", "/sandbox/v1/clock", None),
        ("POST", "/sandbox/v1/clock/advance", {"days": 1}),
        ("POST", f"/sandbox/v1/financing_invoices/{fi_id}/simulate", {"event": "repay"}),
        ("POST", f"/sandbox/v1/businesses/{tenant.entity_id}/reset", None),
        ("GET", "/sandbox/v1/anything/else", None),
    ]
    async with make_client(production_app) as client:
        for method, path, body in calls:
            response = await client.request(method, path, json=body, headers=tenant.auth)
            assert _error(response, 404) == "Not Found", path
    assert (await load_invoice(app.state.db, fi_id)).status == "FUNDED"
    assert clock.offset() == timedelta()


# --- auth and scoping -------------------------------------------------------------------------


def _sandbox_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves under /sandbox/v1, ids filled in."""
    routes: list[tuple[str, str]] = []
    for template, operations in app.openapi()["paths"].items():
        if template.startswith("/sandbox/v1"):
            path = template.replace("{financing_invoice_id}", str(uuid.uuid4()))
            path = path.replace("{entity_id}", str(uuid.uuid4()))
            routes.extend((method.upper(), path) for method in operations)
    return routes


async def test_every_route_needs_a_partner_token(
    app: FastAPI, client: httpx.AsyncClient, db: Database
) -> None:
    routes = _sandbox_routes(app)
    assert len(routes) == 5  # clock, advance, simulate, business reset, sandbox reset
    operator_key = await make_operator_key(db)
    for method, path in routes:
        response = await client.request(method, path, json={"days": 1, "event": "fund"})
        assert _error(response, 401) == "Authorization header is missing", path
        response = await client.request(
            method, path, json={"days": 1}, headers={"authorization": "Bearer nope"}
        )
        assert _error(response, 401) == "Invalid access token", path
        response = await client.request(
            method, path, json={"days": 1}, headers={"authorization": f"Bearer {operator_key}"}
        )
        assert _error(response, 401) == "Invalid access token", path
    assert clock.offset() == timedelta()


async def test_other_partners_objects_are_404(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    policy: Policy,
) -> None:
    mine = await make_financing_invoice(db, tenant, policy, status="NEW")
    for event in ("fund", "repay", "late", "default", "reject"):
        response = await _simulate(client, other_tenant, mine, event)
        assert _error(response, 404) == "Financing invoice not found", event
        response = await _simulate(client, tenant, uuid.uuid4(), event)
        assert _error(response, 404) == "Financing invoice not found", event
    response = await client.post(
        f"/sandbox/v1/businesses/{tenant.entity_id}/reset", headers=other_tenant.auth
    )
    assert _error(response, 404) == "Entity not found"
    response = await client.post(
        f"/sandbox/v1/businesses/{uuid.uuid4()}/reset", headers=tenant.auth
    )
    assert _error(response, 404) == "Entity not found"
    assert (await load_invoice(db, mine)).status == "NEW"
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(FinancingBusiness)) == 1


async def test_an_entity_user_token_reaches_only_its_entity(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, policy: Policy
) -> None:
    sibling_entity = await create_entity(client, tenant.token, name="Sibling LLC")
    sibling = Tenant(
        tenant.partner_id, tenant.client_id, tenant.client_secret, tenant.token, sibling_entity
    )
    theirs = await make_financing_invoice(db, sibling, policy, status="NEW")
    user = await create_entity_user(client, tenant)
    token = await token_for(
        client, tenant.client_id, tenant.client_secret, entity_user_id=user["id"]
    )
    as_user = Tenant(
        tenant.partner_id, tenant.client_id, tenant.client_secret, token, tenant.entity_id
    )
    response = await _simulate(client, as_user, theirs, "fund")
    assert _error(response, 404) == "Financing invoice not found"
    response = await client.post(
        f"/sandbox/v1/businesses/{sibling_entity}/reset", headers=as_user.auth
    )
    assert _error(response, 404) == "Entity not found"
    # The partner's own token reaches every entity of the partner.
    response = await _simulate(client, tenant, theirs, "fund")
    assert response.status_code == 200, response.text


# --- clock --------------------------------------------------------------------------------------


async def test_clock_starts_at_real_time(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/sandbox/v1/clock", headers=tenant.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["offset_seconds"] == 0
    assert body["today"] == clock.today().isoformat()


async def test_advance_moves_and_persists_the_clock(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    response = await _advance(client, tenant, 3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["offset_seconds"] == 3 * DAY
    assert isinstance(body["tick"], dict)
    assert clock.offset() == timedelta(days=3)
    assert body["today"] == clock.today().isoformat()
    async with db.session() as session:
        row = await session.get(SandboxClock, 1)
        assert row is not None
        assert row.offset_seconds == 3 * DAY
    response = await _advance(client, tenant, 2)
    assert response.json()["offset_seconds"] == 5 * DAY
    # Another process moved it: every sandbox call takes up the persisted offset.
    clock.reset()
    shown = (await client.get("/sandbox/v1/clock", headers=tenant.auth)).json()
    assert shown["offset_seconds"] == 5 * DAY
    assert clock.offset() == timedelta(days=5)


@pytest.mark.parametrize("days", [0, -1, 1.5, "2", None, 3651])
async def test_advance_validates_days(client: httpx.AsyncClient, tenant: Tenant, days: Any) -> None:
    response = await _advance(client, tenant, days)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "days"]
    assert clock.offset() == timedelta()


async def test_the_clock_goes_at_most_a_century_ahead(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    """Advances add up; past year 9999 every date would overflow (a 500 on every call)."""
    async with db.session() as session, session.begin():
        session.add(SandboxClock(id=1, offset_seconds=(MAX_OFFSET_DAYS - 1) * DAY))
    response = await _advance(client, tenant, 2)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "days"]
    response = await _advance(client, tenant, 1)
    assert response.status_code == 200, response.text
    assert response.json()["offset_seconds"] == MAX_OFFSET_DAYS * DAY


async def test_a_new_process_starts_at_the_persisted_time(database_url: str, db: Database) -> None:
    async with db.session() as session, session.begin():
        session.add(SandboxClock(id=1, offset_seconds=7 * DAY))
    fresh = create_app(make_settings(database_url))
    async with fresh.router.lifespan_context(fresh):
        assert clock.offset() == timedelta(days=7)
    clock.reset()
    production = create_app(make_settings(database_url, mode="production"))
    async with production.router.lifespan_context(production):
        assert clock.offset() == timedelta()


async def test_advancing_drives_late_then_defaulted(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    fi = await load_invoice(db, fi_id)
    assert fi.repayment_date is not None
    days_to_due = (fi.repayment_date - clock.today()).days

    response = await _advance(client, tenant, days_to_due)
    assert response.status_code == 200, response.text
    assert (await load_invoice(db, fi_id)).status == "FUNDED"

    response = await _advance(client, tenant, 1)
    assert response.status_code == 200, response.text
    assert sum(response.json()["tick"].values()) >= 1
    assert (await load_invoice(db, fi_id)).status == "LATE"

    response = await _advance(client, tenant, policy.default_after_days_late + 1)
    assert response.status_code == 200, response.text
    assert (await load_invoice(db, fi_id)).status == "DEFAULTED"
    async with db.session() as session:
        history = (
            await session.scalars(
                select(FinancingStatusChange.to_status)
                .where(FinancingStatusChange.financing_invoice_id == fi_id)
                .order_by(FinancingStatusChange.at)
            )
        ).all()
    assert history[-2:] == ["LATE", "DEFAULTED"]


# --- simulate ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "event", "end"),
    [
        ("NEW", "fund", "FUNDED"),
        ("NEW", "reject", "REJECTED"),
        ("FUNDED", "late", "LATE"),
        ("LATE", "default", "DEFAULTED"),
        ("FUNDED", "repay", "PAID"),
        ("LATE", "repay", "PAID"),
    ],
)
async def test_simulate(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    policy: Policy,
    start: str,
    event: str,
    end: str,
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status=start)
    response = await _simulate(client, tenant, fi_id, event)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["status"]) == (str(fi_id), end)
    if event == "repay":
        assert body["repaid_amount"] == body["repayment_amount"] == 80_000
    async with db.session() as session:
        cause = await session.scalar(
            select(FinancingStatusChange.cause)
            .where(FinancingStatusChange.financing_invoice_id == fi_id)
            .order_by(FinancingStatusChange.at.desc())
            .limit(1)
        )
    assert cause == f"sandbox: simulated {event}"


@pytest.mark.parametrize(
    ("start", "event"),
    [
        ("DRAFT", "fund"),
        ("FUNDED", "fund"),
        ("FUNDED", "reject"),
        ("NEW", "late"),
        ("PAID", "late"),
        ("FUNDED", "default"),
        ("NEW", "repay"),
        ("PAID", "repay"),
        ("REJECTED", "repay"),
        ("DEFAULTED", "repay"),
    ],
)
async def test_simulate_illegal_is_409(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    policy: Policy,
    start: str,
    event: str,
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status=start)
    response = await _simulate(client, tenant, fi_id, event)
    assert start in _error(response, 409)
    assert (await load_invoice(db, fi_id)).status == start


async def test_simulate_validates_the_event(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="NEW")
    for event in ("refund", None, 1):
        response = await _simulate(client, tenant, fi_id, event)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", "event"]


# --- reset --------------------------------------------------------------------------------------


async def _count(db: Database, model: Any, *where: Any) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_reset_removes_the_whole_financing_of_one_entity(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    policy: Policy,
) -> None:
    ids = [
        await make_financing_invoice(db, tenant, policy, status=status)
        for status in ("DRAFT", "NEW", "FUNDED", "PAID")
    ]
    kept = await make_financing_invoice(db, other_tenant, policy, status="FUNDED")
    invoice_ids = [(await load_invoice(db, i)).invoice_id for i in ids]
    request_id = (await load_invoice(db, ids[0])).request_id
    async with db.session() as session, session.begin():
        session.add(
            ConnectToken(
                token_hash="f" * 64,
                kind="session",
                entity_id=uuid.UUID(tenant.entity_id),
                request_id=request_id,
                expires_at=clock.now() + timedelta(hours=1),
            )
        )

    response = await client.post(
        f"/sandbox/v1/businesses/{tenant.entity_id}/reset", headers=tenant.auth
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["entity_id"] == tenant.entity_id
    deleted = body["deleted"]
    assert deleted["businesses"] == 1
    assert deleted["offers"] == 1
    assert deleted["pricing_plans"] == 1
    assert deleted["requests"] == 4
    assert deleted["financing_invoices"] == 4
    assert deleted["connect_tokens"] == 1
    assert deleted["ledger_entries"] >= 3
    assert deleted["ledger_postings"] >= 6

    entity = uuid.UUID(tenant.entity_id)
    for model, column in (
        (FinancingBusiness, FinancingBusiness.entity_id),
        (FinancingOffer, FinancingOffer.entity_id),
        (FinancingRequest, FinancingRequest.entity_id),
        (FinancingInvoice, FinancingInvoice.entity_id),
        (JournalEntry, JournalEntry.entity_id),
        (ConnectToken, ConnectToken.entity_id),
    ):
        assert await _count(db, model, column == entity) == 0, model
    assert await _count(db, Instalment, Instalment.financing_invoice_id.in_(ids)) == 0
    assert (
        await _count(db, FinancingStatusChange, FinancingStatusChange.financing_invoice_id.in_(ids))
        == 0
    )
    assert await _count(db, Posting, Posting.financing_invoice_id.in_(ids)) == 0
    assert await _count(db, PricingPlan) == 1  # the other tenant's
    # The other tenant's financing is untouched, and the ledger still reconciles.
    assert (await load_invoice(db, kept)).status == "FUNDED"
    operator = {"authorization": f"Bearer {await make_operator_key(db)}"}
    report = (await client.get("/lender/v1/reconciliation", headers=operator)).json()
    assert report["clean"] is True, report
    # The invoices were released: they can be financed again.
    async with db.session() as session:
        live = await session.scalar(
            select(func.count())
            .select_from(FinancingInvoice)
            .where(FinancingInvoice.live_invoice_id.in_(invoice_ids))
        )
    assert live == 0
    again = await make_financing_invoice(db, tenant, policy, status="NEW")
    assert (await load_invoice(db, again)).status == "NEW"
    # Resetting an entity without financing removes nothing.
    await client.post(f"/sandbox/v1/businesses/{tenant.entity_id}/reset", headers=tenant.auth)
    response = await client.post(
        f"/sandbox/v1/businesses/{tenant.entity_id}/reset", headers=tenant.auth
    )
    assert response.status_code == 200, response.text
    assert set(response.json()["deleted"].values()) == {0}
