"""Every route of every API refuses a request without credentials, except a short, explicit
list of public ones; a route added without authentication fails here."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from fundline.app import create_app, shutdown
from tests.support.apps import VERSION, make_settings

# (method, path template) answered without credentials, and why.
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): "the API description",
    ("GET", "/docs"): "the API reference page",
    ("GET", "/docs/static/{hashed}"): "the reference page's files",
    ("GET", "/redoc"): "the API reference page",
    ("GET", "/redoc/logo-mini.svg"): "the reference page's logo",
    ("GET", "/health"): "liveness, for the infrastructure",
    ("GET", "/ready"): "readiness, for the infrastructure",
    ("GET", "/metrics"): "Prometheus, for the infrastructure",
    ("POST", "/v1/auth/token"): "exchanges a client's credentials for a token",
    ("POST", "/connect/v1/sessions"): "exchanges a Connect token for a session",
    ("GET", "/connect/v1/connect.js"): "the widget script partners embed",
    ("GET", "/connect/v1/static/{name}"): "the widget's files",
    ("GET", "/connect/v1/frame"): "the widget's frame, which opens a session itself",
    ("OPTIONS", "/connect/v1/embeds"): "CORS preflight of the embed handshake",
    ("POST", "/connect/v1/embeds"): "the embed handshake, which carries a Connect token",
    ("GET", "/demo"): "sandbox only: the demo partner app",
    ("GET", "/demo/table"): "sandbox only: the demo partner app",
    ("GET", "/demo/static/{name}"): "sandbox only: the demo's files",
    ("POST", "/demo/setup"): "sandbox only: sets up a demo business",
    ("POST", "/demo/api/financing_token"): "sandbox only: the demo's own /v1 calls",
    ("POST", "/demo/api/financing_invoices"): "sandbox only: the demo's own /v1 calls",
    ("GET", "/lender/"): "the console's front door: sends to a section, or to sign in",
    ("GET", "/lender/sign-in"): "the console's sign-in form",
    ("POST", "/lender/sign-in"): "exchanges an operator key for a console session",
    ("GET", "/lender/static/{name}"): "the console's files",
}


def routes(app: FastAPI) -> list[tuple[str, str]]:
    found = []
    for context in iter_route_contexts(app.routes):
        for method in sorted(context.methods or ()):
            if method != "HEAD" and context.path is not None:
                found.append((method, context.path))
    return found


def concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), template)


def _sent_to_sign_in(response: httpx.Response) -> bool:
    """A console page refuses a browser by sending it to sign in (303), not with a 401."""
    location = response.headers.get("location", "")
    return response.status_code == 303 and location.startswith("/lender/sign-in?next=")


async def answered_without_credentials(app: FastAPI) -> dict[str, int]:
    """The routes outside ``PUBLIC`` that answer something other than 401 or 403 to a
    request without credentials, and what they answered."""
    answered = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://fundline.test"
    ) as client:
        for method, template in routes(app):
            if (method, template) in PUBLIC:
                continue
            response = await client.request(
                method,
                concrete(template),
                headers={"x-monite-version": VERSION, "x-monite-entity-id": str(uuid.uuid4())},
                json={},
            )
            if response.status_code not in (401, 403) and not _sent_to_sign_in(response):
                answered[f"{method} {template}"] = response.status_code
    return answered


async def test_every_route_needs_credentials_unless_listed(app: FastAPI) -> None:
    found = routes(app)
    assert len(found) > 90  # the walk sees every router (a change in FastAPI would show here)
    stale = set(PUBLIC) - set(found)
    assert not stale, f"listed as public but not served: {sorted(stale)}"
    assert await answered_without_credentials(app) == {}


async def test_the_walk_finds_a_route_without_authentication(database_url: str) -> None:
    rogue = create_app(make_settings(database_url))
    for path in ("/connect/v1/rogue", "/lender/v1/rogue", "/rogue"):
        rogue.add_api_route(path, lambda: {"open": True}, methods=["GET"])
    try:
        answered = await answered_without_credentials(rogue)
    finally:
        await shutdown(rogue)
    assert answered == {
        "GET /connect/v1/rogue": 200,
        "GET /lender/v1/rogue": 200,
        "GET /rogue": 200,
    }


@pytest.mark.parametrize(
    "credentials",
    ["Bearer ", "Bearer not-a-token", "Basic dXNlcjpwYXNz", "bearer " + "x" * 64],
)
async def test_wrong_credentials_are_refused_everywhere(app: FastAPI, credentials: str) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://fundline.test"
    ) as client:
        for path in (
            "/v1/entities",
            "/lender/v1/policy",
            "/sandbox/v1/clock",
            "/connect/v1/business",
        ):
            response = await client.get(
                path, headers={"x-monite-version": VERSION, "authorization": credentials}
            )
            assert response.status_code == 401, (path, credentials, response.text)
