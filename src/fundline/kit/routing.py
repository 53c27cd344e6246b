"""The route class every API router uses: one transaction per request, committed in one place.

The session is opened before the endpoint runs and committed after it returns, before the
response leaves. A failed request (an exception, or any 4xx/5xx) is rolled back whole; one the
database aborted for a conflict with other transactions is run again, a few times at most. POST
requests with an ``Idempotency-Key`` are claimed first (once, for every run) and their result
stored in the same transaction.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Annotated

from fastapi import Depends
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from fundline.kit import idempotency
from fundline.kit.db import Database, DriverConnection, is_retryable
from fundline.kit.errors import render_error
from fundline.kit.handlers import Handler, PlannedRoute

# A request whose transaction the database aborted for a conflict with others (a deadlock, a
# serialization failure: ``kit.db.is_retryable``) is run again from the start, after a short
# random pause, this many times at most; then it is answered 503 with ``Retry-After``.
RETRIES = 3
RETRY_PAUSE_SECONDS = 0.05


class TransactionalRoute(PlannedRoute):
    def get_route_handler(self) -> Handler:
        endpoint = super().get_route_handler()

        async def handler(request: Request) -> Response:
            db: Database = request.app.state.db
            claim: idempotency.Claim | None = None
            key = request.headers.get("idempotency-key")
            if (
                key is not None
                and request.method == "POST"
                and idempotency.scope_of(request) is not None
            ):
                settings = request.app.state.settings
                outcome = await idempotency.claim(
                    request,
                    db,
                    key=key,
                    ttl=timedelta(seconds=settings.idempotency_ttl_seconds),
                    lock_timeout=timedelta(seconds=settings.idempotency_lock_seconds),
                )
                if isinstance(outcome, Response):
                    return outcome
                claim = outcome

            for retries_left in range(RETRIES, -1, -1):
                try:
                    response = await _in_transaction(request, endpoint, db, claim)
                except RequestValidationError:
                    if claim is not None:
                        await claim.finish_failed(None)
                    raise
                except Exception as exc:
                    # The whole transaction is rolled back: running the request again is safe.
                    if retries_left and is_retryable(exc):
                        await asyncio.sleep(random.uniform(0, RETRY_PAUSE_SECONDS))
                        continue
                    rendered = render_error(exc)
                    if claim is not None:
                        await claim.finish_failed(rendered)
                    if rendered is None:
                        raise
                    return rendered
                if response.status_code >= 400 and claim is not None:
                    await claim.finish_failed(response)
                return response
            raise AssertionError("unreachable: the last attempt returns or raises")

        return handler


class _RequestSession:
    """The request's session, opened when first asked for: a request that reads on a driver
    connection, or answers from what it carries, never builds one."""

    __slots__ = ("_db", "_reads", "opened")

    def __init__(self, db: Database, *, reads: bool) -> None:
        self._db = db
        self._reads = reads
        self.opened: AsyncSession | None = None

    def get(self) -> AsyncSession:
        if self.opened is None:
            self.opened = self._db.read_session() if self._reads else self._db.session()
        return self.opened


async def _in_transaction(
    request: Request, endpoint: Handler, db: Database, claim: idempotency.Claim | None
) -> Response:
    """One run of the endpoint in a transaction of its own: committed (with the idempotent
    result) when it succeeds, rolled back whole when it raises or answers 4xx/5xx."""
    # Safe methods only read: they run without a transaction where the database allows it
    # (see Database.read_session); everything else gets one.
    sessions = _RequestSession(db, reads=request.method in ("GET", "HEAD"))
    request.state.session = sessions
    try:
        response = await endpoint(request)
    except Exception:
        if sessions.opened is not None:
            await sessions.opened.rollback()
            await sessions.opened.close()
        raise
    session = sessions.opened
    if claim is not None:
        session = sessions.get()  # the idempotent result is stored in the transaction
    # A session the endpoint never opened, or opened and never used, has no transaction to
    # end, nothing to flush and no connection to give back: ending one costs a trip through
    # SQLAlchemy's async bridge.
    if session is None or not (
        claim is not None
        or session.in_transaction()
        or bool(session.new or session.dirty or session.deleted)
    ):
        return response
    try:
        if response.status_code >= 400:
            await session.rollback()
            return response
        if claim is not None:
            await claim.complete(session, response)
        await session.commit()
    except Exception:
        await session.rollback()
        raise
    finally:
        await session.close()
    return response


def read_connection(request: Request) -> AbstractAsyncContextManager[DriverConnection]:
    """A driver connection for a request that only reads (``Database.driver_reads``)."""
    db: Database = request.app.state.db
    return db.driver_reads()


async def _read_connection(request: Request) -> AsyncIterator[DriverConnection]:
    async with read_connection(request) as conn:
        yield conn


# Given back when the endpoint returns, before the response is sent (``scope="function"``):
# held while the response went out, the connections of a busy pool were all waiting on
# sockets, and requests queued for one stalled for seconds (p99 5 s at 32 connections).
ReadConnection = Annotated[DriverConnection, Depends(_read_connection, scope="function")]


async def request_session(request: Request) -> AsyncSession:
    """The request's session, opened by ``TransactionalRoute`` when first asked for. (Async:
    a sync dependency would cost a thread-pool hop on every request.)"""
    sessions: _RequestSession = request.state.session
    return sessions.get()
