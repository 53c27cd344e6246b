"""``fundline import receivables|payables``: CSV files in bulk, checked whole before anything is
written. The service functions directly, and the command as a user runs it."""

from __future__ import annotations

import asyncio
import csv
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from fundline.cli import app as cli_app
from fundline.imports.csv_format import PAYABLES, RECEIVABLES, FileRejected, read_file
from fundline.imports.service import ImportSummary, import_payables, import_receivables
from fundline.kit import clock
from fundline.kit.db import Database
from fundline.kit.errors import Conflict, NotFound
from fundline.models import Counterpart, CounterpartAddress, Event, Payable, Receivable
from tests.support.apps import make_settings
from tests.support.factories import US_ADDRESS, Tenant, create_counterpart, create_payable

RECEIVABLE_HEADER = [
    "counterpart_name",
    "counterpart_type",
    "counterpart_email",
    "address_line1",
    "city",
    "state",
    "postal_code",
    "country",
    "currency",
    "product_name",
    "quantity",
    "unit_price",
    "tax_rate",
    "issue_date",
    "due_date",
    "payment_terms_days",
    "memo",
]
PAYABLE_HEADER = [
    "counterpart_name",
    "address_line1",
    "city",
    "state",
    "postal_code",
    "country",
    "document_id",
    "currency",
    "subtotal",
    "tax_rate",
    "total_amount",
    "issued_at",
    "due_date",
    "payment_terms_days",
    "status",
]
ADDRESS = {"address_line1": "1 Main St", "city": "Boston", "state": "MA", "postal_code": "02110"}


def write_csv(path: Path, header: list[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, header, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


def invoice_row(**cells: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "counterpart_name": "Initech LLC",
        "counterpart_email": "ap@initech.example",
        **ADDRESS,
        "country": "US",
        "currency": "USD",
        "product_name": "Consulting",
        "unit_price": "1250.00",
        "payment_terms_days": "30",
    }
    row.update(cells)
    return row


def bill_row(**cells: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "counterpart_name": "Paper Mill Inc",
        **ADDRESS,
        "country": "US",
        "document_id": "PM-1",
        "currency": "USD",
        "subtotal": "100.00",
        "due_date": (clock.today() + timedelta(days=30)).isoformat(),
    }
    row.update(cells)
    return row


def expected_total(price: str, quantity: str, rate: int) -> int:
    """An invoice line's total in cents, computed apart from the service (Decimal oracle)."""
    before = (Decimal(price) * 100 * Decimal(quantity)).quantize(Decimal(1), ROUND_HALF_EVEN)
    tax = (before * rate / Decimal(10_000)).quantize(Decimal(1), ROUND_HALF_EVEN)
    return int(before + tax)


async def run_import(
    db: Database, kind: str, entity_id: str, path: Path, *, dry_run: bool = False
) -> ImportSummary:
    do = import_receivables if kind == "receivables" else import_payables
    async with db.session() as session, session.begin():
        return await do(session, uuid.UUID(entity_id), path, dry_run=dry_run)


async def rejected(db: Database, kind: str, entity_id: str, path: Path) -> dict[int, str]:
    """The bad lines of a refused file, line → reason."""
    with pytest.raises(FileRejected) as caught:
        await run_import(db, kind, entity_id, path)
    return {e.line: e.reason for e in caught.value.errors}


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def event_actions(db: Database) -> Counter[str]:
    async with db.session() as session:
        return Counter(await session.scalars(select(Event.action)))


async def globex(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    """An existing customer whose default billing address is tests.support.factories.US_ADDRESS."""
    return await create_counterpart(client, tenant)


async def get_all(
    client: httpx.AsyncClient, tenant: Tenant, path: str, **params: str
) -> list[dict[str, Any]]:
    response = await client.get(path, params={"limit": 100, **params}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


# --- receivables -----------------------------------------------------------------------------


async def test_receivables_import_creates_issued_invoices(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, db: Database, tmp_path: Path
) -> None:
    existing = await globex(client, tenant)
    issue_date = clock.today() - timedelta(days=10)
    due_date = clock.today() + timedelta(days=20)
    us = {
        "address_line1": US_ADDRESS["line1"],
        "city": US_ADDRESS["city"],
        "state": US_ADDRESS["state"],
        "postal_code": US_ADDRESS["postal_code"],
        "country": "US",
    }
    rows = [
        # The existing customer: its default address, the same address spelled out, a new one.
        invoice_row(counterpart_name="Globex Corp", counterpart_email="", **dict.fromkeys(us, "")),
        invoice_row(counterpart_name="Globex  Corp", counterpart_email="", **us, unit_price="0.99"),
        invoice_row(counterpart_name="Globex Corp", counterpart_email="", address_line1="9 Elm St"),
        # A new organization on two rows (the second leaves the address to the first).
        invoice_row(tax_rate="825", quantity="3", memo="Thanks!"),
        invoice_row(**dict.fromkeys(us, ""), unit_price="10.01", quantity="2.5", tax_rate="1000"),
        # A new individual, with its own dates.
        invoice_row(
            counterpart_name="Ada Lovelace",
            counterpart_type="individual",
            counterpart_email="ada@example.com",
            unit_price="99999.99",
            issue_date=issue_date.isoformat(),
            due_date=due_date.isoformat(),
            payment_terms_days="",
        ),
    ]
    path = write_csv(tmp_path / "invoices.csv", RECEIVABLE_HEADER, rows)
    before = await event_actions(db)

    summary = await run_import(db, "receivables", tenant.entity_id, path)

    totals = [
        expected_total("1250.00", "1", 0),
        expected_total("0.99", "1", 0),
        expected_total("1250.00", "1", 0),
        expected_total("1250.00", "3", 825),
        expected_total("10.01", "2.5", 1000),
        expected_total("99999.99", "1", 0),
    ]
    assert summary.rows == 6
    assert summary.counterparts_created == 2  # Initech LLC, Ada Lovelace
    assert summary.counterparts_reused == 1  # Globex Corp
    assert summary.addresses_created == 3  # two new defaults, Globex's 9 Elm St
    assert summary.totals == {"USD": sum(totals)}
    assert summary.document_ids == [f"INV-{n:05d}" for n in range(1, 7)]

    invoices = sorted(
        await get_all(client, tenant, "/v1/receivables"), key=lambda r: r["document_id"]
    )
    assert [r["document_id"] for r in invoices] == summary.document_ids
    assert [r["total_amount"] for r in invoices] == totals
    assert {r["status"] for r in invoices} == {"issued"}
    assert all(r["amount_due"] == r["total_amount"] for r in invoices)
    globex_rows = invoices[:3]
    assert {r["counterpart_id"] for r in globex_rows} == {existing["id"]}
    assert (
        globex_rows[0]["counterpart_billing_address"]["id"]
        == (existing["default_billing_address_id"])
    )
    assert (
        globex_rows[1]["counterpart_billing_address"]["id"]
        == (existing["default_billing_address_id"])
    )
    assert globex_rows[2]["counterpart_billing_address"]["line1"] == "9 Elm St"
    taxed = invoices[3]
    assert taxed["subtotal"] == 375_000
    assert taxed["total_vat_amount"] == 30_938  # 8.25 % of 3750.00, half-even
    assert taxed["memo"] == "Thanks!"
    assert taxed["line_items"][0]["quantity"] == 3
    assert taxed["payment_terms"]["term_final"] == {"number_of_days": 30}
    assert taxed["due_date"] == (clock.today() + timedelta(days=30)).isoformat()
    assert invoices[4]["counterpart_id"] == taxed["counterpart_id"]
    assert invoices[4]["counterpart_billing_address"] == taxed["counterpart_billing_address"]
    ada = invoices[5]
    assert ada["counterpart_type"] == "individual"
    assert ada["issue_date"].startswith(issue_date.isoformat())
    assert ada["due_date"] == due_date.isoformat()

    counterparts = await get_all(client, tenant, "/v1/counterparts")
    assert len(counterparts) == 3
    person = next(c for c in counterparts if c["type"] == "individual")
    assert person["individual"]["first_name"] == "Ada"
    assert person["individual"]["last_name"] == "Lovelace"
    assert person["individual"]["is_customer"] is True
    addresses = await get_all(client, tenant, f"/v1/counterparts/{existing['id']}/addresses")
    assert len(addresses) == 2

    events = await event_actions(db) - before
    assert events == Counter(
        {"receivable.created": 6, "counterpart.created": 2, "counterpart_address.created": 3}
    )
    # Imported invoices are ordinary ones: the lifecycle goes on, numbering continues.
    paid = await client.post(
        f"/v1/receivables/{taxed['id']}/mark_as_paid", json={}, headers=tenant.headers
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid"
    assert await get_all(client, other_tenant, "/v1/receivables") == []


async def test_numbers_skip_those_given_by_hand(
    client: httpx.AsyncClient, tenant: Tenant, db: Database, tmp_path: Path
) -> None:
    counterpart = await globex(client, tenant)
    draft = {
        "type": "invoice",
        "counterpart_id": counterpart["id"],
        "counterpart_billing_address_id": counterpart["default_billing_address_id"],
        "currency": "USD",
        "document_id": "INV-00002",
        "line_items": [
            {
                "quantity": 1,
                "product": {"name": "X", "price": {"currency": "USD", "value": 100}},
                "tax_rate_value": 0,
            }
        ],
    }
    response = await client.post("/v1/receivables", json=draft, headers=tenant.headers)
    assert response.status_code == 201, response.text
    rows = [invoice_row(), invoice_row(document_id="INV-00004"), invoice_row(), invoice_row()]
    path = write_csv(tmp_path / "f.csv", [*RECEIVABLE_HEADER, "document_id"], rows)

    summary = await run_import(db, "receivables", tenant.entity_id, path)

    assert summary.document_ids == ["INV-00001", "INV-00003", "INV-00005"]
    invoices = await get_all(client, tenant, "/v1/receivables", status="issued")
    assert sorted(r["document_id"] for r in invoices) == [
        "INV-00001",
        "INV-00003",
        "INV-00004",
        "INV-00005",
    ]


async def test_bad_rows_are_each_reported_and_nothing_is_imported(
    client: httpx.AsyncClient, tenant: Tenant, db: Database, tmp_path: Path
) -> None:
    counterpart = await globex(client, tenant)
    taken = await client.post(
        "/v1/receivables",
        json={
            "type": "invoice",
            "counterpart_id": counterpart["id"],
            "counterpart_billing_address_id": counterpart["default_billing_address_id"],
            "currency": "USD",
            "document_id": "OLD-1",
            "line_items": [],
        },
        headers=tenant.headers,
    )
    assert taken.status_code == 201, taken.text
    tomorrow = (clock.today() + timedelta(days=1)).isoformat()
    rows = [
        invoice_row(),  # 2: good
        invoice_row(unit_price="12,50"),  # 3
        invoice_row(unit_price="1.001"),  # 4
        invoice_row(currency="XYZ"),  # 5
        invoice_row(payment_terms_days="", due_date="2026-13-01"),  # 6
        invoice_row(issue_date="2020-01-10", due_date="2020-01-09", payment_terms_days=""),  # 7
        invoice_row(counterpart_name="Other Co", country="XX"),  # 8
        invoice_row(document_id="A-1"),  # 9: good
        invoice_row(document_id="A-1"),  # 10
        invoice_row(document_id="OLD-1"),  # 11
        invoice_row(product_name=""),  # 12
        invoice_row(counterpart_name="Cher", counterpart_type="individual"),  # 13
        invoice_row(counterpart_name="Globex Corp", counterpart_type="individual"),  # 14
        invoice_row(issue_date=tomorrow),  # 15
        invoice_row(due_date="2030-01-01"),  # 16: both due_date and payment_terms_days
        invoice_row(counterpart_name="Part Address Co", **dict.fromkeys(ADDRESS, "")),  # 17
        invoice_row(tax_rate="10001", quantity="-1"),  # 18
        invoice_row(counterpart_email="billing@initech.example"),  # 19: differs from line 2
        invoice_row(counterpart_name="No Address Co", **dict.fromkeys(ADDRESS, ""), country=""),
    ]
    path = write_csv(tmp_path / "bad.csv", [*RECEIVABLE_HEADER, "document_id"], rows)
    with path.open("a", encoding="utf-8") as file:
        file.write("Too,few,fields\n")  # 20
    before = await event_actions(db)

    errors = await rejected(db, "receivables", tenant.entity_id, path)

    assert sorted(errors) == [*range(3, 9), *range(10, 22)]
    assert errors[3] == "unit_price: '12,50' is not a decimal number like 1250.00"
    assert errors[4] == "unit_price: 1.001 has more decimals than USD allows"
    assert errors[5] == "currency: unsupported currency 'XYZ'"
    assert errors[6] == "due_date: '2026-13-01' is not a date (YYYY-MM-DD)"
    assert errors[7] == "due_date: 2020-01-09 is before the issue date 2020-01-10"
    assert errors[8] == "country: 'XX' is not an ISO 3166-1 alpha-2 country code"
    assert errors[10] == "document_id: 'A-1' is also on line 9"
    assert errors[11] == "document_id: 'OLD-1' is already used by a receivable"
    assert errors[12] == "product_name: required"
    assert "an individual needs a first and a last name" in errors[13]
    assert errors[14] == "counterpart_type: 'Globex Corp' is an organization in this entity"
    assert errors[15].startswith("issue_date: ")
    assert "is after today" in errors[15]
    assert errors[16] == "give either due_date or payment_terms_days (exactly one of them)"
    assert errors[17] == "city: required; address_line1: required; postal_code: required"
    assert "tax_rate: Input should be less than or equal to 10000" in errors[18]
    assert "quantity: '-1' is not a decimal number" in errors[18]
    assert errors[19] == "counterpart_email: line 2 gives 'ap@initech.example' for 'Initech LLC'"
    assert "counterpart 'No Address Co' is new: give its address" in errors[20]
    assert errors[21] == "has 3 fields, the header has 18"

    assert await count(db, Receivable) == 1  # the draft made above
    assert await count(db, Counterpart) == 1
    assert await event_actions(db) == before


async def test_dry_run_checks_and_writes_nothing(
    client: httpx.AsyncClient, tenant: Tenant, db: Database, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "f.csv", RECEIVABLE_HEADER, [invoice_row(), invoice_row()])
    before = await event_actions(db)

    summary = await run_import(db, "receivables", tenant.entity_id, path, dry_run=True)

    assert summary.dry_run
    assert (summary.rows, summary.counterparts_created, summary.addresses_created) == (2, 1, 1)
    assert summary.totals == {"USD": 250_000}
    assert summary.document_ids == []
    assert await count(db, Receivable) == 0
    assert await count(db, Counterpart) == 0
    assert await event_actions(db) == before
    # A dry run reserves no numbers: the real import starts at 1.
    summary = await run_import(db, "receivables", tenant.entity_id, path)
    assert summary.document_ids == ["INV-00001", "INV-00002"]


async def test_a_number_taken_while_importing_is_a_conflict_and_nothing_is_written(
    client: httpx.AsyncClient,
    tenant: Tenant,
    db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counterpart = await globex(client, tenant)
    draft = {
        "type": "invoice",
        "counterpart_id": counterpart["id"],
        "counterpart_billing_address_id": counterpart["default_billing_address_id"],
        "currency": "USD",
        "document_id": "A-1",
        "line_items": [],
    }
    response = await client.post("/v1/receivables", json=draft, headers=tenant.headers)
    assert response.status_code == 201, response.text

    async def nothing_in_use(*args: Any) -> list[Any]:
        return []  # as if A-1 were taken after the check

    monkeypatch.setattr("fundline.imports.service.numbers_in_use", nothing_in_use)
    rows = [invoice_row(), invoice_row(document_id="A-1")]
    path = write_csv(tmp_path / "f.csv", [*RECEIVABLE_HEADER, "document_id"], rows)
    with pytest.raises(Conflict, match="nothing was imported: run the import again"):
        await run_import(db, "receivables", tenant.entity_id, path)
    assert await count(db, Receivable) == 1
    assert await count(db, Counterpart) == 1


async def test_unknown_entity_is_not_found(db: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", RECEIVABLE_HEADER, [invoice_row()])
    with pytest.raises(NotFound):
        await run_import(db, "receivables", str(uuid.uuid4()), path)


# --- headers and files -----------------------------------------------------------------------


def header_problems(tmp_path: Path, text: str, kind: str = "receivables") -> list[str]:
    path = tmp_path / "h.csv"
    path.write_bytes(text.encode("utf-8"))
    with pytest.raises(FileRejected) as caught:
        read_file(path, RECEIVABLES if kind == "receivables" else PAYABLES)
    [error] = caught.value.errors
    assert error.line == 1
    return error.reason.split("; ")


def test_header_errors(tmp_path: Path) -> None:
    assert header_problems(
        tmp_path, "counterpart_name,currency,unit_price,due_date\nx,USD,1,\n"
    ) == ["missing required column(s) product_name"]
    problems = header_problems(
        tmp_path,
        "counterpart_name,currency,product_name,unit_price,due_date,colour,currency\n",
    )
    assert problems[0] == "column currency appears twice"
    assert problems[1].startswith(
        "unknown column(s) colour (the columns of a receivables file are "
    )
    assert header_problems(tmp_path, "counterpart_name,currency,product_name,unit_price\n") == [
        "needs one of the columns due_date or payment_terms_days"
    ]
    assert header_problems(tmp_path, "counterpart_name,document_id,currency\n", "payables") == [
        "needs one of the columns subtotal or total_amount",
        "needs one of the columns due_date or payment_terms_days",
    ]
    assert header_problems(tmp_path, "") == ["the file is empty: it needs a header row"]
    assert header_problems(tmp_path, ",,\n\n") == ["the file is empty: it needs a header row"]
    assert header_problems(tmp_path, ",".join(RECEIVABLE_HEADER) + "\n\n") == [
        "the file has a header but no rows"
    ]


def test_reading_keeps_line_numbers_across_quoted_newlines_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text(
        "\ufeffCounterpart_Name , currency,product_name,unit_price,payment_terms_days\r\n"
        '"Acme\r\nInc",USD,Widget,1.00,30\r\n'
        "\r\n"
        "Globex,USD,Gadget,2.00,30\r\n"
        '"unterminated,USD\r\n',
        encoding="utf-8",
    )
    rows, errors = read_file(path, RECEIVABLES)
    assert [(line, cells["counterpart_name"]) for line, cells in rows] == [
        (2, "Acme\r\nInc"),
        (5, "Globex"),
    ]
    assert [e.line for e in errors] == [6]
    assert errors[0].reason.startswith("not valid CSV")


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"counterpart_name,currency\n\xff\xfe\n")
    with pytest.raises(FileRejected) as caught:
        read_file(path, RECEIVABLES)
    assert caught.value.errors[0].reason.startswith("the file is not UTF-8 text")


# --- payables --------------------------------------------------------------------------------


async def test_payables_import(
    client: httpx.AsyncClient, tenant: Tenant, db: Database, tmp_path: Path
) -> None:
    vendor = await create_counterpart(
        client,
        tenant,
        organization={
            "legal_name": "Paper Mill Inc",
            "is_customer": False,
            "is_vendor": True,
            "email": "ar@papermill.example",
            "address": dict(US_ADDRESS),
        },
    )
    old = await create_payable(client, tenant, counterpart_id=vendor["id"], status="new")
    issued = clock.today() - timedelta(days=5)
    rows = [
        bill_row(**dict.fromkeys(ADDRESS, ""), country="", tax_rate="825"),
        bill_row(
            document_id="PM-2",
            subtotal="",
            total_amount="1234.56",
            status="new",
            issued_at=issued.isoformat(),
            due_date="",
            payment_terms_days="45",
        ),
        bill_row(counterpart_name="Ink Co", document_id="PM-1", subtotal="0.5"),
        bill_row(counterpart_name="Ink Co", document_id="INK-2", currency="JPY", subtotal="1500"),
    ]
    path = write_csv(tmp_path / "bills.csv", PAYABLE_HEADER, rows)
    before = await event_actions(db)

    summary = await run_import(db, "payables", tenant.entity_id, path)

    assert (summary.rows, summary.counterparts_created, summary.counterparts_reused) == (4, 1, 1)
    assert summary.addresses_created == 2  # Ink Co's, and 1 Main St for Paper Mill
    assert summary.totals == {"JPY": 1500, "USD": 10_825 + 123_456 + 50}
    imported = [p for p in await get_all(client, tenant, "/v1/payables") if p["id"] != old["id"]]
    assert sorted(p["document_id"] for p in imported) == ["INK-2", "PM-1", "PM-1", "PM-2"]
    payables = {(p["counterpart_id"] == vendor["id"], p["document_id"]): p for p in imported}
    pm1 = payables[True, "PM-1"]
    assert pm1["status"] == "waiting_to_be_paid"
    assert (pm1["subtotal"], pm1["tax"], pm1["tax_amount"], pm1["total_amount"]) == (
        10_000,
        825,
        825,
        10_825,
    )
    assert pm1["counterpart"]["name"] == "Paper Mill Inc"
    assert pm1["counterpart_address_id"] == vendor["default_billing_address_id"]
    pm2 = payables[True, "PM-2"]
    assert (pm2["status"], pm2["total_amount"]) == ("new", 123_456)
    assert pm2["due_date"] == (issued + timedelta(days=45)).isoformat()
    assert "counterpart" not in pm2  # still in review: no snapshot yet
    assert payables[False, "PM-1"]["total_amount"] == 50
    assert (payables[False, "INK-2"]["total_amount"], payables[False, "INK-2"]["currency"]) == (
        1500,
        "JPY",
    )
    # A new address given for the existing vendor is added to it and used.
    assert pm2["counterpart_address_id"] not in (None, vendor["default_billing_address_id"])
    ink = await get_all(client, tenant, "/v1/counterparts", is_vendor="true")
    assert sorted(c["organization"]["legal_name"] for c in ink) == ["Ink Co", "Paper Mill Inc"]
    events = await event_actions(db) - before
    assert events == Counter(
        {"payable.created": 4, "counterpart.created": 1, "counterpart_address.created": 2}
    )
    async with db.session() as session:
        statuses = await session.scalars(
            select(Event.object["status"].as_string()).where(Event.action == "payable.created")
        )
        assert Counter(statuses) == Counter({"waiting_to_be_paid": 3, "new": 2})
    # An imported payable moves on like any other.
    paid = await client.post(f"/v1/payables/{pm1['id']}/mark_as_paid", headers=tenant.headers)
    assert paid.status_code == 200, paid.text


async def test_bad_payable_rows(
    client: httpx.AsyncClient, tenant: Tenant, db: Database, tmp_path: Path
) -> None:
    vendor = await create_counterpart(
        client,
        tenant,
        organization={
            "legal_name": "Paper Mill Inc",
            "is_customer": False,
            "is_vendor": True,
            "address": dict(US_ADDRESS),
        },
    )
    await create_payable(client, tenant, counterpart_id=vendor["id"], status="new")
    existing = (await get_all(client, tenant, "/v1/payables"))[0]["document_id"]
    rows = [
        bill_row(document_id="OK-1"),  # 2: good
        bill_row(document_id="OK-1"),  # 3: same vendor, same document
        bill_row(document_id=existing),  # 4: already a payable of this vendor
        bill_row(document_id="T-1", tax_rate="1000", total_amount="100.00"),  # 5
        bill_row(document_id="S-1", status="paid"),  # 6
        bill_row(document_id="A-1", subtotal=""),  # 7
        bill_row(document_id="D-1", issued_at="2030-01-02", due_date="2030-01-01"),  # 8
        bill_row(document_id="", subtotal="1.234"),  # 9
        bill_row(counterpart_name="Ink Co", document_id=existing),  # 10: another vendor: fine
    ]
    path = write_csv(tmp_path / "bad.csv", PAYABLE_HEADER, rows)

    errors = await rejected(db, "payables", tenant.entity_id, path)

    assert sorted(errors) == [3, 4, 5, 6, 7, 8, 9]
    assert errors[3] == "document_id: 'OK-1' of 'Paper Mill Inc' is also on line 2"
    assert errors[4] == f"document_id: {existing!r} of 'Paper Mill Inc' is already a payable"
    assert (
        errors[5] == "total_amount: total_amount 10000 is not subtotal 10000 plus tax_amount 1000"
    )
    assert errors[6].startswith("status: 'paid' is not allowed")
    assert errors[7] == "give subtotal or total_amount"
    assert errors[8] == "due_date: due_date cannot be before issued_at"
    assert errors[9] == "document_id: required"
    assert await count(db, Payable) == 1
    assert await count(db, CounterpartAddress) == 1


# --- the command -----------------------------------------------------------------------------


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    settings = make_settings(database_url)
    assert settings.secret_key is not None
    return {
        "FUNDLINE_DATABASE_URL": database_url,
        "FUNDLINE_SECRET_KEY": settings.secret_key,
        "FUNDLINE_MODE": "sandbox",
        "FUNDLINE_LOG_LEVEL": "WARNING",
        "COLUMNS": "200",
    }


async def fundline(env: dict[str, str], *args: str) -> Result:
    """``fundline *args`` as a user runs it (in a thread: it runs its own event loop)."""
    return await asyncio.to_thread(lambda: CliRunner().invoke(cli_app, list(args), env=env))


async def test_command_imports_a_good_file(
    client: httpx.AsyncClient, tenant: Tenant, db: Database, env: dict[str, str], tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "f.csv", RECEIVABLE_HEADER, [invoice_row(), invoice_row()])

    dry = await fundline(
        env, "import", "receivables", str(path), "--entity", tenant.entity_id, "--dry-run"
    )
    assert dry.exit_code == 0, dry.output
    assert "Dry run: all 2 rows are valid; nothing was written." in dry.stdout
    assert await count(db, Receivable) == 0

    result = await fundline(env, "import", "receivables", str(path), "--entity", tenant.entity_id)

    assert result.exit_code == 0, result.output
    assert f"Imported 2 receivables into entity {tenant.entity_id}." in result.stdout
    assert "Counterparts: 1 created, 0 reused; addresses: 1 created." in result.stdout
    assert "Total amount: 2,500.00 USD." in result.stdout
    assert "Document numbers: INV-00001 to INV-00002." in result.stdout
    assert "Events: 4 written to the outbox." in result.stdout
    assert "Validating" in result.stderr
    assert "Importing" in result.stderr
    assert len(await get_all(client, tenant, "/v1/receivables")) == 2


async def test_command_lists_bad_rows_and_exits_1(
    tenant: Tenant, db: Database, env: dict[str, str], tmp_path: Path
) -> None:
    rows = [invoice_row(unit_price="free") for _ in range(60)] + [invoice_row()]
    path = write_csv(tmp_path / "f.csv", RECEIVABLE_HEADER, rows)

    result = await fundline(env, "import", "receivables", str(path), "--entity", tenant.entity_id)

    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    start = next(i for i, text in enumerate(lines) if text.startswith("Error:"))
    assert lines[start] == f"Error: {path}: 60 bad line(s) out of 61 rows; nothing was imported."
    assert lines[start + 1] == "  line 2: unit_price: 'free' is not a decimal number like 1250.00"
    assert lines[start + 50] == "  line 51: unit_price: 'free' is not a decimal number like 1250.00"
    assert lines[start + 51] == "  … and 10 more"
    assert await count(db, Receivable) == 0
    assert await count(db, Counterpart) == 0


async def test_command_refuses_a_bad_header_and_an_unknown_entity(
    tenant: Tenant, env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "f.csv"
    path.write_text("counterpart_name,amount\nAcme,1\n", encoding="utf-8")
    result = await fundline(env, "import", "payables", str(path), "--entity", tenant.entity_id)
    assert result.exit_code == 1, result.output
    assert "the file was refused" in result.stderr
    assert "line 1: unknown column(s) amount" in result.stderr

    good = write_csv(tmp_path / "g.csv", PAYABLE_HEADER, [bill_row()])
    unknown = str(uuid.uuid4())
    result = await fundline(env, "import", "payables", str(good), "--entity", unknown)
    assert result.exit_code == 1, result.output
    assert f"Error: Entity {unknown} not found" in result.stderr

    result = await fundline(env, "import", "payables", str(good))
    assert result.exit_code == 2  # --entity is required


# --- 100,000 rows ----------------------------------------------------------------------------


async def test_a_hundred_thousand_rows(tenant: Tenant, db: Database, tmp_path: Path) -> None:
    rows = 100_000
    today = clock.today()
    path = tmp_path / "big.csv"
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(RECEIVABLE_HEADER)
        for n in range(rows):
            customer = n % 250
            writer.writerow(
                [
                    f"Customer {customer:03d} LLC",
                    "organization",
                    f"ap{customer}@customer.example",
                    f"{customer} Main St",
                    "Austin",
                    "TX",
                    "78701",
                    "US",
                    "USD",
                    "Services",
                    str(1 + n % 3),
                    f"{1 + n % 5000}.{n % 100:02d}",
                    str(n % 3 * 500),
                    (today - timedelta(days=n % 30)).isoformat(),
                    "",
                    "30",
                    "",
                ]
            )

    summary = await run_import(db, "receivables", tenant.entity_id, path)

    assert summary.rows == rows
    assert summary.counterparts_created == 250
    assert summary.addresses_created == 250
    assert len(summary.document_ids) == rows
    assert summary.document_ids[0] == "INV-00001"
    assert summary.document_ids[-1] == "INV-100000"
    assert await count(db, Receivable, Receivable.status == "issued") == rows
    assert await count(db, Counterpart) == 250
    async with db.session() as session:
        total = await session.scalar(select(func.sum(Receivable.total_amount)))
        numbers = set(await session.scalars(select(Receivable.document_id)))
    assert total == summary.totals["USD"]
    assert numbers == set(summary.document_ids)
    assert (await event_actions(db))["receivable.created"] == rows


def documented_examples(repo_root: Path) -> list[str]:
    docs = (repo_root / "docs" / "import.md").read_text(encoding="utf-8")
    return re.findall(r"```csv\n(.*?)```", docs, flags=re.DOTALL)


def test_columns_are_documented(repo_root: Path) -> None:
    docs = (repo_root / "docs" / "import.md").read_text(encoding="utf-8")
    for spec in (RECEIVABLES, PAYABLES):
        for column in spec.names:
            assert f"`{column}`" in docs, column


async def test_documented_examples_import_as_described(
    client: httpx.AsyncClient, tenant: Tenant, db: Database, repo_root: Path, tmp_path: Path
) -> None:
    invoices, bills = documented_examples(repo_root)
    (tmp_path / "invoices.csv").write_text(invoices, encoding="utf-8")
    (tmp_path / "bills.csv").write_text(bills, encoding="utf-8")

    receivables = await run_import(db, "receivables", tenant.entity_id, tmp_path / "invoices.csv")
    payables = await run_import(db, "payables", tenant.entity_id, tmp_path / "bills.csv")

    assert (receivables.rows, receivables.counterparts_created) == (3, 2)
    first = (await get_all(client, tenant, "/v1/receivables", document_id="INV-00001"))[0]
    assert first["total_amount"] == 405_938
    assert first["memo"] == "Project Alpha, phase 1"
    assert (payables.rows, payables.counterparts_created, payables.addresses_created) == (3, 2, 2)
    assert payables.totals == {"JPY": 16_500, "USD": 108_250 + 25_000}
    statuses = {
        p["document_id"]: p["status"] for p in await get_all(client, tenant, "/v1/payables")
    }
    assert statuses == {
        "PM-1001": "waiting_to_be_paid",
        "PM-1002": "new",
        "INK-7": "approve_in_progress",
    }
