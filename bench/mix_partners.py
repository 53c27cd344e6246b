"""The mix's partners: made once per database by direct inserts, then signed in.

Each (``mix partner 000``, ``001``, …) has an API client and ``ENTITIES_PER_PARTNER``
entities copied from the seed's (not its hot ones), each onboarded as the seed's are: a
business and a CURRENT offer with the production policy's plans, with room for any run.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from bench.client import Client
from fundline.kit.security import hash_secret

VERSION = "2024-05-25"
ENTITIES_PER_PARTNER = 2
PARTNER_SECRET = "bench-mix-partner-secret-not-for-production"


@dataclass
class MixEntity:
    entity_id: str
    plan_id: str  # the offer's first pricing plan (FIXED_DURATION in the production policy)
    headers: bytes = b""
    financed: list[str] = field(default_factory=list)  # receivables confirmed in Connect


@dataclass
class MixPartner:
    number: int
    client_id: str
    entities: list[MixEntity]
    connect_headers: bytes = b""  # the business's browser: its own address
    token: str = ""


async def _copy(conn: asyncpg.Connection, table: str, where: str, *args: Any, **set_: Any) -> None:
    """Copy the rows of ``table`` matching ``where`` (``$1``… are ``args``), with the columns
    named in ``set_`` replaced (a ``str`` starting with ``=`` is SQL, others are values)."""
    columns = await conn.fetch(
        "SELECT column_name, udt_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        table,
    )
    values = list(args)
    chosen = []
    for name, udt in columns:
        if name not in set_:
            chosen.append(name)
        elif isinstance(set_[name], str) and set_[name].startswith("="):
            chosen.append(set_[name][1:])
        else:
            values.append(set_[name])
            chosen.append(f"${len(values)}::{udt}")
    names = ", ".join(c["column_name"] for c in columns)
    await conn.execute(
        f"INSERT INTO {table} ({names}) SELECT {', '.join(chosen)} FROM {table} WHERE {where}",
        *values,
    )


async def ensure_partners(dsn: str, manifest: dict[str, Any], count: int) -> list[MixPartner]:
    """The mix's first ``count`` partners, made in the database if they are not there yet."""
    hot = {e["entity_id"] for e in manifest["hot_entities"]}
    templates = [e for p in manifest["partners"] for e in p["entity_ids"] if e not in hot]
    conn = await asyncpg.connect(dsn)
    secret_hash = hash_secret(PARTNER_SECRET)
    partners = []
    try:
        for number in range(count):
            name = f"mix partner {number:03d}"
            partner_id = await conn.fetchval("SELECT id FROM partners WHERE name = $1", name)
            if partner_id is None:
                async with conn.transaction():
                    partner_id = await _make_partner(conn, name, secret_hash, templates, number)
            partners.append(await _read_partner(conn, number, partner_id))
    finally:
        await conn.close()
    return partners


async def _make_partner(
    conn: asyncpg.Connection, name: str, secret_hash: str, templates: list[str], number: int
) -> uuid.UUID:
    now = datetime.now(UTC).replace(tzinfo=None)
    partner_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO partners (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)",
        partner_id,
        name,
        now,
    )
    await conn.execute(
        "INSERT INTO api_clients (id, partner_id, secret_hash, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $4)",
        uuid.uuid4(),
        partner_id,
        secret_hash,
        now,
    )
    for k in range(ENTITIES_PER_PARTNER):
        template = uuid.UUID(templates[(number * ENTITIES_PER_PARTNER + k) % len(templates)])
        entity_id, business_id, offer_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        times = {"created_at": now, "updated_at": now}
        await _copy(conn, "entities", "id = $1", template, id=entity_id, partner_id=partner_id)
        await _copy(
            conn,
            "financing_businesses",
            "entity_id = $1",
            template,
            id=business_id,
            entity_id=entity_id,
            partner_id=partner_id,
            **times,
        )
        # An offer with room for any run: the mix confirms thousands of invoices.
        template_offer = await conn.fetchval(
            "SELECT id FROM financing_offers WHERE entity_id = $1 ORDER BY created_at DESC LIMIT 1",
            template,
        )
        await _copy(
            conn,
            "financing_offers",
            "id = $1",
            template_offer,
            id=offer_id,
            business_id=business_id,
            entity_id=entity_id,
            status="CURRENT",
            total_amount=100_000_000_000,
            reserved_amount=0,
            outstanding_amount=0,
            expires_at=now.replace(year=now.year + 1),
            **times,
        )
        await _copy(
            conn,
            "financing_pricing_plans",
            "offer_id = $1",
            template_offer,
            id="=gen_random_uuid()",
            offer_id=offer_id,
        )
    return partner_id


async def _read_partner(conn: asyncpg.Connection, number: int, partner_id: uuid.UUID) -> MixPartner:
    client_id = await conn.fetchval(
        "SELECT id::text FROM api_clients WHERE partner_id = $1 ORDER BY created_at LIMIT 1",
        partner_id,
    )
    rows = await conn.fetch(
        """
        SELECT e.id::text AS entity_id, p.id::text AS plan_id
        FROM entities e
        JOIN financing_offers o ON o.entity_id = e.id
        JOIN financing_pricing_plans p ON p.offer_id = o.id AND p.position = 0
        WHERE e.partner_id = $1 ORDER BY e.id
        """,
        partner_id,
    )
    entities = [MixEntity(r["entity_id"], r["plan_id"]) for r in rows]
    address = f"10.{number // 250 % 250}.{number % 250}.{1 + number % 200}"
    return MixPartner(
        number, client_id, entities, connect_headers=f"X-Forwarded-For: {address}\r\n".encode()
    )


async def sign_in(client: Client, partners: Sequence[MixPartner]) -> None:
    """A client_credentials token per partner, and each entity's request headers."""
    for partner in partners:
        body = orjson.dumps(
            {
                "grant_type": "client_credentials",
                "client_id": partner.client_id,
                "client_secret": PARTNER_SECRET,
            }
        )
        status, answer = await client.request(
            "POST", "/v1/auth/token", f"x-monite-version: {VERSION}\r\n".encode(), body
        )
        if status != 200:
            raise SystemExit(f"token for partner {partner.number}: {status} {answer[:300]!r}")
        partner.token = orjson.loads(answer)["access_token"]
        for entity in partner.entities:
            entity.headers = (
                f"Authorization: Bearer {partner.token}\r\nx-monite-version: {VERSION}\r\n"
                f"x-monite-entity-id: {entity.entity_id}\r\n"
            ).encode()
