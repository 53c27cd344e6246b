"""Plain factory functions for test data, going through the public API where it exists."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from fundline.auth.service import create_partner
from fundline.kit.db import Database

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


