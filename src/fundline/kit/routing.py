"""The route class every API router uses: one transaction per request, committed in one place.

The session is opened before the endpoint runs and committed after it returns, before the
response leaves. A failed request (an exception, or any 4xx/5xx) is rolled back whole; one the
database aborted for a conflict with other transactions is run again, a few times at most. POST
requests with an ``Idempotency-Key`` are claimed first (once, for every run) and their result
stored in the same transaction.
"""

from __future__ import annotations

import asyncio
import functools
import random
import typing
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from fundline.kit import idempotency
from fundline.kit.db import Database, DriverConnection, is_retryable
from fundline.kit.errors import render_error

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
M = TypeVar("M", bound=BaseModel)


# A request whose transaction the database aborted for a conflict with others (a deadlock, a
# serialization failure: ``kit.db.is_retryable``) is run again from the start, after a short
# random pause, this many times at most; then it is answered 503 with ``Retry-After``.
RETRIES = 3
RETRY_PAUSE_SECONDS = 0.05


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


async def _in_transaction(
    request: Request, endpoint: Handler, db: Database, claim: idempotency.Claim | None
) -> Response:
    """One run of the endpoint in a transaction of its own: committed (with the idempotent
    result) when it succeeds, rolled back whole when it raises or answers 4xx/5xx."""
    # Safe methods only read: they run without a transaction where the database allows it
    # (see Database.read_session); everything else gets one.
    reads = request.method in ("GET", "HEAD")
    session = db.read_session() if reads else db.session()
    request.state.session = session
    used = True
    try:
        response = await endpoint(request)
        # An endpoint that never touched its session (it read on a driver connection, or
        # answered from what the request carried) has no transaction to end, nothing to
        # flush and no connection to give back: ending one costs a trip through
        # SQLAlchemy's async bridge.
        used = (
            claim is not None
            or session.in_transaction()
            or bool(session.new or session.dirty or session.deleted)
        )
        if not used:
            return response
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
        if used:
            await session.close()
    return response


def read_connection(request: Request) -> AbstractAsyncContextManager[DriverConnection]:
    """A driver connection for a request that only reads (``Database.driver_reads``)."""
    db: Database = request.app.state.db
    return db.driver_reads()


async def _read_connection(request: Request) -> AsyncIterator[DriverConnection]:
    async with read_connection(request) as conn:
        yield conn


ReadConnection = Annotated[DriverConnection, Depends(_read_connection)]


async def request_session(request: Request) -> AsyncSession:
    """The request's session, opened by ``TransactionalRoute``. (Async: a sync dependency
    would cost a thread-pool hop on every request.)"""
    session: AsyncSession = request.state.session
    return session


class DirectRoute(APIRoute):
    """A route served by a handler that reads the request itself (see ``direct_route``)."""

    handler: Handler

    def get_route_handler(self) -> Handler:
        return type(self).handler


def direct_route(handler: Handler) -> type[DirectRoute]:
    """A route class (``route_class_override``) that serves its route with ``handler``.

    FastAPI documents the endpoint's declared parameters (the OpenAPI document stays true) but
    does not solve them per request: on the hottest read path, solving dependencies and query
    models costs more than the database's work. The handler parses what it needs with the same
    models (``query_model``) and the same checks the dependencies use, and raises the same
    errors, which the app's handlers render.
    """
    return type("DirectRoute", (DirectRoute,), {"handler": staticmethod(handler)})


def query_model(request: Request, model: type[M], *, errors: Sequence[Any] = ()) -> M:
    """The query string validated by ``model``, as FastAPI would for ``Annotated[model,
    Query()]``: a list field takes every value of its name; failures (with ``errors`` found
    before) raise one ``RequestValidationError`` located in the query."""
    raw: dict[str, Any] = {}
    lists = _list_fields(model)
    for name in request.query_params:
        raw[name] = (
            request.query_params.getlist(name) if name in lists else request.query_params[name]
        )
    try:
        parsed = model.model_validate(raw)
    except ValidationError as exc:
        located = [{**error, "loc": ("query", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError([*errors, *located]) from None
    if errors:
        raise RequestValidationError(list(errors))
    return parsed


@functools.cache
def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields that take a list (``list[X]`` or ``list[X] | None``, bounded or not)."""
    return frozenset(
        name
        for name, field in model.model_fields.items()
        for annotation in (field.annotation,)
        if _is_list(annotation) or any(_is_list(arm) for arm in typing.get_args(annotation))
    )


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Annotated:  # a QueryList: list[X] with its bound
        annotation = typing.get_args(annotation)[0]
    return typing.get_origin(annotation) is list
