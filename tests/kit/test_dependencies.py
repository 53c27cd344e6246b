"""Every dependency a route declares is async: FastAPI runs a sync one in its thread pool, a
hop through another thread on every request that uses it, for a function that only reads
``request.app.state``."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from fundline.app import create_app
from fundline.config import Mode
from tests.support.apps import make_settings


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _is_async(call: Any) -> bool:
    function = call if inspect.isroutine(call) else type(call).__call__
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def test_no_route_depends_on_a_sync_function() -> None:
    # Sandbox mode with the built-in lender: every router is mounted.
    app = create_app(make_settings("sqlite+aiosqlite:///:memory:", mode=Mode.SANDBOX))
    routes = [context.original_route for context in iter_route_contexts(app.routes)]
    sync = sorted(
        {
            f"{getattr(call, '__qualname__', repr(call))} (by {route.path})"
            for route in routes
            if isinstance(route, APIRoute)
            for call in _calls(route.dependant)
            if not _is_async(call)
        }
    )
    assert len([r for r in routes if isinstance(r, APIRoute)]) > 50
    assert sync == []
