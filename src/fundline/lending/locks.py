"""Row locks, and the one order every transaction takes them in.

Two transactions that each hold a row the other wants next wait for each other forever
(PostgreSQL breaks the circle by aborting one: a deadlock). They cannot, if every transaction
that locks rows of several kinds locks them in the same order. This is that order; a
transaction may skip any step but never go back to an earlier one:

1. the sandbox clock row (moving the clock runs the servicing tick);
2. Connect tokens (an exchange claims its token before it touches the business);
3. financing businesses;
4. financing requests (confirming locks its request before its invoices);
5. receivables, then 6. payables (a payment or cancellation locks its document before the
   financing of it);
7. financing invoices;
8. financing offers (the invoice first, then its offer: the limit is checked and moved last).

Rows of one kind are locked in the order of their primary keys (one statement, ``ORDER BY``).

The lock is ``FOR NO KEY UPDATE``, the one PostgreSQL's own ``UPDATE`` takes, not ``FOR
UPDATE``: it does not block the ``FOR KEY SHARE`` lock a foreign-key check takes on the row
referred to. That check runs whenever a transaction inserts a row that refers to a locked one,
and whenever it updates the same referring row twice (an invoice funded: its status, then its
amounts), so with ``FOR UPDATE`` a transaction holding an invoice would wait for whoever holds
its request or its offer: the order turned around. Deleting a locked row (a released draft, a
reset) takes the stronger lock then.
Every row lock of these kinds is taken here: ``row`` and ``rows`` for any statement of one
model, ``invoice`` and ``offer`` for the common pair, ``offer_and_live_invoices`` for closing a
line, ``entity_financing`` for the resets, ``claim`` for the worker. Each lock re-reads its rows
(``populate_existing``): what the caller held may be stale.

``claim`` (``FOR UPDATE SKIP LOCKED``) never waits, so the rows it takes do not count towards the
order. On SQLite there are no row locks: transactions begin ``IMMEDIATE`` and run one at a time.

The order is checked as locks are taken: under ``STRICT`` (the test suite sets it for every
request it makes) a lock taken out of order raises ``LockOrderError``; otherwise it is logged.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import ColumnElement, Select, bindparam, event, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from fundline.kit.errors import NotFound
from fundline.models import (
    ConnectToken,
    Entity,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
    Payable,
    Receivable,
    SandboxClock,
)
from fundline.models.financing import LIVE_STATUSES

log = logging.getLogger(__name__)

# The order, first to last (see above).
ORDER: tuple[type[Any], ...] = (
    SandboxClock,
    ConnectToken,
    FinancingBusiness,
    FinancingRequest,
    Receivable,
    Payable,
    FinancingInvoice,
    FinancingOffer,
)
RANK = {model: rank for rank, model in enumerate(ORDER)}

# Set by the test suite while it serves a request (and in its load test): a lock taken out of
# order is a bug, and fails the test that took it. Elsewhere it is logged.
STRICT: ContextVar[bool] = ContextVar("fundline_locks_strict", default=False)

M = TypeVar("M")
_HELD = "fundline.locks"  # the key of a transaction's _Held in its session's info


class LockOrderError(RuntimeError):
    """A row lock taken out of the order above (a bug, never a client's mistake)."""


@dataclass
class _Held:
    """What a transaction has locked: every row, and the last one taken in order."""

    rows: set[tuple[int, Any]] = field(default_factory=set)
    last: tuple[int, Any] | None = None


async def rows(
    session: AsyncSession, stmt: Select[M], params: Mapping[str, Any] | None = None
) -> list[M]:
    """The rows of ``stmt`` (a select of one model of ``ORDER``), locked in primary-key order.
    ``params`` are its ``bindparam`` values: a statement built once and kept (a module's
    constant) is turned into its locking form once too."""
    model, locking = _locking(stmt)
    found = list(await session.scalars(locking, params))
    _taken(session, model, found, in_order=True)
    return found


async def row(
    session: AsyncSession, stmt: Select[M], params: Mapping[str, Any] | None = None
) -> M | None:
    """The row of ``stmt``, locked; ``None`` when there is none."""
    found = await rows(session, stmt, params)
    return found[0] if found else None


# The locking form of each statement still in use: building it (and SQLAlchemy's cache key of
# it) on every call costs more than running it.
_LOCKING: WeakKeyDictionary[Select[Any], tuple[type[Any], Select[Any]]] = WeakKeyDictionary()


def _locking(stmt: Select[M]) -> tuple[type[Any], Select[M]]:
    """The model ``stmt`` selects and the statement that locks its rows in key order."""
    found = _LOCKING.get(stmt)
    if found is None:
        model = _model_of(stmt)
        key = inspect(model).primary_key[0]
        locking = (
            stmt.order_by(None)
            .order_by(key)
            .with_for_update(key_share=True, of=model)
            .execution_options(populate_existing=True)
        )
        found = _LOCKING[stmt] = (model, locking)
    return found


async def claim(session: AsyncSession, stmt: Select[M]) -> list[M]:
    """The rows of ``stmt``, locked, skipping those another transaction holds (the worker's
    way: it never waits, so these do not count towards the order)."""
    model = _model_of(stmt)
    found = list(
        await session.scalars(
            stmt.with_for_update(key_share=True, skip_locked=True, of=model).execution_options(
                populate_existing=True
            )
        )
    )
    _taken(session, model, found, in_order=False)
    return found


async def invoice(session: AsyncSession, financing_invoice_id: uuid.UUID) -> FinancingInvoice:
    """The financing invoice, locked; 404 when it is gone."""
    fi = await row(session, _INVOICE, {"id": financing_invoice_id})
    if fi is None:
        raise NotFound("Financing invoice not found")
    return fi


async def offer(session: AsyncSession, offer_id: uuid.UUID) -> FinancingOffer:
    """The offer, locked (after its invoice, when the transaction changes one); 404 when gone."""
    found = await row(session, _OFFER, {"id": offer_id})
    if found is None:
        raise NotFound("Financing offer not found")
    return found


async def offers(session: AsyncSession, offer_ids: Sequence[uuid.UUID]) -> list[FinancingOffer]:
    """Several offers, locked in the order of their ids."""
    if not offer_ids:
        return []
    return await rows(session, _OFFERS, {"ids": list(offer_ids)})


# The common locks' statements, built once (with their locking forms, ``_locking``): building
# them on every call costs more than SQLAlchemy's cached compilation saves.
_INVOICE = select(FinancingInvoice).where(
    FinancingInvoice.id == bindparam("id", type_=FinancingInvoice.id.type)
)
_OFFER = select(FinancingOffer).where(
    FinancingOffer.id == bindparam("id", type_=FinancingOffer.id.type)
)
_OFFERS = select(FinancingOffer).where(FinancingOffer.id.in_(bindparam("ids", expanding=True)))


async def offer_and_live_invoices(
    session: AsyncSession, offer_id: uuid.UUID
) -> tuple[FinancingOffer, list[FinancingInvoice]]:
    """The offer and its live invoices (``DRAFT``, ``NEW``, ``FUNDED``, ``LATE``), locked:
    the invoices first, then the offer."""
    live = await rows(
        session,
        select(FinancingInvoice).where(
            FinancingInvoice.offer_id == offer_id, FinancingInvoice.status.in_(LIVE_STATUSES)
        ),
    )
    return await offer(session, offer_id), live


async def entity_financing(
    session: AsyncSession, entities: ColumnElement[bool], *, documents: bool = False
) -> list[FinancingBusiness]:
    """Lock everything financing of the entities ``entities`` selects (a condition on
    ``Entity``), in the order: Connect tokens, businesses, requests, (with ``documents``
    receivables and payables,) financing invoices, offers. For the resets, which delete it
    all: a confirmation, a funding or a tick running meanwhile finishes before them or after
    them, whole. Returns the businesses."""
    ids = select(Entity.id).where(entities)
    await rows(session, select(ConnectToken).where(ConnectToken.entity_id.in_(ids)))
    businesses = await rows(
        session, select(FinancingBusiness).where(FinancingBusiness.entity_id.in_(ids))
    )
    await rows(session, select(FinancingRequest).where(FinancingRequest.entity_id.in_(ids)))
    if documents:
        await rows(session, select(Receivable).where(Receivable.entity_id.in_(ids)))
        await rows(session, select(Payable).where(Payable.entity_id.in_(ids)))
    await rows(session, select(FinancingInvoice).where(FinancingInvoice.entity_id.in_(ids)))
    await rows(session, select(FinancingOffer).where(FinancingOffer.entity_id.in_(ids)))
    return businesses


def held(session: AsyncSession, model: type[Any], keys: Sequence[Any]) -> bool:
    """Whether the session's transaction already holds the locks of the ``model`` rows with
    these primary keys (taken here, in this transaction): locking them again would only
    re-read them."""
    found: _Held | None = session.info.get(_HELD)
    rank = RANK[model]
    return found is not None and all((rank, key) in found.rows for key in keys)


def _model_of(stmt: Select[Any]) -> type[Any]:
    model: type[Any] = stmt.column_descriptions[0]["entity"]
    if model not in RANK:
        raise LockOrderError(f"{model!r} is not in the lock order (fundline.lending.locks)")
    return model


@event.listens_for(Session, "after_transaction_end")
def _released(session: Session, transaction: SessionTransaction) -> None:
    """Row locks last until the transaction ends; so does the record of them."""
    if transaction.parent is None:
        session.info.pop(_HELD, None)


def _taken(session: AsyncSession, model: type[Any], found: list[Any], *, in_order: bool) -> None:
    """Record the rows just locked; check that those new to the transaction come after
    everything it locked before (``in_order``)."""
    held: _Held = session.info.setdefault(_HELD, _Held())
    rank = RANK[model]
    key = inspect(model).primary_key[0].key
    new = sorted((rank, getattr(r, key)) for r in found if (rank, getattr(r, key)) not in held.rows)
    if not new:
        return
    held.rows.update(new)
    if not in_order:
        return
    if held.last is not None and new[0] < held.last:
        before = f"{ORDER[held.last[0]].__name__} {held.last[1]}"
        message = (
            f"{model.__name__} {new[0][1]} locked after {before}: out of the lock order "
            "(fundline.lending.locks)"
        )
        if STRICT.get():
            raise LockOrderError(message)
        log.warning(message)
    held.last = max(new[-1], held.last) if held.last is not None else new[-1]
