"""The sandbox's ``/demo`` page over HTTP, in-process, and what a production app serves
instead: no demo, and no local exception for embedding the widget.

The browser tests (tests/browser/) click through the same pages; these check what the server
answers, fast, on both databases.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from fundline.app import create_app, shutdown
from fundline.kit.db import Database
from tests.support.apps import make_client, make_settings
from tests.support.connect_pages import (
    LOCAL,
    PARTNER_ORIGIN,
    Html,
    add_origin,
    assert_strict,
    connect_token,
    csp,
    embed,
    open_session,
)
from tests.support.factories import BUSINESS_PAYLOAD, Tenant, connect_session

# --- /demo -----------------------------------------------------------------------------------


def demo_invoices(page: Html) -> list[str]:
    return [a["data-invoice-id"] for a in page.tags["button"] if "data-invoice-id" in a]


async def test_the_demo_page_offers_to_set_up_a_business(client: httpx.AsyncClient) -> None:
    response = await client.get("/demo")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = Html(response.text)
    assert "Set up a demo business" in page.texts["button"]
    [form] = page.tags["form"]
    assert (form["method"], form["action"]) == ("post", "/demo/setup")
    assert page.tags["script"] == []
    assert_strict(response)
    assert csp(response)["frame-ancestors"] == "'none'"
    assert response.headers["x-frame-options"] == "DENY"
    # Nothing to act for yet.
    response = await client.post("/demo/api/financing_token")
    assert response.status_code == 404
    assert "set one up" in response.json()["message"]
    assert (await client.get("/demo/table")).status_code == 404


async def test_the_demo_sets_up_a_business_with_invoices(client: httpx.AsyncClient) -> None:
    refused = await client.post("/demo/setup", headers={"sec-fetch-site": "cross-site"})
    assert refused.status_code == 403
    assert "Set up a demo business" in (await client.get("/demo")).text

    response = await client.post("/demo/setup", headers={"sec-fetch-site": "same-origin"})
    assert response.status_code == 303
    assert response.headers["location"] == "/demo"
    response = await client.get("/demo")
    assert response.status_code == 200
    page = Html(response.text)
    for number in ("INV-00001", "INV-00002", "INV-00003"):
        assert number in page.text
    assert page.texts["button"].count("Get paid now") == 3
    assert len(demo_invoices(page)) == 3
    assert "Northwind Traders LLC" in page.text
    assert "Globex Corporation" in page.text
    scripts = [s["src"] for s in page.tags["script"]]
    assert "/connect/v1/connect.js" in scripts
    assert any(re.fullmatch(r"/demo/static/demo\.[0-9a-f]{12}\.js", s) for s in scripts)
    for src in [*scripts, page.tags["link"][0]["href"]]:
        assert (await client.get(src)).status_code == 200, src
    table = await client.get("/demo/table")
    assert table.status_code == 200
    assert Html(table.text).texts["button"].count("Get paid now") == 3


async def test_the_demo_backend_hands_out_tokens(client: httpx.AsyncClient) -> None:
    await client.post("/demo/setup")
    invoice_id = demo_invoices(Html((await client.get("/demo")).text))[0]

    for headers in ({"sec-fetch-site": "cross-site"}, {"origin": "https://evil.example"}):
        response = await client.post("/demo/api/financing_token", headers=headers)
        assert response.status_code == 403, headers
        assert response.json() == {"message": "Cross-site request refused"}
        response = await client.post(
            "/demo/api/financing_invoices", json={"invoice_id": invoice_id}, headers=headers
        )
        assert response.status_code == 403

    # The page's own requests: by Sec-Fetch-Site, or (older browsers) by Origin.
    response = await client.post(
        "/demo/api/financing_token", headers={"origin": "http://fundline.test"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["connect_token"].startswith("fct_")
    response = await client.post("/demo/api/financing_token", headers={"sec-fetch-site": "none"})
    assert response.status_code == 200, response.text
    token = response.json()["connect_token"]
    # Not onboarded yet: the refusal is passed on with its message.
    response = await client.post("/demo/api/financing_invoices", json={"invoice_id": invoice_id})
    assert response.status_code >= 400
    assert set(response.json()) == {"message"}
    assert response.json()["message"]

    # Onboard the demo business through Connect, as the widget does.
    headers = await connect_session(client, token)
    response = await client.put("/connect/v1/business", json=BUSINESS_PAYLOAD, headers=headers)
    offer = response.json()["offer"]
    response = await client.post(f"/connect/v1/offers/{offer['id']}/accept", headers=headers)
    assert response.status_code == 200, response.text

    response = await client.post("/demo/api/financing_invoices", json={"invoice_id": invoice_id})
    assert response.status_code == 200, response.text
    session_token = response.json()["session_token"]
    invoices_headers = await connect_session(client, session_token)
    listed = await client.get("/connect/v1/invoices", headers=invoices_headers)
    assert [i["invoice_id"] for i in listed.json()["invoices"]] == [invoice_id]

    response = await client.post("/demo/api/financing_invoices", json={"invoice_id": "not-a-uuid"})
    assert response.status_code == 422


# --- production ------------------------------------------------------------------------------


@pytest.fixture
async def production_app(database_url: str, app: FastAPI) -> AsyncIterator[FastAPI]:
    """A production app on the same (emptied) database as ``app``."""
    settings = make_settings(database_url, mode="production", secret_key="k" * 8 + "Q7" * 20)
    application = create_app(settings)
    yield application
    await shutdown(application)


async def test_production_has_no_demo_and_no_local_exception(
    production_app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    async with make_client(production_app) as prod:
        for method, path in [
            ("GET", "/demo"),
            ("POST", "/demo/setup"),
            ("POST", "/demo/api/financing_token"),
            ("GET", "/demo/table"),
        ]:
            response = await prod.request(method, path)
            assert response.status_code == 404, path

        # Local pages are no exception: only registered origins may embed the widget.
        response = await prod.get("/connect/v1/frame", params={"origin": "http://localhost:3000"})
        assert csp(response)["frame-ancestors"] == "'none'"
        assert Html(response.text).tags["html"][0]["data-embedder"] == ""
        token = await connect_token(client, tenant)
        assert (await embed(prod, token, LOCAL)).status_code == 403
        assert (await open_session(prod, token, LOCAL)).status_code == 403

        await add_origin(db, tenant.partner_id, PARTNER_ORIGIN)
        response = await prod.get("/connect/v1/frame", params={"origin": PARTNER_ORIGIN})
        assert csp(response)["frame-ancestors"] == PARTNER_ORIGIN
        assert (await embed(prod, token, PARTNER_ORIGIN)).status_code == 200
        assert (await open_session(prod, token, PARTNER_ORIGIN)).status_code == 201
