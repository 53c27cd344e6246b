"""Plain factory functions for test data, going through the public API where it exists."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from fundline.auth.service import create_partner
from fundline.kit import clock, security
from fundline.kit.db import Database
from fundline.models import OperatorKey

US_ADDRESS = {
    "line1": "100 Congress Ave",
    "city": "Austin",
    "state": "TX",
    "postal_code": "78701",
    "country": "US",
}


@dataclass
class Tenant:
    partner_id: uuid.UUID
    client_id: uuid.UUID
    client_secret: str
    token: str
    entity_id: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


async def new_partner(db: Database, name: str = "Partner") -> tuple[uuid.UUID, uuid.UUID, str]:
    async with db.session() as session, session.begin():
        created = await create_partner(session, name=name)
    return created.partner_id, created.client_id, created.client_secret


async def token_for(
    client: httpx.AsyncClient,
    client_id: uuid.UUID,
    secret: str,
    *,
    entity_user_id: str | None = None,
) -> str:
    body: dict[str, Any] = {
        "client_id": str(client_id),
        "client_secret": secret,
        "grant_type": "entity_user" if entity_user_id else "client_credentials",
    }
    if entity_user_id:
        body["entity_user_id"] = entity_user_id
    response = await client.post("/v1/auth/token", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def revoke(client: httpx.AsyncClient, by: Tenant, token: str) -> httpx.Response:
    """``POST /v1/auth/revoke`` of ``token`` with ``by``'s credentials and bearer token."""
    return await client.post(
        "/v1/auth/revoke",
        headers=by.auth,
        json={"client_id": str(by.client_id), "client_secret": by.client_secret, "token": token},
    )


async def make_operator_key(db: Database, name: str = "ops", *, revoked: bool = False) -> str:
    """An operator key for ``/lender/v1`` (``fundline operator create-key`` makes them)."""
    key = security.new_token("fko_")
    async with db.session() as session, session.begin():
        session.add(
            OperatorKey(
                name=name,
                key_hash=security.token_digest(key),
                revoked_at=clock.now() if revoked else None,
            )
        )
    return key


def organization_payload(name: str = "Acme Supplies LLC", **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "organization",
        "email": "finance@acme.example",
        "address": dict(US_ADDRESS),
        "organization": {"legal_name": name},
        "tax_id": "12-3456789",
    }
    payload.update(overrides)
    return payload


async def create_entity(client: httpx.AsyncClient, token: str, **overrides: Any) -> str:
    response = await client.post(
        "/v1/entities",
        json=organization_payload(**overrides),
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def make_tenant(app: FastAPI, client: httpx.AsyncClient, *, name: str) -> Tenant:
    partner_id, client_id, secret = await new_partner(app.state.db, name)
    token = await token_for(client, client_id, secret)
    entity_id = await create_entity(client, token, name=f"{name} Entity LLC")
    return Tenant(
        partner_id,
        client_id,
        secret,
        token,
        entity_id,
        {"authorization": f"Bearer {token}", "x-monite-entity-id": entity_id},
    )


async def create_entity_user(
    client: httpx.AsyncClient, tenant: Tenant, login: str = "jane", **overrides: Any
) -> dict[str, Any]:
    body = {"login": login, "first_name": "Jane", "last_name": "Doe", **overrides}
    response = await client.post("/v1/entity_users", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def counterpart_payload(name: str = "Globex Corp", **overrides: Any) -> dict[str, Any]:
    """An organization counterpart that is a customer, with a US address."""
    payload: dict[str, Any] = {
        "type": "organization",
        "organization": {
            "legal_name": name,
            "is_customer": True,
            "is_vendor": False,
            "email": "ap@globex.example",
            "address": dict(US_ADDRESS),
        },
    }
    payload.update(overrides)
    return payload


async def create_counterpart(
    client: httpx.AsyncClient, tenant: Tenant, **overrides: Any
) -> dict[str, Any]:
    """POST /v1/counterparts; ``overrides`` replace top-level keys of ``counterpart_payload()``."""
    response = await client.post(
        "/v1/counterparts", json=counterpart_payload(**overrides), headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def payable_payload(
    *,
    amount: int = 100_000,
    currency: str = "USD",
    due_in_days: int = 30,
    counterpart_id: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A complete payable (so it is created `new`): issued today, or on the due date if that
    is in the past; ``overrides`` replace or add top-level keys."""
    from datetime import timedelta  # imported here: this file's head belongs to others

    from fundline.kit import clock

    today = clock.today()
    due = today + timedelta(days=due_in_days)
    payload: dict[str, Any] = {
        "currency": currency,
        "total_amount": amount,
        "document_id": f"BILL-{uuid.uuid4().hex[:8].upper()}",
        "issued_at": min(today, due).isoformat(),
        "due_date": due.isoformat(),
        "description": "Office supplies",
    }
    if counterpart_id is not None:
        payload["counterpart_id"] = counterpart_id
    payload.update(overrides)
    return payload


# The lifecycle calls that lead from `new` to each status.
PAYABLE_PATHS: dict[str, tuple[str, ...]] = {
    "new": (),
    "approve_in_progress": ("submit_for_approval",),
    "waiting_to_be_paid": ("submit_for_approval", "approve_payment_operation"),
    "partially_paid": (
        "submit_for_approval",
        "approve_payment_operation",
        "mark_as_partially_paid",
    ),
    "paid": ("submit_for_approval", "approve_payment_operation", "mark_as_paid"),
    "rejected": ("submit_for_approval", "reject"),
    "canceled": ("cancel",),
}


async def create_payable(
    client: httpx.AsyncClient,
    tenant: Tenant,
    *,
    status: str = "waiting_to_be_paid",
    due_in_days: int = 30,
    amount: int = 100_000,
    currency: str = "USD",
    counterpart_id: str | None = None,
) -> dict[str, Any]:
    """POST /v1/payables, then walk the lifecycle to ``status``; returns the last response.

    `draft` is a payable without a document_id; `partially_paid` has half of ``amount`` paid.
    """
    payload = payable_payload(
        amount=amount, currency=currency, due_in_days=due_in_days, counterpart_id=counterpart_id
    )
    if status == "draft":
        del payload["document_id"]
    response = await client.post("/v1/payables", json=payload, headers=tenant.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    for step in PAYABLE_PATHS.get(status, ()):
        body = {"amount_paid": amount // 2} if step == "mark_as_partially_paid" else None
        response = await client.post(
            f"/v1/payables/{data['id']}/{step}", json=body, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        data = response.json()
    assert data["status"] == status, data
    return data


def invoice_payload(
    counterpart: dict[str, Any],
    *,
    amount: int = 100_000,
    currency: str = "USD",
    due_in_days: int = 30,
    **overrides: Any,
) -> dict[str, Any]:
    """A draft invoice for ``counterpart`` (a counterpart response) of one untaxed line worth
    ``amount`` minor units, due ``due_in_days`` after issue; ``overrides`` replace top-level keys.
    """
    payload: dict[str, Any] = {
        "type": "invoice",
        "counterpart_id": counterpart["id"],
        "counterpart_billing_address_id": counterpart["default_billing_address_id"],
        "currency": currency,
        "line_items": [
            {
                "quantity": 1,
                "product": {
                    "name": "Consulting",
                    "price": {"currency": currency, "value": amount},
                    "measure_unit": {"name": "unit"},
                },
                "tax_rate_value": 0,
            }
        ],
        "payment_terms": {"name": "Net", "term_final": {"number_of_days": due_in_days}},
        "memo": "Thank you for your business",
    }
    payload.update(overrides)
    return payload


async def create_issued_invoice(
    client: httpx.AsyncClient,
    tenant: Tenant,
    counterpart_id: str | None = None,
    due_in_days: int = 30,
    amount: int = 100_000,
    currency: str = "USD",
) -> dict[str, Any]:
    """An issued invoice (a receivable) of ``amount`` minor units due in ``due_in_days`` days;
    returns the issue response. A new customer is created unless ``counterpart_id`` is given.

    A negative ``due_in_days`` gives an invoice already overdue: it is issued with the clock
    moved back, then the clock is put back where it was.
    """
    from datetime import timedelta  # imported here: this file's head belongs to others

    from fundline.kit import clock

    if counterpart_id is None:
        counterpart = await create_counterpart(client, tenant)
    else:
        response = await client.get(f"/v1/counterparts/{counterpart_id}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        counterpart = response.json()
    payload = invoice_payload(
        counterpart, amount=amount, currency=currency, due_in_days=max(due_in_days, 0)
    )
    response = await client.post("/v1/receivables", json=payload, headers=tenant.headers)
    assert response.status_code == 201, response.text
    saved = clock.offset()
    if due_in_days < 0:
        clock.set_offset(saved + timedelta(days=due_in_days))
    try:
        response = await client.post(
            f"/v1/receivables/{response.json()['id']}/issue", headers=tenant.headers
        )
    finally:
        clock.set_offset(saved)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


# --- financing and Connect --------------------------------------------------------------------

# A complete onboarding: every field the Connect business form asks for, all valid
# (021000021 passes the ABA checksum).
BUSINESS_PAYLOAD: dict[str, Any] = {
    "legal_name": "Acme Supplies LLC",
    "ein": "12-3456789",
    "address": dict(US_ADDRESS),
    "owner": {"first_name": "Jane", "last_name": "Doe", "email": "jane@acme.example"},
    "bank_account": {"routing_number": "021000021", "account_number": "000123456789"},
}


async def connect_session(client: httpx.AsyncClient, token: str) -> dict[str, str]:
    """Exchange a connect or session token; returns the bearer headers of the Connect session."""
    response = await client.post("/connect/v1/sessions", json={"token": token})
    assert response.status_code == 201, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


async def onboard(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    """Walk the entity through financing onboarding: a connect token, a Connect session, the
    complete business form, then accept the offer. Returns the accepted offer (CURRENT under
    the sandbox policy) as `POST /connect/v1/offers/{id}/accept` answers it."""
    response = await client.post("/v1/financing_tokens", headers=tenant.headers)
    assert response.status_code == 201, response.text
    headers = await connect_session(client, response.json()["connect_token"])
    response = await client.put("/connect/v1/business", json=BUSINESS_PAYLOAD, headers=headers)
    assert response.status_code == 200, response.text
    offer = response.json()["offer"]
    assert offer is not None, response.json()
    response = await client.post(f"/connect/v1/offers/{offer['id']}/accept", headers=headers)
    assert response.status_code == 200, response.text
    accepted: dict[str, Any] = response.json()
    return accepted
