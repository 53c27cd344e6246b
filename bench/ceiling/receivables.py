"""The receivable ceiling: ``POST /v1/receivables`` (``create_receivable``: the draft and its
event) and ``POST /v1/receivables/{id}/issue`` (``issue_receivable``: the entity's invoice
counter bumped, the number checked free, the receivable issued, its event), raw asyncpg, one
transaction each, answered in the shape Fundline answers a receivable.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from bench.ceiling.writes import (
    API_VERSION,
    JSON,
    Result,
    entity_row,
    error,
    percent_of,
    utc_now,
)

COUNTERPART = """
SELECT c.type, c.counterpart_name, c.tax_id, c.external_reference,
       a.id, a.city, a.country, a.line1, a.line2, a.postal_code, a.state
FROM counterparts c JOIN counterpart_addresses a ON a.id = $3 AND a.counterpart_id = c.id
WHERE c.id = $1 AND c.entity_id = $2 AND c.deleted_at IS NULL
"""
INSERT_RECEIVABLE = """
INSERT INTO receivables (id, entity_id, type, status, currency, counterpart_id, counterpart_name,
  counterpart_type, counterpart_billing_address_id, counterpart, issuer, line_items, subtotal,
  total_vat_amount, total_amount, amount_paid, payment_terms, due_date, file_language, details,
  created_at, updated_at)
VALUES ($1, $2, 'invoice', 'draft', $3, $4, $5, $6, $7, $8::json, $9::json, $10::json, $11, $12,
        $13, 0, $14::json, $15, 'en', $16::json, $17, $17)
"""
INSERT_EVENT = """
INSERT INTO events (id, partner_id, entity_id, object_type, object_id, action, description,
                    api_version, object, created_at)
VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7, $8::json, $9)
"""
LOCK_RECEIVABLE = """
SELECT status, document_id, currency, counterpart_id, counterpart_name, counterpart_type,
       counterpart::text, issuer::text, line_items::text, subtotal, total_vat_amount,
       total_amount, amount_paid, payment_terms::text, details::text, created_at
FROM receivables WHERE id = $1 AND entity_id = $2 FOR NO KEY UPDATE
"""
BUMP = (
    "UPDATE receivable_counters SET last_number = last_number + 1 "
    "WHERE entity_id = $1 AND document_type = 'invoice' RETURNING last_number"
)
NEW_COUNTER = (
    "INSERT INTO receivable_counters (entity_id, document_type, last_number) "
    "VALUES ($1, 'invoice', 0) ON CONFLICT DO NOTHING"
)
TAKEN = "SELECT 1 FROM receivables WHERE entity_id = $1 AND document_id = $2"
ISSUE = """
UPDATE receivables SET status = 'issued', document_id = $1, issue_date = $2, due_date = $3,
  updated_at = $4 WHERE id = $5
"""


def _issuer(entity: asyncpg.Record) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "type": entity[1], "email": entity[2], "phone": entity[3], "website": entity[4],
        "tax_id": entity[5], "registration_number": entity[6], "registration_authority": entity[7],
    }  # fmt: skip
    if entity[1] == "organization":
        shown["name"] = orjson.loads(entity[8] or "{}").get("legal_name")
    else:
        person = orjson.loads(entity[9] or "{}")
        shown["first_name"], shown["last_name"] = person.get("first_name"), person.get("last_name")
    address = orjson.loads(entity[10] or "{}")
    keys = ("city", "country", "line1", "line2", "postal_code", "state")
    return {"entity": shown, "entity_address": {k: address.get(k) for k in keys}}


def _line(item: dict[str, Any]) -> dict[str, Any]:
    """A line as stored (integer quantities, a tax rate in basis points: what the load
    scripts send)."""
    product = item["product"]
    price, quantity, rate = product["price"]["value"], item["quantity"], item["tax_rate_value"]
    before = price * quantity
    vat = percent_of(before, rate)
    line_id = str(uuid.uuid4())
    unit = product.get("measure_unit") or {}
    stored = {
        "id": line_id, "name": product["name"], "description": None, "external_reference": None,
        "ledger_account_id": None,
        "measure_unit": {"name": unit.get("name"), "description": None},
        "smallest_amount": None, "type": "product", "price": price, "quantity": str(quantity),
        "tax_rate_value": rate, "tax_rate_name": None, "total_before_vat": before,
        "vat_amount": vat, "total_after_vat": before + vat,
        "price_after_vat": price + percent_of(price, rate),
    }  # fmt: skip
    return stored


def _line_out(line: dict[str, Any], currency: str, country: str) -> dict[str, Any]:
    unit = {k: v for k, v in line["measure_unit"].items() if v is not None}
    return {
        "product": {
            "id": line["id"], "name": line["name"],
            "price": {"currency": currency, "value": line["price"]},
            "price_after_vat": {"currency": currency, "value": line["price_after_vat"]},
            "vat_rate": {"country": country, "value": line["tax_rate_value"], "is_custom": True},
            "measure_unit": unit, "type": "product", "is_inline": True,
        },
        "quantity": int(line["quantity"]),
        "total_before_vat": line["total_before_vat"],
        "total_after_vat": line["total_after_vat"],
    }  # fmt: skip


def _receivable_out(
    receivable_id: str,
    *,
    status: str,
    created_at: datetime,
    updated_at: datetime,
    currency: str,
    counterpart: tuple[str, str, str, dict[str, Any]],
    issuer: dict[str, Any],
    stored_lines: list[dict[str, Any]],
    payment_terms: dict[str, Any],
    due_date: date,
    details: dict[str, Any],
    amount_paid: int,
    document_id: str | None = None,
    issue_date: datetime | None = None,
) -> dict[str, Any]:
    """The receivable in the shape Fundline answers it (``receivables.router.invoice_out``)."""
    counterpart_id, name, kind, address = counterpart
    country = issuer["entity_address"].get("country") or ""
    lines = [_line_out(line, currency, country) for line in stored_lines]
    subtotal = sum(line["total_before_vat"] for line in stored_lines)
    vat = sum(line["vat_amount"] for line in stored_lines)
    by_rate: dict[int, list[int]] = {}
    for line in stored_lines:
        pair = by_rate.setdefault(line["tax_rate_value"], [0, 0])
        pair[0] += line["vat_amount"]
        pair[1] += line["total_before_vat"]
    total = subtotal + vat
    out: dict[str, Any] = {"id": receivable_id, "type": "invoice", "created_at": created_at,
                           "updated_at": updated_at, "status": status}  # fmt: skip
    if document_id is not None:
        out["document_id"] = document_id
    out.update(
        currency=currency,
        entity={k: v for k, v in issuer["entity"].items() if v is not None},
        entity_address={k: v for k, v in issuer["entity_address"].items() if v is not None},
        counterpart_id=counterpart_id,
        counterpart_name=name,
        counterpart_type=kind,
        counterpart_billing_address={k: v for k, v in address.items() if v is not None},
        line_items=lines,
        subtotal=subtotal,
        discounted_subtotal=subtotal,
        subtotal_after_vat=total,
        total_vat_amount=vat,
        total_vat_amounts=[
            {"amount": a, "taxable_amount": t, "value": rate} for rate, (a, t) in by_rate.items()
        ],
        total_amount=total,
        total_amount_with_credit_notes=total,
        amount_due=total - amount_paid,
        amount_paid=amount_paid,
        amount_to_pay=total - amount_paid,
        vat_mode="exclusive",
        payment_terms=payment_terms,
    )
    if issue_date is not None:
        out["issue_date"] = issue_date
    out.update(
        due_date=due_date,
        file_language="en",
        original_file_language="en",
        related_documents={"credit_note_ids": []},
        tags=[],
        **details,
        is_einvoice=False,
    )
    return out


def _due(terms: dict[str, Any], on: date) -> date:
    return on + timedelta(days=terms["term_final"]["number_of_days"])


async def create_receivable(pool: asyncpg.Pool, entity_id: str, body: bytes) -> Result:
    payload = orjson.loads(body)
    async with pool.acquire() as conn, conn.transaction():
        entity = await entity_row(conn, entity_id)
        found = await conn.fetchrow(
            COUNTERPART,
            payload["counterpart_id"],
            entity_id,
            payload["counterpart_billing_address_id"],
        )
        if found is None:
            return error(404, "Counterpart not found")
        issuer = _issuer(entity)
        stored_lines = [_line(item) for item in payload["line_items"]]
        address = dict(
            zip(
                ("id", "city", "country", "line1", "line2", "postal_code", "state"),
                found[4:],
                strict=True,
            )
        )
        counterpart_doc = {"tax_id": found[2], "external_reference": found[3],
                           "billing_address": address, "shipping_address": None}  # fmt: skip
        terms = payload["payment_terms"]
        details = {"memo": payload["memo"]} if payload.get("memo") else {}
        subtotal = sum(line["total_before_vat"] for line in stored_lines)
        vat = sum(line["vat_amount"] for line in stored_lines)
        now = utc_now()
        due = _due(terms, now.date())
        receivable_id = str(uuid.uuid4())
        await conn.execute(
            INSERT_RECEIVABLE, receivable_id, entity_id, payload["currency"],
            payload["counterpart_id"], found[1], found[0], address["id"],
            orjson.dumps(counterpart_doc).decode(), orjson.dumps(issuer).decode(),
            orjson.dumps(stored_lines).decode(), subtotal, vat, subtotal + vat,
            orjson.dumps(terms).decode(), due, orjson.dumps(details).decode(), now,
        )  # fmt: skip
        await conn.execute(
            INSERT_EVENT, entity[0], entity_id, "receivable", receivable_id,
            "receivable.created", "receivable_created", API_VERSION,
            orjson.dumps({"id": receivable_id}).decode(), now,
        )  # fmt: skip
    out = _receivable_out(
        receivable_id, status="draft", created_at=now, updated_at=now,
        currency=payload["currency"],
        counterpart=(payload["counterpart_id"], found[1], found[0], address),
        issuer=issuer, stored_lines=stored_lines, payment_terms=terms, due_date=due,
        details=details, amount_paid=0,
    )  # fmt: skip
    return 201, orjson.dumps(out, option=JSON)


async def issue_receivable(pool: asyncpg.Pool, entity_id: str, receivable_id: str) -> Result:
    async with pool.acquire() as conn, conn.transaction():
        entity = await entity_row(conn, entity_id)
        row = await conn.fetchrow(LOCK_RECEIVABLE, receivable_id, entity_id)
        if row is None:
            return error(404, "Receivable not found")
        if row[0] != "draft":
            return error(409, f"The receivable cannot be issued: its status is {row[0]}")
        document_id = row[1]
        while document_id is None:
            number = await conn.fetchval(BUMP, entity_id)
            if number is None:
                await conn.execute(NEW_COUNTER, entity_id)
                continue
            candidate = f"INV-{number:05d}"
            if await conn.fetchval(TAKEN, entity_id, candidate) is None:
                document_id = candidate
        now = utc_now()
        terms = orjson.loads(row[13])
        due = _due(terms, now.date())
        await conn.execute(ISSUE, document_id, now, due, now, receivable_id)
        await conn.execute(
            INSERT_EVENT, entity[0], entity_id, "receivable", receivable_id,
            "receivable.status_changed", "receivable_status_changed", API_VERSION,
            orjson.dumps(
                {"id": receivable_id, "status": "issued", "previous_status": "draft"}
            ).decode(),
            now,
        )  # fmt: skip
    counterpart_doc = orjson.loads(row[6])
    out = _receivable_out(
        receivable_id, status="issued", created_at=row[15], updated_at=now, currency=row[2],
        counterpart=(row[3], row[4], row[5], counterpart_doc["billing_address"]),
        issuer=orjson.loads(row[7]), stored_lines=orjson.loads(row[8]), payment_terms=terms,
        due_date=due, details=orjson.loads(row[14]), amount_paid=row[12],
        document_id=document_id, issue_date=now,
    )  # fmt: skip
    return 200, orjson.dumps(out, option=JSON)
