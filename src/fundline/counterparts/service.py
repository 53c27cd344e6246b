"""Counterparts and their addresses, always within one entity."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.auth.service import Caller
from fundline.counterparts.schemas import (
    CounterpartAddress,
    CounterpartCreatePayload,
    CounterpartListParams,
    CounterpartOrganizationRootCreatePayload,
    CounterpartOrganizationRootUpdatePayload,
    CounterpartUpdatePayload,
)
from fundline.kit import clock
from fundline.kit.errors import NotFound, Unprocessable
from fundline.kit.filters import apply_filters
from fundline.kit.pagination import Page, Paginator
from fundline.models import Counterpart, Entity
from fundline.models import CounterpartAddress as Address
from fundline.webhooks import outbox

COUNTERPART_COLUMNS: dict[str, Any] = {
    "id": Counterpart.id,
    "type": Counterpart.type,
    "tax_id": Counterpart.tax_id,
    "counterpart_name": Counterpart.counterpart_name,
    "is_vendor": Counterpart.is_vendor,
    "is_customer": Counterpart.is_customer,
    "email": Counterpart.email,
    "created_at": Counterpart.created_at,
}

# `address.<field>` filters look at the default billing address (the one given at creation).
ADDRESS_FILTERS: dict[str, Any] = {
    "address_country": Address.country,
    "address_city": Address.city,
    "address_postal_code": Address.postal_code,
    "address_state": Address.state,
    "address_line1": Address.line1,
    "address_line2": Address.line2,
}

# Fundline keeps no bank accounts, VAT ids or tags for counterparts, so a filter on any of them
# matches nothing (rather than being ignored and matching everything).
UNMATCHABLE_FILTERS = ("iban", "sort_code", "account_number", "vat_id", "tag_ids__in")


async def create_counterpart(
    session: AsyncSession, entity: Entity, caller: Caller, payload: CounterpartCreatePayload
) -> Counterpart:
    """Create a counterpart; the address it is given becomes its default billing address."""
    counterpart, address = build_counterpart(entity, payload, created_by=caller.entity_user_id)
    session.add(counterpart)
    await session.flush()
    await outbox.record_event(session, entity, counterpart, "created")
    await _add_address(session, entity, counterpart, address)
    return counterpart


def build_counterpart(
    entity: Entity, payload: CounterpartCreatePayload, *, created_by: uuid.UUID | None
) -> tuple[Counterpart, Address]:
    """The unsaved counterpart ``payload`` describes, and its default billing address (the
    bulk import inserts these itself)."""
    details = (
        payload.organization
        if isinstance(payload, CounterpartOrganizationRootCreatePayload)
        else payload.individual
    )
    counterpart = Counterpart(
        id=uuid.uuid4(),
        entity_id=entity.id,
        type=payload.type,
        tax_id=payload.tax_id,
        external_reference=payload.external_reference,
        language=payload.language,
        reminders_enabled=payload.reminders_enabled,
        created_by_entity_user_id=created_by,
        # legal_name, or first_name/last_name/title; flags, email and phone
        **details.model_dump(exclude={"address", "tag_ids"}),
    )
    # The address id is chosen up front so the counterpart is inserted complete, not updated.
    address = new_address(counterpart.id, details.address)
    counterpart.default_billing_address_id = address.id
    return counterpart, address


def new_address(counterpart_id: uuid.UUID, payload: CounterpartAddress) -> Address:
    """An unsaved address of the counterpart."""
    return Address(id=uuid.uuid4(), counterpart_id=counterpart_id, **payload.model_dump())


async def get_counterpart(
    session: AsyncSession, entity: Entity, counterpart_id: uuid.UUID
) -> Counterpart:
    """The entity's counterpart; another entity's, or a deleted one, is a 404."""
    counterpart = await session.scalar(
        select(Counterpart).where(
            Counterpart.id == counterpart_id,
            Counterpart.entity_id == entity.id,
            Counterpart.deleted_at.is_(None),
        )
    )
    if counterpart is None:
        raise NotFound("Counterpart not found")
    return counterpart


async def update_counterpart(
    session: AsyncSession,
    entity: Entity,
    counterpart_id: uuid.UUID,
    payload: CounterpartUpdatePayload,
) -> Counterpart:
    counterpart = await get_counterpart(session, entity, counterpart_id)
    kind = (
        "organization"
        if isinstance(payload, CounterpartOrganizationRootUpdatePayload)
        else "individual"
    )
    if kind != counterpart.type:
        raise Unprocessable(
            f"{kind} does not apply to a counterpart of type {counterpart.type}",
            loc=("body", kind),
        )
    changes = payload.model_dump(mode="json", exclude_unset=True)
    details = changes.pop(kind)
    details.pop("tag_ids", None)
    for field in ("default_billing_address_id", "default_shipping_address_id"):
        if changes.get(field) is not None:
            changes[field] = await _own_address_id(session, counterpart, changes[field], field)
    for field, value in {**changes, **details}.items():
        setattr(counterpart, field, value)
    await session.flush()
    await outbox.record_event(session, entity, counterpart, "updated")
    return counterpart


async def delete_counterpart(
    session: AsyncSession, entity: Entity, counterpart_id: uuid.UUID
) -> None:
    """Mark the counterpart deleted: it disappears from the API, documents keep referring to it."""
    counterpart = await get_counterpart(session, entity, counterpart_id)
    counterpart.deleted_at = clock.now()
    await session.flush()
    await outbox.record_event(session, entity, counterpart, "deleted")


async def list_counterparts(
    session: AsyncSession, entity: Entity, paginator: Paginator, params: CounterpartListParams
) -> Page[Counterpart]:
    params, cursor = paginator.resolve(params)
    stmt = select(Counterpart).where(
        Counterpart.entity_id == entity.id, Counterpart.deleted_at.is_(None)
    )
    custom = dict.fromkeys((*ADDRESS_FILTERS, *UNMATCHABLE_FILTERS))
    if any(getattr(params, name) is not None for name in UNMATCHABLE_FILTERS):
        stmt = stmt.where(false())
    address_conditions: list[ColumnElement[bool]] = [
        column == getattr(params, name)
        for name, column in ADDRESS_FILTERS.items()
        if getattr(params, name) is not None
    ]
    if address_conditions:
        stmt = stmt.where(
            select(Address.id)
            .where(Address.id == Counterpart.default_billing_address_id, *address_conditions)
            .exists()
        )
    stmt = apply_filters(stmt, params.model_copy(update=custom), COUNTERPART_COLUMNS)
    sort = Counterpart.counterpart_name if params.sort else Counterpart.created_at
    return await paginator.fetch(
        session, stmt, params=params, cursor=cursor, sort_column=sort, id_column=Counterpart.id
    )


# --- addresses -------------------------------------------------------------------------------


async def create_address(
    session: AsyncSession, entity: Entity, counterpart_id: uuid.UUID, payload: CounterpartAddress
) -> Address:
    counterpart = await get_counterpart(session, entity, counterpart_id)
    return await _add_address(session, entity, counterpart, new_address(counterpart.id, payload))


async def list_addresses(
    session: AsyncSession, entity: Entity, counterpart_id: uuid.UUID
) -> list[Address]:
    counterpart = await get_counterpart(session, entity, counterpart_id)
    rows = await session.scalars(
        select(Address)
        .where(Address.counterpart_id == counterpart.id)
        .order_by(Address.created_at, Address.id)
    )
    return list(rows)


async def _add_address(
    session: AsyncSession, entity: Entity, counterpart: Counterpart, address: Address
) -> Address:
    session.add(address)
    await session.flush()
    await outbox.record_event(
        session, entity, address, "created", data={"counterpart_id": str(counterpart.id)}
    )
    return address


async def _own_address_id(
    session: AsyncSession, counterpart: Counterpart, address_id: str, field: str
) -> uuid.UUID:
    found = await session.scalar(
        select(Address.id).where(
            Address.id == uuid.UUID(address_id), Address.counterpart_id == counterpart.id
        )
    )
    if found is None:
        raise Unprocessable(
            f"Address {address_id} is not an address of this counterpart", loc=("body", field)
        )
    return found
