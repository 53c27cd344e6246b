from __future__ import annotations

import httpx

from tests.support.factories import Tenant


async def test_entity_round_trip(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get(f"/v1/entities/{tenant.entity_id}", headers=tenant.auth)
    assert response.status_code == 200
    assert response.json()["organization"]["legal_name"] == "Tenant A Entity LLC"
