"""Payables: creation from data, updates, listing and the approval-and-payment lifecycle.

Lifecycle, as Monite documents it for manual transitions:

    draft ⇄ new                      (automatic: `new` once every essential field is filled)
    draft, new → canceled            (cancel)
    new → approve_in_progress        (submit_for_approval)
    new, approve_in_progress → waiting_to_be_paid          (approve_payment_operation)
    approve_in_progress → rejected   (reject)
    waiting_to_be_paid, partially_paid → partially_paid    (mark_as_partially_paid)
    waiting_to_be_paid, partially_paid → paid              (mark_as_paid)

Only `draft` and `new` payables can be changed or deleted. Money is integer minor units.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.auth.service import Caller
from fundline.counterparts.service import get_counterpart
from fundline.kit import clock
from fundline.kit.errors import Conflict, NotFound, Unprocessable
from fundline.kit.filters import apply_filters
from fundline.kit.money import percent_of
from fundline.kit.pagination import ListParams, Page, Paginator
from fundline.lending import locks
from fundline.lending.provider import LenderProvider
from fundline.models import Counterpart, CounterpartAddress, Entity, Payable
from fundline.models.payable import NO_ISSUE_DATE, PayableStatus
from fundline.payables.schemas import (
    CreatePayableRequest,
    PayableCursorFields,
    PayableFields,
    PayableListParams,
    PayableOrigin,
    SourceOfPayableData,
    UpdatePayableRequest,
)
from fundline.webhooks import outbox

S = PayableStatus

# A payable missing any of these stays `draft` (Monite also needs line items, which Fundline's
# payables do not have).
ESSENTIAL_FIELDS = ("total_amount", "currency", "document_id", "due_date", "issued_at")
EDITABLE = frozenset({S.DRAFT, S.NEW})

# Fields of Monite's payloads that point at things Fundline does not keep: refused, not ignored.
UNSUPPORTED_FIELDS = (
    "base64_encoded_file",
    "file_name",
    "counterpart_bank_account_id",
    "counterpart_vat_id_id",
    "project_id",
    "purchase_order_id",
    "tag_ids",
    "amount_paid",
    "counterpart_raw_data",
)


class Action(StrEnum):
    SUBMIT_FOR_APPROVAL = "submit_for_approval"
    APPROVE_PAYMENT_OPERATION = "approve_payment_operation"
    REJECT = "reject"
    CANCEL = "cancel"
    MARK_AS_PARTIALLY_PAID = "mark_as_partially_paid"
    MARK_AS_PAID = "mark_as_paid"


TRANSITIONS: dict[Action, tuple[frozenset[PayableStatus], PayableStatus]] = {
    Action.SUBMIT_FOR_APPROVAL: (frozenset({S.NEW}), S.APPROVE_IN_PROGRESS),
    Action.APPROVE_PAYMENT_OPERATION: (
        frozenset({S.NEW, S.APPROVE_IN_PROGRESS}),
        S.WAITING_TO_BE_PAID,
    ),
    Action.REJECT: (frozenset({S.APPROVE_IN_PROGRESS}), S.REJECTED),
    Action.CANCEL: (frozenset({S.DRAFT, S.NEW}), S.CANCELED),
    Action.MARK_AS_PARTIALLY_PAID: (
        frozenset({S.WAITING_TO_BE_PAID, S.PARTIALLY_PAID}),
        S.PARTIALLY_PAID,
    ),
    Action.MARK_AS_PAID: (frozenset({S.WAITING_TO_BE_PAID, S.PARTIALLY_PAID}), S.PAID),
}

FILTER_COLUMNS: dict[str, Any] = {
    "id": Payable.id,
    "status": Payable.status,
    "total_amount": Payable.total_amount,
    "amount": Payable.total_amount,
    "currency": Payable.currency,
    "due_date": Payable.due_date,
    "issued_at": Payable.issued_at,
    "document_id": Payable.document_id,
    "was_created_by_user_id": Payable.was_created_by_user_id,
    "counterpart_id": Payable.counterpart_id,
    "created_at": Payable.created_at,
}
SORT_COLUMNS = {
    PayableCursorFields.ID: Payable.id,
    PayableCursorFields.CREATED_AT: Payable.created_at,
    PayableCursorFields.ISSUED_AT: Payable.issued_at_sort,
}


# --- reading ---------------------------------------------------------------------------------


async def get_payable(
    session: AsyncSession, entity: Entity, payable_id: uuid.UUID, *, lock: bool = False
) -> Payable:
    """The entity's payable; another entity's is a 404. ``lock`` takes a row lock (Postgres)."""
    stmt = select(Payable).where(Payable.id == payable_id, Payable.entity_id == entity.id)
    payable = await (locks.row(session, stmt) if lock else session.scalar(stmt))
    if payable is None:
        raise NotFound("Payable not found")
    return payable


def amount_to_pay(payable: Payable, today: date) -> int | None:
    """What is left to pay after the early-payment discount of the payment terms still open."""
    due = payable.amount_due
    if due is None or payable.payment_terms is None or payable.issued_at is None:
        return due
    for name in ("term_1", "term_2"):
        term = payable.payment_terms.get(name)
        if term and today <= payable.issued_at + timedelta(days=term["number_of_days"]):
            return due - percent_of(due, term["discount"])
    return due


# --- creating and changing -------------------------------------------------------------------


async def create_payable(
    session: AsyncSession, entity: Entity, caller: Caller, payload: CreatePayableRequest
) -> Payable:
    """A payable from data; `new` if every essential field is given, else `draft`."""
    payable = await build_payable(session, entity, payload, created_by=caller.entity_user_id)
    session.add(payable)
    await session.flush()
    await outbox.record_event(session, entity, payable, "created", data={"status": payable.status})
    return payable


async def build_payable(
    session: AsyncSession,
    entity: Entity,
    payload: CreatePayableRequest,
    *,
    created_by: uuid.UUID | None,
) -> Payable:
    """The unsaved, checked payable ``payload`` describes, `new` or `draft` (the bulk import
    inserts these itself; it reads the database only for a counterpart named in ``payload``)."""
    payable = Payable(
        id=uuid.uuid4(),
        entity_id=entity.id,
        status=S.DRAFT,
        amount_paid=0,
        was_created_by_user_id=created_by,
    )
    await _apply(session, entity, payable, _changes(payload))
    return payable


async def update_payable(
    session: AsyncSession, entity: Entity, payable_id: uuid.UUID, payload: UpdatePayableRequest
) -> Payable:
    """Change a draft or new payable; it becomes `new` or `draft` by what it then has."""
    payable = await get_payable(session, entity, payable_id, lock=True)
    if payable.status not in EDITABLE:
        raise Conflict(_state_message(payable, "only draft and new payables can be changed"))
    before = payable.status
    await _apply(session, entity, payable, _changes(payload))
    await session.flush()
    await outbox.record_event(session, entity, payable, "updated")
    if payable.status != before:
        await outbox.record_transition(session, entity, payable, before)
    return payable


async def delete_payable(session: AsyncSession, entity: Entity, payable_id: uuid.UUID) -> None:
    payable = await get_payable(session, entity, payable_id, lock=True)
    if payable.status not in EDITABLE:
        raise Conflict(_state_message(payable, "only draft and new payables can be deleted"))
    await session.delete(payable)
    await session.flush()
    await outbox.record_event(session, entity, payable, "deleted")


def _changes(payload: PayableFields) -> dict[str, Any]:
    for name in UNSUPPORTED_FIELDS:
        value = getattr(payload, name, None)
        if value is not None and value != []:
            raise Unprocessable(f"{name} is not supported by Fundline", loc=("body", name))
    return payload.model_dump(exclude_unset=True, exclude=set(UNSUPPORTED_FIELDS), mode="json")


async def _apply(
    session: AsyncSession, entity: Entity, payable: Payable, changes: dict[str, Any]
) -> None:
    """Set ``changes`` (JSON-mode values, only those the client sent), derive what follows
    from them, check the result and set the draft/new status."""
    for name in ("issued_at", "due_date"):
        if changes.get(name) is not None:
            changes[name] = date.fromisoformat(changes[name])
    for name in ("counterpart_id", "counterpart_address_id"):
        if changes.get(name) is not None:
            changes[name] = uuid.UUID(changes[name])
    if changes.get("counterpart_id") is not None:
        await get_counterpart(session, entity, changes["counterpart_id"])  # 404 if not its own
    for name, value in changes.items():
        setattr(payable, name, value)
    if payable.counterpart_address_id is not None:
        with session.no_autoflush:
            await _check_address(session, payable)

    # Derived amounts follow their inputs unless the client sent the derived value itself.
    if {"subtotal", "tax"} & changes.keys() and "tax_amount" not in changes:
        if payable.subtotal is not None and payable.tax is not None:
            payable.tax_amount = percent_of(payable.subtotal, payable.tax)
    if {"subtotal", "tax", "tax_amount"} & changes.keys() and "total_amount" not in changes:
        if payable.subtotal is not None:
            payable.total_amount = payable.subtotal + (payable.tax_amount or 0)
    subtotal, tax_amount, total = payable.subtotal, payable.tax_amount, payable.total_amount
    if subtotal is not None and tax_amount is not None and total is not None:
        if subtotal + tax_amount != total:
            raise Unprocessable(
                f"total_amount {payable.total_amount} is not subtotal {payable.subtotal} "
                f"plus tax_amount {payable.tax_amount}",
                loc=("body", "total_amount"),
            )

    terms = payable.payment_terms
    if terms is not None:
        _check_terms(terms)
    if {"issued_at", "payment_terms"} & changes.keys() and "due_date" not in changes:
        if terms is not None and payable.issued_at is not None:
            days = terms["term_final"]["number_of_days"]
            payable.due_date = payable.issued_at + timedelta(days=days)
    if payable.issued_at and payable.due_date and payable.due_date < payable.issued_at:
        raise Unprocessable("due_date cannot be before issued_at", loc=("body", "due_date"))

    payable.issued_at_sort = payable.issued_at or NO_ISSUE_DATE
    complete = all(getattr(payable, name) is not None for name in ESSENTIAL_FIELDS)
    payable.status = S.NEW if complete else S.DRAFT


async def _check_address(session: AsyncSession, payable: Payable) -> None:
    found = None
    if payable.counterpart_id is not None:
        found = await session.scalar(
            select(CounterpartAddress.id).where(
                CounterpartAddress.id == payable.counterpart_address_id,
                CounterpartAddress.counterpart_id == payable.counterpart_id,
            )
        )
    if found is None:
        raise Unprocessable(
            "counterpart_address_id is not an address of the payable's counterpart",
            loc=("body", "counterpart_address_id"),
        )


def _check_terms(terms: dict[str, Any]) -> None:
    final = terms["term_final"]["number_of_days"]
    first, second = terms.get("term_1"), terms.get("term_2")
    if second is not None and first is None:
        raise Unprocessable("term_2 needs term_1", loc=("body", "payment_terms", "term_2"))
    deadlines = [t["number_of_days"] for t in (first, second) if t is not None] + [final]
    if deadlines != sorted(set(deadlines)):
        raise Unprocessable(
            "payment terms must end on increasing days: term_1 < term_2 < term_final",
            loc=("body", "payment_terms"),
        )


# --- lifecycle -------------------------------------------------------------------------------


async def transition(
    session: AsyncSession,
    entity: Entity,
    caller: Caller,
    payable_id: uuid.UUID,
    action: Action,
    *,
    lender: LenderProvider,
    amount_paid: int | None = None,
    comment: str | None = None,
) -> Payable:
    """Apply one lifecycle ``action``; a payable in a status it does not start from is a 409."""
    payable = await get_payable(session, entity, payable_id, lock=True)
    allowed, target = TRANSITIONS[action]
    if payable.status not in allowed:
        detail = f"{action.value} needs a payable that is {' or '.join(sorted(allowed))}"
        missing = [name for name in ESSENTIAL_FIELDS if getattr(payable, name) is None]
        if payable.status == S.DRAFT and S.NEW in allowed:
            detail += "; fill in " + ", ".join(missing) + " to make it new"
        raise Conflict(_state_message(payable, detail))
    before = payable.status
    received = 0  # what this action adds to the payments so far
    if payable.status == S.NEW and target in (S.APPROVE_IN_PROGRESS, S.WAITING_TO_BE_PAID):
        await _snapshot_counterpart(session, payable)
    if action is Action.MARK_AS_PARTIALLY_PAID:
        assert amount_paid is not None
        _check_partial_payment(payable, amount_paid)
        received = amount_paid - payable.amount_paid
        payable.amount_paid = amount_paid
    elif action is Action.MARK_AS_PAID:
        assert payable.total_amount is not None  # a payable past `new` has every essential field
        payable.amount_paid = payable.total_amount
        payable.paid_at = clock.now()
        payable.marked_as_paid_by_entity_user_id = caller.entity_user_id
        payable.marked_as_paid_with_comment = comment
    payable.status = target
    await session.flush()
    await outbox.record_transition(session, entity, payable, before)
    # The financing of the payable follows its payments. (Cancelling or rejecting needs a
    # payable that was never waiting to be paid, which no financing can have.)
    if action is Action.MARK_AS_PAID:
        await lender.document_paid(session, invoice_type="payable", invoice_id=payable.id)
    elif action is Action.MARK_AS_PARTIALLY_PAID:
        await lender.document_partly_paid(
            session, invoice_type="payable", invoice_id=payable.id, amount=received
        )
    return payable


def _check_partial_payment(payable: Payable, amount_paid: int) -> None:
    total = payable.total_amount
    assert total is not None
    if not 0 < amount_paid < total:
        raise Unprocessable(
            f"amount_paid must be more than 0 and less than the total amount {total}; "
            "use mark_as_paid for a full payment",
            loc=("body", "amount_paid"),
        )
    if amount_paid < payable.amount_paid:
        raise Unprocessable(
            f"amount_paid is the sum of all payments so far and cannot go below the "
            f"{payable.amount_paid} already recorded",
            loc=("body", "amount_paid"),
        )


async def _snapshot_counterpart(session: AsyncSession, payable: Payable) -> None:
    """Monite fills `counterpart` with the vendor's data when the payable leaves review."""
    if payable.counterpart_id is None:
        return
    counterpart = await session.get(Counterpart, payable.counterpart_id)
    if counterpart is None:
        return
    payable.counterpart_snapshot = counterpart_snapshot(counterpart)


def counterpart_snapshot(counterpart: Counterpart) -> dict[str, Any]:
    """The vendor's data as a payable keeps it once it leaves review (Monite's `counterpart`)."""
    data = {
        "name": counterpart.name,
        "email": counterpart.email,
        "phone": counterpart.phone,
        "tax_id": counterpart.tax_id,
    }
    return {k: v for k, v in data.items() if v}


def _state_message(payable: Payable, detail: str) -> str:
    return f"Payable couldn't be updated due to current state: {payable.status} ({detail})"


# --- listing ---------------------------------------------------------------------------------

# Filters answered from what every Fundline payable is: created from data by API, with no OCR,
# file, tags, project, purchase order or line items. Each maps a value to "matches all or none".
CONSTANT_FILTERS: dict[str, Callable[[Any], bool]] = {
    "source_of_payable_data": lambda v: v == SourceOfPayableData.USER_SPECIFIED,
    "origin": lambda v: v == PayableOrigin.UPLOAD,
    "ocr_status": lambda v: False,
    "line_item_id": lambda v: False,
    "purchase_order_id": lambda v: False,
    "project_id": lambda v: False,
    "project_id__in": lambda v: False,
    "tag_ids": lambda v: False,
    "tag_ids__not_in": lambda v: True,
    "has_tags": lambda v: not v,
    "has_file": lambda v: not v,
}
NAME_FILTERS = ("counterpart_name", "counterpart_name__contains", "counterpart_name__icontains")


async def list_payables(
    session: AsyncSession, entity: Entity, paginator: Paginator, params: PayableListParams
) -> Page[Payable]:
    params, cursor = paginator.resolve(params)
    stmt = select(Payable).where(Payable.entity_id == entity.id)
    stmt = _custom_filters(stmt, entity, params)
    custom = dict.fromkeys((*CONSTANT_FILTERS, *NAME_FILTERS, "search_text"))
    stmt = apply_filters(stmt, params.model_copy(update=custom), FILTER_COLUMNS)
    return await paginator.fetch(
        session,
        stmt,
        params=params,
        cursor=cursor,
        sort_column=SORT_COLUMNS[params.sort or PayableCursorFields.CREATED_AT],
        id_column=Payable.id,
    )


def _custom_filters(stmt: Select[Any], entity: Entity, params: PayableListParams) -> Select[Any]:
    for name, matches in CONSTANT_FILTERS.items():
        value = getattr(params, name)
        if value is not None:
            stmt = stmt.where(true() if matches(value) else false())
    names = {name: getattr(params, name) for name in NAME_FILTERS}
    if any(value is not None for value in names.values()):
        matching = apply_filters(
            select(Counterpart.id).where(Counterpart.entity_id == entity.id),
            _CounterpartNameFilters(**names),
            {"counterpart_name": Counterpart.counterpart_name},
        )
        stmt = stmt.where(Payable.counterpart_id.in_(matching))
    if params.search_text is not None:
        text = params.search_text.lower()
        named = select(Counterpart.id).where(
            Counterpart.entity_id == entity.id, _icontains(Counterpart.counterpart_name, text)
        )
        stmt = stmt.where(
            or_(_icontains(Payable.document_id, text), Payable.counterpart_id.in_(named))
        )
    return stmt


def _icontains(column: Any, text: str) -> ColumnElement[bool]:
    return func.lower(column).contains(text.lower(), autoescape=True)


class _CounterpartNameFilters(ListParams):
    """The counterpart-name filters, applied to the entity's counterparts (deleted or not)."""

    counterpart_name: str | None = None
    counterpart_name__contains: str | None = None
    counterpart_name__icontains: str | None = None
