"""``Idempotency-Key`` on POST, after Stripe and the IETF draft.

The key row is claimed in its own short transaction, so a concurrent duplicate sees it at once
(409 while in flight). The response is written into that row inside the request's own
transaction, so the stored result and the change it describes commit together. A claim older
than the lock timeout is taken over, so a crashed request does not block its key for a day.

The table is the mechanism's own and is defined here, so kit needs nothing from the domain;
``fundline.models`` re-exports it with the rest, so importing that package registers it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Index, LargeBinary, String, UniqueConstraint, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fundline.kit import clock
from fundline.kit.db import Base, Database, IdMixin
from fundline.kit.errors import error_body, validation_body

MAX_KEY_LENGTH = 255
# Headers worth replaying; the rest (request id, timing, rate limits) belong to the replay itself.
REPLAYED_HEADERS = ("content-type", "location")
# Responses that describe the request rather than its outcome are not kept: retrying may succeed.
NOT_STORED = {422, 429}


class IdempotencyKey(IdMixin, Base):
    """The stored result of a POST request that carried an ``Idempotency-Key``."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    # sha256 of client id and entity id: a key means nothing outside its own scope.
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(2048))
    request_hash: Mapped[str] = mapped_column(String(64))
    locked_at: Mapped[datetime | None] = mapped_column()
    response_status: Mapped[int | None] = mapped_column(default=None)
    response_headers: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()

    @property
    def completed(self) -> bool:
        return self.response_status is not None


def scope_of(request: Request) -> str | None:
    """The key's scope: the API client and the entity; ``None`` for anonymous requests."""
    client = request.scope.get("fundline.client_id")
    if client is None:
        return None
    entity = request.headers.get("x-monite-entity-id", "")
    return hashlib.sha256(f"{client}|{entity.lower()}".encode()).hexdigest()


def request_fingerprint(request: Request, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b" " + request.url.path.encode() + b"?")
    digest.update(request.url.query.encode() + b"\n")
    digest.update(body)
    return digest.hexdigest()


@dataclass(slots=True)
class Claim:
    """A key this request now owns; ``complete`` or ``abandon`` it."""

    db: Database
    row_id: object

    async def complete(self, session: AsyncSession, response: Response) -> None:
        """Store the response in the request's own transaction (committed by the caller)."""
        headers = [[k, response.headers[k]] for k in REPLAYED_HEADERS if k in response.headers]
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == self.row_id)
            .values(
                response_status=response.status_code,
                response_headers=headers,
                response_body=bytes(response.body),
                locked_at=None,
            )
        )

    async def finish_failed(self, response: Response | None) -> None:
        """After a rolled-back request: keep a definite client error, forget anything else."""
        async with self.db.session() as session, session.begin():
            if (
                response is not None
                and 400 <= response.status_code < 500
                and (response.status_code not in NOT_STORED)
            ):
                await self.complete(session, response)
            else:
                await session.execute(
                    delete(IdempotencyKey).where(IdempotencyKey.id == self.row_id)
                )


async def claim(
    request: Request, db: Database, *, key: str, ttl: timedelta, lock_timeout: timedelta
) -> Claim | Response:
    """Claim ``key`` for this request, or return the response to send instead."""
    scope = scope_of(request)
    if scope is None:
        raise RuntimeError("claim() needs an authenticated request")
    if not key or len(key) > MAX_KEY_LENGTH:
        return JSONResponse(
            error_body(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters"),
            status_code=400,
        )
    fingerprint = request_fingerprint(request, await request.body())
    now = clock.system_now()
    path = request.url.path[:2048]
    values: dict[str, object] = {
        "scope": scope,
        "key": key,
        "method": request.method,
        "path": path,
        "request_hash": fingerprint,
        "locked_at": now,
        "created_at": now,
        "expires_at": now + ttl,
    }
    insert = pg_insert if db.is_postgres else sqlite_insert
    async with db.session() as session, session.begin():
        row_id = await session.scalar(
            insert(IdempotencyKey)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["scope", "key"])
            .returning(IdempotencyKey.id)
        )
        if row_id is not None:
            return Claim(db, row_id)
        existing = await session.scalar(
            select(IdempotencyKey)
            .where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
            .with_for_update()
        )
        if existing is None:  # deleted between our insert and select: the first request failed
            return _in_flight()
        if existing.expires_at <= now:
            existing.request_hash = fingerprint
            existing.method, existing.path = request.method, path
            existing.created_at, existing.expires_at = now, now + ttl
            existing.locked_at = now
            existing.response_status = existing.response_body = existing.response_headers = None
            return Claim(db, existing.id)
        if existing.request_hash != fingerprint:
            return JSONResponse(
                validation_body(
                    "This Idempotency-Key was already used with a different request",
                    ("header", "Idempotency-Key"),
                    "idempotency_key_reused",
                ),
                status_code=422,
            )
        if existing.completed:
            return _replay(existing)
        if existing.locked_at is not None and existing.locked_at > now - lock_timeout:
            return _in_flight()
        existing.locked_at = now  # the first attempt died holding the key: take it over
        return Claim(db, existing.id)


def _in_flight() -> Response:
    return JSONResponse(
        error_body("A request with this Idempotency-Key is still being processed"),
        status_code=409,
    )


def _replay(row: IdempotencyKey) -> Response:
    assert row.response_status is not None
    response = Response(content=row.response_body or b"", status_code=row.response_status)
    for name, value in row.response_headers or []:
        response.headers[name] = value
    response.headers["idempotent-replayed"] = "true"
    return response


async def purge_expired(db: Database) -> int:
    """Delete keys past their retention; the worker calls this."""
    async with db.session() as session, session.begin():
        result = await session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.expires_at <= clock.system_now())
        )
        return int(getattr(result, "rowcount", 0) or 0)
