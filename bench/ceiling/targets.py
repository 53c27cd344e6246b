"""Targets of the write scenarios, and the one iteration of each that ``bench.load`` runs on
both servers to compare the rows they write.

A target is a line of ``bench/wrk/common.lua``'s file: method, path, bearer, entity, body.
The Connect confirmation's targets are prepared through Fundline itself (its financing
request, then the session token exchanged for a Connect session), not measured.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import httpx

from bench.ceiling import restore

CONFIRM = "/connect/v1/invoices/confirm"
RECEIVABLES = "/v1/receivables"
LIST = "/v1/financing_invoices"


def line(method: str, path: str, bearer: str, entity: str, body: str = "-") -> str:
    return "\t".join((method, path, bearer or "-", entity or "-", body)) + "\n"


def parse(target: str) -> tuple[str, str, str, str, str]:
    method, path, bearer, entity, body = target.rstrip("\n").split("\t")
    return method, path, bearer, entity, body


async def first_plans(dsn: str, entity_ids: Sequence[str]) -> dict[str, str]:
    """The first pricing plan of each entity's current offer (what a confirmation chooses)."""
    conn = await restore.connect(dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT o.entity_id::text, p.id::text FROM financing_offers o
            JOIN financing_pricing_plans p ON p.offer_id = o.id AND p.position = 0
            WHERE o.entity_id = ANY($1::uuid[]) AND o.status = 'CURRENT'
            """,
            list(entity_ids),
        )
    finally:
        await conn.close()
    return {str(row[0]): str(row[1]) for row in rows}


async def prepare_confirmations(
    base: str,
    version: str,
    tokens: dict[str, str],
    batches: Sequence[tuple[str, str, str]],
    plans: dict[str, str],
    *,
    concurrency: int = 8,
) -> list[str]:
    """For each batch, a financing request through Fundline and its Connect session: the
    confirmation of its invoices, as a target."""
    gate = asyncio.Semaphore(concurrency)

    async def post(client: httpx.AsyncClient, path: str, **kwargs: Any) -> httpx.Response:
        # A 503 is Fundline without a spare database connection (shared with whatever else
        # runs): asked again a little later.
        for attempt in range(20):
            response = await client.post(path, **kwargs)
            if response.status_code != 503:
                break
            await asyncio.sleep(0.1 * (attempt + 1))
        response.raise_for_status()
        return response

    async def one(client: httpx.AsyncClient, partner: str, entity: str, body: str) -> str:
        async with gate:
            headers = _headers(version, tokens[partner], entity, True)
            made = await post(client, LIST, headers=headers, content=body)
            token = made.json()["session_token"]
            opened = await post(client, "/connect/v1/sessions", json={"token": token})
        # A small amount each: a run's confirmations never exhaust an offer's limit.
        invoices = [
            {"invoice_id": item["id"], "pricing_plan_id": plans[entity], "requested_amount": 100}
            for item in json.loads(body)["invoices"]
        ]
        return line("POST", CONFIRM, opened.json()["access_token"], "-",
                    json.dumps({"invoices": invoices}))  # fmt: skip

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        return list(await asyncio.gather(*(one(client, *b) for b in batches)))


async def receivable_lines(dsn: str, manifest: dict[str, Any], tokens: dict[str, str]) -> list[str]:
    """A draft invoice of one untaxed line for a customer of each hot entity."""
    partner_of = {e["entity_id"]: e["partner_id"] for e in manifest["hot_entities"]}
    conn = await restore.connect(dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT DISTINCT ON (entity_id) entity_id::text, id::text,
                   default_billing_address_id::text
            FROM counterparts
            WHERE entity_id = ANY($1::uuid[]) AND is_customer AND deleted_at IS NULL
              AND default_billing_address_id IS NOT NULL
            ORDER BY entity_id, id
            """,
            list(partner_of),
        )
    finally:
        await conn.close()
    lines = []
    for entity, counterpart, address in rows:
        body = json.dumps(receivable_body(counterpart, address))
        lines.append(line("POST", RECEIVABLES, tokens[partner_of[entity]], entity, body))
    return lines


def _headers(version: str, bearer: str, entity: str, body: bool) -> dict[str, str]:
    headers = {"x-monite-version": version}
    if bearer != "-":
        headers["authorization"] = f"Bearer {bearer}"
    if entity != "-":
        headers["x-monite-entity-id"] = entity
    if body:
        headers["content-type"] = "application/json"
    return headers


async def iterate(base: str, version: str, target: str) -> list[tuple[int, Any]]:
    """One iteration of a write scenario (for a receivable, its creation then its issue):
    each response's status and JSON. A pause before each request lets the server's backend
    report its row counts at once after it (``checks.changes_after``)."""
    method, path, bearer, entity, body = parse(target)
    answers: list[tuple[int, Any]] = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        await asyncio.sleep(1.2)
        response = await client.request(
            method, path, headers=_headers(version, bearer, entity, body != "-"),
            content=None if body == "-" else body,
        )  # fmt: skip
        answers.append((response.status_code, response.json()))
        if path == RECEIVABLES and response.status_code == 201:
            await asyncio.sleep(1.2)
            issued = await client.post(
                f"{path}/{response.json()['id']}/issue",
                headers=_headers(version, bearer, entity, False),
            )
            answers.append((issued.status_code, issued.json()))
    return answers


def receivable_body(counterpart_id: Any, address_id: Any) -> dict[str, Any]:
    """The ``POST /v1/receivables`` body the write scenarios send: one line, USD 2,500."""
    return {
        "type": "invoice",
        "counterpart_id": str(counterpart_id),
        "counterpart_billing_address_id": str(address_id),
        "currency": "USD",
        "line_items": [
            {
                "quantity": 2,
                "product": {
                    "name": "Consulting",
                    "price": {"currency": "USD", "value": 125_000},
                    "measure_unit": {"name": "hour"},
                },
                "tax_rate_value": 0,
            }
        ],
        "payment_terms": {"name": "Net 30", "term_final": {"number_of_days": 30}},
        "memo": "Thank you for your business",
    }
