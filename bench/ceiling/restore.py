"""Put the seeded database back after a write scenario, so every scenario (and every run)
starts from the same data and each receivable can be financed again.

Rows the run created are found by their creation time (the seed's rows are all older than
its manifest); what the run changed in older rows is recomputed from what remains: an
offer's reservation is the sum of its NEW invoices' requested amounts (as
``lending.ledger.reconcile`` checks it), and the hot entities' invoice counters start over
(the numbers they gave belonged to receivables deleted here; issuing checks a number is free).
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

DELETES = (
    "DELETE FROM financing_status_history WHERE at >= $1",
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


def now() -> datetime:
    """The mark to restore to, in the naive UTC both servers write."""
    return datetime.now(UTC).replace(tzinfo=None)


async def restore(dsn: str, entity_ids: list[str], since: datetime) -> dict[str, int]:
    """Delete what was written since ``since`` and recompute what it changed; returns the
    rows deleted per table."""
    conn = await asyncpg.connect(dsn)
    deleted: dict[str, int] = {}
    try:
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
