"""Entities and entity users: creation, updates and listing, always within the caller's partner."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.auth.cache import announce_change
from fundline.auth.deps import entity_for
from fundline.auth.service import Caller
from fundline.entities.schemas import (
    CreateEntityRequest,
    CreateEntityUserRequest,
    EntityListParams,
    EntityType,
    EntityUserListParams,
    UpdateEntityRequest,
    UpdateEntityUserRequest,
)
from fundline.kit.errors import Conflict, Forbidden, NotFound, Unprocessable
from fundline.kit.filters import apply_filters
from fundline.kit.pagination import Page, Paginator
from fundline.models import Entity, EntityUser
from fundline.webhooks import outbox

ENTITY_COLUMNS: dict[str, Any] = {
    "id": Entity.id,
    "type": Entity.type,
    "status": Entity.status,
    "email": Entity.email,
    "created_at": Entity.created_at,
}

DEFAULT_ROLE_NAMESPACE = uuid.UUID("6f1c2d0e-7a51-4c1e-9a3f-3c0d1f2b8e11")


def default_role_id(entity_id: uuid.UUID) -> uuid.UUID:
    """Fundline has no roles API yet: every user gets its entity's one (stable) admin role."""
    return uuid.uuid5(DEFAULT_ROLE_NAMESPACE, str(entity_id))


def _partner_only(caller: Caller) -> None:
    if caller.is_entity_user:
        raise Forbidden("This operation needs a partner-level token")


async def create_entity(
    session: AsyncSession, caller: Caller, payload: CreateEntityRequest
) -> Entity:
    _partner_only(caller)
    if payload.type is EntityType.ORGANIZATION:
        if payload.organization is None:
            raise Unprocessable(
                "organization is required when type is organization", loc=("body", "organization")
            )
        if payload.individual is not None:
            raise Unprocessable(
                "individual must be empty when type is organization", loc=("body", "individual")
            )
    else:
        if payload.individual is None:
            raise Unprocessable(
                "individual is required when type is individual", loc=("body", "individual")
            )
        if payload.organization is not None:
            raise Unprocessable(
                "organization must be empty when type is individual", loc=("body", "organization")
            )
    data = payload.model_dump(mode="json", exclude_none=True)
    entity = Entity(
        partner_id=caller.partner_id,
        type=payload.type.value,
        email=str(payload.email),
        phone=payload.phone,
        website=payload.website,
        tax_id=payload.tax_id,
        registration_number=payload.registration_number,
        registration_authority=payload.registration_authority,
        address=data["address"],
        organization=data.get("organization"),
        individual=data.get("individual"),
    )
    session.add(entity)
    await session.flush()
    await outbox.record_event(session, entity, entity, "created")
    return entity


async def update_entity(
    session: AsyncSession, entity: Entity, payload: UpdateEntityRequest
) -> Entity:
    changes = payload.model_dump(mode="json", exclude_unset=True)
    for nested in ("address", "organization", "individual"):
        patch = changes.pop(nested, None)
        if patch is None:
            continue
        current = getattr(entity, nested)
        if current is None:
            raise Unprocessable(
                f"{nested} does not apply to an entity of type {entity.type}", loc=("body", nested)
            )
        merged = {**current, **{k: v for k, v in patch.items() if v is not None}}
        setattr(entity, nested, merged)
    for field, value in changes.items():
        setattr(entity, field, value)
    await session.flush()
    await outbox.record_event(session, entity, entity, "updated")
    return entity


async def get_entity(session: AsyncSession, caller: Caller, entity_id: uuid.UUID) -> Entity:
    return await entity_for(session, caller, entity_id)


def _entity_scope(caller: Caller) -> Select[Any]:
    stmt = select(Entity).where(Entity.partner_id == caller.partner_id)
    if caller.entity_id is not None:
        stmt = stmt.where(Entity.id == caller.entity_id)
    return stmt


async def list_entities(
    session: AsyncSession, caller: Caller, paginator: Paginator, params: EntityListParams
) -> Page[Entity]:
    params, cursor = paginator.resolve(params)
    stmt = apply_filters(_entity_scope(caller), params, ENTITY_COLUMNS)
    sort = (
        Entity.updated_at
        if params.sort and params.sort.value == "updated_at"
        else (Entity.created_at)
    )
    return await paginator.fetch(
        session, stmt, params=params, cursor=cursor, sort_column=sort, id_column=Entity.id
    )


# --- entity users ---------------------------------------------------------------------------


def _name_starts_with(value: str) -> ColumnElement[bool]:
    prefix = value.lower()
    full = func.lower(EntityUser.first_name + " " + func.coalesce(EntityUser.last_name, ""))
    return or_(
        full.startswith(prefix, autoescape=True),
        func.lower(func.coalesce(EntityUser.last_name, "")).startswith(prefix, autoescape=True),
    )


USER_COLUMNS: dict[str, Any] = {
    "id": EntityUser.id,
    "role_id": EntityUser.role_id,
    "login": EntityUser.login,
    "status": EntityUser.status,
    "first_name": EntityUser.first_name,
    "created_at": EntityUser.created_at,
}


async def _login_taken(
    session: AsyncSession, entity: Entity, login: str, *, except_id: uuid.UUID | None = None
) -> bool:
    stmt = select(EntityUser.id).where(EntityUser.entity_id == entity.id, EntityUser.login == login)
    if except_id is not None:
        stmt = stmt.where(EntityUser.id != except_id)
    return (await session.scalar(stmt)) is not None


async def create_entity_user(
    session: AsyncSession, entity: Entity, payload: CreateEntityUserRequest
) -> EntityUser:
    if await _login_taken(session, entity, payload.login):
        raise Conflict(f"An entity user with login {payload.login!r} already exists")
    user = EntityUser(
        entity_id=entity.id,
        role_id=payload.role_id or default_role_id(entity.id),
        **payload.model_dump(exclude={"role_id"}, mode="json"),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent create with the same login won the race
        raise Conflict(f"An entity user with login {payload.login!r} already exists") from exc
    await outbox.record_event(session, entity, user, "created")
    return user


async def get_entity_user(session: AsyncSession, entity: Entity, user_id: uuid.UUID) -> EntityUser:
    user = await session.scalar(
        select(EntityUser).where(
            EntityUser.id == user_id,
            EntityUser.entity_id == entity.id,
            EntityUser.status != "deleted",
        )
    )
    if user is None:
        raise NotFound("Entity user not found")
    return user


async def update_entity_user(
    session: AsyncSession, entity: Entity, user_id: uuid.UUID, payload: UpdateEntityUserRequest
) -> EntityUser:
    user = await get_entity_user(session, entity, user_id)
    changes = payload.model_dump(mode="json", exclude_unset=True)
    # Monite's schema lets these be null, but a user always has them: null leaves them be.
    for required in ("login", "first_name"):
        if required in changes and changes[required] is None:
            del changes[required]
    if changes.get("login") and await _login_taken(
        session, entity, changes["login"], except_id=user.id
    ):
        raise Conflict(f"An entity user with login {changes['login']!r} already exists")
    for field, value in changes.items():
        if field == "role_id":
            value = uuid.UUID(value) if value else default_role_id(entity.id)
        setattr(user, field, value)
    await session.flush()
    await outbox.record_event(session, entity, user, "updated")
    return user


async def delete_entity_user(session: AsyncSession, entity: Entity, user_id: uuid.UUID) -> None:
    """Mark the user deleted: its tokens stop working at once, its history stays."""
    user = await get_entity_user(session, entity, user_id)
    user.status = "deleted"
    user.login = f"{user.login}#deleted:{user.id}"[:255]
    await session.flush()
    await announce_change(session)
    await outbox.record_event(session, entity, user, "deleted")


async def list_entity_users(
    session: AsyncSession, entity: Entity, paginator: Paginator, params: EntityUserListParams
) -> Page[EntityUser]:
    params, cursor = paginator.resolve(params)
    stmt = select(EntityUser).where(EntityUser.entity_id == entity.id)
    if params.status is None:
        stmt = stmt.where(EntityUser.status != "deleted")
    if params.name__istartswith is not None:
        stmt = stmt.where(_name_starts_with(params.name__istartswith))
    stmt = apply_filters(stmt, params.model_copy(update={"name__istartswith": None}), USER_COLUMNS)
    return await paginator.fetch(
        session,
        stmt,
        params=params,
        cursor=cursor,
        sort_column=EntityUser.updated_at if params.sort else EntityUser.created_at,
        id_column=EntityUser.id,
    )
