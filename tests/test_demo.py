"""``fundline demo``: one invoice walked through tokens → onboarding → offer → request →
confirm → funded → paid over the real routes, then the credentials and curl commands."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from sqlalchemy import select

from fundline.config import Mode
from fundline.kit.db import Database
from fundline.lending import ledger
from fundline.models import FinancingInvoice
from fundline.sandbox.demo import DemoError, print_walkthrough, run_demo
from tests.conftest import make_settings


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None), out


async def test_the_demo_finances_one_invoice_end_to_end(database_url: str, db: Database) -> None:
    console, out = _console()
    result = await run_demo(make_settings(database_url), console=console)

    fi = result.financing
    # Globex's 12,500.00 USD invoice on the sandbox policy's first plan: 100 % advance, 2 % fee.
    assert (fi["status"], fi["invoice_id"], fi["total_amount"]) == (
        "PAID",
        result.invoice_ids[0],
        1_250_000,
    )
    assert (fi["requested_amount"], fi["fee_amount"], fi["advance_amount"]) == (
        1_250_000,
        25_000,
        1_225_000,
    )
    assert [h["to_status"] for h in fi["status_history"]] == [
        "DRAFT",
        "NEW",
        "NEW",  # approved by the auto-review policy
        "FUNDED",
        "PAID",
    ]
    assert len(result.invoice_ids) == 3
    progress = out.getvalue()
    for step in ("financing token", "onboarding in Connect", "customer pays the invoice"):
        assert f"✓ {step}" in progress
    async with db.session() as session:
        [row] = await session.scalars(select(FinancingInvoice))
        assert await ledger.outstanding(session, row.id) == 0
        assert await ledger.reconcile(session) == []

    console, out = _console()
    print_walkthrough(result, base_url="http://localhost:9000", console=console)
    shown = out.getvalue()
    assert result.partner["client_id"] in shown
    assert result.partner["client_secret"] in shown
    assert result.entity_id in shown
    assert "curl -s" in shown
    assert "http://localhost:9000/v1/financing_invoices" in shown
    assert result.invoice_ids[1] in shown  # the next invoice to try by hand


async def test_the_demo_refuses_production(database_url: str, db: Database) -> None:
    settings = make_settings(database_url, mode=Mode.PRODUCTION)
    console, _ = _console()
    with pytest.raises(DemoError, match="sandbox mode only"):
        await run_demo(settings, console=console)
    async with db.session() as session:
        assert list(await session.scalars(select(FinancingInvoice))) == []
