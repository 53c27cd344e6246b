"""``fundline demo``: tokens → onboarding → offer, then two invoices financed over the real
routes, one left funded and one repaid, on the sandbox clock; then the commands to go on."""

from __future__ import annotations

import io
import uuid

import pytest
from rich.console import Console
from sqlalchemy import select

from fundline.config import Mode
from fundline.kit import clock, pages
from fundline.kit.db import Database
from fundline.lending import ledger
from fundline.models import FinancingInvoice, SandboxClock, SandboxDemo
from fundline.models.financing import WCInvoiceStatus
from fundline.sandbox.demo import print_walkthrough, run_demo, walkthrough
from fundline.sandbox.demo_seed import DemoError
from tests.support.apps import make_settings


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None), out


async def test_the_demo_leaves_one_financing_funded_and_one_repaid(
    database_url: str, db: Database
) -> None:
    console, out = _console()
    result = await run_demo(make_settings(database_url), console=console)

    by_document = {f["document_id"]: f for f in result.financings}
    unpaid, repaid = by_document["INV-00001"], by_document["INV-00002"]
    # Globex's 12,500.00 USD invoice on the sandbox policy's first plan: 100 % advance, 2 % fee.
    assert (unpaid["status"], unpaid["invoice_id"], unpaid["total_amount"]) == (
        "FUNDED",
        result.invoice_ids[0],
        1_250_000,
    )
    assert (unpaid["requested_amount"], unpaid["fee_amount"], unpaid["advance_amount"]) == (
        1_250_000,
        25_000,
        1_225_000,
    )
    assert [h["to_status"] for h in repaid["status_history"]] == [
        "DRAFT",
        "NEW",
        "NEW",  # approved by the auto-review policy
        "FUNDED",
        "PAID",
    ]
    assert len(result.invoice_ids) == 3
    progress = out.getvalue()
    assert f"Sandbox date: {pages.day(clock.today())}" in progress
    for step in ("financing token", "onboarding in Connect", "its financing is repaid"):
        assert step in progress
    async with db.session() as session:
        rows = {fi.invoice_id: fi for fi in await session.scalars(select(FinancingInvoice))}
        assert await ledger.outstanding(session, rows[uuid.UUID(unpaid["invoice_id"])].id) == (
            1_250_000
        )
        assert await ledger.outstanding(session, rows[uuid.UUID(repaid["invoice_id"])].id) == 0
        assert await ledger.reconcile(session) == []
        [demo] = await session.scalars(select(SandboxDemo))
        assert str(demo.entity_id) == result.entity_id  # what /demo acts for

    console, out = _console()
    print_walkthrough(result, base_url="http://localhost:9000", console=console)
    shown = out.getvalue()
    assert result.partner["client_id"] in shown
    assert result.partner["client_secret"] in shown
    assert result.entity_id in shown
    assert "BASE=http://localhost:9000" in shown
    assert "http://localhost:9000/demo" in shown
    # The unpaid one falls due 30 days after funding: 31 days on it is late, 30 more defaulted.
    assert """-d '{"days":31}'""" in shown
    assert """-d '{"days":30}'""" in shown


async def test_the_demo_follows_the_sandbox_clock(database_url: str, db: Database) -> None:
    """After the clock has moved, the demo's invoices are dated by it, and its requests pass
    (a wall-clock date would make them due too soon, or in the past)."""
    async with db.session() as session, session.begin():
        session.add(SandboxClock(id=1, offset_seconds=90 * 86_400))
    console, out = _console()
    result = await run_demo(make_settings(database_url), console=console)
    today = clock.today()
    assert result.today == today
    assert "the sandbox clock is 90 days ahead of real time" in out.getvalue()
    unpaid = result.financing(WCInvoiceStatus.FUNDED)
    assert unpaid["issue_date"] == today.isoformat()
    assert walkthrough(result, base_url="http://x").count('"days":31') == 1


async def test_the_demo_refuses_production(database_url: str, db: Database) -> None:
    settings = make_settings(database_url, mode=Mode.PRODUCTION)
    console, _ = _console()
    with pytest.raises(DemoError, match="sandbox mode only"):
        await run_demo(settings, console=console)
    async with db.session() as session:
        assert list(await session.scalars(select(FinancingInvoice))) == []
