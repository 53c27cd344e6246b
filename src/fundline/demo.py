"""``fundline demo``: seeds a partner, a US business and its invoices, then walks one invoice
through the whole financing flow over the real API, and prints how to try it by hand.

It drives the application in-process (the same routes, validation and transactions a client
gets over HTTP), on the configured database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from fundline.app import create_app, shutdown
from fundline.auth.service import create_partner
from fundline.config import Settings
from fundline.kit.versions import CURRENT_VERSION

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
    # The progress display is the demo's output: request logs would drown it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = create_app(settings.model_copy(update={"log_level": "WARNING"}))
    try:
        async with app.state.db.session() as session, session.begin():
            created = await create_partner(session, name="Demo Platform")
        result = DemoResult(
            partner={
                "partner_id": str(created.partner_id),
                "client_id": str(created.client_id),
                "client_secret": created.client_secret,
            }
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://fundline.demo",
            headers={"x-monite-version": CURRENT_VERSION},
        ) as http:
            await _walk(http, result, console)
        return result
    finally:
        await shutdown(app)


async def _walk(http: httpx.AsyncClient, result: DemoResult, console: Console) -> None:
    steps = [
        "partner token",
        "US entity",
        "customers and issued invoices",
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

        body = {
            "grant_type": "client_credentials",
            **{k: result.partner[k] for k in ("client_id", "client_secret")},
        }
        token = _expect(await http.post("/v1/auth/token", json=body), 200, steps[0])
        auth = {"authorization": f"Bearer {token['access_token']}"}
        done(steps[0])

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
            steps[1],
        )
        result.entity_id = entity["id"]
        headers = {**auth, "x-monite-entity-id": entity["id"]}
        done(steps[1])

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
                steps[2],
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
                steps[2],
            )
            issued = _expect(
                await http.post(f"/v1/receivables/{draft['id']}/issue", headers=headers),
                200,
                steps[2],
            )
            result.invoice_ids.append(issued["id"])
        done(steps[2])

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
