"""Sandbox helpers: the shared clock, simulated lender and payer events, resetting a business.

The clock offset lives in one ``sandbox_clock`` row so every process of a deployment agrees:
each process loads it at start and again on every sandbox call, and moving it runs the
servicing tick at once, in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Delete, Select, Table, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.auth.cache import announce_change
from fundline.auth.deps import entity_for
from fundline.auth.service import Caller
from fundline.financing import record
from fundline.kit import clock
from fundline.kit.db import Base, Database
from fundline.kit.errors import Conflict, NotFound, Unprocessable
from fundline.kit.tenancy import scope_to
from fundline.lending import locks, servicing
from fundline.lending.policy import Policy
from fundline.models import (
    ConnectSession,
    ConnectToken,
    Entity,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
    FinancingStatusChange,
    Instalment,
    JournalEntry,
    Posting,
    PricingPlan,
    SandboxClock,
)
from fundline.models.financing import WCBusinessStatus, WCInvoiceStatus
from fundline.sandbox.schemas import SimulatedEvent
from fundline.webhooks import outbox

CLOCK_ROW = 1
SECONDS_PER_DAY = 86_400
MAX_OFFSET_DAYS = 100 * 366  # a century ahead: far past any invoice's life


@dataclass(frozen=True, slots=True)
class ClockState:
    now: datetime
    offset_seconds: int
    tick: dict[str, int] | None = None


async def load_clock(session: AsyncSession) -> ClockState:
    """Set this process's clock to the persisted offset (zero when never moved)."""
    seconds = await session.scalar(
        select(SandboxClock.offset_seconds).where(SandboxClock.id == CLOCK_ROW)
    )
    clock.set_offset(timedelta(seconds=seconds or 0))
    return ClockState(clock.now(), seconds or 0)


async def restore_clock(db: Database) -> None:
    """At process start (server lifespan, CLI): pick up the deployment's sandbox clock."""
    async with db.session() as session:
        await load_clock(session)


async def _locked_clock_row(session: AsyncSession) -> SandboxClock:
    """The clock row, locked: first of all the locks (``lending.locks``)."""
    stmt = select(SandboxClock).where(SandboxClock.id == CLOCK_ROW)
    row = await locks.row(session, stmt)
    if row is not None:
        return row
    try:
        async with session.begin_nested():
            session.add(SandboxClock(id=CLOCK_ROW, offset_seconds=0))
    except IntegrityError:
        pass  # another process created it first; read theirs
    row = await locks.row(session, stmt)
    assert row is not None
    return row


async def advance_clock(session: AsyncSession, *, days: int, policy: Policy) -> ClockState:
    """Move the shared clock ``days`` forward, then run the servicing tick at the new time."""
    row = await _locked_clock_row(session)
    if row.offset_seconds + days * SECONDS_PER_DAY > MAX_OFFSET_DAYS * SECONDS_PER_DAY:
        # Advances add up; far enough ahead, dates pass year 9999 and nothing works.
        raise Unprocessable(
            f"The sandbox clock goes at most {MAX_OFFSET_DAYS} days ahead of real time; "
            "POST /sandbox/v1/reset brings it back",
            loc=("body", "days"),
        )
    row.offset_seconds += days * SECONDS_PER_DAY
    await session.flush()
    previous = clock.offset()
    clock.set_offset(timedelta(seconds=row.offset_seconds))
    try:
        counts = await servicing.tick(session, policy=policy)
    except BaseException:
        # The transaction will roll back: keep this process where the database still is.
        clock.set_offset(previous)
        raise
    return ClockState(clock.now(), row.offset_seconds, counts)


async def _caller_invoice(
    session: AsyncSession, caller: Caller, financing_invoice_id: uuid.UUID
) -> FinancingInvoice:
    stmt = select(FinancingInvoice).where(
        FinancingInvoice.id == financing_invoice_id,
        FinancingInvoice.partner_id == caller.partner_id,
    )
    if caller.entity_id is not None:
        stmt = stmt.where(FinancingInvoice.entity_id == caller.entity_id)
    fi = await locks.row(session, stmt)
    if fi is None:
        raise NotFound("Financing invoice not found")
    scope_to(session, fi.entity_id)  # found within the caller's reach: the rest is its entity's
    return fi


async def simulate(
    session: AsyncSession,
    caller: Caller,
    financing_invoice_id: uuid.UUID,
    event: SimulatedEvent,
) -> FinancingInvoice:
    """Do what the lender or the payer would: through the servicing state machine (409 when
    the invoice's status does not allow it)."""
    fi = await _caller_invoice(session, caller, financing_invoice_id)
    cause = f"sandbox: simulated {event.value}"
    if event is SimulatedEvent.FUND:
        return await servicing.fund(session, fi, cause=cause)
    if event is SimulatedEvent.REJECT:
        return await servicing.reject(session, fi, cause=cause)
    if event is SimulatedEvent.LATE:
        return await servicing.mark_late(session, fi, cause=cause)
    if event is SimulatedEvent.DEFAULT:
        return await servicing.mark_defaulted(session, fi, cause=cause)
    if fi.status not in (WCInvoiceStatus.FUNDED, WCInvoiceStatus.LATE):
        raise Conflict(f"Financing invoice is {fi.status}; only a FUNDED or LATE one can be repaid")
    owed = (fi.repayment_amount or 0) - fi.repaid_amount
    return await servicing.record_repayment(session, fi, owed, cause=cause)


async def _delete(session: AsyncSession, stmt: Delete) -> int:
    result = cast(
        CursorResult[Any],
        await session.execute(stmt, execution_options={"synchronize_session": False}),
    )
    return int(result.rowcount)


async def reset_business(
    session: AsyncSession, caller: Caller, entity_id: uuid.UUID
) -> dict[str, int]:
    """Remove the entity's whole financing: business, offers, requests, financing invoices and
    their ledger rows, Connect tokens. One transaction: all of it goes, or nothing. Deleting
    the financing invoices frees their invoices to be requested again."""
    entity = await entity_for(session, caller, entity_id)
    # Locked in the one order (lending.locks), so that a confirmation or a tick running now
    # finishes before the reset or after it, whole.
    businesses = await locks.entity_financing(session, Entity.id == entity.id)
    business = businesses[0] if businesses else None
    # What goes, for the "deleted" events: every offer and financing invoice change has one.
    gone: list[FinancingOffer | FinancingInvoice] = [
        *await session.scalars(select(FinancingOffer).where(FinancingOffer.entity_id == entity.id)),
        *await session.scalars(
            select(FinancingInvoice).where(FinancingInvoice.entity_id == entity.id)
        ),
    ]
    deleted = await _delete_financing(session, entity)
    await _announce_reset(session, entity, business, gone)
    return deleted


def _invoice_ids(entity: Entity) -> Select[uuid.UUID]:
    return select(FinancingInvoice.id).where(FinancingInvoice.entity_id == entity.id)


def _offer_ids(entity: Entity) -> Select[uuid.UUID]:
    return select(FinancingOffer.id).where(FinancingOffer.entity_id == entity.id)


async def _delete_financing(session: AsyncSession, entity: Entity) -> dict[str, int]:
    """Delete the entity's financing rows, children before their parents; the rows removed
    per kind."""
    invoices = _invoice_ids(entity)
    entries = select(JournalEntry.id).where(JournalEntry.entity_id == entity.id)
    offers = _offer_ids(entity)
    return {
        "ledger_postings": await _delete(
            session,
            delete(Posting).where(
                Posting.entry_id.in_(entries) | Posting.financing_invoice_id.in_(invoices)
            ),
        ),
        "ledger_entries": await _delete(
            session,
            delete(JournalEntry).where(
                (JournalEntry.entity_id == entity.id)
                | JournalEntry.financing_invoice_id.in_(invoices)
            ),
        ),
        "instalments": await _delete(
            session, delete(Instalment).where(Instalment.financing_invoice_id.in_(invoices))
        ),
        "status_changes": await _delete(
            session,
            delete(FinancingStatusChange).where(
                FinancingStatusChange.financing_invoice_id.in_(invoices)
            ),
        ),
        "financing_invoices": await _delete(
            session, delete(FinancingInvoice).where(FinancingInvoice.entity_id == entity.id)
        ),
        "connect_sessions": await _delete(
            session, delete(ConnectSession).where(ConnectSession.entity_id == entity.id)
        ),
        "connect_tokens": await _delete(
            session, delete(ConnectToken).where(ConnectToken.entity_id == entity.id)
        ),
        "requests": await _delete(
            session, delete(FinancingRequest).where(FinancingRequest.entity_id == entity.id)
        ),
        "pricing_plans": await _delete(
            session, delete(PricingPlan).where(PricingPlan.offer_id.in_(offers))
        ),
        "offers": await _delete(
            session, delete(FinancingOffer).where(FinancingOffer.entity_id == entity.id)
        ),
        "businesses": await _delete(
            session, delete(FinancingBusiness).where(FinancingBusiness.entity_id == entity.id)
        ),
    }


async def _announce_reset(
    session: AsyncSession,
    entity: Entity,
    business: FinancingBusiness | None,
    gone: list[FinancingOffer | FinancingInvoice],
) -> None:
    """A ``deleted`` event for each offer and financing invoice removed, and for the business."""
    for obj in gone:
        session.expunge(obj)  # its row is gone: the session must not keep it
        await outbox.record_event(session, entity, obj, "deleted", data={"reason": "sandbox reset"})
    if business is not None:
        session.expunge(business)
        await record.business_event(
            session,
            business,
            "deleted",
            {"status": WCBusinessStatus.NEW, "reason": "sandbox reset"},
        )


# A partner's reset keeps the partner itself and how it signs in and embeds, and what is not
# any one partner's (operator keys, the clock row, idempotency records, which expire).
PARTNER_KEEPS = frozenset(
    {
        "partners",
        "api_clients",
        "partner_origins",
        "operator_keys",
        "sandbox_clock",
        "idempotency_keys",
    }
)


def _partner_rows(partner_id: uuid.UUID) -> list[tuple[Table, ColumnElement[bool]]]:
    """Every table holding rows of the partner's entities, parents first, each with the
    condition that selects those rows: through ``entity_id``, or through a foreign key to a
    table already selected. Read from the models, so a new table is covered when it is added."""
    entities = Entity.__table__
    owned = select(entities.c.id).where(entities.c.partner_id == partner_id)
    chosen: dict[str, ColumnElement[bool]] = {}
    order: list[tuple[Table, ColumnElement[bool]]] = []
    for table in Base.metadata.sorted_tables:
        if table.name in PARTNER_KEEPS:
            continue
        condition: ColumnElement[bool]
        if table is entities:
            condition = entities.c.partner_id == partner_id
        elif "entity_id" in table.c:
            condition = table.c.entity_id.in_(owned)
        else:
            fk = next((f for f in table.foreign_keys if f.column.table.name in chosen), None)
            if fk is None:
                continue
            condition = fk.parent.in_(select(fk.column).where(chosen[fk.column.table.name]))
        chosen[table.name] = condition
        order.append((table, condition))
    return order


async def reset_sandbox(session: AsyncSession, *, partner_id: uuid.UUID | None) -> dict[str, int]:
    """Start the sandbox over, in one transaction: the clock back to real time, and the data
    removed — the partner's entities and everything under them (its sign-in kept), or with no
    ``partner_id`` every row of the deployment (partners and operator keys too). Returns the
    rows removed per table, those with any."""
    row = await _locked_clock_row(session)
    row.offset_seconds = 0
    # What a confirmation, a payment or a tick running now would lock, in the same order, so
    # that it finishes before the reset or after it (the deletes below lock the rest).
    everyone = Entity.id.is_not(None) if partner_id is None else Entity.partner_id == partner_id
    await locks.entity_financing(session, everyone, documents=True)
    targets: list[tuple[Table, ColumnElement[bool] | None]]
    if partner_id is None:
        targets = [
            (table, None) for table in Base.metadata.sorted_tables if table.name != "sandbox_clock"
        ]
    else:
        targets = list(_partner_rows(partner_id))
    deleted: dict[str, int] = {}
    for table, condition in reversed(targets):  # children before their parents
        stmt = delete(table) if condition is None else delete(table).where(condition)
        count = await _delete(session, stmt)
        if count:
            deleted[table.name] = count
    # Tokens may have gone with their entities or partners: every process forgets its cache.
    await announce_change(session)
    await session.flush()
    clock.set_offset(timedelta(0))
    return deleted
