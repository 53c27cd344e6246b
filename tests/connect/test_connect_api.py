"""The Connect API (`/connect/v1`): one-time tokens exchanged for scoped sessions, onboarding
with validated business data, offers, and confirming a request's invoices — through to a
funded invoice under the sandbox policy."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from fundline.connect.schemas import routing_number_valid
from fundline.kit import clock
from fundline.kit.db import Database
from fundline.kit.security import token_digest
from fundline.models import ConnectSession, ConnectToken, Event, FinancingInvoice
from tests.support.factories import (
    BUSINESS_PAYLOAD,
    Tenant,
    connect_session,
    create_entity,
    create_issued_invoice,
    create_payable,
    onboard,
    token_for,
)

ALL_FIELDS = [
    "legal_name",
    "ein",
    "address.line1",
    "address.city",
    "address.state",
    "address.postal_code",
    "address.country",
    "owner.first_name",
    "owner.last_name",
    "owner.email",
    "bank_account.routing_number",
    "bank_account.account_number",
]


# --- helpers ---------------------------------------------------------------------------------


async def connect_token(client: httpx.AsyncClient, tenant: Tenant) -> str:
    response = await client.post("/v1/financing_tokens", headers=tenant.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["connect_token"])


async def onboarding(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, str]:
    return await connect_session(client, await connect_token(client, tenant))


async def request_for(
    client: httpx.AsyncClient, tenant: Tenant, *invoices: dict[str, Any], kind: str = "receivable"
) -> dict[str, str]:
    response = await client.post(
        "/v1/financing_invoices",
        json={"invoices": [{"id": i["id"], "type": kind} for i in invoices]},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    data: dict[str, str] = response.json()
    return data


async def invoices_session(
    client: httpx.AsyncClient, tenant: Tenant, *invoices: dict[str, Any]
) -> dict[str, str]:
    tokens = await request_for(client, tenant, *invoices)
    return await connect_session(client, tokens["session_token"])


async def plans(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/connect/v1/offers", headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["offers"][0]["pricing_plans"]
    return found


async def confirm(
    client: httpx.AsyncClient, headers: dict[str, str], *items: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        "/connect/v1/invoices/confirm", json={"invoices": list(items)}, headers=headers
    )


def message(response: httpx.Response) -> str:
    return str(response.json()["error"]["message"])


async def relogin(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """A fresh partner token, after the clock moved past the old one's life."""
    tenant.token = await token_for(client, tenant.client_id, tenant.client_secret)
    tenant.headers["authorization"] = f"Bearer {tenant.token}"


# --- sessions --------------------------------------------------------------------------------


async def test_a_connect_token_opens_an_onboarding_session(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    token = await connect_token(client, tenant)
    response = await client.post("/connect/v1/sessions", json={"token": token})
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "entity_id", "scope"}
    assert body["scope"] == "onboarding"
    assert body["entity_id"] == tenant.entity_id
    assert body["token_type"] == "Bearer"
    assert 3590 <= body["expires_in"] <= 3600
    async with db.session() as session:
        stored = await session.get(ConnectSession, token_digest(body["access_token"]))
        assert stored is not None
        assert stored.scope == "onboarding"
        assert stored.request_id is None
        used = await session.get(ConnectToken, token_digest(token))
        assert used is not None
        assert used.used_at is not None


async def test_a_token_works_once(client: httpx.AsyncClient, tenant: Tenant) -> None:
    token = await connect_token(client, tenant)
    assert (await client.post("/connect/v1/sessions", json={"token": token})).status_code == 201
    again = await client.post("/connect/v1/sessions", json={"token": token})
    assert again.status_code == 401
    assert message(again) == "The token is invalid, expired or already used"


@pytest.mark.parametrize("token", ["nope", "fct_" + "x" * 43])
async def test_unknown_tokens_are_401(
    client: httpx.AsyncClient, tenant: Tenant, token: str
) -> None:
    response = await client.post("/connect/v1/sessions", json={"token": token})
    assert response.status_code == 401
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize("body", [{}, {"token": ""}, {"token": "x", "scope": "invoices"}])
async def test_malformed_session_requests_are_422(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post("/connect/v1/sessions", json=body)
    assert response.status_code == 422


async def test_a_connect_token_lives_24_hours(client: httpx.AsyncClient, tenant: Tenant) -> None:
    fresh, stale = await connect_token(client, tenant), await connect_token(client, tenant)
    clock.set_offset(timedelta(hours=24) - timedelta(seconds=30))
    assert (await client.post("/connect/v1/sessions", json={"token": fresh})).status_code == 201
    clock.set_offset(timedelta(hours=24, seconds=1))
    response = await client.post("/connect/v1/sessions", json={"token": stale})
    assert response.status_code == 401


async def test_a_session_token_opens_an_invoices_session_until_the_request_expires(
    client: httpx.AsyncClient, tenant: Tenant, app: FastAPI
) -> None:
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant)
    tokens = await request_for(client, tenant, invoice)
    ttl = app.state.policy.request_ttl_seconds
    response = await client.post("/connect/v1/sessions", json={"token": tokens["session_token"]})
    assert response.status_code == 201
    assert response.json()["scope"] == "invoices"
    assert ttl - 10 <= response.json()["expires_in"] <= ttl
    headers = {"authorization": f"Bearer {response.json()['access_token']}"}

    clock.set_offset(timedelta(seconds=ttl + 1))
    response = await client.get("/connect/v1/invoices", headers=headers)
    assert response.status_code == 401
    assert message(response) == "The Connect session is invalid or has expired"
    # The request's connect token still opens onboarding (it lives 24 hours).
    response = await client.post("/connect/v1/sessions", json={"token": tokens["connect_token"]})
    assert response.json()["scope"] == "onboarding"


async def test_an_expired_session_token_is_401(
    client: httpx.AsyncClient, tenant: Tenant, app: FastAPI
) -> None:
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant)
    tokens = await request_for(client, tenant, invoice)
    clock.set_offset(timedelta(seconds=app.state.policy.request_ttl_seconds + 1))
    response = await client.post("/connect/v1/sessions", json={"token": tokens["session_token"]})
    assert response.status_code == 401


async def test_an_onboarding_session_lasts_an_hour(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding(client, tenant)
    clock.set_offset(timedelta(minutes=59))
    assert (await client.get("/connect/v1/business", headers=headers)).status_code == 200
    clock.set_offset(timedelta(hours=1, seconds=1))
    assert (await client.get("/connect/v1/business", headers=headers)).status_code == 401


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer nope", "Basic dXNlcjpwYXNz", "partner"],
)
async def test_the_bearer_must_be_a_connect_session(
    client: httpx.AsyncClient, tenant: Tenant, authorization: str | None
) -> None:
    await onboarding(client, tenant)
    headers = {}
    if authorization == "partner":  # a partner token is no Connect session
        headers = {"authorization": f"Bearer {tenant.token}"}
    elif authorization is not None:
        headers = {"authorization": authorization}
    for method, path in [
        ("GET", "/connect/v1/business"),
        ("PUT", "/connect/v1/business"),
        ("GET", "/connect/v1/offers"),
        ("POST", f"/connect/v1/offers/{uuid.uuid4()}/accept"),
        ("GET", "/connect/v1/invoices"),
        ("POST", "/connect/v1/invoices/confirm"),
    ]:
        response = await client.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (path, response.text)
        assert "message" in response.json()["error"]


async def test_connect_needs_no_monite_headers_and_is_limited_per_address(
    app: FastAPI, tenant: Tenant, client: httpx.AsyncClient
) -> None:
    token = await connect_token(client, tenant)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://fundline.test"
    ) as bare:
        response = await bare.post("/connect/v1/sessions", json={"token": token})
        assert response.status_code == 201, response.text
        headers = {"authorization": f"Bearer {response.json()['access_token']}"}
        response = await bare.get("/connect/v1/business", headers=headers)
    assert response.status_code == 200
    assert "x-request-id" in response.headers
    assert "x-monite-version" not in response.headers
    assert response.headers["ratelimit-limit"] == str(app.state.settings.rate_limit_per_second)


# --- the business ----------------------------------------------------------------------------


async def test_business_starts_with_everything_missing(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding(client, tenant)
    response = await client.get("/connect/v1/business", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["business_status"] == "INPUT_REQUIRED"
    assert body["entity_id"] == tenant.entity_id
    assert body["missing_fields"] == ALL_FIELDS
    assert body["offer"] is None
    assert body["bank_account"] == {"routing_number": None, "account_number_last4": None}


async def test_business_is_filled_in_steps_then_onboarded_and_underwritten(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    headers = await onboarding(client, tenant)
    steps: list[tuple[dict[str, Any], list[str]]] = [
        ({"legal_name": "Acme Supplies LLC", "ein": "12-3456789"}, ALL_FIELDS[2:]),
        ({"address": {"line1": "100 Congress Ave", "city": "Austin"}}, ALL_FIELDS[4:]),
        ({"address": {"state": "TX", "postal_code": "78701", "country": "US"}}, ALL_FIELDS[7:]),
        ({"owner": BUSINESS_PAYLOAD["owner"]}, ALL_FIELDS[10:]),
        ({"bank_account": {"routing_number": "021000021"}}, ALL_FIELDS[11:]),
    ]
    for body, missing in steps:
        response = await client.put("/connect/v1/business", json=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["business_status"] == "INPUT_REQUIRED"
        assert response.json()["missing_fields"] == missing
        assert response.json()["offer"] is None
    response = await client.put(
        "/connect/v1/business",
        json={"bank_account": {"account_number": "000123456789"}},
        headers=headers,
    )
    body = response.json()
    assert body["business_status"] == "ONBOARDED"
    assert body["missing_fields"] == []
    assert body["onboarded_at"] is not None
    assert body["decision_note"] is None
    assert body["address"] == {
        "line1": "100 Congress Ave",
        "line2": None,
        "city": "Austin",
        "state": "TX",
        "postal_code": "78701",
        "country": "US",
    }
    assert body["bank_account"] == {"routing_number": "021000021", "account_number_last4": "6789"}
    offer = body["offer"]
    assert (offer["status"], offer["currency"], offer["total_amount"]) == ("NEW", "USD", 5_000_000)
    assert len(offer["pricing_plans"]) == 4

    response = await client.get("/connect/v1/business", headers=headers)
    assert response.json() == body
    monite = await client.get("/v1/financing_offers", headers=tenant.headers)
    assert monite.json()["business_status"] == "ONBOARDED"
    assert monite.json()["offers"][0]["status"] == "NEW"

    # Onboarded: the details are settled.
    response = await client.put("/connect/v1/business", json={"legal_name": "X"}, headers=headers)
    assert response.status_code == 409

    async with db.session() as session:
        actions = list(
            await session.scalars(
                select(Event.action)
                .where(Event.object_type.in_(("financing_business", "financing_offer")))
                .order_by(Event.created_at)
            )
        )
    assert actions[0] == "financing_business.created"
    assert actions.count("financing_business.status_changed") == 2  # → INPUT_REQUIRED, ONBOARDED
    assert "financing_offer.created" in actions


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"ein": "123456789"}, ["body", "ein"]),
        ({"ein": "12-345678"}, ["body", "ein"]),
        ({"ein": "12-34567890"}, ["body", "ein"]),
        ({"ein": "AB-CDEFGHI"}, ["body", "ein"]),
        (
            {"bank_account": {"routing_number": "021000022"}},
            ["body", "bank_account", "routing_number"],
        ),
        (
            {"bank_account": {"routing_number": "02100002"}},
            ["body", "bank_account", "routing_number"],
        ),
        (
            {"bank_account": {"routing_number": "02100002A"}},
            ["body", "bank_account", "routing_number"],
        ),
        ({"bank_account": {"account_number": "123"}}, ["body", "bank_account", "account_number"]),
        (
            {"bank_account": {"account_number": "1" * 18}},
            ["body", "bank_account", "account_number"],
        ),
        (
            {"bank_account": {"account_number": "12ab5678"}},
            ["body", "bank_account", "account_number"],
        ),
        ({"owner": {"email": "not-an-email"}}, ["body", "owner", "email"]),
        ({"address": {"country": "XX"}}, ["body", "address", "country"]),
        ({"address": {"city": ""}}, ["body", "address", "city"]),
        ({"legal_name": ""}, ["body", "legal_name"]),
        ({"website": "acme.example"}, ["body", "website"]),
    ],
)
async def test_invalid_business_data_is_422_and_changes_nothing(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], loc: list[str]
) -> None:
    headers = await onboarding(client, tenant)
    response = await client.put(
        "/connect/v1/business", json={"legal_name": "Acme", **body}, headers=headers
    )
    assert response.status_code == 422, response.text
    assert loc in [d["loc"] for d in response.json()["detail"]]
    response = await client.get("/connect/v1/business", headers=headers)
    assert response.json()["legal_name"] is None
    assert response.json()["missing_fields"] == ALL_FIELDS


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("021000021", True),
        ("011000015", True),
        ("121000358", True),
        ("026009593", True),
        ("021000022", False),
        ("121000359", False),
        ("12100035", False),
        ("1210003580", False),
        ("12100035a", False),
    ],
)
def test_routing_number_checksum(number: str, valid: bool) -> None:
    assert routing_number_valid(number) is valid


async def test_a_business_outside_the_us_is_declined_with_the_reason(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    berlin = {
        "line1": "Unter den Linden 1",
        "city": "Berlin",
        "postal_code": "10117",
        "country": "DE",
    }
    entity_id = await create_entity(client, tenant.token, name="Acme GmbH", address=berlin)
    german = {**tenant.auth, "x-monite-entity-id": entity_id}
    response = await client.post("/v1/financing_tokens", headers=german)
    headers = await connect_session(client, response.json()["connect_token"])
    response = await client.put("/connect/v1/business", json=BUSINESS_PAYLOAD, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["business_status"] == "ONBOARDED"
    assert body["offer"] is None
    assert "US businesses only" in body["decision_note"]
    monite = await client.get("/v1/financing_offers", headers=german)
    assert monite.json() == {"business_status": "ONBOARDED", "offers": []}


# --- offers ----------------------------------------------------------------------------------


async def test_accepting_an_offer_makes_it_current_in_sandbox(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding(client, tenant)
    response = await client.put("/connect/v1/business", json=BUSINESS_PAYLOAD, headers=headers)
    offer = response.json()["offer"]
    listed = await client.get("/connect/v1/offers", headers=headers)
    assert listed.json() == {"offers": [offer]}

    response = await client.post(f"/connect/v1/offers/{offer['id']}/accept", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {**offer, "status": "CURRENT"}
    again = await client.post(f"/connect/v1/offers/{offer['id']}/accept", headers=headers)
    assert again.status_code == 409
    assert "CURRENT" in message(again)
    monite = await client.get("/v1/financing_offers", headers=tenant.headers)
    assert monite.json()["offers"][0]["status"] == "CURRENT"


async def test_the_factory_onboards(client: httpx.AsyncClient, tenant: Tenant) -> None:
    offer = await onboard(client, tenant)
    assert offer["status"] == "CURRENT"
    assert offer["available_amount"] == offer["total_amount"] == 5_000_000


async def test_an_expired_offer_cannot_be_accepted(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding(client, tenant)
    response = await client.put("/connect/v1/business", json=BUSINESS_PAYLOAD, headers=headers)
    offer = response.json()["offer"]
    clock.set_offset(timedelta(days=31))  # the sandbox offer is valid 30 days
    await relogin(client, tenant)
    headers = await onboarding(client, tenant)
    response = await client.post(f"/connect/v1/offers/{offer['id']}/accept", headers=headers)
    assert response.status_code == 409
    assert "expired" in message(response)


async def test_offers_of_another_entity_are_404(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    foreign = await onboard(client, other_tenant)
    headers = await onboarding(client, tenant)
    await client.put("/connect/v1/business", json=BUSINESS_PAYLOAD, headers=headers)
    for offer_id in (foreign["id"], str(uuid.uuid4())):
        response = await client.post(f"/connect/v1/offers/{offer_id}/accept", headers=headers)
        assert response.status_code == 404
        assert message(response) == "Financing offer not found"
    listed = await client.get("/connect/v1/offers", headers=headers)
    assert foreign["id"] not in [o["id"] for o in listed.json()["offers"]]


# --- scopes ----------------------------------------------------------------------------------


async def test_scopes_are_enforced(client: httpx.AsyncClient, tenant: Tenant) -> None:
    offer = await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant)
    invoices_headers = await invoices_session(client, tenant, invoice)
    onboarding_headers = await onboarding(client, tenant)
    plan_id = offer["pricing_plans"][0]["id"]
    item = {"invoice_id": invoice["id"], "pricing_plan_id": plan_id}

    for response in [
        await client.get("/connect/v1/invoices", headers=onboarding_headers),
        await confirm(client, onboarding_headers, item),
        await client.put("/connect/v1/business", json={}, headers=invoices_headers),
        await client.post(f"/connect/v1/offers/{offer['id']}/accept", headers=invoices_headers),
    ]:
        assert response.status_code == 403, response.text
        assert "scope" in message(response)
    # Reading the business and the offers is fine with either scope.
    for headers in (onboarding_headers, invoices_headers):
        assert (await client.get("/connect/v1/business", headers=headers)).status_code == 200
        assert (await client.get("/connect/v1/offers", headers=headers)).status_code == 200
    assert (await confirm(client, invoices_headers, item)).status_code == 200


async def test_an_invoices_session_sees_only_its_request(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    offer = await onboard(client, tenant)
    my_invoice = await create_issued_invoice(client, tenant)
    theirs_invoice = await create_issued_invoice(client, tenant)
    mine = await invoices_session(client, tenant, my_invoice)
    theirs = await invoices_session(client, tenant, theirs_invoice)
    listed = await client.get("/connect/v1/invoices", headers=mine)
    assert [i["invoice_id"] for i in listed.json()["invoices"]] == [my_invoice["id"]]
    item = {"invoice_id": theirs_invoice["id"], "pricing_plan_id": offer["pricing_plans"][0]["id"]}
    response = await confirm(client, mine, item)
    assert response.status_code == 404
    assert (
        message(response) == f"Invoice {theirs_invoice['id']} is not part of this financing request"
    )
    assert (await confirm(client, theirs, item)).status_code == 200

    # Another tenant's session sees nothing of this tenant.
    await onboard(client, other_tenant)
    other_invoice = await create_issued_invoice(client, other_tenant)
    other = await invoices_session(client, other_tenant, other_invoice)
    listed = await client.get("/connect/v1/invoices", headers=other)
    assert [i["invoice_id"] for i in listed.json()["invoices"]] == [other_invoice["id"]]
    response = await client.get("/connect/v1/business", headers=other)
    assert response.json()["entity_id"] == other_tenant.entity_id


# --- invoices and quotes ---------------------------------------------------------------------


async def test_invoices_come_with_a_quote_per_plan(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    offer = await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant, amount=100_000, due_in_days=20)
    bill = await create_payable(client, tenant, amount=33_333)
    tokens = await request_for(client, tenant, invoice)
    headers = await connect_session(client, tokens["session_token"])
    response = await client.get("/connect/v1/invoices", headers=headers)
    assert response.status_code == 200
    body = response.json()
    [listed] = body["invoices"]
    today = clock.today()
    due = today + timedelta(days=20)
    assert listed["invoice_id"] == invoice["id"]
    assert (listed["type"], listed["document_id"]) == ("receivable", invoice["document_id"])
    assert (listed["total_amount"], listed["currency"]) == (100_000, "USD")
    assert listed["due_date"] == due.isoformat()
    assert (listed["payer_type"], listed["payer_name"]) == ("BUSINESS", "Globex Corp")
    ids = [p["id"] for p in offer["pricing_plans"]]
    assert listed["quotes"] == [
        {  # 100 % advance, 2 % fee, 30 days
            "pricing_plan_id": ids[0],
            "max_requested_amount": 100_000,
            "requested_amount": 100_000,
            "fee_amount": 2_000,
            "advance_amount": 98_000,
            "repayment_amount": 100_000,
            "repayment_date": (today + timedelta(days=30)).isoformat(),
            "instalments": 1,
        },
        {  # 100 %, 3 %, 60 days
            "pricing_plan_id": ids[1],
            "max_requested_amount": 100_000,
            "requested_amount": 100_000,
            "fee_amount": 3_000,
            "advance_amount": 97_000,
            "repayment_amount": 100_000,
            "repayment_date": (today + timedelta(days=60)).isoformat(),
            "instalments": 1,
        },
        {  # 90 %, 4 %, three instalments over 90 days
            "pricing_plan_id": ids[2],
            "max_requested_amount": 90_000,
            "requested_amount": 90_000,
            "fee_amount": 3_600,
            "advance_amount": 86_400,
            "repayment_amount": 90_000,
            "repayment_date": (today + timedelta(days=90)).isoformat(),
            "instalments": 3,
        },
        {  # 85 %, 2.5 %, on the due date plus 7 days
            "pricing_plan_id": ids[3],
            "max_requested_amount": 85_000,
            "requested_amount": 85_000,
            "fee_amount": 2_125,
            "advance_amount": 82_875,
            "repayment_amount": 85_000,
            "repayment_date": (due + timedelta(days=7)).isoformat(),
            "instalments": 1,
        },
    ]
    # A payable is quoted the same way.
    headers = await connect_session(
        client, (await request_for(client, tenant, bill, kind="payable"))["session_token"]
    )
    [listed] = (await client.get("/connect/v1/invoices", headers=headers)).json()["invoices"]
    assert listed["type"] == "payable"
    assert listed["quotes"][2]["max_requested_amount"] == 29_999  # floor(33333 * 90 %)


async def test_confirm_with_the_default_and_a_chosen_amount(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    offer = await onboard(client, tenant)
    plan = offer["pricing_plans"][0]
    whole_invoice = await create_issued_invoice(client, tenant, amount=100_000)
    part_invoice = await create_issued_invoice(client, tenant, amount=100_000)
    headers = await invoices_session(client, tenant, whole_invoice, part_invoice)
    response = await confirm(
        client,
        headers,
        {"invoice_id": whole_invoice["id"], "pricing_plan_id": plan["id"]},
        {
            "invoice_id": part_invoice["id"],
            "pricing_plan_id": plan["id"],
            "requested_amount": 50_000,
        },
    )
    assert response.status_code == 200, response.text
    first, second = response.json()["invoices"]
    assert first["invoice_id"] == whole_invoice["id"]
    assert first["status"] == second["status"] == "FUNDED"
    assert (first["requested_amount"], first["fee_amount"], first["advance_amount"]) == (
        100_000,
        2_000,
        98_000,
    )
    assert (second["requested_amount"], second["fee_amount"], second["principal_amount"]) == (
        50_000,
        1_000,
        49_000,
    )
    assert second["repayment_schedule"]["repayment_amount"] == 50_000
    listed = await client.get("/connect/v1/invoices", headers=headers)
    assert listed.json()["invoices"] == []
    monite = await client.get("/v1/financing_offers", headers=tenant.headers)
    assert monite.json()["offers"][0]["available_amount"] == 5_000_000 - 150_000


async def test_invoices_of_one_request_can_be_confirmed_one_by_one(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    offer = await onboard(client, tenant)
    plan_id = offer["pricing_plans"][1]["id"]
    a = await create_issued_invoice(client, tenant)
    b = await create_issued_invoice(client, tenant)
    headers = await invoices_session(client, tenant, a, b)
    response = await confirm(client, headers, {"invoice_id": a["id"], "pricing_plan_id": plan_id})
    assert response.status_code == 200
    listed = await client.get("/connect/v1/invoices", headers=headers)
    assert [i["invoice_id"] for i in listed.json()["invoices"]] == [b["id"]]
    response = await confirm(client, headers, {"invoice_id": b["id"], "pricing_plan_id": plan_id})
    assert response.status_code == 200, response.text
    assert response.json()["invoices"][0]["fee_percentage"] == 300


async def test_confirm_refusals_confirm_nothing(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, db: Database
) -> None:
    offer = await onboard(client, tenant)
    foreign_offer = await onboard(client, other_tenant)
    plan_id = offer["pricing_plans"][0]["id"]
    good_invoice = await create_issued_invoice(client, tenant, amount=100_000)
    other_invoice = await create_issued_invoice(client, tenant, amount=100_000)
    headers = await invoices_session(client, tenant, good_invoice, other_invoice)
    good = {"invoice_id": good_invoice["id"], "pricing_plan_id": plan_id}
    other = {"invoice_id": other_invoice["id"], "pricing_plan_id": plan_id}
    cases: list[tuple[dict[str, Any], int, list[Any] | None]] = [
        ({**other, "requested_amount": 100_001}, 422, ["body", "invoices", 1, "requested_amount"]),
        ({**other, "requested_amount": 0}, 422, ["body", "invoices", 1, "requested_amount"]),
        (
            {**other, "pricing_plan_id": str(uuid.uuid4())},
            422,
            ["body", "invoices", 1, "pricing_plan_id"],
        ),
        (
            {**other, "pricing_plan_id": foreign_offer["pricing_plans"][0]["id"]},
            422,
            ["body", "invoices", 1, "pricing_plan_id"],
        ),
        (good, 422, ["body", "invoices", 1, "invoice_id"]),  # listed twice
        ({**other, "invoice_id": str(uuid.uuid4())}, 404, None),
        ({**other, "colour": "red"}, 422, ["body", "invoices", 1, "colour"]),
    ]
    for bad, status, loc in cases:
        response = await confirm(client, headers, good, bad)
        assert response.status_code == status, (bad, response.text)
        if loc is not None:
            assert loc in [d["loc"] for d in response.json()["detail"]]
    response = await client.post(
        "/connect/v1/invoices/confirm", json={"invoices": []}, headers=headers
    )
    assert response.status_code == 422
    async with db.session() as session:
        statuses = set(await session.scalars(select(FinancingInvoice.status)))
    assert statuses == {"DRAFT"}

    assert (await confirm(client, headers, good)).status_code == 200
    again = await confirm(client, headers, good)
    assert again.status_code == 409
    assert message(again) == f"Invoice {good_invoice['id']} is already FUNDED"


async def test_confirm_above_the_available_limit_is_409(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    offer = await onboard(client, tenant)
    big = await create_issued_invoice(client, tenant, amount=6_000_000)
    headers = await invoices_session(client, tenant, big)
    item = {"invoice_id": big["id"], "pricing_plan_id": offer["pricing_plans"][0]["id"]}
    response = await confirm(client, headers, item)
    assert response.status_code == 409
    assert "available" in message(response)
    response = await confirm(client, headers, {**item, "requested_amount": 5_000_000})
    assert response.status_code == 200
    monite = await client.get("/v1/financing_offers", headers=tenant.headers)
    assert monite.json()["offers"][0]["available_amount"] == 0


async def test_confirm_after_the_request_expired(
    client: httpx.AsyncClient, tenant: Tenant, app: FastAPI
) -> None:
    offer = await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant)
    headers = await invoices_session(client, tenant, invoice)
    clock.set_offset(timedelta(seconds=app.state.policy.request_ttl_seconds + 1))
    item = {"invoice_id": invoice["id"], "pricing_plan_id": offer["pricing_plans"][0]["id"]}
    response = await confirm(client, headers, item)
    assert response.status_code == 401


# --- the whole flow --------------------------------------------------------------------------


async def test_whole_flow_from_token_to_funded(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    # tokens → onboarding → offer
    response = await client.post("/v1/financing_tokens", headers=tenant.headers)
    onboarding_headers = await connect_session(client, response.json()["connect_token"])
    response = await client.put(
        "/connect/v1/business", json=BUSINESS_PAYLOAD, headers=onboarding_headers
    )
    offer = response.json()["offer"]
    assert offer["status"] == "NEW"
    # → accept
    response = await client.post(
        f"/connect/v1/offers/{offer['id']}/accept", headers=onboarding_headers
    )
    assert response.json()["status"] == "CURRENT"
    # → request
    invoice = await create_issued_invoice(client, tenant, amount=200_000, due_in_days=30)
    response = await client.post(
        "/v1/financing_invoices",
        json={"invoices": [{"id": invoice["id"], "type": "receivable"}]},
        headers=tenant.headers,
    )
    assert response.status_code == 201
    listed = await client.get("/v1/financing_invoices", headers=tenant.headers)
    assert [i["status"] for i in listed.json()["data"]] == ["DRAFT"]
    invoices_headers = await connect_session(client, response.json()["session_token"])
    # → confirm → FUNDED
    quotes = (await client.get("/connect/v1/invoices", headers=invoices_headers)).json()
    quote = quotes["invoices"][0]["quotes"][1]
    response = await confirm(
        client,
        invoices_headers,
        {"invoice_id": invoice["id"], "pricing_plan_id": quote["pricing_plan_id"]},
    )
    assert response.status_code == 200
    [funded] = response.json()["invoices"]
    assert funded["status"] == "FUNDED"
    assert funded["requested_amount"] == quote["requested_amount"] == 200_000
    assert funded["advance_amount"] == quote["advance_amount"] == 194_000
    assert funded["repayment_schedule"]["repayment_date"] == quote["repayment_date"]

    listed = await client.get(
        "/v1/financing_invoices", params={"status": "FUNDED"}, headers=tenant.headers
    )
    [monite_invoice] = listed.json()["data"]
    assert monite_invoice == funded
    offers = await client.get("/v1/financing_offers", headers=tenant.headers)
    assert offers.json()["offers"][0]["available_amount"] == 5_000_000 - 200_000

    async with db.session() as session:
        actions = list(
            await session.scalars(
                select(Event.action)
                .where(Event.object_type == "financing_invoice")
                .order_by(Event.created_at)
            )
        )
    assert actions[0] == "financing_invoice.created"
    assert actions.count("financing_invoice.status_changed") == 2  # → NEW, → FUNDED
