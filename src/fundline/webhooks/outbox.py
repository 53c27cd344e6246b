"""Writing events. Call ``record_event`` in the same session as the change it describes.

An event names its partner and entity, and the type and id of its object: ``record_event``
reads them from the entity (or a row that names both) and the object, so every domain writes
the same row for the same kind of change.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from fundline.kit import clock
from fundline.kit.db import IdMixin
from fundline.kit.statements import Insert
from fundline.kit.versions import CURRENT_VERSION
from fundline.models import (
    Counterpart,
    CounterpartAddress,
    Entity,
    EntityUser,
    Event,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    Payable,
    Receivable,
)

# The ``object_type`` of each model's events: Monite's names, and Fundline's own for financing.
OBJECT_TYPES: dict[type[IdMixin], str] = {
    Counterpart: "counterpart",
    CounterpartAddress: "counterpart_address",
    Entity: "entity",
    EntityUser: "entity_user",
    Payable: "payable",
    Receivable: "receivable",
    FinancingBusiness: "financing_business",
    FinancingInvoice: "financing_invoice",
    FinancingOffer: "financing_offer",
}
# The events of a subscription itself (its disabling by the sender): a Fundline extension.
WEBHOOK_SUBSCRIPTION = "webhook_subscription"


class Owned(Protocol):
    """A row that names its partner and entity: a financing business or invoice, an ``Owner``."""

    @property
    def partner_id(self) -> uuid.UUID: ...

    @property
    def entity_id(self) -> uuid.UUID: ...


class Owner(NamedTuple):
    """The partner and entity of an object that names only its entity (an offer)."""

    partner_id: uuid.UUID
    entity_id: uuid.UUID


def _owner(entity: Entity | Owned) -> Owner:
    if isinstance(entity, Entity):
        return Owner(entity.partner_id, entity.id)
    return Owner(entity.partner_id, entity.entity_id)


async def record_event(
    session: AsyncSession,
    entity: Entity | Owned,
    obj: IdMixin,
    action: str,
    *,
    data: dict[str, Any] | None = None,
) -> Event:
    """Add the outbox row of ``<object_type>.<action>`` on ``obj`` (a model of
    ``OBJECT_TYPES``); ``data`` joins the object's id in the event's object.

    ``entity`` is the ``Entity``, or a row that names its partner and entity: a financing
    business or invoice is its own (``record_event(session, fi, fi, …)``).
    """
    partner_id, entity_id = _owner(entity)
    return await record(
        session,
        partner_id=partner_id,
        entity_id=entity_id,
        object_type=OBJECT_TYPES[type(obj)],
        object_id=obj.id,
        action=action,
        data=data,
    )


async def record_transition(
    session: AsyncSession, entity: Entity, document: Receivable | Payable, before: str
) -> Event:
    """The event of a document's move from ``before`` to the status it has now:
    ``status_changed`` with both statuses, or ``updated`` when the status stayed (another
    partial payment)."""
    if document.status == before:
        return await record_event(session, entity, document, "updated")
    data = {"status": str(document.status), "previous_status": before}
    return await record_event(session, entity, document, "status_changed", data=data)


async def record_events(
    session: AsyncSession,
    entity: Entity,
    model: type[IdMixin],
    action: str,
    objects: Iterable[tuple[uuid.UUID, dict[str, Any] | None]],
) -> int:
    """``record_event`` for many objects of one model at once: one INSERT, no ORM objects.

    ``objects`` are ``(object_id, data)`` pairs; returns how many events were written.
    """
    return await write(
        session, [row(entity, model, object_id, action, data) for object_id, data in objects]
    )


def row(
    entity: Entity | Owned,
    model: type[IdMixin],
    object_id: uuid.UUID,
    action: str,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The outbox row of ``<object_type>.<action>`` on the ``model`` object ``object_id``, for
    ``write``: what ``record_event`` adds, as a row."""
    partner_id, entity_id = _owner(entity)
    return _fields(
        partner_id=partner_id,
        entity_id=entity_id,
        object_type=OBJECT_TYPES[model],
        object_id=object_id,
        action=action,
        data=data,
    )


async def write(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Add many outbox rows (``row``) in one INSERT; returns how many. They keep the order
    given: the outbox is read by ``created_at``, then ``id``, and each is a microsecond after
    the one before."""
    now = clock.now()
    return await _EVENTS.rows(
        session,
        [
            {**event, "id": uuid.uuid4(), "created_at": now + timedelta(microseconds=n)}
            for n, event in enumerate(rows)
        ],
    )


_EVENTS = Insert(Event)


async def record(
    session: AsyncSession,
    *,
    partner_id: uuid.UUID,
    entity_id: uuid.UUID,
    object_type: str,
    object_id: uuid.UUID,
    action: str,
    data: dict[str, Any] | None = None,
) -> Event:
    """The outbox row itself, every field given; domains call ``record_event``. Written in one
    statement, past the ORM's unit of work; the ``Event`` returned is the row as written (not
    in the session)."""
    row = {
        **_fields(
            partner_id=partner_id,
            entity_id=entity_id,
            object_type=object_type,
            object_id=object_id,
            action=action,
            data=data,
        ),
        "id": uuid.uuid4(),
        "created_at": clock.now(),
        "dispatched_at": None,
    }
    await _EVENTS.rows(session, [row])
    return Event(**row)


def _fields(
    *,
    partner_id: uuid.UUID,
    entity_id: uuid.UUID,
    object_type: str,
    object_id: uuid.UUID,
    action: str,
    data: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "partner_id": partner_id,
        "entity_id": entity_id,
        "object_type": object_type,
        "object_id": object_id,
        "action": f"{object_type}.{action}",
        "description": f"{object_type}_{action}",
        "api_version": CURRENT_VERSION,
        "object": {"id": str(object_id), **(data or {})},
    }
