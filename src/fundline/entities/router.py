from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import TypeAdapter

from fundline.auth.deps import CallerDep, EntityDep, Session
from fundline.entities import service
from fundline.entities.schemas import (
    CreateEntityRequest,
    CreateEntityUserRequest,
    EntityListParams,
    EntityPaginationResponse,
    EntityResponse,
    EntityUserListParams,
    EntityUserPaginationResponse,
    EntityUserResponse,
    UpdateEntityRequest,
    UpdateEntityUserRequest,
)
from fundline.kit.pagination import Paginator
from fundline.kit.routing import TransactionalRoute
from fundline.models import Entity

entities = APIRouter(prefix="/entities", tags=["Entities"], route_class=TransactionalRoute)
entity_users = APIRouter(
    prefix="/entity_users", tags=["Entity users"], route_class=TransactionalRoute
)

_entity_adapter: TypeAdapter[EntityResponse] = TypeAdapter(EntityResponse)


def entity_out(entity: Entity) -> EntityResponse:
    data = {
        "id": entity.id,
        "created_at": entity.created_at,
        "updated_at": entity.updated_at,
        "address": entity.address,
        "email": entity.email,
        "phone": entity.phone,
        "registration_authority": entity.registration_authority,
        "registration_number": entity.registration_number,
        "status": entity.status,
        "tax_id": entity.tax_id,
        "website": entity.website,
        "type": entity.type,
        entity.type: entity.organization if entity.type == "organization" else entity.individual,
    }
    return _entity_adapter.validate_python(data)


@entities.post(
    "",
    response_model=EntityResponse,
    status_code=status.HTTP_201_CREATED,
    operation_id="post_entities",
)
async def create_entity(
    session: Session, caller: CallerDep, payload: CreateEntityRequest
) -> EntityResponse:
    """Create an entity (an organization or an individual) under the caller's partner."""
    return entity_out(await service.create_entity(session, caller, payload))


@entities.get("", response_model=EntityPaginationResponse, operation_id="get_entities")
async def list_entities(
    request: Request,
    session: Session,
    caller: CallerDep,
    params: Annotated[EntityListParams, Query()],
) -> EntityPaginationResponse:
    """List the partner's entities (an entity-user token sees only its own)."""
    paginator = Paginator(request.app.state.signer, "entities")
    page = await service.list_entities(session, caller, paginator, params)
    return EntityPaginationResponse.of(page, [entity_out(e) for e in page.data])


@entities.get("/{entity_id}", response_model=EntityResponse, operation_id="get_entities_id")
async def get_entity(session: Session, caller: CallerDep, entity_id: uuid.UUID) -> EntityResponse:
    """Get an entity by ID."""
    return entity_out(await service.get_entity(session, caller, entity_id))


@entities.patch("/{entity_id}", response_model=EntityResponse, operation_id="patch_entities_id")
async def update_entity(
    session: Session, caller: CallerDep, entity_id: uuid.UUID, payload: UpdateEntityRequest
) -> EntityResponse:
    """Change an entity's details; nested objects are merged field by field."""
    entity = await service.get_entity(session, caller, entity_id)
    return entity_out(await service.update_entity(session, entity, payload))


@entity_users.post("", response_model=EntityUserResponse, operation_id="post_entity_users")
async def create_entity_user(
    session: Session, entity: EntityDep, payload: CreateEntityUserRequest
) -> EntityUserResponse:
    """Create a user of the entity named in `x-monite-entity-id`."""
    user = await service.create_entity_user(session, entity, payload)
    return EntityUserResponse.model_validate(user)


@entity_users.get("", response_model=EntityUserPaginationResponse, operation_id="get_entity_users")
async def list_entity_users(
    request: Request,
    session: Session,
    entity: EntityDep,
    params: Annotated[EntityUserListParams, Query()],
) -> EntityUserPaginationResponse:
    """List the entity's users."""
    paginator = Paginator(request.app.state.signer, "entity_users")
    page = await service.list_entity_users(session, entity, paginator, params)
    return EntityUserPaginationResponse.of(
        page, [EntityUserResponse.model_validate(u) for u in page.data]
    )


@entity_users.get(
    "/{entity_user_id}", response_model=EntityUserResponse, operation_id="get_entity_users_id"
)
async def get_entity_user(
    session: Session, entity: EntityDep, entity_user_id: uuid.UUID
) -> EntityUserResponse:
    """Get an entity user by ID."""
    user = await service.get_entity_user(session, entity, entity_user_id)
    return EntityUserResponse.model_validate(user)


@entity_users.patch(
    "/{entity_user_id}", response_model=EntityUserResponse, operation_id="patch_entity_users_id"
)
async def update_entity_user(
    session: Session,
    entity: EntityDep,
    entity_user_id: uuid.UUID,
    payload: UpdateEntityUserRequest,
) -> EntityUserResponse:
    """Change an entity user's details."""
    user = await service.update_entity_user(session, entity, entity_user_id, payload)
    return EntityUserResponse.model_validate(user)


@entity_users.delete(
    "/{entity_user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    operation_id="delete_entity_users_id",
)
async def delete_entity_user(
    session: Session, entity: EntityDep, entity_user_id: uuid.UUID
) -> Response:
    """Delete an entity user; its tokens stop working at once."""
    await service.delete_entity_user(session, entity, entity_user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
