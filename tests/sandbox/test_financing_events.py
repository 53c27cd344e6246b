"""Events for financing objects that disappear: a sandbox reset removes a business with its
offers and financing invoices, and each of them gets a ``deleted`` event."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from fundline.kit.db import Database
from fundline.lending.policy import Policy
from fundline.models import Event
from tests.support.factories import Tenant
from tests.support.lending import load_invoice, make_financing_invoice


async def test_a_sandbox_reset_emits_a_deleted_event_per_object(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, other_tenant: Tenant, policy: Policy
) -> None:
    funded = await load_invoice(db, await make_financing_invoice(db, tenant, policy))
    draft = await make_financing_invoice(db, tenant, policy, status="DRAFT")
    kept = await make_financing_invoice(db, other_tenant, policy)

    response = await client.post(
        f"/sandbox/v1/businesses/{tenant.entity_id}/reset", headers=tenant.auth
    )
    assert response.status_code == 200, response.text

    async with db.session() as session:
        deleted = {
            (event.object_type, event.object_id): event
            for event in await session.scalars(
                select(Event).where(Event.action.endswith(".deleted"))
            )
        }
    assert set(deleted) >= {
        ("financing_offer", funded.offer_id),
        ("financing_invoice", funded.id),
        ("financing_invoice", draft),
    }
    business = [key for key in deleted if key[0] == "financing_business"]
    assert len(business) == 1
    for event in deleted.values():
        assert event.entity_id == uuid.UUID(tenant.entity_id)
        assert event.partner_id == tenant.partner_id
        assert (event.object or {}).get("reason") == "sandbox reset"
    assert ("financing_invoice", kept) not in deleted
