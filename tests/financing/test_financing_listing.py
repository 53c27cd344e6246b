"""The compiled page queries of GET /v1/financing_invoices: one per shape of request, bounded."""

from __future__ import annotations

import httpx
import pytest
from cachetools import LRUCache

from fundline.financing import listing
from tests.support.factories import Tenant

LIST = "/v1/financing_invoices"


async def test_page_queries_are_kept_per_shape_and_bounded(
    client: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "_PAGES", LRUCache(maxsize=2))
    for _ in range(2):  # the same shape twice: one statement
        response = await client.get(f"{LIST}?status=PAID", headers=tenant.headers)
        assert response.status_code == 200
    assert len(listing._PAGES) == 1
    # Other values, same shape.
    assert (await client.get(f"{LIST}?status=FUNDED", headers=tenant.headers)).status_code == 200
    assert len(listing._PAGES) == 1
    shapes = ["?type=receivable", "?status__in=PAID&status__in=FUNDED", "?order=desc"]
    for query in shapes:
        assert (await client.get(f"{LIST}{query}", headers=tenant.headers)).status_code == 200
        assert len(listing._PAGES) <= 2
