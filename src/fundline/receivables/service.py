"""Receivables (invoices): reading, listing, creating, and editing or deleting drafts.

``overdue`` is never stored: an ``issued`` or ``partially_paid`` invoice whose due date is
before the clock's today *is* overdue, when it is read and when it is filtered, so the sandbox
clock moves invoices into it without a job. The lifecycle moves live in ``lifecycle``.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, false, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from fundline.auth.service import Caller
from fundline.kit import clock
from fundline.kit.errors import Conflict, NotFound, Unprocessable
from fundline.kit.filters import apply_filters
from fundline.kit.pagination import Page, Paginator
from fundline.kit.statements import Insert
from fundline.lending import locks
from fundline.models import Entity, Receivable
from fundline.models.receivable import OPEN_STATUSES, ReceivablesStatus
from fundline.receivables.document import (
    apply_lines,
    choose_counterpart,
    chosen_columns,
    due_date_under,
    issuer_document,
    merge_details,
    new_line,
    priced_lines,
    terms_document,
)
from fundline.receivables.schemas import (
    CreateInvoiceRequest,
    ReceivableListParams,
    UpdateInvoice,
    UpdateReceivableRequest,
)
from fundline.webhooks import outbox


def effective_status(receivable: Receivable, today: date) -> ReceivablesStatus:
    """The status a client sees: ``overdue`` for an open invoice past its due date."""
    return status_at(receivable.status, receivable.due_date, today)


def status_at(status: ReceivablesStatus, due_date: date | None, today: date) -> ReceivablesStatus:
    """``effective_status`` of a receivable's stored status and due date."""
    if status in OPEN_STATUSES and due_date is not None and due_date < today:
        return ReceivablesStatus.OVERDUE
    return status


# --- reading ---------------------------------------------------------------------------------


async def get_receivable(
    session: AsyncSession, entity: Entity, receivable_id: uuid.UUID, *, lock: bool = False
) -> Receivable:
    """The entity's receivable; another entity's is a 404. ``lock`` holds its row until commit."""
    values = {"receivable_id": receivable_id, "entity_id": entity.id}
    receivable = await (
        locks.row(session, _RECEIVABLE, values) if lock else session.scalar(_RECEIVABLE, values)
    )
    if receivable is None:
        raise NotFound("Receivable not found")
    return receivable


_RECEIVABLE = select(Receivable).where(
    Receivable.id == bindparam("receivable_id", type_=Receivable.id.type),
    Receivable.entity_id == bindparam("entity_id", type_=Receivable.entity_id.type),
)

COLUMNS: dict[str, Any] = {
    "id": Receivable.id,
    "entity_user_id": Receivable.entity_user_id,
    "type": Receivable.type,
    "document_id": Receivable.document_id,
    "issue_date": Receivable.issue_date,
    "created_at": Receivable.created_at,
    "counterpart_id": Receivable.counterpart_id,
    "counterpart_name": Receivable.counterpart_name,
    "total_amount": Receivable.total_amount,
    # Fundline has no discounts, so the discounted subtotal is the subtotal.
    "discounted_subtotal": Receivable.subtotal,
    "due_date": Receivable.due_date,
}

SORT_COLUMNS: dict[str | None, InstrumentedAttribute[Any]] = {
    None: Receivable.created_at,
    "created_at": Receivable.created_at,
    # No invoice has a project, so ordering by it leaves creation order.
    "project_id": Receivable.created_at,
    "counterpart_name": Receivable.counterpart_name,
    "counterpart_id": Receivable.counterpart_id,
    "amount": Receivable.total_amount,
    "total_amount": Receivable.total_amount,
    "discounted_subtotal": Receivable.subtotal,
    "status": Receivable.status,
    "due_date": Receivable.sort_due_date,
    "issue_date": Receivable.sort_issue_date,
    "document_id": Receivable.sort_document_id,
}

# Filters on things Fundline's invoices never have (tags, catalogue products, projects,
# documents based on quotes): any value matches nothing.
NEVER_MATCH = (
    "tag_ids",
    "tag_ids__in",
    "product_ids",
    "product_ids__in",
    "project_id",
    "project_id__in",
    "based_on",
)
CUSTOM_FILTERS = ("status", "status__in", *NEVER_MATCH)


def _status_is(status: ReceivablesStatus, today: date) -> ColumnElement[bool]:
    """SQL for "the effective status is ``status``", agreeing with ``effective_status``."""
    past_due = and_(Receivable.due_date.is_not(None), Receivable.due_date < today)
    if status == ReceivablesStatus.OVERDUE:
        return and_(Receivable.status.in_(OPEN_STATUSES), past_due)
    if status in OPEN_STATUSES:
        return and_(Receivable.status == status, ~past_due)
    return Receivable.status == status


async def list_receivables(
    session: AsyncSession, entity: Entity, paginator: Paginator, params: ReceivableListParams
) -> Page[Receivable]:
    params, cursor = paginator.resolve(params)
    today = clock.today()
    stmt = select(Receivable).where(Receivable.entity_id == entity.id)
    if params.status is not None:
        stmt = stmt.where(_status_is(params.status, today))
    if params.status__in:
        stmt = stmt.where(or_(*(_status_is(s, today) for s in params.status__in)))
    if any(getattr(params, name) is not None for name in NEVER_MATCH):
        stmt = stmt.where(false())
    plain = params.model_copy(update=dict.fromkeys(CUSTOM_FILTERS))
    stmt = apply_filters(stmt, plain, COLUMNS)
    return await paginator.fetch(
        session,
        stmt,
        params=params,
        cursor=cursor,
        sort_column=SORT_COLUMNS[params.sort.value if params.sort else None],
        id_column=Receivable.id,
    )


# --- create, update, delete ------------------------------------------------------------------


async def document_id_taken(session: AsyncSession, entity_id: uuid.UUID, document_id: str) -> bool:
    found = await session.scalar(
        select(Receivable.id).where(
            Receivable.entity_id == entity_id, Receivable.document_id == document_id
        )
    )
    return found is not None


async def create_receivable(
    session: AsyncSession, entity: Entity, caller: Caller, payload: CreateInvoiceRequest
) -> Receivable:
    """A draft invoice; its due date is provisional until it is issued."""
    chosen = await choose_counterpart(
        session,
        entity,
        payload.counterpart_id,
        payload.counterpart_billing_address_id,
        payload.counterpart_shipping_address_id,
    )
    taken = f"A receivable with document_id {payload.document_id!r} already exists"
    if payload.document_id is not None and await document_id_taken(
        session, entity.id, payload.document_id
    ):
        raise Conflict(taken)
    issuer = issuer_document(entity, payload.entity)
    details = merge_details(payload, {})
    terms = terms_document(payload.payment_terms)
    copied = chosen_columns(chosen)  # a wrong address is the 422 before a wrong line
    lines = [
        new_line(item, i, currency=payload.currency) for i, item in enumerate(payload.line_items)
    ]
    now = clock.now()
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "entity_id": entity.id,
        "type": "invoice",
        "status": ReceivablesStatus.DRAFT,
        "currency": payload.currency,
        "document_id": payload.document_id,
        "entity_user_id": caller.entity_user_id,
        "issuer": issuer,
        "details": details,
        "payment_terms": terms,
        "amount_paid": 0,
        "issue_date": None,
        "due_date": due_date_under(terms, clock.today()),
        "paid_at": None,
        "comment": None,
        "created_at": now,
        "updated_at": now,
        **copied,
        **priced_lines(lines, details=details),
    }
    # One statement past the ORM's unit of work; the response is the row as written.
    try:
        await _INSERT.rows(session, [row])
    except IntegrityError as exc:  # a concurrent request took the same document_id
        raise Conflict(taken) from exc
    # Its event's row as ``record_event`` writes it, without building an ``Event`` for it.
    await outbox.record_events(session, entity, Receivable, "created", [(row["id"], None)])
    return Receivable(**row)


_INSERT = Insert(Receivable)


async def update_receivable(
    session: AsyncSession,
    entity: Entity,
    receivable_id: uuid.UUID,
    payload: UpdateReceivableRequest,
) -> Receivable:
    """Change a draft. Line items are changed by position; the totals are recomputed."""
    receivable = await get_receivable(session, entity, receivable_id, lock=True)
    status = effective_status(receivable, clock.today())
    if status != ReceivablesStatus.DRAFT:
        raise Conflict(f"Only draft receivables can be updated; this one is {status}")
    changes = payload.invoice
    if changes is None:
        raise Unprocessable(
            "issued_invoice applies to issued invoices; to change a draft, send invoice",
            loc=("body", "issued_invoice"),
        )
    given = changes.model_fields_set
    await _change_counterpart(session, entity, receivable, changes)
    if "entity" in given:
        receivable.issuer = issuer_document(entity, changes.entity)
    receivable.details = merge_details(changes, receivable.details)
    if "payment_terms" in given:
        receivable.payment_terms = terms_document(changes.payment_terms)
        receivable.due_date = due_date_under(receivable.payment_terms, clock.today())
    if changes.currency is not None:
        receivable.currency = changes.currency
    apply_lines(receivable, _changed_lines(receivable, changes), loc=("body", "invoice"))

    await session.flush()
    await outbox.record_event(session, entity, receivable, "updated")
    return receivable


async def _change_counterpart(
    session: AsyncSession, entity: Entity, receivable: Receivable, changes: UpdateInvoice
) -> None:
    """Apply a change of counterpart or of its addresses, if ``changes`` gives one. A new
    counterpart needs its billing address given; its shipping address is dropped unless given."""
    given = changes.model_fields_set
    if not given & {
        "counterpart_id",
        "counterpart_billing_address_id",
        "counterpart_shipping_address_id",
    }:
        return
    counterpart_id = changes.counterpart_id or receivable.counterpart_id
    switching = counterpart_id != receivable.counterpart_id
    if switching and changes.counterpart_billing_address_id is None:
        raise Unprocessable(
            "counterpart_billing_address_id is required when counterpart_id changes",
            loc=("body", "invoice", "counterpart_billing_address_id"),
        )
    if "counterpart_shipping_address_id" in given:
        shipping = changes.counterpart_shipping_address_id
    else:
        shipping = None if switching else receivable.counterpart_shipping_address_id
    chosen = await choose_counterpart(
        session,
        entity,
        counterpart_id,
        changes.counterpart_billing_address_id or receivable.counterpart_billing_address_id,
        shipping,
    )
    for name, value in chosen_columns(chosen, loc=("body", "invoice")).items():
        setattr(receivable, name, value)


def _changed_lines(receivable: Receivable, changes: UpdateInvoice) -> list[dict[str, Any]]:
    """The receivable's lines with ``changes.line_items`` applied by position (one entry per
    line, or 422), for ``apply_lines`` to check and total."""
    lines = [dict(line) for line in receivable.line_items]
    if changes.line_items is None:
        return lines
    if len(changes.line_items) != len(lines):
        raise Unprocessable(
            f"line_items changes the invoice's lines by position: give one entry for each "
            f"of its {len(lines)} lines",
            loc=("body", "invoice", "line_items"),
        )
    for line, change in zip(lines, changes.line_items, strict=True):
        for field, value in change.model_dump(exclude_unset=True).items():
            if field == "quantity":
                value = str(value)
            # A tax rate can be cleared; any other field left null keeps its value.
            if value is not None or field in ("tax_rate_value", "tax_rate_name"):
                line[field] = value
    return lines


async def delete_receivable(
    session: AsyncSession, entity: Entity, receivable_id: uuid.UUID
) -> None:
    """Delete a draft. Issued invoices are documents of record: they can only be canceled."""
    receivable = await get_receivable(session, entity, receivable_id, lock=True)
    status = effective_status(receivable, clock.today())
    if status != ReceivablesStatus.DRAFT:
        raise Conflict(f"Only draft receivables can be deleted; this one is {status}")
    await outbox.record_event(session, entity, receivable, "deleted")
    await session.delete(receivable)
    await session.flush()
