"""The ceiling: the least a server can do to answer ``GET /v1/financing_invoices``.

Starlette and asyncpg, no authentication, no validation, no ORM, no transaction: it runs the
same three statements Fundline runs for a page (the page, its instalments, its status
history; the SQL text below is copied from Fundline's statement log) and writes the same JSON
with orjson. ``bench.load`` checks that both servers answer the same bytes (pagination tokens
aside) before it measures them, and reports Fundline ÷ ceiling.

    python -m bench.ceiling --database-url postgresql://postgres@127.0.0.1:5432/db --port 8812

Supports what the load scripts send: ``limit``, ``status``, ``pagination_token`` (next pages).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import asyncpg
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

INVOICE_COLUMNS = (
    "id", "created_at", "type", "status", "invoice_id", "document_id", "issue_date",
    "due_date", "total_amount", "currency", "description", "payer_type", "payer_business_name",
    "payer_first_name", "payer_last_name", "requested_amount", "advance_rate_percentage",
    "fee_amount", "fee_percentage", "principal_amount", "repayment_amount", "repayment_date",
)  # fmt: skip
SELECT_INVOICES = "SELECT " + ", ".join(f"financing_invoices.{c}" for c in INVOICE_COLUMNS)
INSTALMENTS = (
    "SELECT financing_instalments.financing_invoice_id, financing_instalments.sequence, "
    "financing_instalments.due_date, financing_instalments.amount, "
    "financing_instalments.fee_amount, financing_instalments.principal_amount, "
    "financing_instalments.paid_amount \n"
    "FROM financing_instalments \n"
    "WHERE financing_instalments.financing_invoice_id IN ({ids}) "
    "ORDER BY financing_instalments.financing_invoice_id, financing_instalments.sequence"
)
HISTORY = (
    "SELECT financing_status_history.financing_invoice_id, financing_status_history.from_status, "
    "financing_status_history.to_status, financing_status_history.cause, "
    "financing_status_history.at \n"
    "FROM financing_status_history \n"
    "WHERE financing_status_history.financing_invoice_id IN ({ids}) "
    "ORDER BY financing_status_history.at, financing_status_history.id"
)
JSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


@cache
def page_sql(with_status: bool, with_cursor: bool) -> str:
    where = ["financing_invoices.entity_id = $1::UUID"]
    n = 2
    if with_status:
        where.append(f"financing_invoices.status = ${n}::VARCHAR")
        n += 1
    if with_cursor:
        where.append(
            "(financing_invoices.created_at, financing_invoices.id) > "
            f"(${n}::TIMESTAMP WITHOUT TIME ZONE, ${n + 1}::UUID)"
        )
        n += 2
    return (
        f"{SELECT_INVOICES} \nFROM financing_invoices \nWHERE {' AND '.join(where)} "
        "ORDER BY financing_invoices.created_at ASC, financing_invoices.id ASC \n"
        f" LIMIT ${n}"
    )


@cache
def in_sql(template: str, count: int) -> str:
    return template.format(ids=", ".join(f"${i}::UUID" for i in range(1, count + 1)))


def encode_token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()


def decode_token(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = orjson.loads(
        base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    )
    return payload


def render(
    row: asyncpg.Record, instalments: Sequence[asyncpg.Record], history: Sequence[Any]
) -> Any:
    """Fundline's ``FinancingInvoice`` (absent fields left out, as it does)."""
    out: dict[str, Any] = {
        "id": str(row["id"]),
        "type": row["type"],
        "status": row["status"],
        "invoice_id": str(row["invoice_id"]),
        "document_id": row["document_id"],
        "issue_date": row["issue_date"],
        "due_date": row["due_date"],
        "total_amount": row["total_amount"],
        "currency": row["currency"],
        "description": row["description"],
        "payer_type": row["payer_type"],
        "payer_business_name": row["payer_business_name"],
        "payer_first_name": row["payer_first_name"],
        "payer_last_name": row["payer_last_name"],
        "requested_amount": row["requested_amount"],
        "advance_amount": row["principal_amount"],
        "advance_rate_percentage": row["advance_rate_percentage"],
        "fee_amount": row["fee_amount"],
        "fee_percentage": row["fee_percentage"],
        "principal_amount": row["principal_amount"],
        "repayment_amount": row["repayment_amount"],
        "repayment_schedule": None,
    }
    if instalments:
        first = instalments[0]
        out["repayment_schedule"] = {
            "repayment_date": first["due_date"],
            "repayment_amount": first["amount"],
            "repayment_fee_amount": first["fee_amount"],
            "repayment_principal_amount": first["principal_amount"],
        }
    elif None not in (
        row["repayment_date"],
        row["repayment_amount"],
        row["fee_amount"],
        row["principal_amount"],
    ):
        out["repayment_schedule"] = {
            "repayment_date": row["repayment_date"],
            "repayment_amount": row["repayment_amount"],
            "repayment_fee_amount": row["fee_amount"],
            "repayment_principal_amount": row["principal_amount"],
        }
    out = {k: v for k, v in out.items() if v is not None}
    out["instalments"] = [
        {
            "sequence": i["sequence"],
            "due_date": i["due_date"],
            "amount": i["amount"],
            "fee_amount": i["fee_amount"],
            "principal_amount": i["principal_amount"],
            "paid_amount": i["paid_amount"],
        }
        for i in instalments
    ]
    out["status_history"] = [
        {
            "from_status": h["from_status"],
            "to_status": h["to_status"],
            "cause": h["cause"],
            "at": h["at"],
        }
        if h["from_status"] is not None
        else {"to_status": h["to_status"], "cause": h["cause"], "at": h["at"]}
        for h in history
    ]
    return out


async def list_financing_invoices(request: Request) -> Response:
    entity_id = request.headers["x-monite-entity-id"]
    token = request.query_params.get("pagination_token")
    cursor = None
    if token:
        payload = decode_token(token)
        query, cursor = payload["q"], payload
    else:
        query = {"limit": int(request.query_params.get("limit", 100))}
        if "status" in request.query_params:
            query["status"] = request.query_params["status"]
    limit = query["limit"]
    args: list[Any] = [entity_id]
    if "status" in query:
        args.append(query["status"])
    if cursor is not None:
        # Stored as naive UTC, the way Fundline binds it.
        at = datetime.fromisoformat(cursor["v"]).astimezone(UTC).replace(tzinfo=None)
        args += [at, cursor["i"]]
    args.append(limit + 1)
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn:
        rows = await conn.fetch(page_sql("status" in query, cursor is not None), *args)
        more = len(rows) > limit
        rows = rows[:limit]
        ids = [row["id"] for row in rows]
        instalments: dict[Any, list[asyncpg.Record]] = {i: [] for i in ids}
        history: dict[Any, list[asyncpg.Record]] = {i: [] for i in ids}
        if ids:
            for record in await conn.fetch(in_sql(INSTALMENTS, len(ids)), *ids):
                instalments[record["financing_invoice_id"]].append(record)
            for record in await conn.fetch(in_sql(HISTORY, len(ids)), *ids):
                history[record["financing_invoice_id"]].append(record)
    body: dict[str, Any] = {
        "data": [render(r, instalments[r["id"]], history[r["id"]]) for r in rows]
    }
    if rows and more:
        last = rows[-1]
        body["next_pagination_token"] = encode_token(
            {
                "q": query,
                "v": last["created_at"].replace(tzinfo=UTC).isoformat(),
                "i": str(last["id"]),
                "f": True,
            }
        )
    if rows and cursor is not None:
        head = rows[0]
        body["prev_pagination_token"] = encode_token(
            {
                "q": query,
                "v": head["created_at"].replace(tzinfo=UTC).isoformat(),
                "i": str(head["id"]),
                "f": False,
            }
        )
    return Response(orjson.dumps(body, option=JSON_OPTIONS), media_type="application/json")


async def _no_reset(_: asyncpg.Connection) -> None:
    return None


def create_app(database_url: str, *, pool_size: int = 20) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # As many connections as Fundline's pool keeps; idle ones close soon, so the ceiling
        # holds none while Fundline is measured (PostgreSQL's max_connections is shared).
        # No reset query when a connection goes back (plain reads leave nothing to reset), as
        # Fundline's pool for its hot reads.
        app.state.pool = await asyncpg.create_pool(
            database_url,
            min_size=0,
            max_size=pool_size,
            max_inactive_connection_lifetime=5,
            reset=_no_reset,
        )
        yield
        await app.state.pool.close()

    return Starlette(
        routes=[Route("/v1/financing_invoices", list_financing_invoices)], lifespan=lifespan
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ceiling", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8812)
    args = parser.parse_args(argv)
    url = args.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    uvicorn.run(
        create_app(url), host=args.host, port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
