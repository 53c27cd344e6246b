from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import Select, select

from fundline.auth.deps import EntityDep, Session
from fundline.kit.errors import NotFound
from fundline.kit.filters import apply_filters
from fundline.kit.pagination import Paginator
from fundline.kit.routing import TransactionalRoute
from fundline.models import Event
from fundline.webhooks.schemas import (
    EventListParams,
    EventPaginationResource,
    EventResource,
)

router = APIRouter(prefix="/events", tags=["Events"], route_class=TransactionalRoute)

FILTER_COLUMNS = {"object_type": Event.object_type, "created_at": Event.created_at}


def _entity_events(entity_id: uuid.UUID) -> Select[Event]:
    """The entity's events, of every object type (financing ones included)."""
    return select(Event).where(Event.entity_id == entity_id)


def _out(event: Event) -> EventResource:
    return EventResource.model_validate(event, from_attributes=True)


@router.get("", response_model=EventPaginationResource, operation_id="get_events")
async def list_events(
    request: Request,
    session: Session,
    entity: EntityDep,
    params: Annotated[EventListParams, Query()],
) -> EventPaginationResource:
    """Get events: every state change of the entity's objects, oldest first by default."""
    paginator = Paginator(request.app.state.signer, "events")
    params, cursor = paginator.resolve(params)
    stmt = apply_filters(_entity_events(entity.id), params, FILTER_COLUMNS)
    # Events never change, so "updated_at" orders as "created_at".
    page = await paginator.fetch(
        session,
        stmt,
        params=params,
        cursor=cursor,
        sort_column=Event.created_at,
        id_column=Event.id,
    )
    return EventPaginationResource.of(page, [_out(event) for event in page.data])


@router.get("/{event_id}", response_model=EventResource, operation_id="get_events_id")
async def get_event(session: Session, entity: EntityDep, event_id: uuid.UUID) -> EventResource:
    """Get an event by ID."""
    event = await session.scalar(_entity_events(entity.id).where(Event.id == event_id))
    if event is None:
        raise NotFound("Event not found")
    return _out(event)
