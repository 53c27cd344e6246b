"""``GET /v1/financing_offers``: Fundline's one statement for the business, its offers and their
plans (SQL text copied from Fundline's statement log), and the same JSON.

The entity lookup Fundline makes before the handler (does this entity belong to the caller)
is part of what every authenticated request pays, which the ceiling does not do, as for the
lists.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from bench.ceiling.lists import JSON_OPTIONS

OFFERS = (
    "SELECT financing_businesses.status, financing_offers.id, financing_offers.status AS status_1, "
    "financing_offers.total_amount, financing_offers.reserved_amount, "
    "financing_offers.outstanding_amount, financing_offers.currency, financing_offers.expires_at, "
    "financing_pricing_plans.id AS id_1, financing_pricing_plans.advance_rate_percentage, "
    "financing_pricing_plans.fee_percentage, financing_pricing_plans.repayment_type, "
    "financing_pricing_plans.repayment_duration_days, financing_pricing_plans.instalments, "
    "financing_pricing_plans.grace_days \n"
    "FROM financing_businesses "
    "LEFT OUTER JOIN financing_offers "
    "ON financing_offers.entity_id = financing_businesses.entity_id "
    "LEFT OUTER JOIN financing_pricing_plans "
    "ON financing_pricing_plans.offer_id = financing_offers.id \n"
    "WHERE financing_businesses.entity_id = $1::UUID "
    "ORDER BY financing_offers.created_at DESC, financing_offers.id DESC, "
    "financing_pricing_plans.position"
)


def statements(offers: int) -> list[str]:
    """The statements for an entity with a business and ``offers`` offers: one, whatever the
    number."""
    return [OFFERS]


async def handle(pool: asyncpg.Pool, headers: dict[bytes, bytes]) -> bytes:
    entity_id = headers[b"x-monite-entity-id"].decode()
    async with pool.acquire() as conn:
        rows = await conn.fetch(OFFERS, entity_id)
    if not rows:
        return orjson.dumps({"business_status": "NEW", "offers": []})
    offers: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    last = None
    for r in rows:
        if r[1] is None:
            break
        if r[1] != last:
            last, plans = r[1], []
            offers.append(
                {
                    "id": r[1],
                    "status": r[2],
                    "total_amount": r[3],
                    "available_amount": max(0, r[3] - r[4] - r[5]),
                    "currency": r[6],
                    "pricing_plans": plans,
                    "expires_at": r[7],
                }
            )
        if r[8] is not None:
            plan = {
                "id": r[8],
                "advance_rate_percentage": r[9],
                "fee_percentage": r[10],
                "repayment_type": r[11],
                "instalments": r[13],
                "grace_days": r[14],
            }
            if r[12] is not None:
                plan["repayment_duration_days"] = r[12]
            plans.append(plan)
    return orjson.dumps({"business_status": rows[0][0], "offers": offers}, option=JSON_OPTIONS)
