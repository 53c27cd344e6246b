"""Finds a request's route by its path's first two segments, not by trying every route.

FastAPI keeps included routers nested and matches a request by walking them: each level
tries its routes in order, then hands the request to the level below, which walks its routes
again to find the one it matched. A request for the last route of the last router tries
about 70 routes twice, 0.1 to 0.3 ms on every request. The route it picks is the first, in
that walk's order, whose path and method both match.

``RouteIndex`` takes the same walk's routes once, in the same order, and files each under
the literal segments its path starts with (``/v1/receivables/{id}/issue`` under ``v1`` and
``receivables``). A request tries only the routes filed under its own path's segments and
those with a parameter there, still in the walk's order, so the first whose path and method
match is the route FastAPI's walk picks. It then sets up the request's scope as that walk
does (the route, the endpoint, the path parameters, the included router and route context
FastAPI's handler reads) and calls the route's handler.

Everything else goes FastAPI's own way, unchanged: a request no route takes whole (404, 405,
a slash redirect), a route that is not a FastAPI route (a mount, a plain Starlette route),
websockets and the lifespan. The index is built at the first request, or when the server
starts (``build``); routes added to the app after that are found by FastAPI's walk only.
``tests/kit/test_dispatch.py`` checks, for every route of the app, that both pick the same.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import routing as fastapi_routing
from fastapi._form_limits import _FormLimits
from fastapi.routing import APIRoute, APIRouter
from starlette._utils import get_route_path
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

# What FastAPI's walk leaves in ``scope["fastapi"]`` for the route's handler to read.
_FASTAPI = fastapi_routing._FASTAPI_SCOPE_KEY
_INCLUDED_ROUTER = fastapi_routing._FASTAPI_INCLUDED_ROUTER_KEY
_ROUTE_CONTEXT = fastapi_routing._FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY
_Branch = fastapi_routing._IncludedRouter
_Context = fastapi_routing._EffectiveRouteContext

DEPTH = 2  # the path segments a route is filed under, at most
Key = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Target:
    """A FastAPI route, with what dispatching a request to it needs."""

    pattern: re.Pattern[str]  # its full path's, the routers' prefixes included
    convertors: dict[str, Any]
    methods: frozenset[str] | None
    endpoint: Any
    app: ASGIApp  # its handler
    context: Any = None  # the included route's context (None at the app's own level)
    branch: Any = None  # the innermost included router it is reached through
    form_limits: tuple[_FormLimits, ...] = ()  # each level's, where set


@dataclass(frozen=True, slots=True)
class _Leaf:
    """One route as the walk reaches it."""

    order: int  # its place in the walk
    route: BaseRoute  # what FastAPI's walk puts in ``scope["route"]``
    template: str  # its full path template
    target: _Target | None  # None: not a FastAPI route, which FastAPI's walk dispatches


class _Index:
    def __init__(self, leaves: list[_Leaf]) -> None:
        filed: dict[Key, list[_Leaf]] = defaultdict(list)
        for leaf in leaves:
            filed[_literal_key(leaf.template)].append(leaf)
        # Every key a request's path can be filed under, with the routes that may match it:
        # those filed there, and those filed under a shorter key it starts with.
        self._by_key: dict[Key, tuple[_Leaf, ...]] = {}
        keys = {()} | {filed_key[:n] for filed_key in filed for n in range(len(filed_key) + 1)}
        for key in keys:
            shorter = [leaf for n in range(len(key) + 1) for leaf in filed.get(key[:n], ())]
            self._by_key[key] = tuple(sorted(shorter, key=lambda leaf: leaf.order))

    def candidates(self, path: str) -> tuple[_Leaf, ...]:
        key = tuple(path.split("/", DEPTH + 1)[1 : DEPTH + 1])
        while key not in self._by_key:  # the empty key is always there
            key = key[:-1]
        return self._by_key[key]


class RouteIndex:
    """The app's router's dispatch (``Router.middleware_stack``), FastAPI's as its fallback."""

    def __init__(self, router: APIRouter) -> None:
        if router.middleware_stack != router.app:
            raise RuntimeError("the router has middleware of its own: the index would skip it")
        self.router = router
        self.fallback: ASGIApp = router.app
        self._index: _Index | None = None

    def build(self) -> None:
        """Build the index now (and so every route's handler), not at the first request."""
        self._index = _Index(list(_walk(self.router)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._index is None:
                self.build()
            assert self._index is not None
            path = get_route_path(scope)
            for leaf in self._index.candidates(path):
                target = leaf.target
                if target is None:
                    break  # not a FastAPI route: the walk decides
                found = target.pattern.match(path)
                if found is None or (target.methods and scope["method"] not in target.methods):
                    continue
                await self._dispatch(leaf.route, target, found, scope, receive, send)
                return
        await self.fallback(scope, receive, send)

    async def _dispatch(
        self,
        route: BaseRoute,
        target: _Target,
        found: re.Match[str],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        path_params = dict(scope.get("path_params", {}))
        for name, value in found.groupdict().items():
            path_params[name] = target.convertors[name].convert(value)
        scope.setdefault("router", self.router)
        for limits in target.form_limits:
            fastapi_routing._apply_router_form_limits(scope, limits)
        scope["endpoint"] = target.endpoint
        scope["path_params"] = path_params
        scope["route"] = route
        if target.context is not None:
            fastapi_scope = scope.setdefault(_FASTAPI, {})
            fastapi_scope[_INCLUDED_ROUTER] = target.branch
            fastapi_scope[_ROUTE_CONTEXT] = target.context
        await target.app(scope, receive, send)


def _walk(router: APIRouter) -> Iterator[_Leaf]:
    """The router's routes in the order FastAPI's walk tries them."""
    order = 0
    top = (router.form_limits,) if router.form_limits else ()

    def included(branch: Any, limits: tuple[_FormLimits, ...]) -> Iterator[_Leaf]:
        nonlocal order
        own = branch.include_context.form_limits
        limits = (*limits, own) if own else limits
        for candidate in branch.effective_candidates():
            if isinstance(candidate, _Branch):
                yield from included(candidate, limits)
                continue
            order += 1
            route = candidate.original_route
            if isinstance(route, APIRoute):
                target = _Target(
                    candidate.path_regex,
                    candidate.param_convertors,
                    frozenset(candidate.methods) if candidate.methods else None,
                    candidate.endpoint,
                    candidate.app,
                    context=candidate,
                    branch=branch,
                    form_limits=limits,
                )
                yield _Leaf(order, route, candidate.path_format, target)
            else:
                other = candidate.starlette_route or route
                yield _Leaf(order, other, str(getattr(other, "path", "")), None)

    for route in router.routes:
        if isinstance(route, _Branch):
            yield from included(route, top)
            continue
        order += 1
        if isinstance(route, APIRoute):
            methods = frozenset(route.methods) if route.methods else None
            target = _Target(
                route.path_regex,
                route.param_convertors,
                methods,
                route.endpoint,
                route.app,
                form_limits=top,
            )
            yield _Leaf(order, route, route.path_format, target)
        else:
            yield _Leaf(order, route, str(getattr(route, "path", "")), None)


def _literal_key(template: str) -> Key:
    """The literal segments a path template starts with, at most ``DEPTH`` of them."""
    key: list[str] = []
    for segment in template.split("/")[1 : DEPTH + 1]:
        if "{" in segment:
            break
        key.append(segment)
    return tuple(key)
