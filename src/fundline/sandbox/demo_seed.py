"""The demo's business, seeded over the real API: a partner token, a US entity, three customers
and an issued invoice to each; and the record of the demo platform that ``/demo`` acts for.

Shared by ``fundline demo`` (which goes on to finance two invoices) and the ``/demo`` page
(which starts from a business with nothing financed).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from fundline.auth.service import NewClient, create_partner
from fundline.kit.versions import CURRENT_VERSION
from fundline.models import SandboxDemo

DEMO_PARTNER = "Demo Platform"
ADDRESS = {
    "line1": "100 Congress Ave",
    "city": "Austin",
    "state": "TX",
    "postal_code": "78701",
    "country": "US",
}
CUSTOMERS = (("Globex Corporation", 1_250_000), ("Initech LLC", 480_000), ("Umbrella Co", 99_500))


class DemoError(RuntimeError):
    """A step answered something unexpected; the message says which and what."""


def expect(response: httpx.Response, status: int, step: str) -> Any:
    if response.status_code != status:
        raise DemoError(f"{step}: expected {status}, got {response.status_code}: {response.text}")
    return response.json() if response.content else None


def demo_client(app: FastAPI) -> httpx.AsyncClient:
    """A client on the application itself, in-process: the same routes a partner calls."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://fundline.demo",
        headers={"x-monite-version": CURRENT_VERSION},
    )


async def record(app: FastAPI, created: NewClient, entity_id: str) -> SandboxDemo:
    """Remember the demo platform, for the ``/demo`` page to act for."""
    demo = SandboxDemo(
        partner_id=created.partner_id,
        client_id=created.client_id,
        client_secret=created.client_secret,
        entity_id=uuid.UUID(entity_id),
    )
    async with app.state.db.session() as session, session.begin():
        session.add(demo)
    return demo


async def setup_demo(app: FastAPI) -> SandboxDemo:
    """A new demo platform with its business and invoices, nothing financed yet: what the
    ``/demo`` page starts from when no demo was run, or when asked for a fresh business."""
    async with app.state.db.session() as session, session.begin():
        created = await create_partner(session, name=DEMO_PARTNER)
    partner = {"client_id": str(created.client_id), "client_secret": created.client_secret}
    async with demo_client(app) as http:
        seeded = await seed(http, partner, lambda step: None)
    return await record(app, created, seeded.entity_id)


SEED_STEPS = ("partner token", "US entity", "customers and issued invoices")


@dataclass
class Seeded:
    entity_id: str
    invoice_ids: list[str]
    headers: dict[str, str]  # the partner's bearer and the entity's header, for /v1


async def seed(
    http: httpx.AsyncClient, partner: dict[str, str], done: Callable[[str], None]
) -> Seeded:
    """A partner token, a US entity, three customers and an issued invoice to each."""
    auth = await _partner_auth(http, partner)
    done(SEED_STEPS[0])
    entity_id = await _create_entity(http, auth)
    headers = {**auth, "x-monite-entity-id": entity_id}
    done(SEED_STEPS[1])
    invoice_ids: list[str] = []
    for name, amount in CUSTOMERS:
        counterpart = await _create_customer(http, headers, name)
        invoice_ids.append(await _issue_invoice(http, headers, counterpart, amount))
    done(SEED_STEPS[2])
    return Seeded(entity_id, invoice_ids, headers)


async def _partner_auth(http: httpx.AsyncClient, partner: dict[str, str]) -> dict[str, str]:
    """The partner's bearer header, from its client credentials."""
    body = {
        "grant_type": "client_credentials",
        **{k: partner[k] for k in ("client_id", "client_secret")},
    }
    token = expect(await http.post("/v1/auth/token", json=body), 200, SEED_STEPS[0])
    return {"authorization": f"Bearer {token['access_token']}"}


async def _create_entity(http: httpx.AsyncClient, auth: dict[str, str]) -> str:
    """The US business the demo finances; returns its id."""
    entity = expect(
        await http.post(
            "/v1/entities",
            headers=auth,
            json={
                "type": "organization",
                "email": "finance@northwind.example",
                "address": ADDRESS,
                "organization": {"legal_name": "Northwind Traders LLC"},
                "tax_id": "12-3456789",
            },
        ),
        201,
        SEED_STEPS[1],
    )
    return str(entity["id"])


async def _create_customer(
    http: httpx.AsyncClient, headers: dict[str, str], name: str
) -> dict[str, Any]:
    """A customer counterpart, as the API returns it (with its default billing address)."""
    counterpart: dict[str, Any] = expect(
        await http.post(
            "/v1/counterparts",
            headers=headers,
            json={
                "type": "organization",
                "organization": {
                    "legal_name": name,
                    "is_customer": True,
                    "is_vendor": False,
                    "email": "ap@" + name.split()[0].lower() + ".example",
                    "address": ADDRESS,
                },
            },
        ),
        201,
        SEED_STEPS[2],
    )
    return counterpart


async def _issue_invoice(
    http: httpx.AsyncClient, headers: dict[str, str], counterpart: dict[str, Any], amount: int
) -> str:
    """A one-line Net 45 invoice of ``amount`` cents to ``counterpart``, drafted then issued
    (only issued invoices can be financed); returns its id."""
    draft = expect(
        await http.post(
            "/v1/receivables",
            headers=headers,
            json={
                "type": "invoice",
                "counterpart_id": counterpart["id"],
                "counterpart_billing_address_id": counterpart["default_billing_address_id"],
                "currency": "USD",
                "line_items": [
                    {
                        "quantity": 1,
                        "product": {
                            "name": "Wholesale order",
                            "price": {"currency": "USD", "value": amount},
                            "measure_unit": {"name": "order"},
                        },
                        "tax_rate_value": 0,
                    }
                ],
                "payment_terms": {"name": "Net 45", "term_final": {"number_of_days": 45}},
            },
        ),
        201,
        SEED_STEPS[2],
    )
    issued = expect(
        await http.post(f"/v1/receivables/{draft['id']}/issue", headers=headers),
        200,
        SEED_STEPS[2],
    )
    return str(issued["id"])


async def connect_session(http: httpx.AsyncClient, token: str, step: str) -> dict[str, str]:
    opened = expect(await http.post("/connect/v1/sessions", json={"token": token}), 201, step)
    return {"authorization": f"Bearer {opened['access_token']}"}
