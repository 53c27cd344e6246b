"""``fundline lender …`` and ``fundline sandbox clock …``: the same operations as the APIs,
run on the database by the command line (JSON and table output, errors, exit codes)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from fundline.cli import app as cli_app
from fundline.config import Mode
from fundline.kit import clock
from fundline.kit.db import Database
from fundline.lending.policy import Policy, default_policy_file
from fundline.models import FinancingInvoice, SandboxClock
from tests.support.cli import as_json, failed, fundline, ok
from tests.support.factories import Tenant
from tests.support.lending import load_invoice, make_financing_invoice

DAY = 86_400
LENDER_COMMANDS = (
    "list",
    "show",
    "approve",
    "reject",
    "fund",
    "repay",
    "write-off",
    "ledger",
    "reconcile",
    "offers",
    "issue-offer",
    "close-offer",
)


@pytest.mark.parametrize(
    "command",
    [
        (),
        ("lender",),
        *(("lender", c) for c in LENDER_COMMANDS),
        ("sandbox",),
        ("sandbox", "clock"),
        ("sandbox", "clock", "show"),
        ("sandbox", "clock", "advance"),
    ],
    ids=lambda c: " ".join(c) or "fundline",
)
def test_help_everywhere(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli_app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    assert "--help" in result.stdout


async def test_list(
    env: dict[str, str], db: Database, tenant: Tenant, other_tenant: Tenant, policy: Policy
) -> None:
    funded = str(await make_financing_invoice(db, tenant, policy, status="FUNDED"))
    new = str(await make_financing_invoice(db, tenant, policy, status="NEW"))
    paid = str(
        await make_financing_invoice(
            db, other_tenant, policy, status="PAID", invoice_type="payable"
        )
    )
    listed = as_json(await fundline(env, "lender", "list", "--json"))
    assert [row["id"] for row in listed["data"]] == [funded, new, paid]
    only = as_json(
        await fundline(env, "lender", "list", "--status", "NEW", "--status", "PAID", "--json")
    )
    assert [row["id"] for row in only["data"]] == [new, paid]
    mine = as_json(await fundline(env, "lender", "list", "--entity-id", tenant.entity_id, "--json"))
    assert [row["id"] for row in mine["data"]] == [funded, new]
    theirs = as_json(
        await fundline(
            env, "lender", "list", "--partner-id", str(other_tenant.partner_id), "--json"
        )
    )
    assert [row["id"] for row in theirs["data"]] == [paid]
    payables = as_json(await fundline(env, "lender", "list", "--type", "payable", "--json"))
    assert [row["id"] for row in payables["data"]] == [paid]

    table = await fundline(env, "lender", "list", "--limit", "2")
    out = ok(table)
    assert "Financing invoices" in out
    assert funded in out
    assert new in out
    assert paid not in out
    assert "800.00 USD" in out  # amounts in major units
    token = table.stderr.split("--page-token ")[1].split()[0]
    rest = as_json(await fundline(env, "lender", "list", "--page-token", token, "--json"))
    assert [row["id"] for row in rest["data"]] == [paid]

    assert failed(await fundline(env, "lender", "list", "--status", "OPEN"), 2)
    assert failed(await fundline(env, "lender", "list", "--limit", "0"), 2)


async def test_show(env: dict[str, str], db: Database, tenant: Tenant, policy: Policy) -> None:
    fi_id = str(await make_financing_invoice(db, tenant, policy, status="FUNDED"))
    detail = as_json(await fundline(env, "lender", "show", fi_id, "--json"))
    assert detail["id"] == fi_id
    assert detail["status"] == "FUNDED"
    assert sum(i["amount"] for i in detail["instalments"]) == 80_000
    assert detail["history"][-1]["to_status"] == "FUNDED"
    out = ok(await fundline(env, "lender", "show", fi_id))
    for text in (fi_id, "Instalments", "History", "FUNDED", "800.00 USD"):
        assert text in out
    missing = failed(await fundline(env, "lender", "show", str(uuid.uuid4())))
    assert missing.strip() == "Error: Financing invoice not found"
    assert failed(await fundline(env, "lender", "show", "not-a-uuid"), 2)


def manual_policy_file(tmp_path: Path) -> str:
    text = default_policy_file(Mode.SANDBOX).read_text()
    assert 'mode = "auto"' in text
    assert "auto_fund = true" in text
    text = text.replace('mode = "auto"', 'mode = "manual"').replace(
        "auto_fund = true", "auto_fund = false"
    )
    path = tmp_path / "manual.toml"
    path.write_text(text)
    return str(path)


async def test_approve_then_fund(
    env: dict[str, str], db: Database, tenant: Tenant, policy: Policy, tmp_path: Path
) -> None:
    manual = {**env, "FUNDLINE_POLICY_FILE": manual_policy_file(tmp_path)}
    fi_id = await make_financing_invoice(db, tenant, policy, status="NEW")
    approved = as_json(await fundline(manual, "lender", "approve", str(fi_id), "--json"))
    assert (approved["status"], approved["approved"]) == ("NEW", True)
    assert approved["history"][-1]["cause"] == "approved: by operator cli"
    again = failed(await fundline(manual, "lender", "approve", str(fi_id)))
    assert "already approved" in again
    funded = as_json(await fundline(manual, "lender", "fund", str(fi_id), "--json"))
    assert funded["status"] == "FUNDED"
    assert (await load_invoice(db, fi_id)).funded_at is not None


async def test_approve_with_the_default_policy_funds(
    env: dict[str, str], db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="NEW")
    out = ok(await fundline(env, "lender", "approve", str(fi_id)))
    assert "FUNDED" in out
    assert (await load_invoice(db, fi_id)).status == "FUNDED"


async def test_reject(env: dict[str, str], db: Database, tenant: Tenant, policy: Policy) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="NEW")
    assert as_json(await fundline(env, "lender", "reject", str(fi_id), "--json"))["status"] == (
        "REJECTED"
    )
    again = failed(await fundline(env, "lender", "reject", str(fi_id)))
    assert "Error: Financing invoice is REJECTED" in again
    assert "REJECTED" in failed(await fundline(env, "lender", "fund", str(fi_id)))


async def test_repay(env: dict[str, str], db: Database, tenant: Tenant, policy: Policy) -> None:
    fi_id = str(await make_financing_invoice(db, tenant, policy, status="FUNDED"))
    partial = as_json(await fundline(env, "lender", "repay", fi_id, "--amount", "30000", "--json"))
    assert (partial["status"], partial["repaid_amount"]) == ("FUNDED", 30_000)
    too_much = failed(await fundline(env, "lender", "repay", fi_id, "--amount", "50001"))
    assert "amount 50001 is more than the 50000 still owed" in too_much
    for bad in ("0", "-1", "1.5"):
        assert failed(await fundline(env, "lender", "repay", fi_id, "--amount", bad), 2)
    assert failed(await fundline(env, "lender", "repay", fi_id), 2)  # --amount is required
    paid = as_json(await fundline(env, "lender", "repay", fi_id, "--amount", "50000", "--json"))
    assert paid["status"] == "PAID"
    assert "Financing invoice is PAID" in failed(
        await fundline(env, "lender", "repay", fi_id, "--amount", "1")
    )


async def test_write_off(env: dict[str, str], db: Database, tenant: Tenant, policy: Policy) -> None:
    late = str(await make_financing_invoice(db, tenant, policy, status="LATE"))
    funded = str(await make_financing_invoice(db, tenant, policy, status="FUNDED"))
    written = as_json(await fundline(env, "lender", "write-off", late, "--json"))
    assert written["status"] == "DEFAULTED"
    assert written["closed_at"] is not None
    assert "Financing invoice is FUNDED" in failed(
        await fundline(env, "lender", "write-off", funded)
    )


async def test_ledger(env: dict[str, str], db: Database, tenant: Tenant, policy: Policy) -> None:
    first = str(await make_financing_invoice(db, tenant, policy, status="FUNDED"))
    second = str(await make_financing_invoice(db, tenant, policy, status="PAID"))
    entries = as_json(await fundline(env, "lender", "ledger", "--json"))["data"]
    assert {e["financing_invoice_id"] for e in entries} == {first, second}
    assert all(sum(p["amount"] for p in e["postings"]) == 0 for e in entries)
    only = as_json(
        await fundline(env, "lender", "ledger", "--financing-invoice-id", first, "--json")
    )["data"]
    assert only
    assert {e["financing_invoice_id"] for e in only} == {first}
    by_entity = as_json(
        await fundline(env, "lender", "ledger", "--entity-id", str(uuid.uuid4()), "--json")
    )
    assert by_entity["data"] == []
    paged = await fundline(env, "lender", "ledger", "--limit", "1")
    out = ok(paged)
    assert "financed_receivable" in out
    assert "--page-token" in paged.stderr


async def test_reconcile(env: dict[str, str], db: Database, tenant: Tenant, policy: Policy) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    clean = await fundline(env, "lender", "reconcile")
    assert "clean" in ok(clean)
    assert "financed_receivable" in clean.stdout
    report = as_json(await fundline(env, "lender", "reconcile", "--json"))
    assert report["clean"] is True
    async with db.session() as session, session.begin():
        await session.execute(
            update(FinancingInvoice).where(FinancingInvoice.id == fi_id).values(repaid_amount=1)
        )
    dirty = await fundline(env, "lender", "reconcile")
    failed(dirty)
    assert "NOT clean" in dirty.stdout
    assert "outstanding_mismatch" in dirty.stdout
    dirty_json = await fundline(env, "lender", "reconcile", "--json")
    assert dirty_json.exit_code == 1
    assert json.loads(dirty_json.stdout)["clean"] is False


async def test_sandbox_clock(
    env: dict[str, str], db: Database, tenant: Tenant, policy: Policy
) -> None:
    fi_id = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    fi = await load_invoice(db, fi_id)
    assert fi.repayment_date is not None
    days_late = (fi.repayment_date - clock.today()).days + 1

    shown = as_json(await fundline(env, "sandbox", "clock", "show", "--json"))
    assert shown["offset_seconds"] == 0
    assert "tick" not in shown
    moved = as_json(
        await fundline(env, "sandbox", "clock", "advance", "--days", str(days_late), "--json")
    )
    assert moved["offset_seconds"] == days_late * DAY
    assert moved["tick"]["invoices_late"] == 1
    assert (await load_invoice(db, fi_id)).status == "LATE"
    async with db.session() as session:
        row = await session.get(SandboxClock, 1)
        assert row is not None
        assert row.offset_seconds == days_late * DAY
    out = ok(await fundline(env, "sandbox", "clock", "show"))
    assert f"offset: {days_late} days" in out
    out = ok(await fundline(env, "sandbox", "clock", "advance", "--days", "1"))
    assert "tick: " in out
    assert failed(await fundline(env, "sandbox", "clock", "advance", "--days", "0"), 2)


async def test_sandbox_clock_refuses_in_production(env: dict[str, str], db: Database) -> None:
    production = {**env, "FUNDLINE_MODE": "production"}
    for args in (("show",), ("advance", "--days", "1")):
        message = failed(await fundline(production, "sandbox", "clock", *args), 2)
        assert "only in sandbox mode" in message
    async with db.session() as session:
        assert await session.get(SandboxClock, 1) is None
