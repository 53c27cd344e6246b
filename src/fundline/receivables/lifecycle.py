"""The invoice lifecycle: issue, partial and full payment, cancel, write off.

Every move locks the invoice's row, checks its effective status (so an overdue invoice moves
as one) and records a ``receivable.status_changed`` event in the same transaction. A payment,
a cancellation or a write-off then tells its financing (``lending.documents``), in the same
transaction: the invoice's row is locked before the financing's, as ``lending.locks`` orders.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import BigInteger, Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from fundline.kit import clock, statements
from fundline.kit.errors import Conflict, Unprocessable
from fundline.kit.statements import Prepared, Update
from fundline.lending.provider import LenderProvider
from fundline.models import Entity, Receivable, ReceivableCounter
from fundline.models.receivable import ReceivablesStatus
from fundline.receivables.document import due_date_under
from fundline.receivables.schemas import (
    ReceivablePaidPayload,
    ReceivablePartiallyPaidPayload,
    ReceivableUncollectiblePayload,
)
from fundline.receivables.service import effective_status, get_receivable
from fundline.webhooks import outbox

DOCUMENT_PREFIX = "INV-"


async def _for_transition(
    session: AsyncSession,
    entity: Entity,
    receivable_id: uuid.UUID,
    *,
    doing: str,
    allowed: tuple[ReceivablesStatus, ...],
) -> tuple[Receivable, ReceivablesStatus]:
    """The locked receivable and its effective status, or a 409 naming that status."""
    receivable = await get_receivable(session, entity, receivable_id, lock=True)
    status = effective_status(receivable, clock.today())
    if status not in allowed:
        raise Conflict(
            f"The receivable cannot be {doing}: its status is {status} "
            f"(it must be {' or '.join(allowed)})"
        )
    return receivable, status


async def issue_receivable(
    session: AsyncSession, entity: Entity, receivable_id: uuid.UUID
) -> Receivable:
    """Issue a draft: it gets the next document number (unless it has one), the clock's time
    as its issue date, and its due date from its payment terms."""
    receivable, before = await _for_transition(
        session, entity, receivable_id, doing="issued", allowed=(ReceivablesStatus.DRAFT,)
    )
    if not receivable.line_items:
        raise Unprocessable(
            "An invoice needs at least one line item to be issued", loc=("body", "line_items")
        )
    if receivable.payment_terms is None:
        raise Unprocessable(
            "An invoice needs payment terms to be issued", loc=("body", "payment_terms")
        )
    now = clock.now()
    due = due_date_under(receivable.payment_terms, now.date())
    assert due is not None  # payment terms always give one
    if due < now.date():
        raise Unprocessable(
            f"The due date {due} is before the issue date {now.date()}",
            loc=("body", "payment_terms", "term_final", "end_date"),
        )
    changes: dict[str, Any] = {"issue_date": now, "due_date": due}
    if receivable.document_id is None:
        changes["document_id"] = await _next_document_id(session, entity.id)
    return await _move(session, entity, receivable, before, ReceivablesStatus.ISSUED, changes)


async def mark_as_partially_paid(
    session: AsyncSession,
    entity: Entity,
    receivable_id: uuid.UUID,
    payload: ReceivablePartiallyPaidPayload,
    *,
    lender: LenderProvider,
) -> Receivable:
    """Record the sum paid so far (Monite's ``amount_paid``: all payments, not the last one)."""
    receivable, before = await _for_transition(
        session,
        entity,
        receivable_id,
        doing="marked as partially paid",
        allowed=(
            ReceivablesStatus.ISSUED,
            ReceivablesStatus.OVERDUE,
            ReceivablesStatus.PARTIALLY_PAID,
        ),
    )
    if payload.amount_paid >= receivable.total_amount:
        raise Unprocessable(
            f"amount_paid must be less than the total amount ({receivable.total_amount}); "
            "mark the invoice as paid instead",
            loc=("body", "amount_paid"),
        )
    if payload.amount_paid <= receivable.amount_paid:
        raise Unprocessable(
            "amount_paid is the sum of all payments so far and must exceed the "
            f"{receivable.amount_paid} already recorded",
            loc=("body", "amount_paid"),
        )
    received = payload.amount_paid - receivable.amount_paid
    changes: dict[str, Any] = {"amount_paid": payload.amount_paid}
    if payload.comment is not None:
        changes["comment"] = payload.comment
    moved = await _move(
        session, entity, receivable, before, ReceivablesStatus.PARTIALLY_PAID, changes
    )
    await lender.document_partly_paid(
        session, invoice_type="receivable", invoice_id=moved.id, amount=received
    )
    return moved


async def mark_as_paid(
    session: AsyncSession,
    entity: Entity,
    receivable_id: uuid.UUID,
    payload: ReceivablePaidPayload | None,
    *,
    lender: LenderProvider,
) -> Receivable:
    receivable, before = await _for_transition(
        session,
        entity,
        receivable_id,
        doing="marked as paid",
        allowed=(
            ReceivablesStatus.ISSUED,
            ReceivablesStatus.OVERDUE,
            ReceivablesStatus.PARTIALLY_PAID,
        ),
    )
    changes: dict[str, Any] = {
        "amount_paid": receivable.total_amount,
        "paid_at": (payload.paid_at if payload else None) or clock.now(),
    }
    if payload is not None and payload.comment is not None:
        changes["comment"] = payload.comment
    paid = await _move(session, entity, receivable, before, ReceivablesStatus.PAID, changes)
    await lender.document_paid(session, invoice_type="receivable", invoice_id=paid.id)
    return paid


async def cancel_receivable(
    session: AsyncSession, entity: Entity, receivable_id: uuid.UUID, *, lender: LenderProvider
) -> Receivable:
    """Cancel an issued invoice nothing has been paid on (a paid part needs a credit note).
    Its financing follows, as the lender says (``document_canceled``)."""
    receivable, before = await _for_transition(
        session,
        entity,
        receivable_id,
        doing="canceled",
        allowed=(ReceivablesStatus.ISSUED, ReceivablesStatus.OVERDUE),
    )
    moved = await _move(session, entity, receivable, before, ReceivablesStatus.CANCELED, {})
    await lender.document_canceled(
        session, invoice_type="receivable", invoice_id=moved.id, outcome="canceled"
    )
    return moved


async def mark_as_uncollectible(
    session: AsyncSession,
    entity: Entity,
    receivable_id: uuid.UUID,
    payload: ReceivableUncollectiblePayload | None,
    *,
    lender: LenderProvider,
) -> Receivable:
    """Write off an overdue invoice as not expected to be paid. Its financing follows, as the
    lender says (``document_canceled``)."""
    receivable, before = await _for_transition(
        session,
        entity,
        receivable_id,
        doing="marked as uncollectible",
        allowed=(ReceivablesStatus.OVERDUE,),
    )
    changes = (
        {"comment": payload.comment} if payload is not None and payload.comment is not None else {}
    )
    moved = await _move(
        session, entity, receivable, before, ReceivablesStatus.UNCOLLECTIBLE, changes
    )
    await lender.document_canceled(
        session, invoice_type="receivable", invoice_id=moved.id, outcome="marked uncollectible"
    )
    return moved


async def _move(
    session: AsyncSession,
    entity: Entity,
    receivable: Receivable,
    before: ReceivablesStatus,
    status: ReceivablesStatus,
    changes: dict[str, Any],
) -> Receivable:
    """Store the new status with the move's other ``changes`` (columns) and record its event;
    a repeated partial payment is an update. One UPDATE past the ORM's unit of work, and the
    locked ``receivable`` told what its row now holds."""
    values = {**changes, "status": status, "updated_at": clock.now()}
    await _MOVE.every(session, [{"id": receivable.id, **values}], scope=entity.id)
    statements.written(receivable, values)
    await outbox.record_transition(session, entity, receivable, before)
    return receivable


_MOVE = Update(Receivable, scope="entity_id")


async def _next_document_id(session: AsyncSession, entity_id: uuid.UUID) -> str:
    """The entity's next free invoice number, ``INV-00001`` onwards."""
    return (await reserve_document_ids(session, entity_id, 1))[0]


async def reserve_document_ids(
    session: AsyncSession,
    entity_id: uuid.UUID,
    count: int,
    *,
    skip: Collection[str] = (),
) -> list[str]:
    """``count`` free invoice numbers of the entity, in order, taken with one counter bump.

    The counter row is bumped with ``UPDATE … RETURNING``, so concurrent issuers queue on its
    lock (PostgreSQL) or on the database's single writer (SQLite) and each gets its own numbers.
    A number a client already gave a document by hand (or one in ``skip``, about to be given)
    is passed over, and another bump replaces it: the numbers are consecutive unless one was.
    """
    numbers: list[str] = []
    # Statements on the session's connection: built once, and past the ORM, which would only
    # add its per-statement work (each states the entity itself). What the session holds
    # unflushed is flushed first, as the ORM's autoflush would.
    await session.flush()
    conn = await session.connection()
    while len(numbers) < count:
        wanted = count - len(numbers)
        last = await _bump_counter(conn, entity_id, wanted)
        candidates = [f"{DOCUMENT_PREFIX}{n:05d}" for n in range(last - wanted + 1, last + 1)]
        taken = set(skip) & set(candidates)
        if len(candidates) == 1:  # an invoice issued: compiled once, run on the driver
            values = {"entity_id": entity_id, "document_id": candidates[0]}
            taken.update(row[0] for row in await _TAKEN_ONE.rows(conn, values))
        else:
            for start in range(0, len(candidates), _IN_CHUNK):
                chunk = candidates[start : start + _IN_CHUNK]
                taken.update(
                    await conn.scalars(_TAKEN, {"entity_id": entity_id, "document_ids": chunk})
                )
        numbers.extend(c for c in candidates if c not in taken)
    return numbers


# Values per ``IN (…)``: well below the bind-parameter limits of SQLite and asyncpg.
_IN_CHUNK = 5000

_RECEIVABLES = Receivable.__table__.c
_TAKEN = select(_RECEIVABLES.document_id).where(
    _RECEIVABLES.entity_id == bindparam("entity_id"),
    _RECEIVABLES.document_id.in_(bindparam("document_ids", expanding=True)),
)
_TAKEN_ONE = Prepared(
    select(_RECEIVABLES.document_id).where(
        _RECEIVABLES.entity_id == bindparam("entity_id"),
        _RECEIVABLES.document_id == bindparam("document_id"),
    )
)
_COUNTERS = ReceivableCounter.__table__
assert isinstance(_COUNTERS, Table)
_BUMP = Prepared(
    update(_COUNTERS)
    .where(
        _COUNTERS.c.entity_id == bindparam("counter_entity_id"),
        _COUNTERS.c.document_type == "invoice",
    )
    .values(last_number=_COUNTERS.c.last_number + bindparam("by", type_=BigInteger))
    .returning(_COUNTERS.c.last_number)
)


async def _bump_counter(conn: AsyncConnection, entity_id: uuid.UUID, by: int) -> int:
    """Add ``by`` to the entity's invoice counter (creating it at 0) and return its new value."""
    while True:
        bumped = await _BUMP.rows(conn, {"counter_entity_id": entity_id, "by": by})
        if bumped:
            return int(bumped[0][0])
        insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
        await conn.execute(
            insert(ReceivableCounter)
            .values(entity_id=entity_id, document_type="invoice", last_number=0)
            .on_conflict_do_nothing()
        )
