"""A returning business: when its offer expired or was closed, opening the Connect widget again
(an onboarding session) has it underwritten again; a live offer is kept as it is."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from fundline.kit import clock
from fundline.kit.db import Database
from fundline.lending import servicing
from fundline.lending.policy import Policy
from fundline.models import FinancingOffer
from fundline.models.financing import WCOfferStatus
from tests.support.factories import BUSINESS_PAYLOAD, Tenant, connect_session, make_operator_key
from tests.support.lending import load_invoice, make_financing_invoice


async def _widget(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, str]:
    """What the platform does each time the business opens the widget."""
    response = await client.post("/v1/financing_tokens", headers=tenant.headers)
    assert response.status_code == 201, response.text
    return await connect_session(client, response.json()["connect_token"])


async def _offers(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/connect/v1/offers", headers=headers)
    assert response.status_code == 200, response.text
    offers: list[dict[str, Any]] = response.json()["offers"]
    return offers


async def test_an_expired_offer_is_renewed_on_the_next_visit(
    app: FastAPI, client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    headers = await _widget(client, tenant)
    response = await client.put("/connect/v1/business", json=BUSINESS_PAYLOAD, headers=headers)
    first = response.json()["offer"]
    assert first["status"] == "NEW"

    # The same visit again: the live offer is kept, nothing new.
    assert [o["id"] for o in await _offers(client, await _widget(client, tenant))] == [first["id"]]

    policy: Policy = app.state.policy
    async with db.session() as session, session.begin():
        offer = await session.get(FinancingOffer, uuid.UUID(first["id"]))
        assert offer is not None
        offer.expires_at = clock.now()
        counts = await servicing.tick(session, policy=policy)
    assert counts["offers_expired"] == 1

    offers = await _offers(client, await _widget(client, tenant))
    assert [o["status"] for o in offers] == ["NEW", "EXPIRED"]
    assert offers[1]["id"] == first["id"]
    monite = await client.get("/v1/financing_offers", headers=tenant.headers)
    assert monite.json()["offers"][0]["id"] == offers[0]["id"]


async def test_a_closed_line_is_renewed_and_a_defaulted_one_is_declined(
    app: FastAPI, client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    policy: Policy = app.state.policy
    paid = await load_invoice(db, await make_financing_invoice(db, tenant, policy, status="PAID"))
    operator = {"authorization": f"Bearer {await make_operator_key(db)}"}
    response = await client.post(
        f"/lender/v1/financing_offers/{paid.offer_id}/close", headers=operator
    )
    assert response.status_code == 200, response.text

    offers = await _offers(client, await _widget(client, tenant))
    assert [o["status"] for o in offers] == ["NEW", "CLOSED"]

    # A line that defaulted: the business is declined from then on, with the reason.
    async with db.session() as session, session.begin():
        renewed = await session.get(FinancingOffer, uuid.UUID(offers[0]["id"]))
        assert renewed is not None
        renewed.status = WCOfferStatus.DEFAULTED
    headers = await _widget(client, tenant)
    assert [o["status"] for o in await _offers(client, headers)] == ["DEFAULTED", "CLOSED"]
    business = (await client.get("/connect/v1/business", headers=headers)).json()
    assert business["decision_note"] == "An earlier credit line of this business defaulted"
