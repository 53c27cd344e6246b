"""``/demo`` (sandbox mode only): a small partner app for the business ``fundline demo`` seeds.

It plays both halves of a partner's integration: a backend that signs in with its client
credentials and calls ``/v1`` (here in-process, through the same routes, middleware and
rules as any client), and a page that embeds the Connect widget with ``connect.js`` exactly as
Monite's front end embeds Kanmon Connect.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel
from sqlalchemy import select

from fundline.financing.eligibility import RECEIVABLE_STATUSES
from fundline.kit import clock, money, pages
from fundline.kit.pages import Assets, environment, page
from fundline.models import SandboxDemo
from fundline.models.financing import WCInvoiceStatus
from fundline.sandbox.demo_seed import demo_client, setup_demo

PREFIX = "/demo"

router = APIRouter(prefix=PREFIX, include_in_schema=False)
assets = Assets("fundline.sandbox", url_prefix=f"{PREFIX}/static")
templates = environment("fundline.sandbox")
# The backend's in-process /v1 calls are logged once, as requests, by the app itself.
logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass
class Backend:
    """The demo partner's backend: a partner token, renewed before it expires, and /v1."""

    app: FastAPI
    demo: SandboxDemo

    async def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        token = await self._token()
        headers = {
            "authorization": f"Bearer {token}",
            "x-monite-entity-id": str(self.demo.entity_id),
        }
        async with demo_client(self.app) as http:
            return await http.request(method, path, headers=headers, **options)

    async def _token(self) -> str:
        tokens: dict[uuid.UUID, tuple[str, float]] | None = getattr(
            self.app.state, "demo_tokens", None
        )
        if tokens is None:
            tokens = self.app.state.demo_tokens = {}
        cached = tokens.get(self.demo.client_id)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        async with demo_client(self.app) as http:
            response = await http.post(
                "/v1/auth/token",
                json={
                    "grant_type": "client_credentials",
                    "client_id": str(self.demo.client_id),
                    "client_secret": self.demo.client_secret,
                },
            )
        response.raise_for_status()
        body = response.json()
        # Renewed a minute early, so a request never starts with a token about to lapse.
        tokens[self.demo.client_id] = (
            body["access_token"],
            time.monotonic() + body["expires_in"] - 60,
        )
        return str(body["access_token"])


async def _backend(request: Request) -> Backend | None:
    async with request.app.state.db.session() as session:
        demo = await session.scalar(
            select(SandboxDemo).order_by(SandboxDemo.created_at.desc()).limit(1)
        )
    return Backend(request.app, demo) if demo else None


def _same_origin(request: Request) -> bool:
    """A write from this page, not from another site (a sandbox page is still a page)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin is None or origin == str(request.base_url).rstrip("/")


def _day(value: str | None) -> str:
    return pages.day(date.fromisoformat(value)) if value else ""


async def _invoices(backend: Backend) -> list[dict[str, Any]]:
    receivables = (await backend.call("GET", "/v1/receivables", params={"limit": 100})).json()
    financed = (await backend.call("GET", "/v1/financing_invoices", params={"limit": 100})).json()
    status_of: dict[str, str] = {}
    for fi in reversed(financed.get("data", [])):  # newest last: the newest financing wins
        status_of[fi["invoice_id"]] = fi["status"]
    rows = []
    for inv in receivables.get("data", []):
        if inv.get("type") != "invoice":
            continue
        financing = status_of.get(inv["id"])
        if financing in (WCInvoiceStatus.DRAFT, WCInvoiceStatus.REJECTED):
            financing = None  # not (or no longer) financed: it can be asked again
        rows.append(
            {
                "id": inv["id"],
                "document_id": inv.get("document_id") or "draft",
                "customer": inv.get("counterpart_name") or "",
                "amount": money.display(inv.get("total_amount") or 0, inv["currency"]),
                "due_date": _day(inv.get("due_date")),
                "status": inv["status"].replace("_", " "),
                "financing": financing,
                "eligible": inv["status"] in RECEIVABLE_STATUSES,
            }
        )
    return rows


@router.get("")
async def demo_page(request: Request) -> Response:
    backend = await _backend(request)
    css = assets.url("demo.css")
    when = pages.day(clock.today())
    if backend is None:
        html = templates.get_template("demo.html").render(demo=None, css=css, today=when)
        return page(html)
    entity = (await backend.call("GET", f"/v1/entities/{backend.demo.entity_id}")).json()
    name = (entity.get("organization") or {}).get("legal_name") or "Your business"
    html = templates.get_template("demo.html").render(
        demo=backend.demo,
        business=name,
        invoices=await _invoices(backend),
        css=css,
        js=assets.url("demo.js"),
        connect_js="/connect/v1/connect.js",
        today=when,
    )
    return page(html)


@router.get("/table")
async def demo_table(request: Request) -> Response:
    backend = await _backend(request)
    if backend is None:
        return Response(status_code=404)
    html = templates.get_template("_demo_table.html").render(invoices=await _invoices(backend))
    return page(html)


@router.get("/static/{name}")
async def demo_static(name: str) -> Response:
    return assets.response(name)


@router.post("/setup")
async def demo_setup(request: Request) -> Response:
    """A fresh demo business with issued invoices, nothing financed yet."""
    if not _same_origin(request):
        return Response("Cross-site request refused", status_code=403)
    await setup_demo(request.app)
    return RedirectResponse(PREFIX, status_code=303)


class FinanceInvoice(BaseModel):
    invoice_id: uuid.UUID


async def _relay(request: Request, path: str, body: dict[str, Any] | None) -> JSONResponse:
    """One /v1 call of the demo backend, its answer passed on (errors as a message)."""
    if not _same_origin(request):
        return JSONResponse({"message": "Cross-site request refused"}, status_code=403)
    backend = await _backend(request)
    if backend is None:
        return JSONResponse({"message": "No demo business: set one up first"}, status_code=404)
    response = await backend.call("POST", path, json=body)
    out = response.json()
    if response.status_code >= 400:
        error = out.get("error", {}) if isinstance(out, dict) else {}
        message = error.get("message") or str(out)
        return JSONResponse({"message": message}, status_code=response.status_code)
    return JSONResponse(out, status_code=200)


@router.post("/api/financing_token")
async def financing_token(request: Request) -> JSONResponse:
    """`POST /v1/financing_tokens` for the demo business: the token `start()` takes."""
    return await _relay(request, "/v1/financing_tokens", None)


@router.post("/api/financing_invoices")
async def financing_invoices(request: Request, payload: FinanceInvoice) -> JSONResponse:
    """`POST /v1/financing_invoices` for one invoice: the session token `show()` takes."""
    body = {"invoices": [{"id": str(payload.invoice_id), "type": "receivable"}]}
    return await _relay(request, "/v1/financing_invoices", body)
