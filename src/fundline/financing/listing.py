"""``GET /v1/financing_invoices``: the list query and the rendering of financing invoices.

This is the partners' hottest path, so it reads plain rows (no ORM objects), loads the
instalments and history of a whole page in one query each, and renders straight to JSON bytes.
Every other place that shows a financing invoice renders it with the same ``document()``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

import orjson
from cachetools import LRUCache
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from fundline.financing import schemas
from fundline.kit.filters import BoundFilter, bind_filters, bound_conditions
from fundline.kit.pagination import Cursor, Paginator, cursor_values, keyset
from fundline.kit.statements import Connection, Prepared
from fundline.models import FinancingInvoice, FinancingStatusChange, Instalment

FILTER_COLUMNS: dict[str, Any] = {
    "invoice_id": FinancingInvoice.invoice_id,
    "status": FinancingInvoice.status,
    "type": FinancingInvoice.type,
    "document_id": FinancingInvoice.document_id,
    "created_at": FinancingInvoice.created_at,
    "total_amount": FinancingInvoice.total_amount,
}
DATE_COLUMNS: dict[str, InstrumentedAttribute[date]] = {
    "issue_date": FinancingInvoice.issue_date,
    "due_date": FinancingInvoice.due_date,
}
# What a rendered financing invoice reads from its row.
ROW_COLUMNS = (
    FinancingInvoice.id,
    FinancingInvoice.created_at,
    FinancingInvoice.type,
    FinancingInvoice.status,
    FinancingInvoice.invoice_id,
    FinancingInvoice.document_id,
    FinancingInvoice.issue_date,
    FinancingInvoice.due_date,
    FinancingInvoice.total_amount,
    FinancingInvoice.currency,
    FinancingInvoice.description,
    FinancingInvoice.payer_type,
    FinancingInvoice.payer_business_name,
    FinancingInvoice.payer_first_name,
    FinancingInvoice.payer_last_name,
    FinancingInvoice.requested_amount,
    FinancingInvoice.advance_rate_percentage,
    FinancingInvoice.fee_amount,
    FinancingInvoice.fee_percentage,
    FinancingInvoice.principal_amount,
    FinancingInvoice.repayment_amount,
    FinancingInvoice.repayment_date,
    FinancingInvoice.lender_status,
)
_COPIED = (
    "id",
    "type",
    "status",
    "invoice_id",
    "document_id",
    "issue_date",
    "due_date",
    "total_amount",
    "currency",
    "description",
    "payer_type",
    "payer_business_name",
    "payer_first_name",
    "payer_last_name",
    "requested_amount",
    "lender_status",
)
_AMOUNTS = (
    "advance_rate_percentage",
    "fee_amount",
    "fee_percentage",
    "principal_amount",
    "repayment_amount",
)


def _date_bound(op: str, bound: datetime) -> tuple[str, date]:
    """Monite's date-time bound on a date column, as an operator and a date: the date D counts
    as D 00:00 UTC."""
    at = bound.astimezone(UTC)
    day, at_midnight = at.date(), at.time() == time(0)
    if op in ("gt", "lte") or at_midnight:
        return op, day
    return ("gt" if op == "gte" else "lte"), day


_DATE_FILTERS_ORDERED = [
    f"{base}__{op}" for base in DATE_COLUMNS for op in ("gt", "gte", "lt", "lte")
]
_DATE_FILTERS = frozenset(_DATE_FILTERS_ORDERED)


def _bound(params: schemas.FinancingInvoiceListParams) -> tuple[list[BoundFilter], dict[str, Any]]:
    """The request's filters as a statement shape and its values (see ``kit.filters``)."""
    shape, values = bind_filters(params, skip=_DATE_FILTERS)
    for name in _DATE_FILTERS_ORDERED:
        bound = getattr(params, name)
        if bound is not None:
            base, _, requested = name.rpartition("__")
            op, values[name] = _date_bound(requested, bound)
            shape.append((name, base, op, -1))
    return shape, values


_COLUMNS = {**FILTER_COLUMNS, **DATE_COLUMNS}
# Compiled page queries by shape. Clients choose the shapes (which filters, how many values in
# a list), so the cache is bounded: past the bound the least recently used shape goes.
_PAGES: LRUCache[tuple[Any, ...], Prepared] = LRUCache(maxsize=256)


def _page_statement(
    shape: list[BoundFilter], params: schemas.FinancingInvoiceListParams, cursor: Cursor | None
) -> tuple[Prepared, Any, Any]:
    """The page query for this shape of request (compiled once), with its sort and id columns."""
    by_id = params.sort is schemas.FinancingInvoiceCursorFields.ID
    sort_column = FinancingInvoice.id if by_id else FinancingInvoice.created_at
    key = (tuple(shape), by_id, params.order, None if cursor is None else cursor.forward)
    prepared = _PAGES.get(key)
    if prepared is None:
        conditions, order = keyset(sort_column, FinancingInvoice.id, params=params, cursor=cursor)
        stmt = (
            select(*ROW_COLUMNS)
            .where(FinancingInvoice.entity_id == bindparam("entity_id"))
            .where(*bound_conditions(shape, _COLUMNS), *conditions)
            .order_by(*order)
            .limit(bindparam("limit"))
        )
        prepared = _PAGES[key] = Prepared(stmt, for_json=True)
    return prepared, sort_column, FinancingInvoice.id


async def list_page(
    conn: Connection,
    entity_id: uuid.UUID,
    paginator: Paginator,
    params: schemas.FinancingInvoiceListParams,
) -> bytes:
    """One page of the entity's financing invoices as Monite's list response, in JSON bytes.

    The page query is compiled once per shape of request (which filters, sort, order, cursor
    direction), so a request costs the database's work and little more.
    """
    params, cursor = paginator.resolve(params)
    shape, values = _bound(params)
    prepared, sort_column, id_column = _page_statement(shape, params, cursor)
    values.update(cursor_values(sort_column, id_column, cursor))
    values["entity_id"] = entity_id
    values["limit"] = params.limit + 1
    rows = await prepared.mappings(conn, values)
    sort_key, id_key = sort_column.key, id_column.key

    def edge(row: Mapping[str, Any]) -> tuple[Any, Any]:
        value = row[sort_key]
        return (value.replace(tzinfo=UTC) if isinstance(value, datetime) else value), row[id_key]

    page = paginator.page(rows, params=params, cursor=cursor, edge=edge)
    body: dict[str, Any] = {"data": await documents(conn, page.data)}
    # Monite declares both tokens a plain string: at the ends the keys are left out.
    if page.next_pagination_token:
        body["next_pagination_token"] = page.next_pagination_token
    if page.prev_pagination_token:
        body["prev_pagination_token"] = page.prev_pagination_token
    # asyncpg hands back its own UUID type, which orjson does not know: ``str`` renders it.
    # Timestamps are naive UTC, as stored (see ``Prepared``).
    return orjson.dumps(body, default=str, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)


def _for_page(
    columns: tuple[Any, ...], owner: Any, order: tuple[Any, ...]
) -> Callable[[int], Prepared]:
    """Statements reading ``columns`` for the financing invoices of a page of ``n`` rows,
    compiled once per page size."""

    @functools.cache
    def statement(n: int) -> Prepared:
        ids = [bindparam(f"id_{i}", type_=owner.type) for i in range(n)]
        return Prepared(select(*columns).where(owner.in_(ids)).order_by(*order), for_json=True)

    return statement


_instalments = _for_page(
    (
        Instalment.financing_invoice_id,
        Instalment.sequence,
        Instalment.due_date,
        Instalment.amount,
        Instalment.fee_amount,
        Instalment.principal_amount,
        Instalment.paid_amount,
    ),
    Instalment.financing_invoice_id,
    (Instalment.financing_invoice_id, Instalment.sequence),
)
_history = _for_page(
    (
        FinancingStatusChange.financing_invoice_id,
        FinancingStatusChange.from_status,
        FinancingStatusChange.to_status,
        FinancingStatusChange.cause,
        FinancingStatusChange.at,
    ),
    FinancingStatusChange.financing_invoice_id,
    (FinancingStatusChange.at, FinancingStatusChange.id),
)


async def documents(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Monite's ``FinancingInvoice`` for each row (a mapping of ``ROW_COLUMNS``), with its
    instalments and status history: two queries for the whole page."""
    if not rows:
        return []
    ids = {f"id_{i}": row["id"] for i, row in enumerate(rows)}
    instalments: dict[Any, list[dict[str, Any]]] = {row["id"]: [] for row in rows}
    history: dict[Any, list[dict[str, Any]]] = {row["id"]: [] for row in rows}
    for owner, sequence, due, amount, fee, principal, paid in await _instalments(len(ids)).rows(
        conn, ids
    ):
        instalments[owner].append(
            {
                "sequence": sequence,
                "due_date": due,
                "amount": amount,
                "fee_amount": fee,
                "principal_amount": principal,
                "paid_amount": paid,
            }
        )
    for owner, before, after, cause, at in await _history(len(ids)).rows(conn, ids):
        change: dict[str, Any] = {"to_status": after, "cause": cause, "at": at}
        if before is not None:
            change = {"from_status": before, **change}
        history[owner].append(change)
    return [document(row, instalments[row["id"]], history[row["id"]]) for row in rows]


def document(
    row: Mapping[str, Any],
    instalments: list[dict[str, Any]],
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    """One financing invoice in Monite's shape; absent values are left out, as Monite does."""
    out = {key: row[key] for key in _COPIED if row[key] is not None}
    if row["principal_amount"] is not None:
        # What the business receives: the principal (DESIGN §5).
        out["advance_amount"] = row["principal_amount"]
    out.update((key, row[key]) for key in _AMOUNTS if row[key] is not None)
    schedule = _repayment_schedule(row, instalments)
    if schedule is not None:
        out["repayment_schedule"] = schedule
    out["instalments"] = instalments
    out["status_history"] = history
    return out


def _repayment_schedule(
    row: Mapping[str, Any], instalments: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Monite's ``repayment_schedule``: the first instalment (or, before there are any, the
    totals once the repayment date is known)."""
    if instalments:
        first = instalments[0]
        return {
            "repayment_date": first["due_date"],
            "repayment_amount": first["amount"],
            "repayment_fee_amount": first["fee_amount"],
            "repayment_principal_amount": first["principal_amount"],
        }
    totals = ("repayment_date", "repayment_amount", "fee_amount", "principal_amount")
    if any(row[key] is None for key in totals):
        return None
    return {
        "repayment_date": row["repayment_date"],
        "repayment_amount": row["repayment_amount"],
        "repayment_fee_amount": row["fee_amount"],
        "repayment_principal_amount": row["principal_amount"],
    }


async def render(
    session: AsyncSession, fis: Sequence[FinancingInvoice]
) -> list[schemas.FinancingInvoice]:
    """Loaded financing invoices (ORM objects) as wire models, for the other endpoints."""
    rows = [{column.key: getattr(fi, column.key) for column in ROW_COLUMNS} for fi in fis]
    return [schemas.FinancingInvoice.model_validate(d) for d in await documents(session, rows)]
