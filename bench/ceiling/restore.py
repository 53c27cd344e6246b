"""Put the seeded database back after a write scenario, so every scenario (and every run)
starts from the same data and each receivable can be financed again.

Rows the run created are found by their creation time (the seed creates none after its
manifest's ``created_at``); what the run changed in older rows is recomputed from what remains: an
offer's reservation is the sum of its NEW invoices' requested amounts (as
``lending.ledger.reconcile`` checks it), and the hot entities' invoice counters start over
(the numbers they gave belonged to receivables deleted here; issuing checks a number is free).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg

DELETES = (
    # Every history row a run writes is of an invoice it created (the seed's own rows may be
    # dated a little after the seed).
    "DELETE FROM financing_status_history WHERE financing_invoice_id IN "
    "(SELECT id FROM financing_invoices WHERE created_at >= $1)",
    "DELETE FROM financing_instalments WHERE financing_invoice_id IN "
    "(SELECT id FROM financing_invoices WHERE created_at >= $1)",
    "DELETE FROM financing_invoices WHERE created_at >= $1",
    "DELETE FROM connect_sessions WHERE created_at >= $1",
    "DELETE FROM connect_tokens WHERE created_at >= $1",
    "DELETE FROM financing_requests WHERE created_at >= $1",
    "DELETE FROM events WHERE created_at >= $1",
    "DELETE FROM receivables WHERE created_at >= $1",
    "DELETE FROM access_tokens WHERE created_at >= $1",
)
RESERVATIONS = """
UPDATE financing_offers o SET reserved_amount = coalesce(n.reserved, 0)
FROM financing_offers o2 LEFT JOIN (
  SELECT offer_id, sum(requested_amount) AS reserved FROM financing_invoices
  WHERE entity_id = ANY($1::uuid[]) AND status = 'NEW' GROUP BY offer_id
) n ON n.offer_id = o2.id
WHERE o.id = o2.id AND o2.entity_id = ANY($1::uuid[])
  AND o.reserved_amount IS DISTINCT FROM coalesce(n.reserved, 0)
"""
COUNTERS = "DELETE FROM receivable_counters WHERE entity_id = ANY($1::uuid[])"


async def connect(dsn: str, *, limit: float = 60.0) -> asyncpg.Connection:
    """A connection, waiting while PostgreSQL has none to spare (other benchmarks and test
    suites share its ``max_connections``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        try:
            return await asyncpg.connect(dsn)
        except asyncpg.TooManyConnectionsError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


def now() -> datetime:
    """The mark to restore to, in the naive UTC both servers write."""
    return datetime.now(UTC).replace(tzinfo=None)


async def restore(dsn: str, entity_ids: list[str], since: datetime) -> dict[str, int]:
    """Delete what was written since ``since`` and recompute what it changed; returns the
    rows deleted per table."""
    conn = await connect(dsn)
    deleted: dict[str, int] = {}
    try:
        await quiet(conn)
        async with conn.transaction():
            for statement in DELETES:
                table = statement.split()[2]
                count = int((await conn.execute(statement, since)).split()[-1])
                if count:
                    deleted[table] = deleted.get(table, 0) + count
            await conn.execute(RESERVATIONS, entity_ids)
            await conn.execute(COUNTERS, entity_ids)
    finally:
        await conn.close()
    return deleted


BUSY = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND state IN ('active', 'idle in transaction')
"""


async def quiet(conn: asyncpg.Connection, *, limit: float = 30.0) -> None:
    """Wait until no other session of the database is in a statement or a transaction: a
    single-use scenario stops wrk with requests still running on the server, whose rows would
    otherwise land while (or after) they are deleted."""
    loop = asyncio.get_running_loop()
    deadline, calm = loop.time() + limit, 0
    while calm < 3 and loop.time() < deadline:
        await asyncio.sleep(0.2)
        calm = calm + 1 if await conn.fetchval(BUSY) == 0 else 0
