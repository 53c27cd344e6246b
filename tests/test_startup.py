"""A started server has built its routes: no request pays for building them."""

from __future__ import annotations

import pytest
from fastapi import routing as fastapi_routing

from fundline.app import create_app
from tests.support.apps import make_client, make_settings
from tests.support.factories import make_tenant

PATHS = [
    "/v1/financing_invoices",
    "/v1/entities",
    "/connect/v1/business",
    "/lender/v1/financing_invoices",
    "/health",
    "/no-such-page",
]


async def test_no_request_builds_a_route_once_the_server_started(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(make_settings(database_url))
    async with app.router.lifespan_context(app):
        async with make_client(app) as client:
            tenant = await make_tenant(app, client, name="Started")

            def building(*args: object, **kwargs: object) -> None:
                raise AssertionError("a request built a route's handler")

            monkeypatch.setattr(fastapi_routing._EffectiveRouteContext, "from_api_route", building)
            statuses = [
                (await client.get(path, headers=tenant.headers)).status_code for path in PATHS
            ]
    assert statuses[:2] == [200, 200]
    assert statuses[-1] == 404
