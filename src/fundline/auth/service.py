"""Issuing, checking and revoking access tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.auth.cache import TokenCache, TokenRow, announce_change
from fundline.auth.schemas import GrantType, ObtainTokenPayload, RevokeTokenPayload
from fundline.kit import clock, security
from fundline.kit.db import Database
from fundline.kit.errors import Unauthorized
from fundline.kit.statements import Prepared
from fundline.models import AccessToken, ApiClient, Entity, EntityUser, Partner

BAD_CREDENTIALS = "Invalid client credentials"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: a partner's API client, optionally acting as one entity user."""

    partner_id: uuid.UUID
    client_id: uuid.UUID
    token_hash: str
    entity_user_id: uuid.UUID | None = None
    entity_id: uuid.UUID | None = None

    @property
    def is_entity_user(self) -> bool:
        return self.entity_user_id is not None


@dataclass(frozen=True, slots=True)
class NewClient:
    partner_id: uuid.UUID
    client_id: uuid.UUID
    client_secret: str


async def create_partner(session: AsyncSession, *, name: str) -> NewClient:
    """A partner with one API client; the secret is returned only here."""
    partner = Partner(name=name)
    session.add(partner)
    await session.flush()
    secret = security.new_token()
    client = ApiClient(partner_id=partner.id, secret_hash=security.hash_secret(secret))
    session.add(client)
    await session.flush()
    return NewClient(partner.id, client.id, secret)


async def _authenticate_client(
    session: AsyncSession, client_id: uuid.UUID, secret: str
) -> ApiClient:
    client = await session.get(ApiClient, client_id)
    # Verify even for an unknown id, so timing does not tell which ids exist.
    digest = client.secret_hash if client else security.DUMMY_SECRET_HASH
    ok = await security.verify_secret(digest, secret)
    if client is None or not ok or client.disabled_at is not None:
        raise Unauthorized(BAD_CREDENTIALS)
    return client


async def issue_token(
    session: AsyncSession, payload: ObtainTokenPayload, *, ttl_seconds: int
) -> tuple[str, int]:
    client = await _authenticate_client(session, payload.client_id, payload.client_secret)
    entity_user_id = entity_id = None
    if payload.grant_type is GrantType.ENTITY_USER:
        if payload.entity_user_id is None:
            raise Unauthorized("entity_user_id is required for the entity_user grant")
        row = (
            await session.execute(
                select(EntityUser.id, EntityUser.entity_id)
                .join(Entity, Entity.id == EntityUser.entity_id)
                .where(
                    EntityUser.id == payload.entity_user_id,
                    EntityUser.status == "active",
                    Entity.partner_id == client.partner_id,
                    Entity.status != "deleted",
                )
            )
        ).first()
        if row is None:
            raise Unauthorized("Entity user not found")
        entity_user_id, entity_id = row
    token = security.new_token()
    session.add(
        AccessToken(
            token_hash=security.token_digest(token),
            client_id=client.id,
            partner_id=client.partner_id,
            entity_user_id=entity_user_id,
            entity_id=entity_id,
            expires_at=clock.system_now() + timedelta(seconds=ttl_seconds),
        )
    )
    await session.flush()
    return token, ttl_seconds


async def revoke_token(session: AsyncSession, payload: RevokeTokenPayload) -> None:
    """Revoke a token of this client; revoking an unknown or foreign token changes nothing."""
    client = await _authenticate_client(session, payload.client_id, payload.client_secret)
    await session.execute(
        update(AccessToken)
        .where(
            AccessToken.token_hash == security.token_digest(payload.token),
            AccessToken.client_id == client.id,
            AccessToken.revoked_at.is_(None),
        )
        .values(revoked_at=clock.system_now())
    )
    await announce_change(session)


_RESOLVE = Prepared(
    select(
        AccessToken.client_id,
        AccessToken.partner_id,
        AccessToken.entity_user_id,
        AccessToken.entity_id,
        AccessToken.expires_at,
        AccessToken.revoked_at,
        EntityUser.status,
        Entity.id,
    )
    .outerjoin(EntityUser, EntityUser.id == AccessToken.entity_user_id)
    .outerjoin(
        Entity,
        and_(
            Entity.id == bindparam("entity_id", type_=Entity.id.type),
            Entity.partner_id == AccessToken.partner_id,
        ),
    )
    .where(AccessToken.token_hash == bindparam("token_hash", type_=AccessToken.token_hash.type))
)


async def resolve_token(
    db: Database, cache: TokenCache, token: str, *, entity_id: uuid.UUID | None = None
) -> tuple[Caller, uuid.UUID | None] | str:
    """The caller a bearer token stands for, or the reason it is refused; with ``entity_id``,
    also that entity's id if it belongs to the caller's partner (else ``None``).

    One primary-key lookup, with the entity check of the same request in the same query,
    unless ``cache`` holds both (it is emptied in every process when a token is revoked).
    """
    digest = security.token_digest(token)
    row = cache.get(digest)
    if row is not None and (entity_id is None or cache.owns(row.partner_id, entity_id)):
        owned = entity_id
    else:
        generation = cache.generation
        async with db.driver_reads() as conn:
            rows = await _RESOLVE.rows(conn, {"token_hash": digest, "entity_id": entity_id})
        if not rows:
            return "Invalid access token"
        *fields, owned = rows[0]
        row = TokenRow(*fields)
        cache.put(digest, row, generation=generation)
        if owned is not None:
            cache.add_owned(row.partner_id, owned)
    if row.revoked_at is not None:
        return "The access token has been revoked"
    if row.expires_at <= clock.system_now():
        return "The access token has expired"
    if row.entity_user_id is not None and row.user_status != "active":
        return "The entity user of this token is no longer active"
    caller = Caller(row.partner_id, row.client_id, digest, row.entity_user_id, row.entity_id)
    return caller, owned
