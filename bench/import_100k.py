"""Time ``fundline import receivables`` (the service, without the terminal) on a large file.

    python -m bench.import_100k --database-url postgresql://postgres@127.0.0.1:5432/fundline_bench_import

Creates the database (dropping it first; SQLite URLs work too, as a file), runs the
migrations, makes a partner and a US entity, writes a CSV of ``--rows`` invoices over
``--customers`` customers, then imports it in one transaction and commits. Prints the time of
each phase (validation, database checks and numbering, writing) and rows per second, and
writes ``bench/results/import-<rows>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import func, select

from fundline.auth.service import create_partner
from fundline.imports.service import import_receivables
from fundline.kit import clock
from fundline.kit.db import Database
from fundline.models import Entity, Event, Receivable
from fundline.operations.migrations import upgrade

RESULTS = Path(__file__).resolve().parent / "results"
HEADER = (
    "counterpart_name,counterpart_email,address_line1,city,state,postal_code,country,currency,"
    "product_name,quantity,unit_price,tax_rate,issue_date,payment_terms_days,memo"
).split(",")


def write_file(path: Path, rows: int, customers: int) -> None:
    today = clock.today()
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        for n in range(rows):
            c = n % customers
            writer.writerow(
                [
                    f"Customer {c:05d} LLC",
                    f"ap{c}@customer.example",
                    f"{c + 1} Main St",
                    "Austin",
                    "TX",
                    "78701",
                    "US",
                    "USD",
                    "Consulting",
                    str(1 + n % 4),
                    f"{1 + n % 9000}.{n % 100:02d}",
                    str(n % 3 * 500),
                    (today - timedelta(days=n % 60)).isoformat(),
                    "30",
                    f"Order {n}",
                ]
            )


class Timer:
    """A Progress that records when each phase starts."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = [("start", time.perf_counter())]

    def phase(self, description: str, total: int) -> None:
        self.marks.append((description, time.perf_counter()))

    def advance(self, amount: int) -> None:
        pass


async def fresh_database(url: str) -> None:
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).unlink(missing_ok=True)
        return
    base, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(base.replace("+asyncpg", "") + "/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def main(url: str, rows: int, customers: int) -> dict[str, object]:
    await fresh_database(url)
    await upgrade(url)
    db = Database(url)
    try:
        async with db.session() as session, session.begin():
            partner = await create_partner(session, name="Bench partner")
            entity = Entity(
                id=uuid.uuid4(),
                partner_id=partner.partner_id,
                type="organization",
                address={
                    "line1": "100 Congress Ave",
                    "city": "Austin",
                    "state": "TX",
                    "postal_code": "78701",
                    "country": "US",
                },
                organization={"legal_name": "Bench Imports LLC"},
            )
            session.add(entity)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "receivables.csv"
            write_file(path, rows, customers)
            timer = Timer()
            async with db.session() as session, session.begin():
                summary = await import_receivables(session, entity.id, path, progress=timer)
                timer.phase("commit", 0)
            timer.phase("done", 0)
        async with db.session() as session:
            stored = await session.scalar(select(func.count()).select_from(Receivable))
            events = await session.scalar(select(func.count()).select_from(Event))
    finally:
        await db.dispose()
    assert stored == rows, (stored, rows)
    marks = dict(timer.marks)
    start, validating = marks["start"], marks["Validating"]
    importing, commit, done = marks["Importing"], marks["commit"], marks["done"]
    total = done - start
    return {
        "database": url.split(":", 1)[0],
        "rows": rows,
        "customers": customers,
        "events": events,
        "seconds": {
            "read_file": round(validating - start, 2),
            "validate_and_check": round(importing - validating, 2),
            "write": round(commit - importing, 2),
            "commit": round(done - commit, 2),
            "total": round(total, 2),
        },
        "rows_per_second": round(rows / total),
        "documents": [summary.document_ids[0], summary.document_ids[-1]],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/fundline_bench_import",
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=1_000)
    args = parser.parse_args()
    url = args.database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    result = asyncio.run(main(url, args.rows, args.customers))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"import-{args.rows}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))  # noqa: T201
