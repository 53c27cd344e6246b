"""Payables as Monite has them: create from data, change, list with filters, the lifecycle,
events, and the tenant boundary on every endpoint."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest

from fundline.kit import clock
from tests.support.factories import (
    PAYABLE_PATHS,
    Tenant,
    create_counterpart,
    create_entity_user,
    create_payable,
    payable_payload,
    token_for,
)

STATUSES = (
    "draft",
    "new",
    "approve_in_progress",
    "waiting_to_be_paid",
    "partially_paid",
    "paid",
    "rejected",
    "canceled",
)
# Which statuses each action starts from (Monite's manual transitions).
ALLOWED_FROM = {
    "submit_for_approval": {"new"},
    "approve_payment_operation": {"new", "approve_in_progress"},
    "reject": {"approve_in_progress"},
    "cancel": {"draft", "new"},
    "mark_as_partially_paid": {"waiting_to_be_paid", "partially_paid"},
    "mark_as_paid": {"waiting_to_be_paid", "partially_paid"},
}


async def post_payable(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> httpx.Response:
    return await client.post("/v1/payables", json=fields, headers=tenant.headers)


async def new_payable(
    client: httpx.AsyncClient, tenant: Tenant, **overrides: Any
) -> dict[str, Any]:
    response = await post_payable(client, tenant, **payable_payload(**overrides))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def act(
    client: httpx.AsyncClient,
    tenant: Tenant,
    payable_id: str,
    action: str,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    return await client.post(
        f"/v1/payables/{payable_id}/{action}", json=body, headers=tenant.headers
    )


async def payable_events(client: httpx.AsyncClient, tenant: Tenant) -> list[tuple[str, str, Any]]:
    response = await client.get(
        "/v1/events", params={"object_type": "payable"}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    return [
        (e["action"], e["object"]["id"], e["object"].get("status")) for e in response.json()["data"]
    ]


# --- create and get --------------------------------------------------------------------------


async def test_create_complete_payable_is_new(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = payable_payload(
        amount=10_825,
        subtotal=10_000,
        tax=825,
        tax_amount=825,
        document_id="DE2287",
        issued_at="2026-11-01",
        due_date="2026-12-01",
        description="Paper",
        sender="bills@vendor.example",
        partner_metadata={"ref": "abc"},
        discount=100,
        suggested_payment_term={"date": "2026-11-15", "discount": 200},
    )
    response = await post_payable(client, tenant, **body)
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["status"] == "new"
    assert created["entity_id"] == tenant.entity_id
    assert created["payable_origin"] == "upload"
    assert created["source_of_payable_data"] == "user_specified"
    assert created["credit_notes"] == []
    for field in (
        "currency",
        "document_id",
        "issued_at",
        "due_date",
        "description",
        "sender",
        "partner_metadata",
        "discount",
        "subtotal",
        "tax",
        "tax_amount",
        "total_amount",
        "suggested_payment_term",
    ):
        assert created[field] == body[field], field
    assert created["amount_paid"] == 0
    assert created["amount_due"] == 10_825
    assert created["amount_to_pay"] == 10_825  # `discount` is kept, not applied
    assert created["total_amount_with_credit_notes"] == 10_825
    # Monite's payable schema has no nullable fields: a field without a value is absent.
    for absent in ("counterpart_id", "counterpart", "paid_at", "was_created_by_user_id"):
        assert absent not in created

    got = await client.get(f"/v1/payables/{created['id']}", headers=tenant.headers)
    assert got.status_code == 200
    assert got.json() == created
    assert await payable_events(client, tenant) == [("payable.created", created["id"], "new")]


@pytest.mark.parametrize(
    "missing", ["total_amount", "currency", "document_id", "issued_at", "due_date"]
)
async def test_payable_missing_an_essential_field_is_draft(
    client: httpx.AsyncClient, tenant: Tenant, missing: str
) -> None:
    body = payable_payload()
    del body[missing]
    response = await post_payable(client, tenant, **body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "draft"


async def test_empty_payable_is_draft_and_patch_makes_it_new(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await post_payable(client, tenant)
    assert response.status_code == 200, response.text
    draft = response.json()
    assert draft["status"] == "draft"
    assert draft["amount_paid"] == 0
    assert "amount_due" not in draft  # no total yet

    patch = {
        key: value for key, value in payable_payload(amount=5_000).items() if key != "document_id"
    }
    response = await client.patch(f"/v1/payables/{draft['id']}", json=patch, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "draft"  # still no document_id

    response = await client.patch(
        f"/v1/payables/{draft['id']}", json={"document_id": "INV-7"}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["status"] == "new"
    assert patched["document_id"] == "INV-7"
    assert patched["amount_due"] == 5_000

    # Clearing an essential field takes it back to draft.
    response = await client.patch(
        f"/v1/payables/{draft['id']}", json={"document_id": None}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "draft"
    assert "document_id" not in response.json()

    assert await payable_events(client, tenant) == [
        ("payable.created", draft["id"], "draft"),
        ("payable.updated", draft["id"], None),
        ("payable.updated", draft["id"], None),
        ("payable.status_changed", draft["id"], "new"),
        ("payable.updated", draft["id"], None),
        ("payable.status_changed", draft["id"], "draft"),
    ]


async def test_get_unknown_payable_is_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get(f"/v1/payables/{uuid.uuid4()}", headers=tenant.headers)
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "Payable not found"}}


async def test_entity_user_is_recorded_as_creator_and_payer(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    user = await create_entity_user(client, tenant)
    token = await token_for(
        client, tenant.client_id, tenant.client_secret, entity_user_id=user["id"]
    )
    as_user = Tenant(
        tenant.partner_id,
        tenant.client_id,
        tenant.client_secret,
        token,
        tenant.entity_id,
        {"authorization": f"Bearer {token}", "x-monite-entity-id": tenant.entity_id},
    )
    paid = await create_payable(client, as_user, status="paid")
    assert paid["was_created_by_user_id"] == user["id"]
    assert paid["marked_as_paid_by_entity_user_id"] == user["id"]


# --- amounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subtotal", "tax", "tax_amount"),
    [
        (10_000, 825, 825),
        (1_100, 50, 6),  # 5.5 rounds half to even: 6
        (1_300, 50, 6),  # 6.5 rounds half to even: 6
        (1_350, 50, 7),  # 6.75 rounds to 7
        (999, 0, 0),
    ],
)
async def test_tax_and_total_follow_subtotal_and_rate(
    client: httpx.AsyncClient, tenant: Tenant, subtotal: int, tax: int, tax_amount: int
) -> None:
    body = payable_payload(subtotal=subtotal, tax=tax)
    del body["total_amount"]
    response = await post_payable(client, tenant, **body)
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["tax_amount"] == tax_amount
    assert created["total_amount"] == subtotal + tax_amount
    assert created["amount_due"] == subtotal + tax_amount


async def test_patching_subtotal_recomputes_derived_amounts(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = payable_payload(subtotal=10_000, tax=1_000)
    del body["total_amount"]
    created = (await post_payable(client, tenant, **body)).json()
    assert (created["tax_amount"], created["total_amount"]) == (1_000, 11_000)
    response = await client.patch(
        f"/v1/payables/{created['id']}", json={"subtotal": 20_000}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert (response.json()["tax_amount"], response.json()["total_amount"]) == (2_000, 22_000)


async def test_given_amounts_must_add_up(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await post_payable(
        client, tenant, **payable_payload(amount=1_000, subtotal=900, tax_amount=50)
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "total_amount"]
    assert "subtotal 900 plus tax_amount 50" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    "bad",
    [
        {"total_amount": -1},
        {"subtotal": -5},
        {"tax_amount": -5},
        {"discount": -1},
        {"tax": 10_001},
        {"total_amount": 9007199254740992},
        {"currency": "XXX"},
        {"currency": "usd"},
        {"sender": "not-an-email"},
        {"description": "x" * 256},
        {"issued_at": "2026-13-01"},
        {"unknown_field": 1},
    ],
)
async def test_invalid_values_are_422(
    client: httpx.AsyncClient, tenant: Tenant, bad: dict[str, Any]
) -> None:
    response = await post_payable(client, tenant, **payable_payload(**bad))
    assert response.status_code == 422, response.text


async def test_due_date_before_issue_date_is_422(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await post_payable(
        client, tenant, **payable_payload(issued_at="2026-11-10", due_date="2026-11-09")
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "due_date"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base64_encoded_file", "aGVsbG8="),
        ("file_name", "invoice.pdf"),
        ("counterpart_bank_account_id", str(uuid.UUID(int=7))),
        ("counterpart_vat_id_id", str(uuid.UUID(int=7))),
        ("project_id", str(uuid.UUID(int=7))),
        ("purchase_order_id", str(uuid.UUID(int=7))),
        ("tag_ids", [str(uuid.UUID(int=7))]),
    ],
)
async def test_unsupported_fields_are_refused(
    client: httpx.AsyncClient, tenant: Tenant, field: str, value: Any
) -> None:
    response = await post_payable(client, tenant, **payable_payload(**{field: value}))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert "not supported" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("amount_paid", 10), ("counterpart_raw_data", {"name": "Acme"})],
)
async def test_unsupported_patch_fields_are_refused(
    client: httpx.AsyncClient, tenant: Tenant, field: str, value: Any
) -> None:
    created = await new_payable(client, tenant)
    response = await client.patch(
        f"/v1/payables/{created['id']}", json={field: value}, headers=tenant.headers
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


async def test_empty_tag_list_is_accepted(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await post_payable(client, tenant, **payable_payload(tag_ids=[]))
    assert response.status_code == 200, response.text


# --- payment terms ---------------------------------------------------------------------------

TERMS = {
    "name": "2/10, 1/20, net 30",
    "term_1": {"number_of_days": 10, "discount": 200},
    "term_2": {"number_of_days": 20, "discount": 100},
    "term_final": {"number_of_days": 30},
}


async def test_payment_terms_give_due_date_and_discounted_amount_to_pay(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    today = clock.today()
    body = payable_payload(amount=100_050, payment_terms=TERMS, issued_at=today.isoformat())
    del body["due_date"]
    created = (await post_payable(client, tenant, **body)).json()
    assert created["status"] == "new"
    assert created["due_date"] == (today + timedelta(days=30)).isoformat()
    assert created["payment_terms"] == TERMS
    assert created["amount_due"] == 100_050
    assert created["amount_to_pay"] == 100_050 - 2_001  # 2 % of 100050 = 2001


@pytest.mark.parametrize(
    ("days_ago", "amount_to_pay"),
    [(10, 98_049), (11, 99_050), (20, 99_050), (21, 100_050), (40, 100_050)],
)
async def test_amount_to_pay_follows_the_open_discount_term(
    client: httpx.AsyncClient, tenant: Tenant, days_ago: int, amount_to_pay: int
) -> None:
    issued = clock.today() - timedelta(days=days_ago)
    body = payable_payload(amount=100_050, payment_terms=TERMS, issued_at=issued.isoformat())
    del body["due_date"]
    created = (await post_payable(client, tenant, **body)).json()
    # 2 % of 100050 is 2001 (2001.0); 1 % is 1000.5, rounded half to even: 1000.
    assert created["amount_to_pay"] == amount_to_pay


async def test_patching_issue_date_moves_due_date_from_terms(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = payable_payload(payment_terms=TERMS, issued_at="2026-01-01")
    del body["due_date"]
    created = (await post_payable(client, tenant, **body)).json()
    assert created["due_date"] == "2026-01-31"
    response = await client.patch(
        f"/v1/payables/{created['id']}", json={"issued_at": "2026-02-01"}, headers=tenant.headers
    )
    assert response.json()["due_date"] == "2026-03-03"


@pytest.mark.parametrize(
    "terms",
    [
        {**TERMS, "term_1": None},  # term_2 without term_1
        {**TERMS, "term_2": {"number_of_days": 5, "discount": 100}},  # before term_1
        {**TERMS, "term_final": {"number_of_days": 20}},  # not after term_2
        {**TERMS, "term_1": {"number_of_days": 10, "discount": 10_001}},
        {"name": "net", "term_final": {"number_of_days": -1}},
    ],
)
async def test_invalid_payment_terms_are_422(
    client: httpx.AsyncClient, tenant: Tenant, terms: dict[str, Any]
) -> None:
    response = await post_payable(client, tenant, **payable_payload(payment_terms=terms))
    assert response.status_code == 422, response.text


# --- counterparts ----------------------------------------------------------------------------


async def test_counterpart_and_its_address(client: httpx.AsyncClient, tenant: Tenant) -> None:
    vendor = await create_counterpart(client, tenant, name="Acme Paper Inc")
    other = await create_counterpart(client, tenant, name="Other Co")
    address_id = vendor["default_billing_address_id"]

    created = await new_payable(
        client, tenant, counterpart_id=vendor["id"], counterpart_address_id=address_id
    )
    assert created["counterpart_id"] == vendor["id"]
    assert created["counterpart_address_id"] == address_id
    assert "counterpart" not in created  # filled when the payable leaves review

    # Another counterpart's address, or an address without a counterpart, is refused.
    response = await post_payable(
        client,
        tenant,
        **payable_payload(counterpart_id=other["id"], counterpart_address_id=address_id),
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "counterpart_address_id"]
    response = await post_payable(
        client, tenant, **payable_payload(counterpart_address_id=address_id)
    )
    assert response.status_code == 422

    submitted = (await act(client, tenant, created["id"], "submit_for_approval")).json()
    assert submitted["counterpart"] == {"name": "Acme Paper Inc", "email": "ap@globex.example"}

    # A later rename does not change the snapshot.
    await client.patch(
        f"/v1/counterparts/{vendor['id']}",
        json={"organization": {"legal_name": "Renamed"}},
        headers=tenant.headers,
    )
    got = await client.get(f"/v1/payables/{created['id']}", headers=tenant.headers)
    assert got.json()["counterpart"]["name"] == "Acme Paper Inc"


async def test_counterpart_must_be_the_entitys_own(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    foreign = await create_counterpart(client, other_tenant)
    deleted = await create_counterpart(client, tenant, name="Gone LLC")
    response = await client.delete(f"/v1/counterparts/{deleted['id']}", headers=tenant.headers)
    assert response.status_code == 204
    for counterpart_id in (foreign["id"], deleted["id"], str(uuid.uuid4())):
        response = await post_payable(
            client, tenant, **payable_payload(counterpart_id=counterpart_id)
        )
        assert response.status_code == 404, counterpart_id
        assert response.json() == {"error": {"message": "Counterpart not found"}}

    created = await new_payable(client, tenant)
    response = await client.patch(
        f"/v1/payables/{created['id']}",
        json={"counterpart_id": foreign["id"]},
        headers=tenant.headers,
    )
    assert response.status_code == 404


async def test_patch_sets_and_clears_counterpart(client: httpx.AsyncClient, tenant: Tenant) -> None:
    vendor = await create_counterpart(client, tenant)
    created = await new_payable(client, tenant)
    url = f"/v1/payables/{created['id']}"
    response = await client.patch(
        url, json={"counterpart_id": vendor["id"]}, headers=tenant.headers
    )
    assert response.json()["counterpart_id"] == vendor["id"]
    response = await client.patch(url, json={"counterpart_id": None}, headers=tenant.headers)
    assert "counterpart_id" not in response.json()
    assert response.json()["status"] == "new"


# --- update and delete -----------------------------------------------------------------------


async def test_patch_changes_fields(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await new_payable(client, tenant)
    changes = {
        "description": "Toner",
        "due_date": "2030-01-31",
        "currency": "EUR",
        "total_amount": 4_200,
        "document_id": "X-1",
    }
    response = await client.patch(
        f"/v1/payables/{created['id']}", json=changes, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert {k: patched[k] for k in changes} == changes
    assert patched["amount_due"] == 4_200
    assert patched["created_at"] == created["created_at"]


@pytest.mark.parametrize("status", [s for s in STATUSES if s not in ("draft", "new")])
async def test_only_draft_and_new_can_be_patched_or_deleted(
    client: httpx.AsyncClient, tenant: Tenant, status: str
) -> None:
    payable = await create_payable(client, tenant, status=status)
    url = f"/v1/payables/{payable['id']}"
    response = await client.patch(url, json={"description": "late"}, headers=tenant.headers)
    assert response.status_code == 409
    assert f"current state: {status}" in response.json()["error"]["message"]
    response = await client.delete(url, headers=tenant.headers)
    assert response.status_code == 409
    assert f"current state: {status}" in response.json()["error"]["message"]
    assert (await client.get(url, headers=tenant.headers)).json() == payable


@pytest.mark.parametrize("status", ["draft", "new"])
async def test_delete(client: httpx.AsyncClient, tenant: Tenant, status: str) -> None:
    payable = await create_payable(client, tenant, status=status)
    url = f"/v1/payables/{payable['id']}"
    response = await client.delete(url, headers=tenant.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(url, headers=tenant.headers)).status_code == 404
    assert (await client.delete(url, headers=tenant.headers)).status_code == 404
    events = await payable_events(client, tenant)
    assert events[-1] == ("payable.deleted", payable["id"], None)


# --- lifecycle -------------------------------------------------------------------------------


async def test_full_lifecycle_to_paid(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await new_payable(client, tenant, amount=100_001)
    pid = created["id"]

    submitted = (await act(client, tenant, pid, "submit_for_approval")).json()
    assert submitted["status"] == "approve_in_progress"
    approved = (await act(client, tenant, pid, "approve_payment_operation")).json()
    assert approved["status"] == "waiting_to_be_paid"

    first = await act(client, tenant, pid, "mark_as_partially_paid", {"amount_paid": 30_000})
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "partially_paid"
    assert (first.json()["amount_paid"], first.json()["amount_due"]) == (30_000, 70_001)
    assert first.json()["amount_to_pay"] == 70_001
    second = await act(client, tenant, pid, "mark_as_partially_paid", {"amount_paid": 100_000})
    assert second.status_code == 200, second.text
    assert (second.json()["amount_paid"], second.json()["amount_due"]) == (100_000, 1)

    paid = await act(client, tenant, pid, "mark_as_paid", {"comment": "Wire 2026-11-30"})
    assert paid.status_code == 200, paid.text
    body = paid.json()
    assert body["status"] == "paid"
    assert (body["amount_paid"], body["amount_due"], body["amount_to_pay"]) == (100_001, 0, 0)
    assert body["marked_as_paid_with_comment"] == "Wire 2026-11-30"
    assert "marked_as_paid_by_entity_user_id" not in body  # a partner token marked it
    assert abs(clock.now() - datetime.fromisoformat(body["paid_at"])) < timedelta(minutes=1)

    assert await payable_events(client, tenant) == [
        ("payable.created", pid, "new"),
        ("payable.status_changed", pid, "approve_in_progress"),
        ("payable.status_changed", pid, "waiting_to_be_paid"),
        ("payable.status_changed", pid, "partially_paid"),
        ("payable.updated", pid, None),
        ("payable.status_changed", pid, "paid"),
    ]


async def test_approve_straight_from_new_and_pay_without_comment(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await new_payable(client, tenant)
    response = await act(client, tenant, created["id"], "approve_payment_operation")
    assert response.json()["status"] == "waiting_to_be_paid"
    response = await act(client, tenant, created["id"], "mark_as_paid")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "paid"
    assert "marked_as_paid_with_comment" not in response.json()


async def test_reject(client: httpx.AsyncClient, tenant: Tenant) -> None:
    payable = await create_payable(client, tenant, status="approve_in_progress")
    response = await act(client, tenant, payable["id"], "reject")
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert (await payable_events(client, tenant))[-1] == (
        "payable.status_changed",
        payable["id"],
        "rejected",
    )


@pytest.mark.parametrize("status", ["draft", "new"])
async def test_cancel(client: httpx.AsyncClient, tenant: Tenant, status: str) -> None:
    payable = await create_payable(client, tenant, status=status)
    response = await act(client, tenant, payable["id"], "cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"


@pytest.mark.parametrize("status", STATUSES)
async def test_illegal_transitions_are_409_naming_the_status(
    client: httpx.AsyncClient, tenant: Tenant, status: str
) -> None:
    payable = await create_payable(client, tenant, status=status)
    events_before = await payable_events(client, tenant)
    refused = [action for action, sources in ALLOWED_FROM.items() if status not in sources]
    assert refused
    for action in refused:
        body = {"amount_paid": 1} if action == "mark_as_partially_paid" else None
        response = await act(client, tenant, payable["id"], action, body)
        assert response.status_code == 409, (action, response.text)
        message = response.json()["error"]["message"]
        assert f"current state: {status}" in message, message
        assert action in message
        if status == "draft" and "new" in ALLOWED_FROM[action]:
            assert "fill in document_id to make it new" in message
    got = await client.get(f"/v1/payables/{payable['id']}", headers=tenant.headers)
    assert got.json() == payable
    assert await payable_events(client, tenant) == events_before


@pytest.mark.parametrize(
    ("amount_paid", "status"),
    [(0, 422), (1_000, 422), (1_001, 422), (-1, 422), (500, 200), (999, 200)],
)
async def test_partial_payment_bounds(
    client: httpx.AsyncClient, tenant: Tenant, amount_paid: int, status: int
) -> None:
    payable = await create_payable(client, tenant, amount=1_000)
    response = await act(
        client, tenant, payable["id"], "mark_as_partially_paid", {"amount_paid": amount_paid}
    )
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["detail"][0]["loc"][-1] == "amount_paid"


async def test_partial_payment_cannot_go_down(client: httpx.AsyncClient, tenant: Tenant) -> None:
    payable = await create_payable(client, tenant, status="partially_paid", amount=1_000)
    assert payable["amount_paid"] == 500
    response = await act(
        client, tenant, payable["id"], "mark_as_partially_paid", {"amount_paid": 499}
    )
    assert response.status_code == 422
    assert "500 already recorded" in response.json()["detail"][0]["msg"]
    response = await act(client, tenant, payable["id"], "mark_as_partially_paid", {})
    assert response.status_code == 422


@pytest.mark.parametrize("status", [*PAYABLE_PATHS, "draft"])
async def test_factory_reaches_every_status(
    client: httpx.AsyncClient, tenant: Tenant, status: str
) -> None:
    payable = await create_payable(client, tenant, status=status, due_in_days=-3, amount=7_777)
    assert payable["status"] == status
    assert payable["due_date"] == (clock.today() - timedelta(days=3)).isoformat()


# --- listing ---------------------------------------------------------------------------------


async def list_ids(client: httpx.AsyncClient, tenant: Tenant, params: Any = None) -> list[str]:
    response = await client.get("/v1/payables", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return [p["document_id"] for p in response.json()["data"]]


@pytest.fixture
async def catalog(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, dict[str, Any]]:
    """Four payables that differ in every filtered field, created in order A, B, C, D."""
    acme = await create_counterpart(client, tenant, name="Acme Paper Inc")
    globex = await create_counterpart(client, tenant, name="Globex_100%")
    specs = {
        "A-100": {
            "amount": 1_000,
            "currency": "USD",
            "counterpart_id": acme["id"],
            "issued_at": "2026-01-10",
            "due_date": "2026-02-10",
        },
        "B-200": {
            "amount": 2_000,
            "currency": "EUR",
            "counterpart_id": globex["id"],
            "issued_at": "2026-01-20",
            "due_date": "2026-02-20",
        },
        "c-300": {
            "amount": 3_000,
            "currency": "USD",
            "counterpart_id": None,
            "issued_at": "2026-01-05",
            "due_date": "2026-03-01",
        },
    }
    made: dict[str, dict[str, Any]] = {}
    for doc, spec in specs.items():
        fields = {k: v for k, v in spec.items() if v is not None}
        made[doc] = await new_payable(client, tenant, document_id=doc, **fields)
    # D: a draft with neither issue date nor total.
    response = await post_payable(client, tenant, document_id="D-400", currency="GBP")
    made["D-400"] = response.json()
    await act(client, tenant, made["B-200"]["id"], "submit_for_approval")
    await act(client, tenant, made["c-300"]["id"], "cancel")
    made["acme"], made["globex"] = acme, globex
    return made


async def test_list_default_order_and_no_filters(
    client: httpx.AsyncClient, tenant: Tenant, catalog: dict[str, Any]
) -> None:
    assert await list_ids(client, tenant) == ["A-100", "B-200", "c-300", "D-400"]
    assert await list_ids(client, tenant, {"order": "desc"}) == [
        "D-400",
        "c-300",
        "B-200",
        "A-100",
    ]


FILTER_CASES: list[tuple[Any, list[str]]] = [
    ({"status": "new"}, ["A-100"]),
    ({"status": "canceled"}, ["c-300"]),
    ([("status__in", "approve_in_progress"), ("status__in", "draft")], ["B-200", "D-400"]),
    ({"total_amount": 2_000}, ["B-200"]),
    ({"total_amount__gt": 1_000}, ["B-200", "c-300"]),
    ({"total_amount__gte": 2_000}, ["B-200", "c-300"]),
    ({"total_amount__lt": 2_000}, ["A-100"]),
    ({"total_amount__lte": 2_000}, ["A-100", "B-200"]),
    ({"amount": 3_000}, ["c-300"]),
    ({"amount__gt": 2_000}, ["c-300"]),
    ({"amount__gte": 2_000}, ["B-200", "c-300"]),
    ({"amount__lt": 3_000}, ["A-100", "B-200"]),
    ({"amount__lte": 1_000}, ["A-100"]),
    ({"currency": "USD"}, ["A-100", "c-300"]),
    ({"currency": "GBP"}, ["D-400"]),
    ({"counterpart_name": "Acme Paper Inc"}, ["A-100"]),
    ({"counterpart_name": "acme paper inc"}, []),
    ({"counterpart_name__contains": "Paper"}, ["A-100"]),
    ({"counterpart_name__contains": "paper"}, []),
    ({"counterpart_name__contains": "_100%"}, ["B-200"]),
    ({"counterpart_name__contains": "%"}, ["B-200"]),
    ({"counterpart_name__icontains": "PAPER"}, ["A-100"]),
    ({"counterpart_name__icontains": "o"}, ["B-200"]),
    ({"search_text": "globex"}, ["B-200"]),
    ({"search_text": "c-3"}, ["c-300"]),
    ({"search_text": "00"}, ["A-100", "B-200", "c-300", "D-400"]),
    ({"document_id": "c-300"}, ["c-300"]),
    ({"document_id": "C-300"}, []),
    ({"document_id__contains": "-"}, ["A-100", "B-200", "c-300", "D-400"]),
    ({"document_id__contains": "C"}, []),
    ({"document_id__icontains": "C"}, ["c-300"]),
    ({"issued_at": "2026-01-10"}, ["A-100"]),
    ({"issued_at__gt": "2026-01-10"}, ["B-200"]),
    ({"issued_at__gte": "2026-01-10"}, ["A-100", "B-200"]),
    ({"issued_at__lt": "2026-01-10"}, ["c-300"]),
    ({"issued_at__lte": "2026-01-10"}, ["A-100", "c-300"]),
    ({"due_date": "2026-02-20"}, ["B-200"]),
    ({"due_date__gt": "2026-02-20"}, ["c-300"]),
    ({"due_date__gte": "2026-02-20"}, ["B-200", "c-300"]),
    ({"due_date__lt": "2026-02-20"}, ["A-100"]),
    ({"due_date__lte": "2026-02-20"}, ["A-100", "B-200"]),
    ({"source_of_payable_data": "user_specified"}, ["A-100", "B-200", "c-300", "D-400"]),
    ({"source_of_payable_data": "ocr"}, []),
    ({"origin": "upload"}, ["A-100", "B-200", "c-300", "D-400"]),
    ({"origin": "email"}, []),
    ({"ocr_status": "success"}, []),
    ({"has_file": "false"}, ["A-100", "B-200", "c-300", "D-400"]),
    ({"has_file": "true"}, []),
    ({"has_tags": "false"}, ["A-100", "B-200", "c-300", "D-400"]),
    ({"has_tags": "true"}, []),
    ({"tag_ids": str(uuid.uuid4())}, []),
    ({"tag_ids__not_in": str(uuid.uuid4())}, ["A-100", "B-200", "c-300", "D-400"]),
    ({"project_id": str(uuid.uuid4())}, []),
    ({"project_id__in": str(uuid.uuid4())}, []),
    ({"purchase_order_id": str(uuid.uuid4())}, []),
    ({"line_item_id": str(uuid.uuid4())}, []),
    ({"was_created_by_user_id": str(uuid.uuid4())}, []),
    ({"currency": "USD", "total_amount__gt": 1_000}, ["c-300"]),
]


@pytest.mark.parametrize(("params", "expected"), FILTER_CASES)
async def test_list_filters(
    client: httpx.AsyncClient,
    tenant: Tenant,
    catalog: dict[str, Any],
    params: Any,
    expected: list[str],
) -> None:
    assert await list_ids(client, tenant, params) == expected


async def test_list_filters_by_ids_counterpart_and_created_at(
    client: httpx.AsyncClient, tenant: Tenant, catalog: dict[str, Any]
) -> None:
    a, b = catalog["A-100"], catalog["B-200"]
    params = [("id__in", a["id"]), ("id__in", b["id"]), ("id__in", str(uuid.uuid4()))]
    assert await list_ids(client, tenant, params) == ["A-100", "B-200"]
    assert await list_ids(client, tenant, {"counterpart_id": catalog["globex"]["id"]}) == ["B-200"]
    assert await list_ids(client, tenant, {"counterpart_id": str(uuid.uuid4())}) == []
    created_b = b["created_at"]
    assert await list_ids(client, tenant, {"created_at__gte": created_b}) == [
        "B-200",
        "c-300",
        "D-400",
    ]
    assert await list_ids(client, tenant, {"created_at__gt": created_b}) == ["c-300", "D-400"]
    assert await list_ids(client, tenant, {"created_at__lt": created_b}) == ["A-100"]
    assert await list_ids(client, tenant, {"created_at__lte": created_b}) == ["A-100", "B-200"]


async def test_counterpart_name_filter_follows_renames_and_deleted_counterparts(
    client: httpx.AsyncClient, tenant: Tenant, catalog: dict[str, Any]
) -> None:
    acme = catalog["acme"]["id"]
    await client.patch(
        f"/v1/counterparts/{acme}",
        json={"organization": {"legal_name": "Initech"}},
        headers=tenant.headers,
    )
    assert await list_ids(client, tenant, {"counterpart_name": "Initech"}) == ["A-100"]
    await client.delete(f"/v1/counterparts/{acme}", headers=tenant.headers)
    assert await list_ids(client, tenant, {"counterpart_name": "Initech"}) == ["A-100"]


@pytest.mark.parametrize(
    "params",
    [
        {"status": "open"},
        {"currency": "XXX"},
        {"sort": "total_amount"},
        {"limit": 0},
        {"limit": 101},
        {"due_date__gt": "soon"},
        {"created_at__gt": "yesterday"},
        {"total_amount": "a lot"},
        {"no_such_filter": "1"},
    ],
)
async def test_invalid_list_params_are_422(
    client: httpx.AsyncClient, tenant: Tenant, params: dict[str, Any]
) -> None:
    response = await client.get("/v1/payables", params=params, headers=tenant.headers)
    assert response.status_code == 422, response.text


async def test_sort_by_issue_date_and_id(
    client: httpx.AsyncClient, tenant: Tenant, catalog: dict[str, Any]
) -> None:
    # The draft without an issue date sorts first ascending, last descending.
    assert await list_ids(client, tenant, {"sort": "issued_at"}) == [
        "D-400",
        "c-300",
        "A-100",
        "B-200",
    ]
    assert await list_ids(client, tenant, {"sort": "issued_at", "order": "desc"}) == [
        "B-200",
        "A-100",
        "c-300",
        "D-400",
    ]
    by_id = sorted((catalog[d]["id"], d) for d in ("A-100", "B-200", "c-300", "D-400"))
    assert await list_ids(client, tenant, {"sort": "id"}) == [d for _, d in by_id]
    assert await list_ids(client, tenant, {"sort": "created_at"}) == [
        "A-100",
        "B-200",
        "c-300",
        "D-400",
    ]


async def test_pagination_walks_forward_and_back_with_the_first_query(
    client: httpx.AsyncClient, tenant: Tenant, catalog: dict[str, Any]
) -> None:
    params: dict[str, Any] = {"sort": "issued_at", "limit": 2}
    first = await client.get("/v1/payables", params=params, headers=tenant.headers)
    page1 = first.json()
    assert [p["document_id"] for p in page1["data"]] == ["D-400", "c-300"]
    assert "prev_pagination_token" not in page1  # absent rather than null, as Monite's schema has
    # A token carries the first query: other parameters given with it are ignored.
    second = await client.get(
        "/v1/payables",
        params={"pagination_token": page1["next_pagination_token"], "status": "paid"},
        headers=tenant.headers,
    )
    page2 = second.json()
    assert [p["document_id"] for p in page2["data"]] == ["A-100", "B-200"]
    assert "next_pagination_token" not in page2
    back = await client.get(
        "/v1/payables",
        params={"pagination_token": page2["prev_pagination_token"]},
        headers=tenant.headers,
    )
    assert [p["document_id"] for p in back.json()["data"]] == ["D-400", "c-300"]

    tampered = page1["next_pagination_token"][:-2] + "xx"
    response = await client.get(
        "/v1/payables", params={"pagination_token": tampered}, headers=tenant.headers
    )
    assert response.status_code == 400


async def test_list_is_scoped_to_the_entity(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, catalog: dict[str, Any]
) -> None:
    await new_payable(client, other_tenant, document_id="THEIRS")
    assert await list_ids(client, other_tenant) == ["THEIRS"]
    assert "THEIRS" not in await list_ids(client, tenant)
    assert await list_ids(client, other_tenant, {"search_text": "acme"}) == []


# --- tenant boundary -------------------------------------------------------------------------

ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("PATCH", "", {"description": "mine now"}),
    ("DELETE", "", None),
    ("POST", "/submit_for_approval", None),
    ("POST", "/approve_payment_operation", None),
    ("POST", "/reject", None),
    ("POST", "/cancel", None),
    ("POST", "/mark_as_partially_paid", {"amount_paid": 1}),
    ("POST", "/mark_as_paid", None),
]


@pytest.mark.parametrize(("method", "suffix", "body"), ENDPOINTS)
async def test_another_tenants_payable_is_404(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    theirs = await create_payable(client, other_tenant, status="new")
    # Their payable id with our entity, and our entity with their token.
    response = await client.request(
        method, f"/v1/payables/{theirs['id']}{suffix}", json=body, headers=tenant.headers
    )
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "Payable not found"}}
    mixed = {**other_tenant.auth, "x-monite-entity-id": tenant.entity_id}
    ours = await create_payable(client, tenant, status="new")
    response = await client.request(
        method, f"/v1/payables/{ours['id']}{suffix}", json=body, headers=mixed
    )
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "Entity not found"}}
    # Nothing changed on either side.
    got = await client.get(f"/v1/payables/{theirs['id']}", headers=other_tenant.headers)
    assert got.json() == theirs
    got = await client.get(f"/v1/payables/{ours['id']}", headers=tenant.headers)
    assert got.json() == ours


async def test_collection_endpoints_refuse_a_foreign_entity(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mixed = {**other_tenant.auth, "x-monite-entity-id": tenant.entity_id}
    response = await client.get("/v1/payables", headers=mixed)
    assert response.status_code == 404
    response = await client.post("/v1/payables", json=payable_payload(), headers=mixed)
    assert response.status_code == 404
    assert await list_ids(client, tenant) == []


async def test_payable_date_fields_are_plain_dates(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await new_payable(client, tenant, issued_at="2026-02-28", due_date="2026-03-30")
    assert date.fromisoformat(created["issued_at"]) == date(2026, 2, 28)
    assert date.fromisoformat(created["due_date"]) == date(2026, 3, 30)
