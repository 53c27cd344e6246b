"""The route class every API router uses: one transaction per request, committed in one place.

The session is opened before the endpoint runs and committed after it returns, before the
response leaves. A failed request (an exception, or any 4xx/5xx) is rolled back whole. POST
requests with an ``Idempotency-Key`` are claimed first and their result stored in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from fundline.kit import idempotency
from fundline.kit.db import Database
from fundline.kit.errors import render_error

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class TransactionalRoute(APIRoute):
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

            # Safe methods only read: they run without a transaction where the database
            # allows it (see Database.read_session); everything else gets one.
            reads = request.method in ("GET", "HEAD")
            async with db.read_session() if reads else db.session() as session:
                request.state.session = session
                try:
                    response = await endpoint(request)
                except RequestValidationError:
                    await session.rollback()
                    if claim is not None:
                        await claim.finish_failed(None)
                    raise
                except Exception as exc:
                    await session.rollback()
                    rendered = render_error(exc)
                    if claim is not None:
                        await claim.finish_failed(rendered)
                    if rendered is None:
                        raise
                    return rendered
                if response.status_code >= 400:
                    await session.rollback()
                    if claim is not None:
                        await claim.finish_failed(response)
                    return response
                if claim is not None:
                    await claim.complete(session, response)
                await session.commit()
                return response

        return handler


async def request_session(request: Request) -> AsyncSession:
    """The request's session, opened by ``TransactionalRoute``. (Async: a sync dependency
    would cost a thread-pool hop on every request.)"""
    session: AsyncSession = request.state.session
    return session
