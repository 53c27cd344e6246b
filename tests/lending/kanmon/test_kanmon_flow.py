"""The whole /v1 financing flow through the Kanmon adapter, against the fake Kanmon: tokens,
offers, requests, every mapped status, mapped errors, rate limiting, an outage and the
recovery. Every /v1 response is checked against Monite's spec (``make_client``), every request
the adapter sends against Kanmon's (the ``kanmon`` fixture)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from importlib import resources
from typing import Any

import httpx
import pytest

from fundline.kit import clock
from fundline.kit.db import Database
from fundline.lending.kanmon.errors import KanmonError, to_fundline_error
from fundline.lending.kanmon.fake import FakeKanmon
from fundline.lending.kanmon.provider import KanmonLender
from fundline.operations import worker
from tests.lending.kanmon.conftest import API_KEY
from tests.support.factories import (
    Tenant,
    create_entity_user,
    create_issued_invoice,
    create_payable,
    token_for,
)

pytestmark = pytest.mark.usefixtures("kanmon")

PLAN = {
    "advanceRatePercentage": 80,
    "transactionFeePercentage": 2.5,
    "repaymentWindow": {"repaymentType": "FIXED_DURATION", "repaymentDurationDays": 60},
}


def _operations(fake: FakeKanmon) -> list[str]:
    return [r.operation_id for r in fake.requests if r.operation_id]


async def _token(client: httpx.AsyncClient, tenant: Tenant) -> str:
    response = await client.post("/v1/financing_tokens", headers=tenant.headers)
    assert response.status_code == 201, response.text
    token: str = response.json()["connect_token"]
    return token


def _business_id(fake: FakeKanmon, tenant: Tenant) -> str:
    (found,) = [b for b in fake.businesses.values() if b["platformBusinessId"] == tenant.entity_id]
    return str(found["id"])


async def _offers(client: httpx.AsyncClient, tenant: Tenant) -> httpx.Response:
    response = await client.get("/v1/financing_offers", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response


async def _issued_line(
    client: httpx.AsyncClient,
    tenant: Tenant,
    fake: FakeKanmon,
    *,
    product: str = "INVOICE_FINANCING",
) -> dict[str, Any]:
    await _token(client, tenant)
    business = _business_id(fake, tenant)
    fake.onboard_business(business)
    offer = fake.extend_offer(
        business, total_limit_cents=5_000_000, product_type=product, pricing_plans=[PLAN]
    )
    fake.issue_offer(offer["id"])
    return offer


async def _requested(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon
) -> tuple[dict[str, Any], str]:
    await _issued_line(client, tenant, fake)
    invoice = await create_issued_invoice(client, tenant, amount=1_000_000, due_in_days=30)
    response = await client.post(
        "/v1/financing_invoices",
        json={"invoices": [{"id": invoice["id"], "type": "receivable"}]},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    return invoice, response.json()["session_token"]


async def _listed(client: httpx.AsyncClient, tenant: Tenant) -> httpx.Response:
    response = await client.get("/v1/financing_invoices", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response


# --- tokens and the business ---------------------------------------------------------------------


async def test_the_first_token_creates_the_business_and_user_once(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon
) -> None:
    first = await _token(client, tenant)
    response = await client.post("/v1/financing_tokens", headers=tenant.headers)
    second = response.json()["connect_token"]
    assert response.headers["x-fundline-connect-script-url"] == (
        "https://cdn.sandbox.kanmon.dev/scripts/v2/kanmon-connect.js"
    )
    assert first != second
    assert {first, second} <= set(fake.connect_tokens)
    assert _operations(fake).count("createBusiness") == 1
    assert _operations(fake).count("createUser") == 1
    (user,) = fake.users.values()
    # A partner token: one stable user per entity.
    assert user["platformUserId"] == f"{tenant.entity_id}:partner"
    assert user["platformBusinessId"] == tenant.entity_id


async def test_a_business_kanmon_already_has_is_reused(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon
) -> None:
    """A 409 duplicate (an earlier call whose transaction did not commit) is the same one."""
    async with httpx.AsyncClient(
        transport=fake.transport(), base_url="https://api.kanmon.dev"
    ) as direct:
        made = await direct.post(
            "/api/platform/v2/businesses",
            json={"platformBusinessId": tenant.entity_id},
            headers={"authorization": f"ApiKey {API_KEY}"},
        )
    assert made.status_code == 201, made.text
    await _token(client, tenant)
    assert _business_id(fake, tenant) == made.json()["id"]
    creates = [r.status for r in fake.requests if r.operation_id == "createBusiness"]
    assert creates == [201, 409]


async def test_an_entity_users_token_is_for_that_user_even_if_kanmon_knows_the_email(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon
) -> None:
    """The user's email already belongs to another Kanmon user: theirs is made without it."""
    user = await create_entity_user(client, tenant, email="jane@example.com")
    await _token(client, tenant)  # the business exists at Kanmon
    async with httpx.AsyncClient(
        transport=fake.transport(), base_url="https://api.kanmon.dev"
    ) as direct:
        taken = await direct.post(
            "/api/platform/v2/users",
            json={
                "platformUserId": "someone-else",
                "platformBusinessId": tenant.entity_id,
                "email": "jane@example.com",
            },
            headers={"authorization": f"ApiKey {API_KEY}"},
        )
    assert taken.status_code == 201, taken.text
    token = await token_for(
        client, tenant.client_id, tenant.client_secret, entity_user_id=user["id"]
    )
    headers = {**tenant.headers, "authorization": f"Bearer {token}"}
    response = await client.post("/v1/financing_tokens", headers=headers)
    assert response.status_code == 201, response.text
    ours = [u for u in fake.users.values() if u["platformUserId"] == user["id"]]
    assert len(ours) == 1
    assert ours[0]["firstName"] == "Jane"
    assert fake.connect_tokens[response.json()["connect_token"]] == ours[0]["id"]


@pytest.mark.parametrize(
    ("onboarding", "status"),
    [({}, "NEW"), ({"ein": True}, "INPUT_REQUIRED"), ({"ein": True, "address": True}, "ONBOARDED")],
)
async def test_business_status_follows_what_kanmon_knows(
    client: httpx.AsyncClient,
    tenant: Tenant,
    fake: FakeKanmon,
    onboarding: dict[str, bool],
    status: str,
) -> None:
    await _token(client, tenant)
    business = fake.businesses[_business_id(fake, tenant)]
    if onboarding.get("ein"):
        business["ein"] = "123456789"
    if onboarding.get("address"):
        business["address"] = {
            "addressLineOne": "1 Main St",
            "city": "Austin",
            "state": "TX",
            "zipcode": "78701",
            "country": "USA",
        }
    body = (await _offers(client, tenant)).json()
    assert body == {"business_status": status, "offers": []}


async def test_offers_before_any_token_are_new_and_empty_without_calling_kanmon(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon
) -> None:
    assert (await _offers(client, tenant)).json() == {"business_status": "NEW", "offers": []}
    assert fake.requests == []


# --- offers --------------------------------------------------------------------------------------


async def test_an_offer_through_its_life(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon
) -> None:
    await _token(client, tenant)
    business = _business_id(fake, tenant)
    fake.onboard_business(business)
    offer = fake.extend_offer(business, total_limit_cents=2_500_000, pricing_plans=[PLAN])

    response = await _offers(client, tenant)
    body = response.json()
    assert body["business_status"] == "ONBOARDED"
    (shown,) = body["offers"]
    assert shown["status"] == "NEW"
    assert (shown["total_amount"], shown["available_amount"], shown["currency"]) == (
        2_500_000,
        2_500_000,
        "USD",
    )
    (plan,) = shown["pricing_plans"]
    assert (plan["advance_rate_percentage"], plan["fee_percentage"]) == (8000, 250)
    assert (plan["repayment_type"], plan["repayment_duration_days"]) == ("FIXED_DURATION", 60)
    assert response.headers["x-fundline-lender-age"] == "0"

    fake.select_offer(offer["id"])
    assert (await _offers(client, tenant)).json()["offers"][0]["status"] == "ACCEPTED"
    product = fake.issue_offer(offer["id"], available_limit_cents=2_000_000)
    current = (await _offers(client, tenant)).json()["offers"][0]
    assert (current["status"], current["available_amount"]) == ("CURRENT", 2_000_000)
    for loan, status in [("LATE", "LATE"), ("DEFAULTED", "DEFAULTED"), ("FULLY_PAID", "CLOSED")]:
        fake.set_loan_status(product["id"], loan)
        assert (await _offers(client, tenant)).json()["offers"][0]["status"] == status


async def test_an_offer_past_its_expiry_is_expired(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon
) -> None:
    await _token(client, tenant)
    business = _business_id(fake, tenant)
    fake.extend_offer(business, total_limit_cents=100_000, expired_at="2020-01-01T00:00:00.000Z")
    assert (await _offers(client, tenant)).json()["offers"][0]["status"] == "EXPIRED"


# --- requesting and syncing ----------------------------------------------------------------------


async def test_a_request_opens_a_kanmon_session_with_the_invoice(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon
) -> None:
    invoice, session_token = await _requested(client, tenant, fake)
    session = fake.sessions[session_token]
    assert session["component"] == "SESSION_INVOICE_FLOW"
    (sent,) = session["invoices"]
    assert sent["platformInvoiceId"] == invoice["id"]
    assert sent["platformInvoiceNumber"] == invoice["document_id"]
    assert sent["invoiceAmountCents"] == 1_000_000
    assert sent["payorType"] == "BUSINESS"
    (row,) = (await _listed(client, tenant)).json()["data"]
    assert row["status"] == "DRAFT"


async def test_a_confirmation_in_kanmon_shows_at_once_with_kanmons_figures(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon
) -> None:
    invoice, session_token = await _requested(client, tenant, fake)
    (submitted,) = fake.submit_session(session_token)
    response = await _listed(client, tenant)
    (row,) = response.json()["data"]
    assert row["invoice_id"] == invoice["id"]
    assert (row["status"], row["lender_status"]) == ("NEW", "INVOICE_CREATED")
    assert row["requested_amount"] == submitted["amountRequestedForFinancingCents"]
    assert row["fee_amount"] == submitted["feeAmountCents"]
    assert row["repayment_amount"] == submitted["repaymentAmountCents"]
    assert row["advance_rate_percentage"] == 8000
    first = submitted["repaymentSchedule"]["schedule"][0]
    assert row["repayment_schedule"]["repayment_date"] == first["repaymentDate"]
    assert row["repayment_schedule"]["repayment_amount"] == first["repaymentAmountCents"]
    assert "x-fundline-lender-age" in response.headers


@pytest.mark.parametrize(
    ("kanmon_status", "monite_status"),
    [
        ("IN_REVIEW", "NEW"),
        ("INVOICE_FUNDED", "FUNDED"),
        ("INVOICE_PENDING_RETURN", "FUNDED"),
        ("INVOICE_PAID_IN_FULL", "PAID"),
        ("LATE", "LATE"),
        ("DEFAULTED", "DEFAULTED"),
        ("REJECTED", "REJECTED"),
        ("INVOICE_RETURNED", "REJECTED"),
    ],
)
async def test_each_kanmon_status_maps_to_monites(
    client: httpx.AsyncClient,
    tenant: Tenant,
    fake: FakeKanmon,
    kanmon: KanmonLender,
    db: Database,
    kanmon_status: str,
    monite_status: str,
) -> None:
    _, session_token = await _requested(client, tenant, fake)
    (submitted,) = fake.submit_session(session_token)
    await _listed(client, tenant)  # synced at once: NEW
    fake.set_invoice_status(submitted["id"], kanmon_status)
    kanmon._sync_every = kanmon._sync_every * 0  # the worker's sync is due
    done = await kanmon.sync(db.sessions)
    assert done["kanmon_invoices_changed"] == 1  # IN_REVIEW too: lender_status moved
    (row,) = (await _listed(client, tenant)).json()["data"]
    assert (row["status"], row["lender_status"]) == (monite_status, kanmon_status)
    history = [change["to_status"] for change in row["status_history"]]
    assert history[0] == "DRAFT"


async def test_a_confirmation_seen_after_its_request_lapsed_is_still_shown(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon, kanmon: KanmonLender, db: Database
) -> None:
    """The user confirmed in Kanmon, but no sync saw it before the request's 24 h ran out and
    its draft was released: the next sync gives the financing a row of its own."""
    invoice, session_token = await _requested(client, tenant, fake)
    clock.set_offset(kanmon.request_ttl + timedelta(minutes=1))
    try:
        async with db.session() as session, session.begin():
            assert (await kanmon.tick(session))["drafts_released"] == 1
        assert (await _listed(client, tenant)).json()["data"] == []
        fake.submit_session(session_token)
        kanmon._sync_every = kanmon._sync_every * 0
        await kanmon.sync(db.sessions)
    finally:
        clock.reset()
    (row,) = (await _listed(client, tenant)).json()["data"]
    assert (row["invoice_id"], row["status"], row["type"]) == (invoice["id"], "NEW", "receivable")
    assert row["document_id"] == invoice["document_id"]


async def test_a_payable_without_an_ap_product_is_kanmons_409(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon
) -> None:
    await _issued_line(client, tenant, fake)  # receivables only
    payable = await create_payable(client, tenant, amount=200_000)
    response = await client.post(
        "/v1/financing_invoices",
        json={"invoices": [{"id": payable["id"], "type": "payable"}]},
        headers=tenant.headers,
    )
    assert response.status_code == 409, response.text
    assert "payables" in response.json()["error"]["message"]
    # Nothing was kept: the invoice can be requested again.
    assert (await _listed(client, tenant)).json()["data"] == []


async def test_receivables_and_payables_together_are_refused(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon
) -> None:
    await _issued_line(client, tenant, fake)
    invoice = await create_issued_invoice(client, tenant, amount=100_000)
    payable = await create_payable(client, tenant, amount=100_000)
    response = await client.post(
        "/v1/financing_invoices",
        json={
            "invoices": [
                {"id": invoice["id"], "type": "receivable"},
                {"id": payable["id"], "type": "payable"},
            ]
        },
        headers=tenant.headers,
    )
    assert response.status_code == 422, response.text
    assert (await _listed(client, tenant)).json()["data"] == []


# --- rate limits and outages ---------------------------------------------------------------------


async def test_rate_limited_reads_are_retried(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon
) -> None:
    await _issued_line(client, tenant, fake)
    fake.fail("429", count=2, operation_id="getAllOffers")
    body = (await _offers(client, tenant)).json()
    assert body["offers"][0]["status"] == "CURRENT"
    assert _operations(fake).count("getAllOffers") >= 3


async def test_while_kanmon_is_down_writes_are_503_and_reads_answer_from_the_record(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon
) -> None:
    await _issued_line(client, tenant, fake)
    assert (await _offers(client, tenant)).json()["offers"][0]["status"] == "CURRENT"
    invoice = await create_issued_invoice(client, tenant, amount=100_000)
    fake.fail("down")

    token = await client.post("/v1/financing_tokens", headers=tenant.headers)
    assert token.status_code == 503, token.text
    assert "Kanmon" in token.json()["error"]["message"]
    assert int(token.headers["retry-after"]) >= 1
    request = await client.post(
        "/v1/financing_invoices",
        json={"invoices": [{"id": invoice["id"], "type": "receivable"}]},
        headers=tenant.headers,
    )
    assert request.status_code == 503, request.text

    stale = await _offers(client, tenant)
    assert stale.json()["offers"][0]["status"] == "CURRENT"
    assert int(stale.headers["x-fundline-lender-age"]) >= 0
    listed = await _listed(client, tenant)
    assert listed.json()["data"] == []  # the failed request left nothing behind

    fake.clear_failures()
    await asyncio.sleep(0.3)  # the breaker's open time (0.2 s in the fixture)
    again = await client.post(
        "/v1/financing_invoices",
        json={"invoices": [{"id": invoice["id"], "type": "receivable"}]},
        headers=tenant.headers,
    )
    assert again.status_code == 201, again.text


async def test_a_kanmon_500_on_a_write_is_a_503_not_a_trace(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon
) -> None:
    await _issued_line(client, tenant, fake)
    invoice = await create_issued_invoice(client, tenant, amount=100_000)
    fake.fail("500", operation_id="createEmbeddedSession")
    response = await client.post(
        "/v1/financing_invoices",
        json={"invoices": [{"id": invoice["id"], "type": "receivable"}]},
        headers=tenant.headers,
    )
    assert response.status_code == 503, response.text
    assert set(response.json()) == {"error"}


async def test_another_tenants_kanmon_financing_stays_its_own(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, fake: FakeKanmon
) -> None:
    _, session_token = await _requested(client, tenant, fake)
    fake.submit_session(session_token)
    assert len((await _listed(client, tenant)).json()["data"]) == 1
    assert (await _listed(client, other_tenant)).json()["data"] == []
    assert uuid.UUID(tenant.entity_id) != uuid.UUID(other_tenant.entity_id)


# --- every refusal Kanmon's spec declares on the calls a write makes ----------------------------


def _declared_refusals(*operation_ids: str) -> list[tuple[str, int, str]]:
    """(operationId, status, errorCode) for every 4xx Kanmon's spec declares on them."""
    spec = json.loads(
        resources.files("fundline.lending.kanmon").joinpath("kanmon-openapi.json").read_text()
    )
    schemas = spec["components"]["schemas"]
    found = []
    for operations in spec["paths"].values():
        for op in operations.values():
            if not isinstance(op, dict) or op.get("operationId") not in operation_ids:
                continue
            for status, answer in op["responses"].items():
                if not 400 <= int(status) < 500:
                    continue
                schema = answer["content"]["application/json"]["schema"]
                for ref in [s["$ref"] for s in schema.get("oneOf", [schema])]:
                    code = schemas[ref.rsplit("/", 1)[-1]]["properties"]["errorCode"]["enum"][0]
                    found.append((op["operationId"], int(status), code))
    return sorted(found)


@pytest.mark.parametrize(
    ("operation", "status", "code"),
    _declared_refusals("createConnectToken", "createEmbeddedSession"),
)
async def test_each_refusal_of_a_write_is_its_table_row(
    client: httpx.AsyncClient,
    tenant: Tenant,
    fake: FakeKanmon,
    operation: str,
    status: int,
    code: str,
) -> None:
    """What a partner sees is ``errors.ERRORS``' row for Kanmon's code, in Monite's shape (the
    client checks it against Monite's spec), and nothing the request wrote is kept."""
    await _issued_line(client, tenant, fake)
    invoice = await create_issued_invoice(client, tenant, amount=100_000)
    fake.fail("error", operation_id=operation, error_code=code, status=status)
    if operation == "createConnectToken":
        response = await client.post("/v1/financing_tokens", headers=tenant.headers)
    else:
        response = await client.post(
            "/v1/financing_invoices",
            json={"invoices": [{"id": invoice["id"], "type": "receivable"}]},
            headers=tenant.headers,
        )
    expected = to_fundline_error(KanmonError(status, code, "refused", operation=operation))
    assert response.status_code == expected.status_code, response.text
    body = response.json()
    shown = body["detail"][0]["msg"] if expected.status_code == 422 else body["error"]["message"]
    assert shown == expected.message
    fake.clear_failures()
    assert (await _listed(client, tenant)).json()["data"] == []


async def test_the_workers_beat_syncs_kanmon(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon, kanmon: KanmonLender, db: Database
) -> None:
    _, session_token = await _requested(client, tenant, fake)
    (submitted,) = fake.submit_session(session_token)
    fake.set_invoice_status(submitted["id"], "INVOICE_FUNDED")
    done = await worker.beat(db, kanmon)
    assert (done["kanmon_businesses_synced"], done["kanmon_invoices_changed"]) == (1, 1)
    again = await worker.beat(db, kanmon)  # read moments ago: not due
    assert again["kanmon_businesses_synced"] == 0
    (row,) = (await _listed(client, tenant)).json()["data"]
    assert row["status"] == "FUNDED"


def test_the_fake_refuses_an_error_without_its_code() -> None:
    fake = FakeKanmon()
    with pytest.raises(Exception, match="errorCode and a status"):
        fake.fail("error", status=409)
    with pytest.raises(Exception, match="errorCode and a status"):
        fake.fail("500", error_code="X", status=409)


async def test_reads_at_once_mirror_the_offers_once(
    client: httpx.AsyncClient, tenant: Tenant, fake: FakeKanmon
) -> None:
    await _issued_line(client, tenant, fake)
    answers = await asyncio.gather(*(_offers(client, tenant) for _ in range(6)))
    assert {len(a.json()["offers"]) for a in answers} == {1}
