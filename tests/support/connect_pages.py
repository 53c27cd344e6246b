"""Helpers shared by the Connect page tests (tests/connect/test_connect_widget_files.py,
tests/connect/test_connect_views.py, tests/sandbox/test_demo_page.py) and
tests/connect/test_connect_input_bounds.py:
an HTML reader, the page's policy, the ``/connect/v1/views`` answers, tokens, sessions and
registered origins.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from html.parser import HTMLParser
from typing import Any

import httpx

from fundline.connect import origins
from fundline.kit.db import Database
from tests.support.factories import Tenant, connect_session

LOCAL = "http://localhost:5173"
PARTNER_ORIGIN = "https://app.tenant-a.example"
TEXT_TAGS = frozenset({"label", "button", "option"})
# Tags whose text stands apart from its neighbours' in the page's text.
BLOCKS = frozenset("p div li dt dd th td tr h1 h2 h3 label button option legend".split())


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


async def embed(client: httpx.AsyncClient, token: str, origin: str | None) -> httpx.Response:
    headers = {"origin": origin} if origin is not None else {}
    return await client.post("/connect/v1/embeds", json={"token": token}, headers=headers)


async def open_session(
    client: httpx.AsyncClient, token: str, embed_origin: str | None = None
) -> httpx.Response:
    body = (
        {"token": token} if embed_origin is None else {"token": token, "embed_origin": embed_origin}
    )
    return await client.post("/connect/v1/sessions", json=body)


async def onboarding_session(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, str]:
    return await connect_session(client, await connect_token(client, tenant))
