"""The write ceilings: raw asyncpg, one transaction each, the same rows Fundline writes
(``bench.ceiling.checks`` compares the rows each server inserts and updates, per table,
before a run measures them).

- ``POST /v1/financing_invoices`` (``request_financing``): the request, a DRAFT financing
  invoice per receivable, each with its first status row and ``created`` event, and the two
  Connect tokens (the session token of the request, a connect token).
- ``POST /connect/v1/invoices/confirm`` (``confirm``): each invoice priced on its plan (the
  amount asked, else the plan's maximum), NEW, with its status row and event, the offer's
  reservation and one ``financing_offer.updated`` event per invoice, the request confirmed;
  the answer renders the invoices as the list does.
- ``POST /v1/receivables`` and its issue: ``bench.ceiling.receivables``.

What the ceiling leaves out is what makes Fundline general rather than what makes the rows:
authentication, validation beyond what the load scripts send, refusals with Monite's error
shapes. It reads what the rows depend on (the receivables, the business and its offer, the
plans, what is owed) and relies on the database for what it enforces itself (one live
financing per invoice is a unique index). An entity's own fields are read once per process.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from bench.ceiling import lists

API_VERSION = "2024-05-25"
REQUEST_TTL = timedelta(hours=1)
CONNECT_TOKEN_TTL = timedelta(hours=24)
MIN_DAYS_TO_DUE = 7
JSON = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z

FACTS = """
SELECT r.id, r.status, r.document_id, r.issue_date, r.due_date, r.total_amount, r.currency,
       r.details->>'memo', r.counterpart_name, c.type, c.first_name, c.last_name,
       c.counterpart_name
FROM receivables r LEFT JOIN counterparts c ON c.id = r.counterpart_id
WHERE r.entity_id = $1 AND r.id = ANY($2::uuid[]) AND r.type = 'invoice'
"""
BUSINESS_AND_OFFER = """
SELECT b.status, o.id, o.status, o.currency FROM financing_businesses b
LEFT JOIN LATERAL (
  SELECT id, status, currency FROM financing_offers WHERE entity_id = b.entity_id
  ORDER BY status = 'CURRENT' DESC, created_at DESC, id DESC LIMIT 1
) o ON true
WHERE b.entity_id = $1
"""
INSERT_REQUEST = """
INSERT INTO financing_requests (id, entity_id, partner_id, status, expires_at, created_at,
                                updated_at)
VALUES ($1, $2, $3, 'open', $4, $5, $5)
"""
INSERT_DRAFTS = """
INSERT INTO financing_invoices (id, partner_id, entity_id, request_id, offer_id, invoice_id,
  live_invoice_id, type, status, document_id, issue_date, due_date, total_amount, currency,
  description, payer_type, payer_business_name, payer_first_name, payer_last_name,
  repaid_amount, created_at, updated_at)
SELECT d.id, $1, $2, $3, $4, d.invoice_id, d.invoice_id, 'receivable', 'DRAFT', d.document_id,
  d.issue_date, d.due_date, d.total_amount, d.currency, d.description, d.payer_type,
  d.business_name, d.first_name, d.last_name, 0, $5, $5
FROM unnest($6::uuid[], $7::uuid[], $8::text[], $9::date[], $10::date[], $11::bigint[],
            $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[])
  AS d(id, invoice_id, document_id, issue_date, due_date, total_amount, currency, description,
       payer_type, business_name, first_name, last_name)
"""
INSERT_HISTORY = """
INSERT INTO financing_status_history (id, financing_invoice_id, from_status, to_status, cause, at)
SELECT gen_random_uuid(), h.invoice, h.before, h.after, $1, $2
FROM unnest($3::uuid[], $4::text[], $5::text[]) AS h(invoice, before, after)
"""
INSERT_EVENTS = """
INSERT INTO events (id, partner_id, entity_id, object_type, object_id, action, description,
                    api_version, object, created_at)
SELECT gen_random_uuid(), $1, $2, e.type, e.object_id, e.type || '.' || e.action,
       e.type || '_' || e.action, $3, e.object::json, $4
FROM unnest($5::text[], $6::uuid[], $7::text[], $8::text[]) AS e(type, object_id, action, object)
"""
INSERT_TOKENS = """
INSERT INTO connect_tokens (token_hash, kind, entity_id, request_id, created_at, expires_at)
VALUES ($1, 'session', $3, $4, $5, $6), ($2, 'connect', $3, NULL, $5, $7)
"""

SESSION = "SELECT entity_id, request_id, expires_at FROM connect_sessions WHERE token_hash = $1"
LOCK_REQUEST = (
    "SELECT status, expires_at FROM financing_requests WHERE id = $1 AND entity_id = $2 "
    "FOR NO KEY UPDATE"
)
LOCK_DRAFTS = (
    f"{lists.SELECT_INVOICES}, financing_invoices.offer_id, financing_invoices.partner_id "
    "FROM financing_invoices WHERE financing_invoices.request_id = $1 "
    "AND financing_invoices.invoice_id = ANY($2::uuid[]) AND financing_invoices.status = 'DRAFT' "
    "ORDER BY financing_invoices.id FOR NO KEY UPDATE"
)
PLANS = (
    "SELECT id, offer_id, advance_rate_percentage, fee_percentage FROM financing_pricing_plans "
    "WHERE id = ANY($1::uuid[])"
)
LOCK_OFFER = """
SELECT o.status, o.currency, o.total_amount, o.reserved_amount, o.outstanding_amount
FROM financing_offers o WHERE o.id = $1 FOR NO KEY UPDATE
"""
OWED = (
    "SELECT id, total_amount - amount_paid FROM receivables "
    "WHERE entity_id = $1 AND id = ANY($2::uuid[])"
)
CONFIRM_INVOICES = """
UPDATE financing_invoices f SET pricing_plan_id = u.plan, status = 'NEW',
  advance_rate_percentage = u.advance, fee_percentage = u.fee_rate, requested_amount = u.requested,
  fee_amount = u.fee, principal_amount = u.requested - u.fee, repayment_amount = u.requested,
  confirmed_at = $1, updated_at = $1
FROM unnest($2::uuid[], $3::uuid[], $4::int[], $5::int[], $6::bigint[], $7::bigint[])
  AS u(id, plan, advance, fee_rate, requested, fee)
WHERE f.id = u.id
"""
RESERVE = (
    "UPDATE financing_offers SET reserved_amount = reserved_amount + $1, updated_at = $2 "
    "WHERE id = $3"
)
CONFIRM_REQUEST = (
    "UPDATE financing_requests SET status = 'confirmed', updated_at = $1 "
    "WHERE id = $2 AND status = 'open'"
)

ENTITY = """
SELECT partner_id, type, email, phone, website, tax_id, registration_number,
       registration_authority, organization::text, individual::text, address::text
FROM entities WHERE id = $1
"""

Result = tuple[int, bytes]
_entities: dict[str, asyncpg.Record] = {}


def utc_now() -> datetime:
    """Naive UTC, as Fundline stores times."""
    return datetime.now(UTC).replace(tzinfo=None)


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def _new_token(prefix: str) -> tuple[str, str]:
    token = prefix + secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode()).hexdigest()


def error(status: int, message: str) -> Result:
    return status, orjson.dumps({"error": {"message": message}})


async def entity_row(conn: asyncpg.Connection, entity_id: str) -> asyncpg.Record:
    found = _entities.get(entity_id)
    if found is None:
        found = _entities[entity_id] = await conn.fetchrow(ENTITY, entity_id)
    return found


# --- POST /v1/financing_invoices ----------------------------------------------------------


def _payer(fact: asyncpg.Record) -> tuple[str, str | None, str | None, str | None]:
    if fact[9] == "individual":
        return "INDIVIDUAL", None, fact[10], fact[11]
    return "BUSINESS", fact[12] or fact[8] or None, None, None


async def request_financing(pool: asyncpg.Pool, entity_id: str, body: bytes) -> Result:
    wanted = [item["id"] for item in orjson.loads(body)["invoices"]]
    today = utc_now().date()
    async with pool.acquire() as conn, conn.transaction():
        entity = await entity_row(conn, entity_id)
        facts = await conn.fetch(FACTS, entity_id, wanted)
        business = await conn.fetchrow(BUSINESS_AND_OFFER, entity_id)
        if business is None or business[0] != "ONBOARDED" or business[2] != "CURRENT":
            return error(409, "The entity has no current offer")
        offer_id, currency = business[1], business[3]
        if len(facts) != len(wanted) or any(
            f[1] not in ("issued", "partially_paid")
            or f[4] < today + timedelta(days=MIN_DAYS_TO_DUE)
            or f[6] != currency
            for f in facts
        ):
            return error(409, "An invoice is not eligible")
        now = utc_now()
        request_id = str(uuid.uuid4())
        ids = _ids(len(facts))
        payers = [_payer(f) for f in facts]
        await conn.execute(INSERT_REQUEST, request_id, entity_id, entity[0], now + REQUEST_TTL, now)
        try:
            await conn.execute(
                INSERT_DRAFTS, entity[0], entity_id, request_id, offer_id, now,
                ids, [f[0] for f in facts], [f[2] for f in facts],
                [f[3].date() for f in facts], [f[4] for f in facts], [f[5] for f in facts],
                [f[6] for f in facts], [f[7] or None for f in facts],
                [p[0] for p in payers], [p[1] for p in payers], [p[2] for p in payers],
                [p[3] for p in payers],
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            return error(409, "An invoice is already in a live financing")
        await conn.execute(
            INSERT_HISTORY, "financing requested", now, ids, [None] * len(ids), ["DRAFT"] * len(ids)
        )
        objects = [
            orjson.dumps(
                {"id": i, "status": "DRAFT", "invoice_id": f[0], "type": "receivable",
                 "repaid_amount": 0}
            ).decode()
            for i, f in zip(ids, facts, strict=True)
        ]  # fmt: skip
        await conn.execute(
            INSERT_EVENTS, entity[0], entity_id, API_VERSION, now,
            ["financing_invoice"] * len(ids), ids, ["created"] * len(ids), objects,
        )  # fmt: skip
        session_token, session_hash = _new_token("fst_")
        connect_token, connect_hash = _new_token("fct_")
        await conn.execute(
            INSERT_TOKENS, session_hash, connect_hash, entity_id, request_id, now,
            now + REQUEST_TTL, now + CONNECT_TOKEN_TTL,
        )  # fmt: skip
    return 201, orjson.dumps({"connect_token": connect_token, "session_token": session_token})


# --- POST /connect/v1/invoices/confirm ------------------------------------------------------

_STATUS = lists.INVOICE_COLUMNS.index("status")
_REQUESTED = lists.INVOICE_COLUMNS.index("requested_amount")
_ADVANCE_RATE = lists.INVOICE_COLUMNS.index("advance_rate_percentage")
_FEE = lists.INVOICE_COLUMNS.index("fee_amount")
_FEE_RATE = lists.INVOICE_COLUMNS.index("fee_percentage")
_PRINCIPAL = lists.INVOICE_COLUMNS.index("principal_amount")
_REPAYMENT = lists.INVOICE_COLUMNS.index("repayment_amount")
_INVOICE_ID = lists.INVOICE_COLUMNS.index("invoice_id")
_TOTAL = lists.INVOICE_COLUMNS.index("total_amount")
_OFFER_ID = len(lists.INVOICE_COLUMNS)


def percent_of(amount: int, basis_points: int) -> int:
    """``amount * basis_points / 10000`` rounded half to even, as ``kit.money.percent_of``."""
    quotient, rest = divmod(amount * basis_points, 10_000)
    if rest * 2 > 10_000 or (rest * 2 == 10_000 and quotient % 2):
        quotient += 1
    return quotient


async def confirm(pool: asyncpg.Pool, bearer: str, body: bytes) -> Result:
    items = orjson.loads(body)["invoices"]
    plan_of = {i["invoice_id"]: i["pricing_plan_id"] for i in items}
    asked = {i["invoice_id"]: i.get("requested_amount") for i in items}
    digest = hashlib.sha256(bearer.encode()).hexdigest()
    async with pool.acquire() as conn, conn.transaction():
        now = utc_now()
        session = await conn.fetchrow(SESSION, digest)
        if session is None or session[2] <= now:
            return error(401, "The Connect session is invalid or has expired")
        entity_id, request_id = session[0], session[1]
        request = await conn.fetchrow(LOCK_REQUEST, request_id, entity_id)
        if request is None or request[1] <= now:
            return error(409, "The financing request has expired")
        drafts = await conn.fetch(LOCK_DRAFTS, request_id, list(plan_of))
        if len(drafts) != len(items):
            return error(409, "An invoice is not a DRAFT of this request")
        plans = {p[0]: p for p in await conn.fetch(PLANS, list(set(plan_of.values())))}
        offer_id, partner_id = drafts[0][_OFFER_ID], drafts[0][_OFFER_ID + 1]
        offer = await conn.fetchrow(LOCK_OFFER, offer_id)
        if offer[0] != "CURRENT":
            return error(409, "The offer is not CURRENT")
        owed = dict(await conn.fetch(OWED, entity_id, [d[_INVOICE_ID] for d in drafts]))
        rows, plan_ids, rates, fee_rates, requested, fees, objects = [], [], [], [], [], [], []
        available = offer[2] - offer[3] - offer[4]
        offer_objects = []
        for draft in drafts:
            plan = plans[plan_of[draft[_INVOICE_ID]]]
            if plan[1] != offer_id:
                return error(422, "The plan is not a plan of this invoice's offer")
            due = max(0, min(draft[_TOTAL], owed.get(draft[_INVOICE_ID], draft[_TOTAL])))
            maximum = due * plan[2] // 10_000
            amount = asked[draft[_INVOICE_ID]] or maximum
            if not 1 <= amount <= maximum:
                return error(422, f"requested_amount must be between 1 and {maximum}")
            fee = percent_of(amount, plan[3])
            available -= amount
            if available < 0:
                return error(409, "More than the offer has available")
            row = list(draft[:_OFFER_ID])
            row[_STATUS] = "NEW"
            row[_REQUESTED] = row[_REPAYMENT] = amount
            row[_ADVANCE_RATE], row[_FEE_RATE] = plan[2], plan[3]
            row[_FEE], row[_PRINCIPAL] = fee, amount - fee
            rows.append(row)
            plan_ids.append(plan[0])
            rates.append(plan[2])
            fee_rates.append(plan[3])
            requested.append(amount)
            fees.append(fee)
            objects.append(
                orjson.dumps(
                    {"id": row[0], "status": "NEW", "invoice_id": row[_INVOICE_ID],
                     "type": "receivable", "repaid_amount": 0, "previous_status": "DRAFT"}
                ).decode()
            )  # fmt: skip
            offer_objects.append(
                orjson.dumps(
                    {"id": offer_id, "status": offer[0], "total_amount": offer[2],
                     "available_amount": available}
                ).decode()
            )  # fmt: skip
        ids = [row[0] for row in rows]
        n = len(ids)
        await conn.execute(CONFIRM_INVOICES, now, ids, plan_ids, rates, fee_rates, requested, fees)
        await conn.execute(RESERVE, sum(requested), now, offer_id)
        await conn.execute(CONFIRM_REQUEST, now, request_id)
        await conn.execute(
            INSERT_HISTORY, "confirmed by the business", now, ids, ["DRAFT"] * n, ["NEW"] * n
        )
        await conn.execute(
            INSERT_EVENTS, partner_id, entity_id, API_VERSION, now,
            ["financing_invoice"] * n + ["financing_offer"] * n,
            ids + [offer_id] * n, ["status_changed"] * n + ["updated"] * n,
            objects + offer_objects,
        )  # fmt: skip
        # NEW invoices have no instalments yet: only their history is read back.
        history: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        for record in await conn.fetch(lists.in_sql(lists.HISTORY, n), *ids):
            change = {"to_status": record[2], "cause": record[3], "at": record[4]}
            if record[1] is not None:
                change["from_status"] = record[1]
            history[record[0]].append(change)
    # Locked in id order (as Fundline locks them), answered in the order asked.
    position = {invoice: k for k, invoice in enumerate(plan_of)}
    rows.sort(key=lambda row: position[row[_INVOICE_ID]])
    invoices = [lists.document(row, [], history[row[0]]) for row in rows]
    return 200, orjson.dumps({"invoices": invoices}, option=JSON)
