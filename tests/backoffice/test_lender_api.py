"""The lender API, /lender/v1: operator-key auth, the portfolio, every operator action and
illegal transition, the ledger, reconciliation and the policy."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from fundline.kit import clock
from fundline.kit.db import Database
from fundline.lending.policy import Policy
from fundline.models import FinancingInvoice
from tests.support.factories import Tenant, make_operator_key
from tests.support.lending import (
    STATUSES,
    load_invoice,
    make_financing_invoice,
    manual,
    serving_policy,
)

INVOICES = "/lender/v1/financing_invoices"


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message = response.json()["error"]["message"]
    assert isinstance(message, str)
    return message


def _lender_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves under /lender/v1, ids filled in."""
    routes: list[tuple[str, str]] = []
    for template, operations in app.openapi()["paths"].items():
        if template.startswith("/lender/v1"):
            path = template.replace("{financing_invoice_id}", str(uuid.uuid4()))
            path = path.replace("{offer_id}", str(uuid.uuid4()))
            path = path.replace("{partner_id}", str(uuid.uuid4()))
            path = path.replace("{origin_id}", str(uuid.uuid4()))
            routes.extend((method.upper(), path) for method in operations)
    return routes


# --- auth ---------------------------------------------------------------------------------------


async def test_every_route_needs_an_operator_key(app: FastAPI, client: httpx.AsyncClient) -> None:
    routes = _lender_routes(app)
    assert len(routes) == 17  # with GET /lender/v1/audit
    for method, path in routes:
        response = await client.request(method, path, json={"amount": 1})
        assert _error(response, 401) == "Authorization header is missing", (method, path)


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("Basic abc", "Use the Bearer authorization scheme"),
        ("Bearer ", "Use the Bearer authorization scheme"),
        ("Bearer fko_not-a-key", "Invalid operator key"),
    ],
)
async def test_bad_operator_keys_are_refused(
    client: httpx.AsyncClient, authorization: str, message: str
) -> None:
    response = await client.get(INVOICES, headers={"authorization": authorization})
    assert _error(response, 401) == message


async def test_revoked_key_is_refused(
    app: FastAPI, client: httpx.AsyncClient, db: Database
) -> None:
    key = await make_operator_key(db, revoked=True)
    for method, path in _lender_routes(app):
        response = await client.request(
            method, path, json={"amount": 1}, headers={"authorization": f"Bearer {key}"}
        )
        assert _error(response, 401) == "The operator key has been revoked", (method, path)


async def test_a_partner_token_is_not_an_operator_key(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.get(INVOICES, headers=tenant.auth)
    assert _error(response, 401) == "Invalid operator key"


# --- listing and reading -------------------------------------------------------------------------


async def _two_tenants(
    db: Database, tenant: Tenant, other_tenant: Tenant, policy: Policy
) -> dict[str, uuid.UUID]:
    return {
        "a_funded": await make_financing_invoice(db, tenant, policy, status="FUNDED"),
        "a_new": await make_financing_invoice(db, tenant, policy, status="NEW"),
        "b_paid": await make_financing_invoice(
            db, other_tenant, policy, status="PAID", invoice_type="payable"
        ),
    }


async def _ids(client: httpx.AsyncClient, operator: dict[str, str], **params: Any) -> list[str]:
    response = await client.get(INVOICES, params=params, headers=operator)
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


async def test_list_spans_every_entity(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    policy: Policy,
    operator: dict[str, str],
) -> None:
    ids = await _two_tenants(db, tenant, other_tenant, policy)
    response = await client.get(INVOICES, headers=operator)
    assert response.status_code == 200
    body = response.json()
    assert [row["id"] for row in body["data"]] == [str(i) for i in ids.values()]
    assert body["next_pagination_token"] is None
    assert body["prev_pagination_token"] is None
    funded = body["data"][0]
    assert funded["entity_id"] == tenant.entity_id
    assert funded["partner_id"] == str(tenant.partner_id)
    assert funded["status"] == "FUNDED"
    assert funded["requested_amount"] == 80_000
    assert funded["fee_amount"] == 2_400
    assert funded["principal_amount"] == 77_600
    assert funded["repayment_amount"] == 80_000
    assert funded["outstanding_amount"] == 80_000
    assert funded["approved"] is False
    assert body["data"][1]["outstanding_amount"] == 0  # NEW: nothing disbursed yet
    assert body["data"][2]["outstanding_amount"] == 0


async def test_list_filters(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    policy: Policy,
    operator: dict[str, str],
) -> None:
    ids = {k: str(v) for k, v in (await _two_tenants(db, tenant, other_tenant, policy)).items()}
    assert await _ids(client, operator, status="NEW") == [ids["a_new"]]
    assert await _ids(client, operator, status__in=["PAID", "NEW"]) == [ids["a_new"], ids["b_paid"]]
    assert await _ids(client, operator, entity_id=other_tenant.entity_id) == [ids["b_paid"]]
    assert await _ids(client, operator, partner_id=str(tenant.partner_id)) == [
        ids["a_funded"],
        ids["a_new"],
    ]
    assert await _ids(client, operator, type="payable") == [ids["b_paid"]]
    assert await _ids(client, operator, type="receivable", status="FUNDED") == [ids["a_funded"]]
    past = (clock.now() - timedelta(hours=1)).isoformat()
    future = (clock.now() + timedelta(hours=1)).isoformat()
    assert len(await _ids(client, operator, created_at__gte=past)) == 3
    assert len(await _ids(client, operator, created_at__gt=past, created_at__lt=future)) == 3
    assert await _ids(client, operator, created_at__gte=future) == []
    assert await _ids(client, operator, created_at__lte=past) == []
    for bad in ({"status": "OPEN"}, {"type": "loan"}, {"entity_id": "nope"}, {"limit": 0}):
        response = await client.get(INVOICES, params=bad, headers=operator)
        assert response.status_code == 422, bad


async def test_list_pages_with_tokens(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    policy: Policy,
    operator: dict[str, str],
) -> None:
    ids = [str(i) for i in (await _two_tenants(db, tenant, other_tenant, policy)).values()]
    first = (await client.get(INVOICES, params={"limit": 2}, headers=operator)).json()
    assert [row["id"] for row in first["data"]] == ids[:2]
    assert first["prev_pagination_token"] is None
    second = (
        await client.get(
            INVOICES, params={"pagination_token": first["next_pagination_token"]}, headers=operator
        )
    ).json()
    assert [row["id"] for row in second["data"]] == ids[2:]
    assert second["next_pagination_token"] is None
    back = await client.get(
        INVOICES, params={"pagination_token": second["prev_pagination_token"]}, headers=operator
    )
    assert [row["id"] for row in back.json()["data"]] == ids[:2]
    newest_first = await _ids(client, operator, order="desc")
    assert newest_first == ids[::-1]
    response = await client.get(INVOICES, params={"pagination_token": "forged"}, headers=operator)
    assert _error(response, 400) == "The pagination token is invalid"


async def test_get_one_with_instalments_and_history(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    policy: Policy,
    operator: dict[str, str],
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    response = await client.get(f"{INVOICES}/{fi_id}", headers=operator)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(fi_id)
    assert body["status"] == "FUNDED"
    assert sum(i["amount"] for i in body["instalments"]) == body["repayment_amount"]
    assert [(h["from_status"], h["to_status"]) for h in body["history"]][-2:] == [
        ("DRAFT", "NEW"),
        ("NEW", "FUNDED"),
    ]
    assert _error(await client.get(f"{INVOICES}/{uuid.uuid4()}", headers=operator), 404) == (
        "Financing invoice not found"
    )
    assert (await client.get(f"{INVOICES}/not-a-uuid", headers=operator)).status_code == 422


# --- actions --------------------------------------------------------------------------------------


async def _post(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    fi_id: uuid.UUID,
    action: str,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    return await client.post(f"{INVOICES}/{fi_id}/{action}", json=body, headers=operator)


async def test_approve_without_auto_fund_marks_then_fund_disburses(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    policy: Policy,
    operator: dict[str, str],
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="NEW")
    with serving_policy(app, manual(policy, auto_fund=False)):
        response = await _post(client, operator, fi_id, "approve")
        again = await _post(client, operator, fi_id, "approve")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["approved"]) == ("NEW", True)
    assert body["history"][-1]["cause"] == "approved: by operator ops"
    listed = (await client.get(INVOICES, headers=operator)).json()["data"]
    assert listed[0]["approved"] is True
    assert "already approved" in _error(again, 409)
    funded = await _post(client, operator, fi_id, "fund")
    assert funded.status_code == 200, funded.text
    assert (funded.json()["status"], funded.json()["approved"]) == ("FUNDED", False)
    assert funded.json()["funded_at"] is not None


async def test_approve_with_auto_fund_funds(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    policy: Policy,
    operator: dict[str, str],
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="NEW")
    with serving_policy(app, manual(policy, auto_fund=True)):
        response = await _post(client, operator, fi_id, "approve")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "FUNDED"
    causes = [h["cause"] for h in response.json()["history"]]
    assert causes[-2:] == [
        "approved: by operator ops",
        "funded at once by the policy (auto_fund)",
    ]


async def test_reject_releases_the_reservation(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    policy: Policy,
    operator: dict[str, str],
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="NEW")
    response = await _post(client, operator, fi_id, "reject")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "REJECTED"
    fi = await load_invoice(db, fi_id)
    assert fi.live_invoice_id is None
    assert (await client.get("/lender/v1/reconciliation", headers=operator)).json()["clean"]


async def test_repayments_partial_then_full(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    policy: Policy,
    operator: dict[str, str],
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    response = await _post(client, operator, fi_id, "repayments", {"amount": 30_000})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["repaid_amount"], body["outstanding_amount"]) == (
        "FUNDED",
        30_000,
        50_000,
    )
    response = await _post(client, operator, fi_id, "repayments", {"amount": 50_000})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["outstanding_amount"]) == ("PAID", 0)
    assert body["closed_at"] is not None


async def test_a_late_invoice_can_be_repaid(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    policy: Policy,
    operator: dict[str, str],
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="LATE")
    response = await _post(client, operator, fi_id, "repayments", {"amount": 80_000})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "PAID"


@pytest.mark.parametrize(
    "amount", [0, -5, 1.5, "100", None, 80_001], ids=["zero", "neg", "float", "str", "null", "more"]
)
async def test_repayment_amount_is_validated(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    policy: Policy,
    operator: dict[str, str],
    amount: Any,
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    response = await _post(client, operator, fi_id, "repayments", {"amount": amount})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "amount"]
    if amount == 80_001:
        assert (
            response.json()["detail"][0]["msg"] == "amount 80001 is more than the 80000 still owed"
        )
    assert (await load_invoice(db, fi_id)).repaid_amount == 0
    missing = await _post(client, operator, fi_id, "repayments", {})
    assert missing.status_code == 422


@pytest.mark.parametrize("status", ["LATE", "DEFAULTED"])
async def test_write_off(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    policy: Policy,
    operator: dict[str, str],
    status: str,
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status=status)
    response = await _post(client, operator, fi_id, "write_off")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["outstanding_amount"]) == ("DEFAULTED", 0)
    assert body["closed_at"] is not None
    entries = (
        await client.get(
            "/lender/v1/ledger", params={"financing_invoice_id": str(fi_id)}, headers=operator
        )
    ).json()["data"]
    assert entries[-1]["kind"] == "write_off"
    assert {(p["account"], p["amount"]) for p in entries[-1]["postings"]} == {
        ("credit_losses", 80_000),
        ("financed_receivable", -80_000),
    }
    assert (await client.get("/lender/v1/reconciliation", headers=operator)).json()["clean"]


# Which statuses allow each action; every other status is a 409 naming the current one.
LEGAL = {
    "approve": {"NEW"},
    "reject": {"NEW"},
    "fund": {"NEW"},
    "repayments": {"FUNDED", "LATE"},
    "write_off": {"LATE", "DEFAULTED"},
}


@pytest.mark.parametrize("status", STATUSES)
async def test_illegal_transitions_are_conflicts(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    policy: Policy,
    operator: dict[str, str],
    status: str,
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status=status)
    illegal = [action for action, allowed in LEGAL.items() if status not in allowed]
    assert illegal
    for action in illegal:
        body = {"amount": 1} if action == "repayments" else None
        message = _error(await _post(client, operator, fi_id, action, body), 409)
        assert status in message, (action, message)
    assert (await load_invoice(db, fi_id)).status == status


async def test_actions_on_unknown_invoices_are_404(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    for action in LEGAL:
        body = {"amount": 1} if action == "repayments" else None
        response = await _post(client, operator, uuid.uuid4(), action, body)
        assert _error(response, 404) == "Financing invoice not found", action


# --- ledger, reconciliation, policy ---------------------------------------------------------------


async def test_ledger_lists_balanced_entries_with_filters_and_pages(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    policy: Policy,
    operator: dict[str, str],
) -> None:
    ids = await _two_tenants(db, tenant, other_tenant, policy)
    response = await client.get("/lender/v1/ledger", headers=operator)
    assert response.status_code == 200, response.text
    entries = response.json()["data"]
    assert entries
    for entry in entries:
        assert sum(p["amount"] for p in entry["postings"]) == 0
        assert entry["postings"][0]["amount"] > 0  # debits first
    funded = [e for e in entries if e["financing_invoice_id"] == str(ids["a_funded"])]
    assert {e["kind"] for e in funded} >= {"disbursement"}
    receivable = sum(
        p["amount"] for e in funded for p in e["postings"] if p["account"] == "financed_receivable"
    )
    assert receivable == 80_000

    by_invoice = (
        await client.get(
            "/lender/v1/ledger",
            params={"financing_invoice_id": str(ids["a_funded"])},
            headers=operator,
        )
    ).json()["data"]
    assert by_invoice == funded
    by_entity = (
        await client.get(
            "/lender/v1/ledger", params={"entity_id": other_tenant.entity_id}, headers=operator
        )
    ).json()["data"]
    assert by_entity
    assert {e["entity_id"] for e in by_entity} == {other_tenant.entity_id}
    assert {e["kind"] for e in by_entity} >= {"repayment"}
    kind = (
        await client.get("/lender/v1/ledger", params={"kind": "repayment"}, headers=operator)
    ).json()["data"]
    assert {e["kind"] for e in kind} == {"repayment"}

    first = (await client.get("/lender/v1/ledger", params={"limit": 1}, headers=operator)).json()
    assert first["data"] == entries[:1]
    second = await client.get(
        "/lender/v1/ledger",
        params={"pagination_token": first["next_pagination_token"]},
        headers=operator,
    )
    assert second.json()["data"] == entries[1:2]


async def test_reconciliation_is_clean_after_a_normal_flow(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    policy: Policy,
    operator: dict[str, str],
) -> None:
    empty = (await client.get("/lender/v1/reconciliation", headers=operator)).json()
    assert empty == {"clean": True, "differences": [], "totals": [], "unbalanced_currencies": []}
    await _two_tenants(db, tenant, other_tenant, policy)
    partial = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    await _post(client, operator, partial, "repayments", {"amount": 10_000})
    written_off = await make_financing_invoice(db, tenant, policy, status="DEFAULTED")
    await _post(client, operator, written_off, "write_off")
    await make_financing_invoice(db, tenant, policy, status="REJECTED")

    response = await client.get("/lender/v1/reconciliation", headers=operator)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["clean"] is True, report
    assert report["differences"] == []
    totals = {t["account"]: t["amount"] for t in report["totals"] if t["currency"] == "USD"}
    assert sum(totals.values()) == 0
    # Outstanding: the funded invoice (80000) and the partly repaid one (70000).
    assert totals["financed_receivable"] == 150_000
    assert totals["credit_losses"] == 80_000


async def test_reconciliation_reports_a_difference(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    policy: Policy,
    operator: dict[str, str],
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    async with db.session() as session, session.begin():
        await session.execute(
            update(FinancingInvoice).where(FinancingInvoice.id == fi_id).values(repaid_amount=5)
        )
    report = (await client.get("/lender/v1/reconciliation", headers=operator)).json()
    assert report["clean"] is False
    assert any(d.get("financing_invoice_id") == str(fi_id) for d in report["differences"])


async def test_policy_is_the_loaded_one(
    client: httpx.AsyncClient, policy: Policy, operator: dict[str, str]
) -> None:
    response = await client.get("/lender/v1/policy", headers=operator)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["currency"] == policy.currency
    assert body["review"] == policy.review
    assert body["auto_fund"] is policy.auto_fund
    assert body["limit_floor"] == policy.limit_floor
    assert len(body["plans"]) == len(policy.plans)
    assert body["plans"][0]["repayment_type"] == policy.plans[0].repayment_type
