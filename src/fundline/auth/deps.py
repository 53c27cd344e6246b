"""Dependencies every authenticated endpoint uses: the session, the caller, the entity."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPBearer
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.auth.service import Caller
from fundline.kit.errors import NotFound, Unauthorized
from fundline.kit.routing import request_session
from fundline.kit.statements import Connection, Prepared
from fundline.kit.tenancy import scope_to
from fundline.models import Entity

# Declared for the OpenAPI document (the HTTPBearer scheme Monite uses); the token itself is
# resolved once by AuthenticationMiddleware.
bearer_scheme = HTTPBearer(auto_error=False)


async def current_caller(request: Request, _: object = Depends(bearer_scheme)) -> Caller:
    return caller_of(request)


def caller_of(request: Request) -> Caller:
    """The caller the authentication middleware found, else 401 with its reason."""
    caller = request.scope.get("fundline.caller")
    if caller is None:
        reason = request.scope.get("fundline.auth_error", "Authorization header is missing")
        raise Unauthorized(reason)
    assert isinstance(caller, Caller)
    return caller


Session = Annotated[AsyncSession, Depends(request_session)]
CallerDep = Annotated[Caller, Depends(current_caller)]


async def current_entity(
    session: Session,
    caller: CallerDep,
    x_monite_entity_id: Annotated[
        uuid.UUID,
        Header(description="The ID of the entity that owns the requested resource."),
    ],
) -> Entity:
    """The entity named by ``x-monite-entity-id``, if the caller may act on it; else 404."""
    return await entity_for(session, caller, x_monite_entity_id)


async def entity_for(session: AsyncSession, caller: Caller, entity_id: uuid.UUID) -> Entity:
    """The entity, if the caller may act on it; else 404. Tenant scoping in one place (with
    ``entity_id_for``, its id-only twin): an entity outside the caller's reach is a 404."""
    if caller.entity_id is not None and caller.entity_id != entity_id:
        raise NotFound("Entity not found")
    entity = await session.scalar(
        _ENTITY, {"entity_id": entity_id, "partner_id": caller.partner_id}
    )
    if entity is None:
        raise NotFound("Entity not found")
    scope_to(session, entity.id)
    return entity


# Built once, as every statement a request runs on each call: building it costs more than
# SQLAlchemy's cached compilation saves.
_ENTITY = select(Entity).where(
    Entity.id == bindparam("entity_id", type_=Entity.id.type),
    Entity.partner_id == bindparam("partner_id", type_=Entity.partner_id.type),
)

EntityDep = Annotated[Entity, Depends(current_entity)]


async def current_entity_id(
    request: Request,
    session: Session,
    caller: CallerDep,
    x_monite_entity_id: Annotated[
        uuid.UUID,
        Header(description="The ID of the entity that owns the requested resource."),
    ],
) -> uuid.UUID:
    """The same check as ``current_entity``, reading only the id: for hot read paths."""
    entity_id = await entity_id_for(session, request, caller, x_monite_entity_id)
    scope_to(session, entity_id)
    return entity_id


async def entity_id_for(
    conn: Connection, request: Request, caller: Caller, entity_id: uuid.UUID
) -> uuid.UUID:
    """``entity_id`` if the caller may act on it, else 404: ``current_entity``'s rule. The
    authentication middleware has usually looked the entity up already, with the token."""
    if caller.entity_id is not None and caller.entity_id != entity_id:
        raise NotFound("Entity not found")
    if request.scope.get("fundline.partner_entity") == entity_id:
        return entity_id
    values = {"entity_id": entity_id, "partner_id": caller.partner_id}
    if not await _PARTNER_ENTITY.rows(conn, values):
        raise NotFound("Entity not found")
    return entity_id


_PARTNER_ENTITY = Prepared(
    select(Entity.id).where(
        Entity.id == bindparam("entity_id", type_=Entity.id.type),
        Entity.partner_id == bindparam("partner_id", type_=Entity.partner_id.type),
    )
)


EntityIdDep = Annotated[uuid.UUID, Depends(current_entity_id)]
