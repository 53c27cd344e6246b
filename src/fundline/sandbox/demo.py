"""``fundline demo``: seeds a partner, a US business and its invoices, then walks one invoice
through the whole financing flow over the real API, and prints how to try it by hand.

It drives the application in-process (the same routes, validation and transactions a client
gets over HTTP), on the configured database.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from fundline.app import create_app, shutdown
from fundline.auth.service import create_partner
from fundline.config import Settings
from fundline.kit import clock, money, pages
from fundline.kit.versions import CURRENT_VERSION
from fundline.models.financing import WCBusinessStatus, WCInvoiceStatus
from fundline.sandbox.demo_seed import (
    ADDRESS,
    DEMO_PARTNER,
    SEED_STEPS,
    DemoError,
    connect_session,
    demo_client,
    expect,
    record,
    seed,
)
from fundline.sandbox.service import restore_clock

BUSINESS = {
    "legal_name": "Northwind Traders LLC",
    "ein": "12-3456789",
    "address": ADDRESS,
    "owner": {"first_name": "Nancy", "last_name": "Davolio", "email": "nancy@northwind.example"},
    "bank_account": {"routing_number": "021000021", "account_number": "000123456789"},
}


@dataclass
class DemoResult:
    partner: dict[str, str]
    today: date = field(default_factory=clock.today)
    days_late: int = 30  # the policy's default_after_days_late
    entity_id: str = ""
    invoice_ids: list[str] = field(default_factory=list)
    financings: list[dict[str, Any]] = field(default_factory=list)  # as GET /v1/financing_invoices

    def financing(self, status: WCInvoiceStatus) -> dict[str, Any]:
        return next(f for f in self.financings if f["status"] == status)


async def run_demo(settings: Settings, *, console: Console) -> DemoResult:
    if not settings.is_sandbox:
        raise DemoError("the demo runs in sandbox mode only (FUNDLINE_MODE=sandbox)")
    # The progress display is the demo's output: request logs would drown it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = create_app(settings.model_copy(update={"log_level": "WARNING"}))
    try:
        # In-process, the app's lifespan never runs: take up the sandbox clock here, so that
        # invoices, due dates and the printed commands agree with `fundline serve`.
        await restore_clock(app.state.db)
        async with app.state.db.session() as session, session.begin():
            created = await create_partner(session, name=DEMO_PARTNER)
        result = DemoResult(
            partner={
                "partner_id": str(created.partner_id),
                "client_id": str(created.client_id),
                "client_secret": created.client_secret,
            },
            today=clock.today(),
            days_late=app.state.policy.default_after_days_late,
        )
        ahead = clock.offset().days
        console.print(
            f"Sandbox date: {pages.day(result.today)}"
            + (f" (the sandbox clock is {ahead} days ahead of real time)" if ahead else "")
        )
        async with demo_client(app) as http:
            await _walk(http, result, console)
        await record(app, created, result.entity_id)
        return result
    finally:
        await shutdown(app)


async def _walk(http: httpx.AsyncClient, result: DemoResult, console: Console) -> None:
    """Seed the business, onboard it, finance two invoices and have one repaid, ticking each
    step off on the console; what the API answered at the end goes into ``result``."""
    steps = [
        *SEED_STEPS,
        "financing token (business created)",
        "onboarding in Connect",
        "offer accepted in Connect",
        "INV-00001 financed: requested, confirmed in Connect, funded",
        "INV-00002 financed: requested, confirmed in Connect, funded",
        "INV-00002's customer pays: its financing is repaid",
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

        connect_token = await _financing_token(http, headers, steps[3])
        done(steps[3])
        connect = await _onboard(http, connect_token, steps[4])
        done(steps[4])
        await _accept_first_offer(http, connect, steps[5])
        done(steps[5])

        unpaid, repaid = result.invoice_ids[0], result.invoice_ids[1]
        await _finance(http, headers, unpaid, steps[6])
        done(steps[6])
        await _finance(http, headers, repaid, steps[7])
        done(steps[7])

        result.financings = await _customer_pays(http, headers, repaid, steps[8])
        done(steps[8])


async def _financing_token(http: httpx.AsyncClient, headers: dict[str, str], step: str) -> str:
    """The partner's first financing token creates the business; the token opens Connect."""
    created = expect(await http.post("/v1/financing_tokens", headers=headers), 201, step)
    return str(created["connect_token"])


async def _onboard(http: httpx.AsyncClient, connect_token: str, step: str) -> dict[str, str]:
    """The business user gives every detail in Connect; returns the session's headers."""
    connect = await connect_session(http, connect_token, step)
    business = expect(
        await http.put("/connect/v1/business", headers=connect, json=BUSINESS), 200, step
    )
    if business["business_status"] != WCBusinessStatus.ONBOARDED:
        raise DemoError(f"{step}: business is {business['business_status']}")
    return connect


async def _accept_first_offer(http: httpx.AsyncClient, connect: dict[str, str], step: str) -> None:
    offers = expect(await http.get("/connect/v1/offers", headers=connect), 200, step)
    if not offers["offers"]:
        raise DemoError(f"{step}: underwriting extended no offer")
    offer = offers["offers"][0]
    expect(await http.post(f"/connect/v1/offers/{offer['id']}/accept", headers=connect), 200, step)


async def _customer_pays(
    http: httpx.AsyncClient, headers: dict[str, str], invoice_id: str, step: str
) -> list[dict[str, Any]]:
    """The invoice is marked paid, which repays its financing; returns every financing, as
    ``GET /v1/financing_invoices`` lists them afterwards."""
    expect(
        await http.post(f"/v1/receivables/{invoice_id}/mark_as_paid", headers=headers), 200, step
    )
    listed = expect(await http.get("/v1/financing_invoices", headers=headers), 200, step)
    return list(listed["data"])


async def _finance(
    http: httpx.AsyncClient, headers: dict[str, str], invoice_id: str, step: str
) -> None:
    """What a partner and its business user do for one invoice: the partner requests
    financing, the user confirms it in Connect on the first plan at its maximum."""
    tokens = expect(
        await http.post(
            "/v1/financing_invoices",
            headers=headers,
            json={"invoices": [{"id": invoice_id, "type": "receivable"}]},
        ),
        201,
        step,
    )
    session = await connect_session(http, tokens["session_token"], step)
    quoted = expect(await http.get("/connect/v1/invoices", headers=session), 200, step)
    plan_id = quoted["invoices"][0]["quotes"][0]["pricing_plan_id"]
    confirmed = expect(
        await http.post(
            "/connect/v1/invoices/confirm",
            headers=session,
            json={"invoices": [{"invoice_id": invoice_id, "pricing_plan_id": plan_id}]},
        ),
        200,
        step,
    )
    status = confirmed["invoices"][0]["status"]
    if status != WCInvoiceStatus.FUNDED:
        raise DemoError(f"{step}: the financing is {status}, not FUNDED (is the policy manual?)")


def walkthrough(result: DemoResult, *, base_url: str) -> str:
    """The commands to carry on by hand, as one shell script: pasted in order into a shell
    (with ``fundline serve`` on ``base_url``), they show the unpaid financing go LATE, then
    DEFAULTED. Comments say what each step prints."""
    p, unpaid = result.partner, result.financing(WCInvoiceStatus.FUNDED)
    due = date.fromisoformat(unpaid["repayment_schedule"]["repayment_date"])
    to_late = (due - result.today).days + 1  # LATE the day after an instalment falls due
    token_body = json.dumps(
        {
            "grant_type": "client_credentials",
            "client_id": p["client_id"],
            "client_secret": p["client_secret"],
        },
        separators=(",", ":"),
    )

    def listing(status_of: dict[str, WCInvoiceStatus]) -> str:
        return "\n".join(
            f"#   {f['document_id']} {status_of.get(f['status'], f['status'])}"
            for f in result.financings
        )

    owed = money.display(unpaid["repayment_amount"], unpaid["currency"])
    v = CURRENT_VERSION
    return f"""BASE={base_url}
TOKEN=$(curl -s $BASE/v1/auth/token -H 'x-monite-version: {v}' \\
  -H 'content-type: application/json' -d '{token_body}' \\
  | python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])')
H=(-H 'x-monite-version: {v}' -H "authorization: Bearer $TOKEN" \\
   -H 'x-monite-entity-id: {result.entity_id}')
STATUS='import json,sys;[print(f["document_id"],f["status"]) for f in json.load(sys.stdin)["data"]]'
ADVANCE=(-X POST $BASE/sandbox/v1/clock/advance -H 'content-type: application/json')

# The business's financings: one funded and unpaid, one repaid. Prints:
{listing({})}
curl -s "${{H[@]}}" $BASE/v1/financing_invoices | python3 -c "$STATUS"

# {unpaid["document_id"]}'s repayment of {owed} falls due on {pages.day(due)}. Move the clock
# {to_late} days on, past it: the financing is LATE. Prints the clock, then:
{listing({WCInvoiceStatus.FUNDED: WCInvoiceStatus.LATE})}
curl -s "${{H[@]}}" "${{ADVANCE[@]}}" -d '{{"days":{to_late}}}'; echo
curl -s "${{H[@]}}" $BASE/v1/financing_invoices | python3 -c "$STATUS"

# {result.days_late} days more unpaid, and it defaults. Prints the clock, then:
{listing({WCInvoiceStatus.FUNDED: WCInvoiceStatus.DEFAULTED})}
curl -s "${{H[@]}}" "${{ADVANCE[@]}}" -d '{{"days":{result.days_late}}}'; echo
curl -s "${{H[@]}}" $BASE/v1/financing_invoices | python3 -c "$STATUS"

# Start the sandbox over (the clock back to now; this partner's data removed):
#   curl -s "${{H[@]}}" -X POST $BASE/sandbox/v1/reset
# or everything, from the command line: fundline sandbox reset
"""


def print_walkthrough(result: DemoResult, *, base_url: str, console: Console) -> None:
    console.print()
    for fi in result.financings:
        c = fi["currency"]
        console.print(
            f"{fi['document_id']}: {money.display(fi['total_amount'], c)} invoice, "
            f"{money.display(fi['advance_amount'], c)} advanced, "
            f"{money.display(fi['repayment_amount'], c)} to repay: [bold]{fi['status']}[/bold]"
        )
    p = result.partner
    console.print("\n[bold]Credentials[/bold] (the secret is shown only here):")
    console.print(f"  client_id     {p['client_id']}\n  client_secret {p['client_secret']}")
    console.print(f"  entity_id     {result.entity_id}")
    console.print(f"\n[bold]In the browser[/bold], with the Connect widget: {base_url}/demo")
    console.print(
        "\n[bold]By hand[/bold]: with `fundline serve` running, paste these lines in order:\n"
    )
    console.print(
        walkthrough(result, base_url=base_url),
        markup=False,
        highlight=False,
        soft_wrap=True,  # commands must survive copy and paste: never wrap them
    )
