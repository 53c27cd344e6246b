"""The lender seam from outside: which provider a server builds, what it serves with each, and
what the token response tells a partner's page to load."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from fundline.app import create_app
from fundline.config import Lender
from fundline.lending.builtin import BuiltinLender
from fundline.lending.kanmon.provider import KanmonLender
from tests.support.apps import make_client, make_settings
from tests.support.factories import Tenant


async def test_the_builtin_lender_hands_out_its_own_connect_script(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    assert isinstance(app.state.lender, BuiltinLender)
    response = await client.post("/v1/financing_tokens", headers=tenant.headers)
    assert response.status_code == 201, response.text
    assert response.headers["x-fundline-connect-script-url"] == (
        "http://fundline.test/connect/v1/connect.js"
    )


@pytest.mark.parametrize(
    ("base_url", "script"),
    [
        ("https://api.kanmon.dev", "https://cdn.sandbox.kanmon.dev/scripts/v2/kanmon-connect.js"),
        ("https://api.kanmon.com", "https://cdn.kanmon.dev/scripts/v2/kanmon-connect.js"),
    ],
)
async def test_a_kanmon_server_serves_no_builtin_surfaces(
    database_url: str, base_url: str, script: str
) -> None:
    """With Kanmon lending, Kanmon hosts the widget: Fundline's Connect, lender API, sandbox
    and demo answer 404, and /v1 is all there is."""
    settings = make_settings(
        database_url, lender=Lender.KANMON, kanmon_api_key="k", kanmon_base_url=base_url
    )
    app = create_app(settings)
    try:
        assert isinstance(app.state.lender, KanmonLender)
        assert app.state.lender.connect_script_url("http://x") == script
        async with make_client(app) as client:
            for path in (
                "/connect/v1/connect.js",
                "/lender/v1/financing_invoices",
                "/sandbox/v1/clock",
                "/demo",
            ):
                assert (await client.get(path)).status_code == 404, path
            assert (await client.get("/health")).status_code == 200
    finally:
        await app.state.lender.aclose()
        await app.state.db.dispose()
