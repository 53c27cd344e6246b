"""Resolved bearer tokens, kept per process while every process can be told of a change.

Every ``/v1`` request needs its token looked up (and its entity checked against the token's
partner). What that lookup finds changes only when a token is revoked or an entity user is
deleted, and both announce it with PostgreSQL's ``NOTIFY`` in their own transaction: each
process listens on one connection of its own and empties its cache when told, so a revocation
holds in every process within milliseconds of its commit.

The cache is on only while that listener is connected: on SQLite, or while PostgreSQL cannot
be reached, every request reads the token again. Expiry and revocation are judged on every
request from what is cached, never trusted from an earlier answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from cachetools import LRUCache
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

log = structlog.get_logger("fundline.auth")

CHANNEL = "fundline_auth"
RECONNECT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class TokenRow:
    """What the database holds about one token, as ``auth.service.resolve_token`` reads it."""

    client_id: uuid.UUID
    partner_id: uuid.UUID
    entity_user_id: uuid.UUID | None
    entity_id: uuid.UUID | None
    expires_at: datetime
    revoked_at: datetime | None
    user_status: str | None


class TokenCache:
    def __init__(self, dsn: str | None, *, size: int = 10_000) -> None:
        self._dsn = dsn  # None: never on (SQLite)
        # Full, each drops its least recently used entry.
        self._tokens: LRUCache[str, TokenRow] = LRUCache(maxsize=size)
        self._entities: LRUCache[tuple[uuid.UUID, uuid.UUID], bool] = LRUCache(maxsize=size)
        self._listener: asyncpg.Connection | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._closed = False
        # Bumped whenever the cache is emptied: a row read before that must not be kept.
        self.generation = 0

    @property
    def active(self) -> bool:
        return self._listener is not None

    async def start(self) -> None:
        """Listen for changes (PostgreSQL only); until this succeeds, nothing is cached."""
        if self._dsn is None or self._closed:
            return
        try:
            listener = await asyncpg.connect(self._dsn)
            await listener.add_listener(CHANNEL, self._changed)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("token_cache_off", reason=str(exc))
            self._schedule_reconnect()
            return
        if self._closed:  # closed while connecting
            await listener.close()
            return
        listener.add_termination_listener(self._lost)
        self._listener = listener

    async def close(self) -> None:
        self._closed = True
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
        listener, self._listener = self._listener, None
        self.clear()
        if listener is not None:
            listener.remove_termination_listener(self._lost)
            await listener.close()

    def get(self, digest: str) -> TokenRow | None:
        return self._tokens.get(digest) if self._listener is not None else None

    def put(self, digest: str, row: TokenRow, *, generation: int) -> None:
        """Keep ``row``, read while the cache was at ``generation``, unless emptied since."""
        if self._listener is None or generation != self.generation:
            return
        self._tokens[digest] = row

    def owns(self, partner_id: uuid.UUID, entity_id: uuid.UUID) -> bool:
        """Whether the entity is known to belong to the partner (that never changes)."""
        return self._entities.get((partner_id, entity_id), False)

    def add_owned(self, partner_id: uuid.UUID, entity_id: uuid.UUID) -> None:
        if self._listener is None:
            return
        self._entities[partner_id, entity_id] = True

    def clear(self) -> None:
        self.generation += 1
        self._tokens.clear()

    def _changed(self, *_: Any) -> None:
        self.clear()

    def _lost(self, _: Any) -> None:
        # Told nothing from now on: stop trusting the cache until listening again.
        self._listener = None
        self.clear()
        self._schedule_reconnect()

    def _schedule_reconnect(self) -> None:
        if self._closed:
            return
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_later())

    async def _reconnect_later(self) -> None:
        await asyncio.sleep(RECONNECT_SECONDS)
        await self.start()


async def announce_change(session: AsyncSession) -> None:
    """Tell every process's ``TokenCache`` that tokens changed, when this transaction commits."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
