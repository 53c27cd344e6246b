"""The Connect widget's server side over HTTP, in-process: ``connect.js``, the frame page and
its static files, the embedding check, and sessions opened for an embedding origin.

The browser tests (tests/browser/) click through the same pages; these check what the server
answers, fast, on both databases.
"""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from fundline.kit import clock
from fundline.kit.db import Database
from tests.support.connect_pages import (
    LOCAL,
    PARTNER_ORIGIN,
    Html,
    add_origin,
    assert_strict,
    connect_token,
    csp,
    embed,
    message,
    open_session,
)
from tests.support.factories import Tenant, create_issued_invoice, onboard

# --- connect.js ------------------------------------------------------------------------------


async def test_connect_js_is_cached_briefly_and_revalidated(client: httpx.AsyncClient) -> None:
    response = await client.get("/connect/v1/connect.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert re.search(r"max-age=[1-9][0-9]*", response.headers["cache-control"])
    assert "immutable" not in response.headers["cache-control"]  # one URL, pasted by partners
    etag = response.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{16}"', etag)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "window.KANMON_CONNECT = " in response.text
    assert "window.FundlineConnect = " in response.text

    again = await client.get("/connect/v1/connect.js", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = await client.get("/connect/v1/connect.js", headers={"if-none-match": '"0123"'})
    assert other.status_code == 200
    assert other.content == response.content


# --- the frame page and its files ------------------------------------------------------------


async def frame(client: httpx.AsyncClient, origin: str) -> tuple[httpx.Response, Html]:
    response = await client.get("/connect/v1/frame", params={"origin": origin})
    assert response.status_code == 200, (origin, response.text)
    assert response.headers["content-type"].startswith("text/html")
    return response, Html(response.text)


def embedder(page: Html) -> str:
    [root] = page.tags["html"]
    return root["data-embedder"]


async def test_a_local_origin_may_frame_the_page_in_sandbox(client: httpx.AsyncClient) -> None:
    for given, origin in [
        ("http://localhost:3000", "http://localhost:3000"),
        ("HTTP://LocalHost:3000/", "http://localhost:3000"),  # as a browser would write it
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost", "http://localhost"),
    ]:
        response, page = await frame(client, given)
        assert assert_strict(response)["frame-ancestors"] == origin, given
        assert "x-frame-options" not in response.headers
        assert embedder(page) == origin

    # The page loads its own hashed files, nothing inline.
    [style] = page.tags["link"]
    [script] = page.tags["script"]
    assert re.fullmatch(r"/connect/v1/static/frame\.[0-9a-f]{12}\.css", style["href"])
    assert re.fullmatch(r"/connect/v1/static/frame\.[0-9a-f]{12}\.js", script["src"])
    assert "<script>" not in response.text


# Origins no partner registered, and values that are no origin at all.
REFUSED = [
    "https://evil.example",
    "http://localhost.evil.example",
    "",
    "null",  # what a sandboxed iframe sends
    "javascript:alert(1)",
    "http://localhost:3000/path",
    "http://user@localhost:3000",
    "http://localhost:99999",
    'https://evil.example"><script>alert(1)</script>',
    "https://ev il.example",
    "http://[::1",
    "x" * 255,
]


async def test_any_other_origin_gets_a_page_that_cannot_be_framed(
    client: httpx.AsyncClient,
) -> None:
    for origin in REFUSED:
        response, page = await frame(client, origin)
        assert assert_strict(response)["frame-ancestors"] == "'none'", origin
        assert response.headers["x-frame-options"] == "DENY"
        assert embedder(page) == ""
        assert "evil" not in response.text
    # https on localhost is local too.
    response, page = await frame(client, "https://localhost:3000")
    assert csp(response)["frame-ancestors"] == "https://localhost:3000"


async def test_an_overlong_origin_is_refused_without_a_crash(client: httpx.AsyncClient) -> None:
    response = await client.get("/connect/v1/frame", params={"origin": "h" * 256})
    assert response.status_code == 422


async def test_an_origin_registered_by_a_partner_may_frame_the_page(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    response, page = await frame(client, PARTNER_ORIGIN)
    assert csp(response)["frame-ancestors"] == "'none'"
    await add_origin(db, tenant.partner_id, PARTNER_ORIGIN)
    for given in (PARTNER_ORIGIN, "HTTPS://App.Tenant-A.example:443/"):
        response, page = await frame(client, given)
        assert assert_strict(response)["frame-ancestors"] == PARTNER_ORIGIN
        assert "x-frame-options" not in response.headers
        assert embedder(page) == PARTNER_ORIGIN
    # Another port is another origin.
    response, page = await frame(client, PARTNER_ORIGIN + ":8443")
    assert csp(response)["frame-ancestors"] == "'none'"


async def test_static_files_are_served_by_hashed_name_for_good(client: httpx.AsyncClient) -> None:
    _, page = await frame(client, "http://localhost:3000")
    urls = {
        "text/css": page.tags["link"][0]["href"],
        "text/javascript": page.tags["script"][0]["src"],
    }
    for media_type, url in urls.items():
        response = await client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"].startswith(media_type)
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        digest = url.rsplit(".", 2)[1]
        assert response.headers["etag"] == f'"{digest}"'
        assert response.content

    js = urls["text/javascript"]
    digest = js.rsplit(".", 2)[1]
    stale = js.replace(digest, "0" if digest[0] != "0" else "1" + digest[1:])
    for url in (
        "/connect/v1/static/frame.js",  # the unhashed name
        js.replace(digest, "000000000000"),
        stale,
        "/connect/v1/static/nope.1a2b3c4d5e6f.js",
        "/connect/v1/static/connect.js",
        "/connect/v1/static/..%2Ftemplates%2Fframe.html",
    ):
        response = await client.get(url)
        assert response.status_code == 404, url


# --- the embedding check ---------------------------------------------------------------------


async def test_a_local_page_may_embed_in_sandbox_and_the_token_stays_unused(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await connect_token(client, tenant)
    for _ in range(2):  # only looked at, so it can be asked twice
        response = await embed(client, token, LOCAL)
        assert response.status_code == 200, response.text
        assert response.json() == {"allowed": True, "origin": LOCAL}
        assert response.headers["access-control-allow-origin"] == LOCAL
        assert "Origin" in response.headers["vary"]
    response = await client.post("/connect/v1/sessions", json={"token": token})
    assert response.status_code == 201, response.text
    # Used now: the check says so.
    assert (await embed(client, token, LOCAL)).status_code == 401


async def test_an_unregistered_page_is_told_why(client: httpx.AsyncClient, tenant: Tenant) -> None:
    token = await connect_token(client, tenant)
    response = await embed(client, token, "https://evil.example")
    assert response.status_code == 403
    text = message(response)
    assert "https://evil.example" in text
    assert "fundline partner origins add" in text
    # Readable by the refused page, so connect.js can report the reason.
    assert response.headers["access-control-allow-origin"] == "https://evil.example"
    response = await embed(client, token, None)
    assert response.status_code == 403
    assert "(none)" in message(response)
    assert (await client.post("/connect/v1/sessions", json={"token": token})).status_code == 201


async def test_a_registered_origin_may_embed_only_its_partners_widget(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, db: Database
) -> None:
    other_origin = "https://app.tenant-b.example"
    await add_origin(db, tenant.partner_id, PARTNER_ORIGIN)
    await add_origin(db, other_tenant.partner_id, other_origin)
    token = await connect_token(client, tenant)
    response = await embed(client, token, PARTNER_ORIGIN)
    assert response.status_code == 200, response.text
    assert response.json() == {"allowed": True, "origin": PARTNER_ORIGIN}
    response = await embed(client, token, other_origin)
    assert response.status_code == 403
    assert other_origin in message(response)
    other_token = await connect_token(client, other_tenant)
    assert (await embed(client, other_token, other_origin)).status_code == 200
    assert (await embed(client, other_token, PARTNER_ORIGIN)).status_code == 403


async def test_an_unknown_token_is_401_with_the_cors_headers(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    for token in ("nope", "fct_" + "x" * 43, tenant.token):
        response = await embed(client, token, LOCAL)
        assert response.status_code == 401, token
        assert "message" in response.json()["error"]
        assert response.headers["access-control-allow-origin"] == LOCAL


async def test_an_expired_token_is_401(client: httpx.AsyncClient, tenant: Tenant) -> None:
    token = await connect_token(client, tenant)
    clock.set_offset(timedelta(hours=24, seconds=1))
    assert (await embed(client, token, LOCAL)).status_code == 401


async def test_the_preflight_allows_the_check(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/connect/v1/embeds",
        headers={
            "origin": "https://anyone.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "https://anyone.example"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "content-type" in response.headers["access-control-allow-headers"].lower()
    assert int(response.headers["access-control-max-age"]) > 0


# --- sessions opened for an embedding page ---------------------------------------------------


async def test_a_session_for_an_unregistered_page_is_403_and_the_token_survives(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await connect_token(client, tenant)
    response = await open_session(client, token, "https://evil.example")
    assert response.status_code == 403
    assert "https://evil.example" in message(response)
    assert "fundline partner origins add" in message(response)
    # The claim of the token was rolled back with the refusal.
    response = await open_session(client, token)
    assert response.status_code == 201, response.text
    assert (await open_session(client, token)).status_code == 401


async def test_a_session_for_the_partners_own_page(
    client: httpx.AsyncClient, tenant: Tenant, db: Database
) -> None:
    await add_origin(db, tenant.partner_id, PARTNER_ORIGIN)
    for origin in (PARTNER_ORIGIN, PARTNER_ORIGIN + "/", LOCAL):
        response = await open_session(client, await connect_token(client, tenant), origin)
        assert response.status_code == 201, (origin, response.text)
        assert response.json()["scope"] == "onboarding"


async def test_another_partners_origin_opens_no_session(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, db: Database
) -> None:
    other_origin = "https://app.tenant-b.example"
    await add_origin(db, other_tenant.partner_id, other_origin)
    token = await connect_token(client, tenant)
    response = await open_session(client, token, other_origin)
    assert response.status_code == 403
    assert other_origin in message(response)
    assert (await open_session(client, token)).status_code == 201
    other = await open_session(client, await connect_token(client, other_tenant), other_origin)
    assert other.status_code == 201


async def test_an_invoices_session_for_an_unregistered_page_is_403(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant)
    response = await client.post(
        "/v1/financing_invoices",
        json={"invoices": [{"id": invoice["id"], "type": "receivable"}]},
        headers=tenant.headers,
    )
    session_token = response.json()["session_token"]
    assert (await open_session(client, session_token, "https://evil.example")).status_code == 403
    response = await open_session(client, session_token, LOCAL)
    assert response.status_code == 201, response.text
    assert response.json()["scope"] == "invoices"
