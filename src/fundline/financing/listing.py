"""``GET /v1/financing_invoices``: the list query and the rendering of financing invoices.

This is the partners' hottest path, so it reads plain rows (no ORM objects), loads the
instalments and history of a whole page in one query each, and renders straight to JSON bytes.
Every other place that shows a financing invoice renders it with the same ``document()``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any, cast

import orjson
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from fundline.financing import schemas
from fundline.kit.filters import apply_filters
from fundline.kit.pagination import Page, Paginator
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
)
_AMOUNTS = (
    "advance_rate_percentage",
    "fee_amount",
    "fee_percentage",
    "principal_amount",
    "repayment_amount",
)


def _date_bound(
    column: InstrumentedAttribute[date], op: str, bound: datetime
) -> ColumnElement[bool]:
    """A date column against Monite's date-time bound: the date D counts as D 00:00 UTC."""
    at = bound.astimezone(UTC)
    day, at_midnight = at.date(), at.time() == time(0)
    if op == "gt":
        return column > day
    if op == "lte":
        return column <= day
    if op == "gte":
        return (column >= day) if at_midnight else (column > day)
    return (column < day) if at_midnight else (column <= day)


def _filtered(stmt: Select[Any], params: schemas.FinancingInvoiceListParams) -> Select[Any]:
    cleared: dict[str, None] = {}
    for base, column in DATE_COLUMNS.items():
        for op in ("gt", "gte", "lt", "lte"):
            name = f"{base}__{op}"
            bound = getattr(params, name)
            if bound is not None:
                stmt = stmt.where(_date_bound(column, op, bound))
            cleared[name] = None
    return apply_filters(stmt, params.model_copy(update=cleared), FILTER_COLUMNS)


async def list_page(
    session: AsyncSession,
    entity_id: uuid.UUID,
    paginator: Paginator,
    params: schemas.FinancingInvoiceListParams,
) -> bytes:
    """One page of the entity's financing invoices as Monite's list response, in JSON bytes."""
    params, cursor = paginator.resolve(params)
    rows = cast("Select[Any]", select(*ROW_COLUMNS))
    stmt = _filtered(rows.where(FinancingInvoice.entity_id == entity_id), params)
    by_id = params.sort is schemas.FinancingInvoiceCursorFields.ID
    page: Page[Any] = await paginator.fetch(
        session,
        stmt,
        params=params,
        cursor=cursor,
        sort_column=FinancingInvoice.id if by_id else FinancingInvoice.created_at,
        id_column=FinancingInvoice.id,
    )
    body: dict[str, Any] = {"data": await documents(session, [row._mapping for row in page.data])}
    # Monite declares both tokens a plain string: at the ends the keys are left out.
    if page.next_pagination_token:
        body["next_pagination_token"] = page.next_pagination_token
    if page.prev_pagination_token:
        body["prev_pagination_token"] = page.prev_pagination_token
    # asyncpg hands back its own UUID type, which orjson does not know: ``str`` renders it.
    return orjson.dumps(body, default=str, option=orjson.OPT_UTC_Z)


async def documents(
    session: AsyncSession, rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Monite's ``FinancingInvoice`` for each row (a mapping of ``ROW_COLUMNS``), with its
    instalments and status history: two queries for the whole page."""
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    instalments: dict[uuid.UUID, list[dict[str, Any]]] = {i: [] for i in ids}
    history: dict[uuid.UUID, list[dict[str, Any]]] = {i: [] for i in ids}
    found = await session.execute(
        select(
            Instalment.financing_invoice_id,
            Instalment.sequence,
            Instalment.due_date,
            Instalment.amount,
            Instalment.fee_amount,
            Instalment.principal_amount,
            Instalment.paid_amount,
        )
        .where(Instalment.financing_invoice_id.in_(ids))
        .order_by(Instalment.financing_invoice_id, Instalment.sequence)
    )
    for owner, sequence, due, amount, fee, principal, paid in found:
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
    changes = await session.execute(
        select(
            FinancingStatusChange.financing_invoice_id,
            FinancingStatusChange.from_status,
            FinancingStatusChange.to_status,
            FinancingStatusChange.cause,
            FinancingStatusChange.at,
        )
        .where(FinancingStatusChange.financing_invoice_id.in_(ids))
        .order_by(FinancingStatusChange.at, FinancingStatusChange.id)
    )
    for owner, before, after, cause, at in changes:
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
