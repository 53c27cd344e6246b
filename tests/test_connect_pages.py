"""The Connect widget's server side over HTTP, in-process: ``connect.js``, the frame page and
its static files, the embedding check, sessions opened for an embedding origin, the
``/connect/v1/views`` steps (HTML and Kanmon events), and the sandbox's ``/demo`` page.

The browser tests (tests/browser/) click through the same pages; these check what the server
answers, fast, on both databases.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fundline.app import create_app, shutdown
from fundline.connect import origins
from fundline.kit import clock, pages
from fundline.kit.db import Database
from tests.conftest import make_client, make_settings
from tests.factories import (
    BUSINESS_PAYLOAD,
    Tenant,
    connect_session,
    create_issued_invoice,
    onboard,
)

LOCAL = "http://localhost:5173"
PARTNER_ORIGIN = "https://app.tenant-a.example"
TEXT_TAGS = frozenset({"label", "button", "option"})
# Tags whose text stands apart from its neighbours' in the page's text.
BLOCKS = frozenset("p div li dt dd th td tr h1 h2 h3 label button option legend".split())

# The onboarding form's labels, in order; Address line 2 is the one optional field.
LABELS = [
    "Legal name",
    "EIN",
    "Address line 1",
    "Address line 2",
    "City",
    "State",
    "ZIP code",
    "Country",
    "Owner first name",
    "Owner last name",
    "Owner email",
    "Routing number",
    "Account number",
]
# A complete onboarding form, as the frame posts it.
COMPLETE_FORM = {
    "legal_name": BUSINESS_PAYLOAD["legal_name"],
    "ein": BUSINESS_PAYLOAD["ein"],
    **{f"address.{k}": v for k, v in BUSINESS_PAYLOAD["address"].items()},
    **{f"owner.{k}": v for k, v in BUSINESS_PAYLOAD["owner"].items()},
    **{f"bank_account.{k}": v for k, v in BUSINESS_PAYLOAD["bank_account"].items()},
}


# --- helpers ---------------------------------------------------------------------------------


class Html(HTMLParser):
    """What a test reads of a page: each tag's attributes, the texts of labels, buttons,
    options and of elements with an id, and all its text with whitespace collapsed."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = html
        self.tags: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.texts: dict[str, list[str]] = defaultdict(list)  # by tag, and "#id"
        self._open: list[tuple[str, str, list[str]]] = []  # (tag, key in texts, parts)
        self._all: list[str] = []
        self.feed(html)
        self.close()
        self.text = " ".join("".join(self._all).split())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags[tag].append(values)
        if tag in BLOCKS:
            self._all.append(" ")
        if tag in TEXT_TAGS:
            self._open.append((tag, tag, []))
        elif tag in BLOCKS and "id" in values:
            self._open.append((tag, "#" + values["id"], []))

    def handle_endtag(self, tag: str) -> None:
        if tag in BLOCKS:
            self._all.append(" ")
        if self._open and self._open[-1][0] == tag:
            _, key, parts = self._open.pop()
            self.texts[key].append(" ".join("".join(parts).split()))

    def handle_data(self, data: str) -> None:
        self._all.append(data)
        for _, _, parts in self._open:
            parts.append(data)

    def field(self, name: str) -> dict[str, str]:
        """The input or select named ``name``."""
        found = [a for tag in ("input", "select") for a in self.tags[tag] if a.get("name") == name]
        assert len(found) == 1, (name, found)
        return found[0]

    def error_of(self, name: str) -> str | None:
        """The message shown for the field ``name``: the element its aria-describedby names."""
        ids = self.field(name).get("aria-describedby", "").split()
        errors = [i for i in ids if i.endswith("-error")]
        if not errors:
            return None
        [text] = self.texts["#" + errors[0]]
        return text


def csp(response: httpx.Response) -> dict[str, str]:
    """The Content-Security-Policy as {directive: its sources}."""
    directives = {}
    for part in response.headers["content-security-policy"].split(";"):
        name, _, value = part.strip().partition(" ")
        directives[name] = value
    return directives


def state(user_state: str, section: str) -> tuple[str, str, str]:
    return ("USER_STATE_CHANGED", user_state, section)


def kinds(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The events of a view answer as (type, userState, section); a confirmation as its type."""
    found = []
    for event in body["events"]:
        data = event["data"]
        found.append((event["eventType"], data.get("userState", ""), data.get("section", "")))
    return found


def message(response: httpx.Response) -> str:
    return str(response.json()["error"]["message"])


async def connect_token(client: httpx.AsyncClient, tenant: Tenant) -> str:
    response = await client.post("/v1/financing_tokens", headers=tenant.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["connect_token"])


async def add_origin(db: Database, partner_id: uuid.UUID, origin: str) -> None:
    async with db.session() as session, session.begin():
        await origins.add_origin(session, partner_id, origin)


async def view(
    client: httpx.AsyncClient,
    path: str,
    headers: dict[str, str],
    fields: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A ``/connect/v1/views`` answer (GET without fields, POST with them); checks its shape."""
    url = f"/connect/v1/views/{path}"
    if fields is None:
        response = await client.get(url, headers=headers)
    else:
        response = await client.post(url, json={"fields": fields}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"html", "events"}
    assert isinstance(body["html"], str)
    return body


async def business(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/connect/v1/business", headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def financing_invoice(
    client: httpx.AsyncClient, tenant: Tenant, invoice_id: str
) -> dict[str, Any]:
    response = await client.get(
        "/v1/financing_invoices", params={"invoice_id": invoice_id}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    [found] = response.json()["data"]
    data: dict[str, Any] = found
    return data


async def invoices_session(
    client: httpx.AsyncClient, tenant: Tenant, *invoices: dict[str, Any]
) -> dict[str, str]:
    response = await client.post(
        "/v1/financing_invoices",
        json={"invoices": [{"id": i["id"], "type": "receivable"} for i in invoices]},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    return await connect_session(client, response.json()["session_token"])


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


def assert_strict(response: httpx.Response) -> dict[str, str]:
    """The policy every page has: only Fundline's own scripts and styles, nothing inline."""
    policy = csp(response)
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["default-src"] == "'none'"
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert "unsafe-eval" not in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    return policy


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


async def embed(client: httpx.AsyncClient, token: str, origin: str | None) -> httpx.Response:
    headers = {"origin": origin} if origin is not None else {}
    return await client.post("/connect/v1/embeds", json={"token": token}, headers=headers)


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


async def open_session(
    client: httpx.AsyncClient, token: str, embed_origin: str | None = None
) -> httpx.Response:
    body = (
        {"token": token} if embed_origin is None else {"token": token, "embed_origin": embed_origin}
    )
    return await client.post("/connect/v1/sessions", json=body)


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


# --- views: onboarding and the offer ---------------------------------------------------------


async def onboarding_session(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, str]:
    return await connect_session(client, await connect_token(client, tenant))


async def test_views_need_a_connect_session(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await onboarding_session(client, tenant)
    token = await connect_token(client, tenant)  # the token itself is not a session
    for authorization in [None, "Bearer nope", "Basic dXNlcjpwYXNz", tenant.token, token]:
        headers = {}
        if authorization is not None:
            headers["authorization"] = (
                authorization if " " in authorization else f"Bearer {authorization}"
            )
        for method, path in [
            ("GET", "current"),
            ("POST", "onboarding"),
            ("POST", f"offers/{uuid.uuid4()}/accept"),
            ("GET", "servicing"),
            ("GET", "invoices"),
            ("POST", "invoices/quote"),
            ("POST", "invoices/confirm"),
        ]:
            response = await client.request(
                method, f"/connect/v1/views/{path}", headers=headers, json={"fields": {}}
            )
            assert response.status_code == 401, (authorization, path, response.text)
            assert "message" in response.json()["error"]


async def test_a_fresh_business_gets_the_onboarding_form(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding_session(client, tenant)
    body = await view(client, "current", headers)
    page = Html(body["html"])
    assert page.texts["label"] == LABELS
    assert page.texts["button"] == ["Close", "Continue"]
    # Every input has its label, and the form posts to the view.
    ids = {a["for"] for a in page.tags["label"]}
    assert {a["id"] for a in page.tags["input"]} == ids
    [form] = page.tags["form"]
    assert form["data-view"] == "/connect/v1/views/onboarding"
    assert page.field("address.country")["value"] == "US"
    assert page.field("legal_name")["value"] == ""
    assert "aria-invalid" not in page.field("ein")
    assert body["events"] == [
        {
            "eventType": "USER_STATE_CHANGED",
            "data": {
                "userState": "START_FLOW",
                "section": "ONBOARDING",
                "actionRequired": True,
                "actionMessage": "Get paid early: tell us about your business",
            },
        }
    ]


async def test_a_bad_ein_comes_back_marked_and_nothing_is_saved(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding_session(client, tenant)
    fields = {"legal_name": "Acme Supplies LLC", "ein": "123456789", "address.city": "Austin"}
    body = await view(client, "onboarding", headers, fields)
    page = Html(body["html"])
    ein = page.field("ein")
    assert ein["aria-invalid"] == "true"
    assert ein["value"] == "123456789"  # as typed
    assert page.field("legal_name")["value"] == "Acme Supplies LLC"
    assert page.field("address.city")["value"] == "Austin"
    assert "aria-invalid" not in page.field("legal_name")
    assert page.error_of("ein") == (
        "Enter the EIN as two digits, a dash and seven digits (NN-NNNNNNN)."
    )
    assert "Please check this field" in page.text
    assert body["events"] == []
    saved = await business(client, headers)
    assert (saved["ein"], saved["legal_name"], saved["address"]["city"]) == (None, None, None)
    assert saved["business_status"] == "INPUT_REQUIRED"


REFUSALS = [
    (
        "bank_account.routing_number",
        "123456789",  # nine digits failing the ABA checksum
        "This is not a valid routing number: enter the nine digits exactly as printed on a check.",
    ),
    ("bank_account.routing_number", "02100002", None),
    ("bank_account.account_number", "12ab", "Enter 4 to 17 digits, without spaces."),
    ("owner.email", "jane-at-acme", "Enter an email address such as name@example.com."),
    ("address.country", "XX", "Enter a two-letter country code, such as US."),
    ("address.postal_code", "7" * 11, "Enter a ZIP code of at most 10 characters."),
]


async def test_each_refused_field_gets_its_message(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding_session(client, tenant)
    for name, value, error in REFUSALS:
        body = await view(client, "onboarding", headers, {"legal_name": "Acme", name: value})
        page = Html(body["html"])
        if error is not None:
            assert page.error_of(name) == error, name
        assert page.error_of(name), name
        assert page.field(name)["aria-invalid"] == "true"
        if name != "bank_account.account_number":
            assert page.field(name)["value"] == value
        assert page.error_of("legal_name") is None
    assert (await business(client, headers))["legal_name"] is None


async def test_a_partial_form_is_saved_and_asks_for_the_rest(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding_session(client, tenant)
    body = await view(
        client, "onboarding", headers, {"legal_name": "Acme Supplies LLC", "ein": "12-3456789"}
    )
    page = Html(body["html"])
    assert page.field("legal_name")["value"] == "Acme Supplies LLC"
    assert page.field("ein")["value"] == "12-3456789"
    assert page.error_of("legal_name") is None
    assert page.error_of("ein") is None
    assert page.error_of("address.line2") is None  # optional
    expected = {
        "address.line1": "Enter the address line 1.",
        "address.city": "Enter the city.",
        "address.state": "Enter the state.",
        "address.postal_code": "Enter the ZIP code.",
        "address.country": "Enter the country.",
        "owner.first_name": "Enter the owner first name.",
        "owner.last_name": "Enter the owner last name.",
        "owner.email": "Enter the owner email.",
        "bank_account.routing_number": "Enter the routing number.",
        "bank_account.account_number": "Enter the account number.",
    }
    assert {name: page.error_of(name) for name in expected} == expected
    assert "Please check these 10 fields" in page.text
    assert kinds(body) == [state("USER_INPUT_REQUIRED", "ONBOARDING")]
    saved = await business(client, headers)
    assert (saved["legal_name"], saved["ein"]) == ("Acme Supplies LLC", "12-3456789")
    assert saved["business_status"] == "INPUT_REQUIRED"

    # Opened again, the form shows what is saved, and the state stays the same.
    body = await view(client, "current", headers)
    page = Html(body["html"])
    assert page.field("legal_name")["value"] == "Acme Supplies LLC"
    assert page.error_of("address.city") is None
    assert kinds(body) == [state("USER_INPUT_REQUIRED", "ONBOARDING")]


async def test_the_account_number_is_never_sent_back(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding_session(client, tenant)
    fields = {"legal_name": "Acme", "bank_account.account_number": "000123456789"}
    page = Html((await view(client, "onboarding", headers, fields))["html"])
    account = page.field("bank_account.account_number")
    assert account["value"] == ""
    assert "000123456789" not in page.source
    assert "On file: the account ending in 6789" in page.text
    assert page.error_of("bank_account.account_number") is None


async def test_a_complete_form_shows_the_offer_on_the_businesss_own_invoice(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    invoice = await create_issued_invoice(client, tenant, amount=100_000, due_in_days=30)
    headers = await onboarding_session(client, tenant)
    body = await view(client, "onboarding", headers, COMPLETE_FORM)
    assert body["events"] == [
        {
            "eventType": "USER_STATE_CHANGED",
            "data": {
                "userState": "USER_INPUT_REQUIRED",
                "section": "OFFER",
                "actionRequired": True,
                "actionMessage": "Your offer is ready",
            },
        }
    ]
    page = Html(body["html"])
    assert "Accept offer" in page.texts["button"]
    today = clock.today()
    due = today + timedelta(days=30)
    text = page.text
    assert "A credit line of $50,000.00" in text
    assert f"Your invoice {invoice['document_id']} to Globex Corp has $1,000.00" in text
    # The sandbox plans on that invoice (as GET /connect/v1/invoices quotes them).
    for sentence in [
        f"Receive $980.00 now, repay $1,000.00 on {pages.day(today + timedelta(days=30))}.",
        f"Receive $970.00 now, repay $1,000.00 on {pages.day(today + timedelta(days=60))}.",
        "Receive $864.00 now, repay $900.00 in 3 parts, the last on "
        f"{pages.day(today + timedelta(days=90))}.",
        f"Receive $828.75 now, repay $850.00 on {pages.day(due + timedelta(days=7))}.",
    ]:
        assert sentence in text, sentence
    assert "Advance 100 % of the invoice · fee 2 % ($20.00)" in text
    assert "Advance 85 % of the invoice · fee 2.5 % ($21.25)" in text

    saved = await business(client, headers)
    assert saved["business_status"] == "ONBOARDED"
    offer_id = saved["offer"]["id"]
    [form] = page.tags["form"]
    assert form["data-view"] == f"/connect/v1/views/offers/{offer_id}/accept"

    # Accepted: the credit line, and the business is in servicing.
    body = await view(client, f"offers/{offer_id}/accept", headers, {})
    assert kinds(body) == [state("SERVICING", "SERVICING")]
    page = Html(body["html"])
    assert "Your financing" in page.text
    assert "Limit $50,000.00 Used $0.00 Available $50,000.00" in page.text
    assert "No invoice is financed yet." in page.text
    # Onboarded, the form no longer saves anything: it answers with the current step.
    again = await view(client, "onboarding", headers, {"legal_name": "Other LLC"})
    assert kinds(again) == [state("SERVICING", "SERVICING")]
    assert (await business(client, headers))["legal_name"] == BUSINESS_PAYLOAD["legal_name"]
    servicing = await view(client, "servicing", headers)
    assert kinds(servicing) == [state("SERVICING", "SERVICING")]


async def test_without_an_invoice_the_offer_shows_an_example(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = await onboarding_session(client, tenant)
    page = Html((await view(client, "onboarding", headers, COMPLETE_FORM))["html"])
    today = clock.today()
    assert "For an invoice of $10,000.00" in page.text
    assert (
        f"Receive $9,800.00 now, repay $10,000.00 on {pages.day(today + timedelta(days=30))}."
        in page.text
    )
    # The example repays on "today" plus the grace days for the due-date plan.
    assert f"repay $8,500.00 on {pages.day(today + timedelta(days=7))}." in page.text


async def test_accepting_another_tenants_offer_is_404(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    headers = await onboarding_session(client, tenant)
    theirs = await onboarding_session(client, other_tenant)
    response = await client.put("/connect/v1/business", json=BUSINESS_PAYLOAD, headers=theirs)
    offer_id = response.json()["offer"]["id"]
    for target in (offer_id, str(uuid.uuid4())):
        response = await client.post(
            f"/connect/v1/views/offers/{target}/accept", json={}, headers=headers
        )
        assert response.status_code == 404, response.text
    assert (await business(client, theirs))["offer"]["status"] == "NEW"


# --- views: confirming invoices --------------------------------------------------------------


async def financed(
    client: httpx.AsyncClient, tenant: Tenant, amount: int = 100_000
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """An onboarded business with one issued invoice in a financing request: the accepted
    offer, the invoice, and the request's Connect session."""
    offer = await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant, amount=amount)
    return offer, invoice, await invoices_session(client, tenant, invoice)


async def test_the_invoices_view_asks_for_a_plan_and_an_amount(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    offer, invoice, headers = await financed(client, tenant)
    body = await view(client, "invoices", headers)
    page = Html(body["html"])
    assert "Confirm financing" in page.texts["button"]
    plans = [p["id"] for p in offer["pricing_plans"]]
    assert [o["value"] for o in page.tags["option"]] == plans
    assert page.tags["option"][0].get("selected") == ""
    assert page.texts["option"][0] == "Repay in 30 days · fee 2 % · up to $1,000.00"
    assert page.texts["option"][2] == "Repay in 3 parts over 90 days · fee 4 % · up to $900.00"
    assert page.field("invoices.0.pricing_plan_id")["id"] == "inv-0-plan"
    amount = page.field("invoices.0.amount")
    assert amount["value"] == "1,000.00"
    assert amount["inputmode"] == "decimal"
    assert page.field("invoices.0.invoice_id")["value"] == invoice["id"]
    assert {"Plan", "Amount to finance (USD)"} <= set(page.texts["label"])
    assert f"Invoice {invoice['document_id']} · Globex Corp" in page.text
    assert "Available credit: $50,000.00 of $50,000.00." in page.text
    assert "Remaining limit after this: $49,000.00." in page.text
    assert kinds(body) == [state("SERVICING", "SERVICING")]


async def test_an_onboarding_session_sees_no_invoices_and_an_invoices_one_accepts_nothing(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    offer, _, headers = await financed(client, tenant)
    onboarding_headers = await onboarding_session(client, tenant)
    for path in ("invoices", "invoices/quote", "invoices/confirm"):
        method = "GET" if path == "invoices" else "POST"
        response = await client.request(
            method, f"/connect/v1/views/{path}", headers=onboarding_headers, json={"fields": {}}
        )
        assert response.status_code == 403, (path, response.text)
    response = await client.post(
        f"/connect/v1/views/offers/{offer['id']}/accept", json={}, headers=headers
    )
    assert response.status_code == 403


async def test_the_quote_follows_the_form_and_saves_nothing(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    offer, invoice, headers = await financed(client, tenant)
    plans = [p["id"] for p in offer["pricing_plans"]]
    repay_by = pages.day(clock.today() + timedelta(days=30))

    body = await view(client, "invoices/quote", headers, {"invoices.0.amount": "500.00"})
    assert body["events"] == []
    text = Html(body["html"]).text
    assert f"{invoice['document_id']} $490.00 $500.00 {repay_by}" in text
    assert "In total you receive $490.00 now and repay $500.00 (fees $10.00)." in text
    assert "Remaining limit after this: $49,500.00." in text

    # Another plan: its fee and its date.
    fields = {"invoices.0.amount": "$500", "invoices.0.pricing_plan_id": plans[1]}
    text = Html((await view(client, "invoices/quote", headers, fields))["html"]).text
    sixty = pages.day(clock.today() + timedelta(days=60))
    assert f"{invoice['document_id']} $485.00 $500.00 {sixty}" in text

    for amount, error in [
        ("1,000.01", "Enter an amount between $0.01 and $1,000.00."),
        ("0", "Enter an amount between $0.01 and $1,000.00."),
        ("-5", "Enter an amount between $0.01 and $1,000.00."),
        ("0.001", "Enter an amount such as $1,234.56."),
        ("lots", "Enter an amount such as $1,234.56."),
        ("NaN", "Enter an amount such as $1,234.56."),
    ]:
        body = await view(client, "invoices/quote", headers, {"invoices.0.amount": amount})
        page = Html(body["html"])
        [cell] = [
            a for a in page.tags["td"] if a.get("class") == "error" and a.get("colspan") == "3"
        ]
        assert cell
        assert f"{invoice['document_id']} {error}" in page.text, amount
        assert "Remaining limit after this: $50,000.00." in page.text
    # The plan's maximum differs: 90 % of the invoice.
    fields = {"invoices.0.amount": "900.01", "invoices.0.pricing_plan_id": plans[2]}
    text = Html((await view(client, "invoices/quote", headers, fields))["html"]).text
    assert "Enter an amount between $0.01 and $900.00." in text

    financing = await financing_invoice(client, tenant, invoice["id"])
    assert (financing["status"], financing.get("requested_amount")) == ("DRAFT", None)


async def test_a_refused_amount_confirms_nothing(client: httpx.AsyncClient, tenant: Tenant) -> None:
    _, invoice, headers = await financed(client, tenant)
    body = await view(client, "invoices/confirm", headers, {"invoices.0.amount": "1,000.01"})
    assert body["events"] == []
    page = Html(body["html"])
    assert "Financing was not confirmed" in page.text
    assert "Check the amounts marked below." in page.text
    amount = page.field("invoices.0.amount")
    assert (amount["value"], amount["aria-invalid"]) == ("1,000.01", "true")
    assert page.error_of("invoices.0.amount") == "Enter an amount between $0.01 and $1,000.00."
    assert (await financing_invoice(client, tenant, invoice["id"]))["status"] == "DRAFT"
    # The form can still be confirmed.
    listed = await client.get("/connect/v1/invoices", headers=headers)
    assert [i["invoice_id"] for i in listed.json()["invoices"]] == [invoice["id"]]


async def test_an_amount_above_the_available_credit_confirms_nothing(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    _, invoice, headers = await financed(client, tenant, amount=6_000_000)
    quote = await view(client, "invoices/quote", headers, {"invoices.0.amount": "60,000.00"})
    assert "This is more than your available credit of $50,000.00." in Html(quote["html"]).text
    body = await view(client, "invoices/confirm", headers, {"invoices.0.amount": "60,000.00"})
    assert body["events"] == []
    page = Html(body["html"])
    assert "Financing was not confirmed" in page.text
    assert "available" in page.text
    assert (await financing_invoice(client, tenant, invoice["id"]))["status"] == "DRAFT"
    offers = await client.get("/v1/financing_offers", headers=tenant.headers)
    assert offers.json()["offers"][0]["available_amount"] == 5_000_000
    # Within the limit, it goes through.
    body = await view(client, "invoices/confirm", headers, {"invoices.0.amount": "50,000.00"})
    assert body["events"][0]["eventType"] == "USER_CONFIRMED_INVOICE"
    assert (await financing_invoice(client, tenant, invoice["id"]))["status"] == "FUNDED"


async def test_confirming_reports_the_invoice_with_the_apis_figures(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    _, invoice, headers = await financed(client, tenant)
    body = await view(client, "invoices/confirm", headers, {"invoices.0.amount": "500.00"})
    assert [e["eventType"] for e in body["events"]] == [
        "USER_CONFIRMED_INVOICE",
        "USER_STATE_CHANGED",
    ]
    assert kinds(body)[1] == state("SERVICING", "SERVICING")
    sent = body["events"][0]["data"]["invoice"]
    fi = await financing_invoice(client, tenant, invoice["id"])
    offers = await client.get("/v1/financing_offers", headers=tenant.headers)
    [offer] = offers.json()["offers"]

    assert fi["status"] == "FUNDED"
    assert fi["requested_amount"] == sent["amountRequestedForFinancingCents"] == 50_000
    assert (sent["id"], sent["state"]) == (fi["id"], "INVOICE_FUNDED")
    assert sent["platformInvoiceId"] == fi["invoice_id"] == invoice["id"]
    assert sent["platformInvoiceNumber"] == fi["document_id"] == invoice["document_id"]
    assert sent["invoiceAmountCents"] == fi["total_amount"] == 100_000
    assert sent["principalAmountCents"] == fi["principal_amount"] == 49_000
    assert sent["repaymentAmountCents"] == fi["repayment_amount"] == 50_000
    assert sent["invoiceAdvanceAmountCents"] == fi["advance_amount"] == 49_000
    assert sent["feeAmountCents"] == fi["fee_amount"] == 1_000
    assert sent["advanceRatePercentage"] * 100 == fi["advance_rate_percentage"] == 10_000
    assert sent["transactionFeePercentage"] * 100 == fi["fee_percentage"] == 200
    assert sent["repaymentSchedule"]["schedule"] == [
        {
            "repaymentDate": i["due_date"],
            "repaymentAmountCents": i["amount"],
            "repaymentFeeAmountCents": i["fee_amount"],
            "repaymentPrincipalAmountCents": i["principal_amount"],
        }
        for i in fi["instalments"]
    ]
    assert len(sent["repaymentSchedule"]["schedule"]) == 1
    assert sent["issuedProductId"] == offer["id"]
    assert (sent["invoiceIssuedDate"], sent["invoiceDueDate"]) == (fi["issue_date"], fi["due_date"])
    assert (sent["payorType"], sent["payorBusinessName"]) == ("BUSINESS", "Globex Corp")
    assert sent["payorEmail"] == "ap@globex.example"
    assert sent["currency"] == "USD"
    assert sent["createdAt"].endswith("Z")
    assert offer["available_amount"] == 5_000_000 - 50_000

    page = Html(body["html"])
    assert f"Invoice {invoice['document_id']}: $490.00 to you, FUNDED." in page.text
    assert "Used $500.00 Available $49,500.00" in page.text
    assert "You receive $490.00 of this $1,000.00 invoice and repay $500.00 (fee $10.00)." in (
        page.text
    )

    # Confirmed already: the view says so, whichever step is asked.
    for path, fields in [("invoices/confirm", {"invoices.0.amount": "500.00"}), ("invoices", None)]:
        again = await view(client, path, headers, fields)
        assert "These invoices are already confirmed." in Html(again["html"]).text
        assert kinds(again) == [state("SERVICING", "SERVICING")]
    quote = await view(client, "invoices/quote", headers, {"invoices.0.amount": "500.00"})
    assert quote == {"html": "", "events": []}
    assert (await financing_invoice(client, tenant, invoice["id"]))["requested_amount"] == 50_000


async def test_of_two_invoices_only_the_included_are_confirmed(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    offer = await onboard(client, tenant)
    first = await create_issued_invoice(client, tenant, amount=100_000)
    second = await create_issued_invoice(client, tenant, amount=200_000)
    headers = await invoices_session(client, tenant, first, second)
    page = Html((await view(client, "invoices", headers))["html"])
    assert [a["name"] for a in page.tags["input"] if a.get("type") == "checkbox"] == [
        "invoices.0.include",
        "invoices.1.include",
    ]
    body = await view(client, "invoices/confirm", headers, {})
    assert "Choose at least one invoice to finance." in Html(body["html"]).text
    fields = {
        "invoices.1.include": "1",
        "invoices.1.pricing_plan_id": offer["pricing_plans"][1]["id"],
    }
    quote = Html((await view(client, "invoices/quote", headers, fields))["html"]).text
    assert f"{first['document_id']} Not financed" in quote
    assert "In total you receive $1,940.00 now and repay $2,000.00 (fees $60.00)." in quote
    body = await view(client, "invoices/confirm", headers, fields)
    [confirmed] = [e for e in body["events"] if e["eventType"] == "USER_CONFIRMED_INVOICE"]
    assert confirmed["data"]["invoice"]["platformInvoiceId"] == second["id"]
    assert confirmed["data"]["invoice"]["transactionFeePercentage"] == 3
    assert (await financing_invoice(client, tenant, first["id"]))["status"] == "DRAFT"
    assert (await financing_invoice(client, tenant, second["id"]))["status"] == "FUNDED"
    # The one left is still offered.
    page = Html((await view(client, "invoices", headers))["html"])
    assert page.field("invoices.0.invoice_id")["value"] == first["id"]


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
