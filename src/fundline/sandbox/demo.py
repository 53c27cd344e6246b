"""``fundline demo``: seeds a partner, a US business and its invoices, then walks one invoice
through the whole financing flow over the real API, and prints how to try it by hand.

It drives the application in-process (the same routes, validation and transactions a client
gets over HTTP), on the configured database.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from fundline.auth.service import NewClient, create_partner
from fundline.config import Settings
from fundline.kit.versions import CURRENT_VERSION
from fundline.models import SandboxDemo

DEMO_PARTNER = "Demo Platform"
ADDRESS = {
    "line1": "100 Congress Ave",
    "city": "Austin",
    "state": "TX",
    "postal_code": "78701",
    "country": "US",
}
CUSTOMERS = (("Globex Corporation", 1_250_000), ("Initech LLC", 480_000), ("Umbrella Co", 99_500))


class DemoError(RuntimeError):
    """A step answered something unexpected; the message says which and what."""


@dataclass
class DemoResult:
    partner: dict[str, str]
    entity_id: str = ""
    invoice_ids: list[str] = field(default_factory=list)
    financing: dict[str, Any] = field(default_factory=dict)


def _expect(response: httpx.Response, status: int, step: str) -> Any:
    if response.status_code != status:
        raise DemoError(f"{step}: expected {status}, got {response.status_code}: {response.text}")
    return response.json() if response.content else None


async def run_demo(settings: Settings, *, console: Console) -> DemoResult:
    if not settings.is_sandbox:
        raise DemoError("the demo runs in sandbox mode only (FUNDLINE_MODE=sandbox)")
    from fundline.app import create_app, shutdown  # the app mounts /demo, which uses this

    # The progress display is the demo's output: request logs would drown it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = create_app(settings.model_copy(update={"log_level": "WARNING"}))
    try:
        async with app.state.db.session() as session, session.begin():
            created = await create_partner(session, name=DEMO_PARTNER)
        result = DemoResult(
            partner={
                "partner_id": str(created.partner_id),
                "client_id": str(created.client_id),
                "client_secret": created.client_secret,
            }
        )
        async with demo_client(app) as http:
            await _walk(http, result, console)
        await record(app, created, result.entity_id)
        return result
    finally:
        await shutdown(app)


def demo_client(app: FastAPI) -> httpx.AsyncClient:
    """A client on the application itself, in-process: the same routes a partner calls."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://fundline.demo",
        headers={"x-monite-version": CURRENT_VERSION},
    )


async def record(app: FastAPI, created: NewClient, entity_id: str) -> SandboxDemo:
    """Remember the demo platform, for the ``/demo`` page to act for."""
    demo = SandboxDemo(
        partner_id=created.partner_id,
        client_id=created.client_id,
        client_secret=created.client_secret,
        entity_id=uuid.UUID(entity_id),
    )
    async with app.state.db.session() as session, session.begin():
        session.add(demo)
    return demo


async def setup_demo(app: FastAPI) -> SandboxDemo:
    """A new demo platform with its business and invoices, nothing financed yet: what the
    ``/demo`` page starts from when no demo was run, or when asked for a fresh business."""
    async with app.state.db.session() as session, session.begin():
        created = await create_partner(session, name=DEMO_PARTNER)
    partner = {"client_id": str(created.client_id), "client_secret": created.client_secret}
    async with demo_client(app) as http:
        seeded = await seed(http, partner, lambda step: None)
    return await record(app, created, seeded.entity_id)


async def _walk(http: httpx.AsyncClient, result: DemoResult, console: Console) -> None:
    steps = [
        *SEED_STEPS,
        "financing token (business created)",
        "onboarding in Connect",
        "offer accepted",
        "financing requested",
        "invoice confirmed in Connect",
        "customer pays the invoice",
    ]
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True
    ) as bar:
        task = bar.add_task("starting", total=len(steps))

        def done(step: str) -> None:
            bar.update(task, advance=1, description=step)
            console.print(f"[green]✓[/green] {step}")

        seeded = await seed(http, result.partner, done)
        result.entity_id, result.invoice_ids, headers = (
            seeded.entity_id,
            seeded.invoice_ids,
            seeded.headers,
        )

        connect_token = _expect(
            await http.post("/v1/financing_tokens", headers=headers), 201, steps[3]
        )["connect_token"]
        done(steps[3])

        connect = await _connect_session(http, connect_token, steps[4])
        business = _expect(
            await http.put(
                "/connect/v1/business",
                headers=connect,
                json={
                    "legal_name": "Northwind Traders LLC",
                    "ein": "12-3456789",
                    "address": ADDRESS,
                    "owner": {
                        "first_name": "Nancy",
                        "last_name": "Davolio",
                        "email": "nancy@northwind.example",
                    },
                    "bank_account": {
                        "routing_number": "021000021",
                        "account_number": "000123456789",
                    },
                },
            ),
            200,
            steps[4],
        )
        if business["business_status"] != "ONBOARDED":
            raise DemoError(f"{steps[4]}: business is {business['business_status']}")
        done(steps[4])

        offers = _expect(await http.get("/connect/v1/offers", headers=connect), 200, steps[5])
        if not offers["offers"]:
            raise DemoError(f"{steps[5]}: underwriting extended no offer")
        offer = offers["offers"][0]
        _expect(
            await http.post(f"/connect/v1/offers/{offer['id']}/accept", headers=connect),
            200,
            steps[5],
        )
        done(steps[5])

        financed = result.invoice_ids[0]
        tokens = _expect(
            await http.post(
                "/v1/financing_invoices",
                headers=headers,
                json={"invoices": [{"id": financed, "type": "receivable"}]},
            ),
            201,
            steps[6],
        )
        done(steps[6])

        session = await _connect_session(http, tokens["session_token"], steps[7])
        quoted = _expect(await http.get("/connect/v1/invoices", headers=session), 200, steps[7])
        plan_id = quoted["invoices"][0]["quotes"][0]["pricing_plan_id"]
        _expect(
            await http.post(
                "/connect/v1/invoices/confirm",
                headers=session,
                json={"invoices": [{"invoice_id": financed, "pricing_plan_id": plan_id}]},
            ),
            200,
            steps[7],
        )
        done(steps[7])

        _expect(
            await http.post(f"/v1/receivables/{financed}/mark_as_paid", headers=headers),
            200,
            steps[8],
        )
        listed = _expect(
            await http.get(f"/v1/financing_invoices?invoice_id={financed}", headers=headers),
            200,
            steps[8],
        )
        result.financing = listed["data"][0]
        done(steps[8])


SEED_STEPS = ("partner token", "US entity", "customers and issued invoices")


@dataclass
class Seeded:
    entity_id: str
    invoice_ids: list[str]
    headers: dict[str, str]  # the partner's bearer and the entity's header, for /v1


async def seed(
    http: httpx.AsyncClient, partner: dict[str, str], done: Callable[[str], None]
) -> Seeded:
    """A partner token, a US entity, three customers and an issued invoice to each."""
    invoice_ids: list[str] = []
    body = {
        "grant_type": "client_credentials",
        **{k: partner[k] for k in ("client_id", "client_secret")},
    }
    token = _expect(await http.post("/v1/auth/token", json=body), 200, SEED_STEPS[0])
    auth = {"authorization": f"Bearer {token['access_token']}"}
    done(SEED_STEPS[0])

    entity = _expect(
        await http.post(
            "/v1/entities",
            headers=auth,
            json={
                "type": "organization",
                "email": "finance@northwind.example",
                "address": ADDRESS,
                "organization": {"legal_name": "Northwind Traders LLC"},
                "tax_id": "12-3456789",
            },
        ),
        201,
        SEED_STEPS[1],
    )
    headers = {**auth, "x-monite-entity-id": entity["id"]}
    done(SEED_STEPS[1])

    for name, amount in CUSTOMERS:
        counterpart = _expect(
            await http.post(
                "/v1/counterparts",
                headers=headers,
                json={
                    "type": "organization",
                    "organization": {
                        "legal_name": name,
                        "is_customer": True,
                        "is_vendor": False,
                        "email": "ap@" + name.split()[0].lower() + ".example",
                        "address": ADDRESS,
                    },
                },
            ),
            201,
            SEED_STEPS[2],
        )
        draft = _expect(
            await http.post(
                "/v1/receivables",
                headers=headers,
                json={
                    "type": "invoice",
                    "counterpart_id": counterpart["id"],
                    "counterpart_billing_address_id": counterpart["default_billing_address_id"],
                    "currency": "USD",
                    "line_items": [
                        {
                            "quantity": 1,
                            "product": {
                                "name": "Wholesale order",
                                "price": {"currency": "USD", "value": amount},
                                "measure_unit": {"name": "order"},
                            },
                            "tax_rate_value": 0,
                        }
                    ],
                    "payment_terms": {"name": "Net 45", "term_final": {"number_of_days": 45}},
                },
            ),
            201,
            SEED_STEPS[2],
        )
        issued = _expect(
            await http.post(f"/v1/receivables/{draft['id']}/issue", headers=headers),
            200,
            SEED_STEPS[2],
        )
        invoice_ids.append(issued["id"])
    done(SEED_STEPS[2])
    return Seeded(entity["id"], invoice_ids, headers)


async def _connect_session(http: httpx.AsyncClient, token: str, step: str) -> dict[str, str]:
    opened = _expect(await http.post("/connect/v1/sessions", json={"token": token}), 201, step)
    return {"authorization": f"Bearer {opened['access_token']}"}


def print_walkthrough(result: DemoResult, *, base_url: str, console: Console) -> None:
    fi = result.financing
    console.print()
    console.print(
        f"Financed invoice {fi.get('document_id')}: requested {fi.get('requested_amount')}, "
        f"fee {fi.get('fee_amount')}, advanced {fi.get('advance_amount')}, "
        f"status [bold]{fi.get('status')}[/bold]."
    )
    p = result.partner
    console.print("\n[bold]Credentials[/bold] (the secret is shown only here):")
    console.print(f"  client_id     {p['client_id']}\n  client_secret {p['client_secret']}")
    console.print(f"  entity_id     {result.entity_id}")
    console.print("\n[bold]Try it by hand[/bold] (with `fundline serve` running):")
    token_body = (
        '{"grant_type":"client_credentials","client_id":"'
        + p["client_id"]
        + '","client_secret":"'
        + p["client_secret"]
        + '"}'
    )
    console.print(
        f"""
TOKEN=$(curl -s {base_url}/v1/auth/token -H 'x-monite-version: {CURRENT_VERSION}' \\
  -H 'content-type: application/json' -d '{token_body}' \\
  | python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])')
H=(-H 'x-monite-version: {CURRENT_VERSION}' -H "authorization: Bearer $TOKEN" \\
   -H 'x-monite-entity-id: {result.entity_id}')
curl -s "${{H[@]}}" {base_url}/v1/financing_offers
curl -s "${{H[@]}}" {base_url}/v1/financing_invoices
curl -s "${{H[@]}}" -H 'content-type: application/json' {base_url}/v1/financing_invoices \\
  -d '{{"invoices":[{{"id":"{result.invoice_ids[1]}","type":"receivable"}}]}}'
curl -s "${{H[@]}}" -X POST {base_url}/sandbox/v1/clock/advance \\
  -H 'content-type: application/json' -d '{{"days":60}}'""",
        markup=False,
        highlight=False,
        soft_wrap=True,  # commands must survive copy and paste: never wrap them
    )
