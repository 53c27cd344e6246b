"""``GET /v1/financing_invoices`` is served without FastAPI's per-request dependency solving
(``kit.routing.direct_route``). Here a twin app serves the same endpoint the ordinary way, and
both must answer every request alike: the same status and the same body."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from fundline.app import create_app, shutdown
from fundline.financing.router import list_financing_invoices
from fundline.kit.routing import TransactionalRoute
from tests.support.apps import make_client, make_settings
from tests.support.factories import Tenant, make_tenant

LIST = "/v1/financing_invoices"


@pytest.fixture
async def solved(app: FastAPI, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A twin app (on the test's clean database) whose list route is matched first and served
    the ordinary way."""
    twin = create_app(make_settings(database_url))
    twin.router.add_api_route(
        LIST, list_financing_invoices, methods=["GET"], route_class_override=TransactionalRoute
    )
    twin.router.routes.insert(0, twin.router.routes.pop())
    async with make_client(twin) as client:
        yield client
    await shutdown(twin)


@pytest.fixture
async def both(
    client: httpx.AsyncClient, solved: httpx.AsyncClient
) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    return client, solved


async def _same(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], query: str, headers: dict[str, str]
) -> int:
    direct = await both[0].get(f"{LIST}{query}", headers=headers)
    solved = await both[1].get(f"{LIST}{query}", headers=headers)
    assert (direct.status_code, direct.json()) == (solved.status_code, solved.json()), query
    return direct.status_code


@pytest.fixture
async def tenants(client: httpx.AsyncClient, app: FastAPI) -> tuple[Tenant, Tenant]:
    mine = await make_tenant(app, client, name="Direct")
    theirs = await make_tenant(app, client, name="Other")
    return mine, theirs


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?limit=1",
        "?limit=0",
        "?limit=101",
        "?limit=ten",
        "?foo=1",
        "?status=PAID",
        "?status=BOGUS",
        "?status__in=PAID&status__in=FUNDED",
        "?status__in=PAID&status__in=NOPE",
        "?invoice_id=not-a-uuid",
        "?created_at__gt=yesterday",
        "?issue_date__gte=2026-01-01T10:00:00Z",
        "?sort=created_at&order=desc",
        "?sort=nothing",
        "?pagination_token=tampered",
    ],
)
async def test_every_query_is_answered_alike(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], tenants: tuple[Tenant, Tenant], query: str
) -> None:
    mine, _ = tenants
    await _same(both, query, mine.headers)


async def test_every_refusal_is_answered_alike(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], tenants: tuple[Tenant, Tenant]
) -> None:
    mine, theirs = tenants
    cases = [
        ({}, 401),
        ({"authorization": "Bearer nope"}, 401),
        ({"authorization": "Basic abc"}, 401),
        (mine.auth, 422),  # no entity header
        ({**mine.auth, "x-monite-entity-id": "not-a-uuid"}, 422),
        ({**mine.auth, "x-monite-entity-id": theirs.entity_id}, 404),
    ]
    for headers, status in cases:
        assert await _same(both, "", headers) == status, headers
    # A missing header and a bad query are reported together, as FastAPI does.
    assert await _same(both, "?limit=0", mine.auth) == 422
