"""The route index picks the route FastAPI's own matching picks, for every route of the app."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from starlette import convertors
from starlette.types import Receive, Scope, Send

from fundline.app import build_route_handlers, create_app
from fundline.config import Settings
from fundline.kit import dispatch
from fundline.kit.dispatch import RouteIndex
from tests.support.apps import make_settings

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
Seen = tuple[Any, ...]

SAMPLES: dict[type, str] = {
    convertors.UUIDConvertor: str(uuid.UUID(int=7)),
    convertors.IntegerConvertor: "7",
    convertors.FloatConvertor: "1.5",
    convertors.PathConvertor: "a/b.txt",
    convertors.StringConvertor: "abc",
}


def _sample(template: str, leaf_convertors: dict[str, Any]) -> str:
    def value(found: re.Match[str]) -> str:
        return SAMPLES[type(leaf_convertors[found.group(1)])]

    return re.sub(r"{(\w+)(?::\w+)?}", value, template)


def _recording_app(settings: Settings) -> tuple[FastAPI, RouteIndex, list[Seen]]:
    """The app with every route's handler replaced by one that records what the request's
    scope holds when it is called, and answers 200."""
    app = create_app(settings)
    build_route_handlers(app)
    seen: list[Seen] = []

    async def record(scope: Scope, receive: Receive, send: Send) -> None:
        fastapi_scope = scope.get("fastapi", {})
        seen.append(
            (
                scope["route"],
                scope["endpoint"],
                dict(scope["path_params"]),
                fastapi_scope.get(fastapi_routing._FASTAPI_INCLUDED_ROUTER_KEY),
                fastapi_scope.get(fastapi_routing._FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY),
            )
        )
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    index: RouteIndex = app.state.route_index
    for leaf in dispatch._walk(app.router):
        if leaf.target is None:
            continue
        if leaf.target.context is not None:
            leaf.target.context.app = record  # this app's own, not the shared router's route
        else:
            leaf.route.app = record  # type: ignore[attr-defined]
    index.build()  # again, with the recording handlers
    return app, index, seen


async def _call(app_part: Any, method: str, path: str) -> int:
    """The status ``app_part`` answers a bare request with."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"fundline.test")],
        "client": ("127.0.0.1", 1),
        "server": ("fundline.test", 80),
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app_part(scope, receive, send)
    return statuses[0]


@pytest.fixture(params=["sandbox", "production"])
def settings(request: pytest.FixtureRequest, tmp_path: Any) -> Settings:
    overrides: dict[str, Any] = {}
    if request.param == "production":  # no sandbox routes
        overrides = {"mode": "production", "secret_key": "k" * 40, "redis_url": None}
    return make_settings(f"sqlite+aiosqlite:///{tmp_path}/dispatch.db", **overrides)


async def test_the_index_picks_what_fastapis_matching_picks_for_every_route(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, index, seen = _recording_app(settings)
    walk = index.fallback
    walked: list[str] = []

    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        walked.append(scope["path"])
        await walk(scope, receive, send)

    monkeypatch.setattr(index, "fallback", counted)
    leaves = list(dispatch._walk(app.router))
    requests = {("GET", "/no/such/route"), ("GET", "/"), ("GET", ""), ("POST", "/v1")}
    for leaf in leaves:
        if leaf.target is None:
            continue
        path = _sample(leaf.template, leaf.target.convertors)
        for method in METHODS:
            requests |= {(method, path), (method, path + "/"), (method, path + "/extra")}
    assert len(leaves) > 90  # every route of the app, not a part of it
    indexed = 0
    for method, path in sorted(requests):
        seen.clear()
        walked.clear()
        by_index = await _call(index, method, path)
        chosen_by_index = list(seen)
        indexed += not walked
        seen.clear()
        by_fastapi = await _call(walk, method, path)
        chosen_by_fastapi = list(seen)
        assert (by_index, chosen_by_index) == (by_fastapi, chosen_by_fastapi), (method, path)
    # Each route's own request, at least, routed by the index alone.
    assert indexed >= sum(leaf.target is not None for leaf in leaves)


async def test_a_routed_request_does_not_take_fastapis_matching(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, index, seen = _recording_app(settings)

    async def walked(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("FastAPI's matching was asked")

    monkeypatch.setattr(index, "fallback", walked)
    for path in ("/v1/financing_offers", f"/v1/receivables/{uuid.uuid4()}/issue", "/health"):
        method = "POST" if path.endswith("issue") else "GET"
        assert await _call(index, method, path) == 200, path
    assert len(seen) == 3
    with pytest.raises(AssertionError, match="matching was asked"):
        await _call(index, "GET", "/no/such/route")


def test_the_index_refuses_a_router_with_middleware_of_its_own(tmp_path: Any) -> None:
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db"))
    app.router.middleware_stack = lambda *args: None  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="middleware of its own"):
        RouteIndex(app.router)
