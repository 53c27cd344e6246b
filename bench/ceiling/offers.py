"""``GET /v1/financing_offers``: Fundline's statements for the business, its offers and their
plans (SQL text copied from Fundline's statement log), and the same JSON.

The entity lookup Fundline makes before the handler (does this entity belong to the caller)
is part of what every authenticated request pays, which the ceiling does not do, as for the
lists.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from bench.ceiling.lists import JSON_OPTIONS, in_sql

BUSINESS = (
    "SELECT financing_businesses.entity_id, financing_businesses.partner_id, "
    "financing_businesses.status, financing_businesses.legal_name, financing_businesses.ein, "
    "financing_businesses.address, financing_businesses.owner, "
    "financing_businesses.bank_routing_number, financing_businesses.bank_account_number, "
    "financing_businesses.decision_note, financing_businesses.onboarded_at, "
    "financing_businesses.lender_ref, financing_businesses.lender_users, "
    "financing_businesses.lender_offers_synced_at, financing_businesses.lender_invoices_synced_at, "
    "financing_businesses.id, financing_businesses.created_at, financing_businesses.updated_at "
    "FROM financing_businesses WHERE financing_businesses.entity_id = $1::UUID "
    "AND financing_businesses.entity_id = $2"
)
OFFERS = (
    "SELECT financing_offers.business_id, financing_offers.entity_id, financing_offers.status, "
    "financing_offers.currency, financing_offers.total_amount, financing_offers.reserved_amount, "
    "financing_offers.outstanding_amount, financing_offers.expires_at, "
    "financing_offers.accepted_at, financing_offers.issued_at, financing_offers.lender_ref, "
    "financing_offers.lender_product_ref, financing_offers.id, financing_offers.created_at, "
    "financing_offers.updated_at FROM financing_offers "
    "WHERE financing_offers.entity_id = $1::UUID AND financing_offers.entity_id = $2 "
    "ORDER BY financing_offers.created_at DESC, financing_offers.id DESC"
)
PLANS = (
    "SELECT financing_pricing_plans.offer_id, financing_pricing_plans.position, "
    "financing_pricing_plans.repayment_type, financing_pricing_plans.advance_rate_percentage, "
    "financing_pricing_plans.fee_percentage, financing_pricing_plans.repayment_duration_days, "
    "financing_pricing_plans.instalments, financing_pricing_plans.grace_days, "
    "financing_pricing_plans.id FROM financing_pricing_plans "
    "WHERE financing_pricing_plans.offer_id IN ({ids}) "
    "ORDER BY financing_pricing_plans.offer_id, financing_pricing_plans.position"
)


def statements(offers: int) -> list[str]:
    """The statements for an entity with a business and ``offers`` offers."""
    return [BUSINESS, OFFERS] + ([in_sql(PLANS, offers)] if offers else [])


async def handle(pool: asyncpg.Pool, headers: dict[bytes, bytes]) -> bytes:
    entity_id = headers[b"x-monite-entity-id"].decode()
    async with pool.acquire() as conn:
        business = await conn.fetchrow(BUSINESS, entity_id, entity_id)
        if business is None:
            return orjson.dumps({"business_status": "NEW", "offers": []})
        offers = await conn.fetch(OFFERS, entity_id, entity_id)
        plans: dict[str, list[dict[str, Any]]] = {o[12]: [] for o in offers}
        if offers:
            for p in await conn.fetch(in_sql(PLANS, len(offers)), *plans):
                plan = {
                    "id": p[8],
                    "advance_rate_percentage": p[3],
                    "fee_percentage": p[4],
                    "repayment_type": p[2],
                    "instalments": p[6],
                    "grace_days": p[7],
                }
                if p[5] is not None:
                    plan["repayment_duration_days"] = p[5]
                plans[p[0]].append(plan)
    body = {
        "business_status": business[2],
        "offers": [
            {
                "id": o[12],
                "status": o[2],
                "total_amount": o[4],
                "available_amount": max(0, o[4] - o[5] - o[6]),
                "currency": o[3],
                "pricing_plans": plans[o[12]],
                "expires_at": o[7],
            }
            for o in offers
        ],
    }
    return orjson.dumps(body, option=JSON_OPTIONS)
