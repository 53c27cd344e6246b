"""Counterparts and their addresses, as Monite has them."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response, status
from pydantic import TypeAdapter

from fundline.auth.deps import CallerDep, EntityDep, Session
from fundline.counterparts import service
from fundline.counterparts.schemas import (
    CounterpartAddress,
    CounterpartAddressResourceList,
    CounterpartAddressResponseWithCounterpartID,
    CounterpartCreatePayload,
    CounterpartListParams,
    CounterpartPaginationResponse,
    CounterpartResponse,
    CounterpartUpdatePayload,
)
from fundline.kit.pagination import Paginator
from fundline.kit.routing import TransactionalRoute
from fundline.models import Counterpart

# Monite declares none of the optional counterpart fields nullable: unset ones are left out.
router = APIRouter(prefix="/counterparts", tags=["Counterparts"], route_class=TransactionalRoute)

_counterpart_adapter: TypeAdapter[CounterpartResponse] = TypeAdapter(CounterpartResponse)


def counterpart_out(counterpart: Counterpart) -> CounterpartResponse:
    details: dict[str, Any] = {
        "email": counterpart.email,
        "phone": counterpart.phone,
        "is_customer": counterpart.is_customer,
        "is_vendor": counterpart.is_vendor,
    }
    if counterpart.type == "organization":
        details["legal_name"] = counterpart.legal_name
    else:
        details.update(
            first_name=counterpart.first_name,
            last_name=counterpart.last_name,
            title=counterpart.title,
        )
    data = {
        "id": counterpart.id,
        "created_at": counterpart.created_at,
        "updated_at": counterpart.updated_at,
        "created_by_entity_user_id": counterpart.created_by_entity_user_id,
        "default_billing_address_id": counterpart.default_billing_address_id,
        "default_shipping_address_id": counterpart.default_shipping_address_id,
        "external_reference": counterpart.external_reference,
        "language": counterpart.language,
        "reminders_enabled": counterpart.reminders_enabled,
        "tax_id": counterpart.tax_id,
        "type": counterpart.type,
        counterpart.type: details,
    }
    return _counterpart_adapter.validate_python(data)


@router.post(
    "",
    response_model=CounterpartResponse,
    response_model_exclude_none=True,
    status_code=status.HTTP_201_CREATED,
    operation_id="post_counterparts",
)
async def create_counterpart(
    session: Session, caller: CallerDep, entity: EntityDep, payload: CounterpartCreatePayload
) -> CounterpartResponse:
    """Create a counterpart (an organization or an individual) of the entity.

    The address given becomes the counterpart's default billing address.
    """
    counterpart = await service.create_counterpart(session, entity, caller, payload)
    return counterpart_out(counterpart)


@router.get(
    "",
    response_model=CounterpartPaginationResponse,
    response_model_exclude_none=True,
    operation_id="get_counterparts",
)
async def list_counterparts(
    request: Request,
    session: Session,
    entity: EntityDep,
    params: Annotated[CounterpartListParams, Query()],
) -> CounterpartPaginationResponse:
    """List the entity's counterparts, filtered, sorted and paginated."""
    paginator = Paginator(request.app.state.signer, "counterparts")
    page = await service.list_counterparts(session, entity, paginator, params)
    return CounterpartPaginationResponse.of(page, [counterpart_out(c) for c in page.data])


@router.get(
    "/{counterpart_id}",
    response_model=CounterpartResponse,
    response_model_exclude_none=True,
    operation_id="get_counterparts_id",
)
async def get_counterpart(
    session: Session, entity: EntityDep, counterpart_id: uuid.UUID
) -> CounterpartResponse:
    """Get a counterpart by ID."""
    return counterpart_out(await service.get_counterpart(session, entity, counterpart_id))


@router.patch(
    "/{counterpart_id}",
    response_model=CounterpartResponse,
    response_model_exclude_none=True,
    operation_id="patch_counterparts_id",
)
async def update_counterpart(
    session: Session,
    entity: EntityDep,
    counterpart_id: uuid.UUID,
    payload: Annotated[CounterpartUpdatePayload, Body()],
) -> CounterpartResponse:
    """Change a counterpart's details; `null` clears an optional field."""
    counterpart = await service.update_counterpart(session, entity, counterpart_id, payload)
    return counterpart_out(counterpart)


@router.delete(
    "/{counterpart_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    operation_id="delete_counterparts_id",
)
async def delete_counterpart(
    session: Session, entity: EntityDep, counterpart_id: uuid.UUID
) -> Response:
    """Delete a counterpart; invoices already made out to it keep referring to it."""
    await service.delete_counterpart(session, entity, counterpart_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{counterpart_id}/addresses",
    response_model=CounterpartAddressResourceList,
    response_model_exclude_none=True,
    operation_id="get_counterparts_id_addresses",
)
async def list_addresses(
    session: Session, entity: EntityDep, counterpart_id: uuid.UUID
) -> CounterpartAddressResourceList:
    """List a counterpart's addresses, oldest first."""
    rows = await service.list_addresses(session, entity, counterpart_id)
    return CounterpartAddressResourceList(
        data=[CounterpartAddressResponseWithCounterpartID.model_validate(a) for a in rows]
    )


@router.post(
    "/{counterpart_id}/addresses",
    response_model=CounterpartAddressResponseWithCounterpartID,
    response_model_exclude_none=True,
    status_code=status.HTTP_201_CREATED,
    operation_id="post_counterparts_id_addresses",
)
async def create_address(
    session: Session, entity: EntityDep, counterpart_id: uuid.UUID, payload: CounterpartAddress
) -> CounterpartAddressResponseWithCounterpartID:
    """Add an address to a counterpart."""
    address = await service.create_address(session, entity, counterpart_id, payload)
    return CounterpartAddressResponseWithCounterpartID.model_validate(address)
