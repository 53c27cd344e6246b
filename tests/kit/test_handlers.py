"""Every route is served by its plan (``kit.handlers.PlannedRoute``), and a plan answers as
FastAPI's own handler would. A twin app on the same database serves every route with FastAPI's
handler; each operation of the OpenAPI document is sent the same requests on both (callers
with and without credentials or entity, bad queries, bodies that are not JSON, not objects,
empty or of the wrong type), and both must answer alike."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated, Any, Literal

import httpx
import pytest
from fastapi import (
    APIRouter,
    BackgroundTasks,
    Body,
    Cookie,
    Depends,
    FastAPI,
    Header,
    Query,
    Request,
    Response,
    Security,
)
from fastapi.routing import APIRoute
from fastapi.security import SecurityScopes
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from fundline.app import create_app, shutdown
from fundline.kit import handlers
from tests.support.apps import VERSION, make_settings
from tests.support.factories import Tenant, make_tenant

UNKNOWN_ID = "7d5a7c55-0000-4000-8000-000000000000"
# Operations whose answer holds the time it was given.
TIMED = {"/sandbox/v1/clock"}
BODIES: list[tuple[bytes | None, str | None]] = [
    (None, None),
    (b"{", "application/json"),
    (b"[]", "application/json"),
    (b"{}", "application/json"),
    (b'{"amount": "ten", "id": 3}', "application/json"),
    (b"{}", "text/plain"),
    (b'{"a": 1}', None),
]


@pytest.fixture
def sqlite_only(database_url: str) -> None:
    """The plan is the same on both databases; the twin runs once, on SQLite."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the handler is independent of the database; its SQLite run is the other id")


@pytest.fixture
def planned_routes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Each route built while the fixture is active, and whether its plan serves it."""
    built: list[tuple[str, bool]] = []
    plan_of = handlers._planned_handler

    def spy(route: Any, fastapi_handler: handlers.Handler) -> handlers.Handler | None:
        planned = plan_of(route, fastapi_handler)
        built.append((f"{sorted(route.methods)} {route.path}", planned is not None))
        return planned

    monkeypatch.setattr(handlers, "_planned_handler", spy)
    return built


@pytest.fixture
async def twin(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FastAPI]:
    """The app again, on the test's database, with every route on FastAPI's own handler."""
    monkeypatch.setattr(handlers, "_planned_handler", lambda route, fastapi_handler: None)
    created = create_app(make_settings(database_url))
    created.openapi()  # builds every route's handler while the patch holds
    monkeypatch.undo()
    yield created
    await shutdown(created)


def _plain_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fl.test")


def _operations(app: FastAPI) -> list[tuple[str, str, bool]]:
    """(method, path, takes a body) for every documented operation."""
    return [
        (method.upper(), path, "requestBody" in operation)
        for path, methods in app.openapi()["paths"].items()
        for method, operation in methods.items()
    ]


def _filled(path: str, value: str) -> str:
    while "{" in path:
        start = path.index("{")
        path = path[:start] + value + path[path.index("}", start) + 1 :]
    return path


def _same(first: httpx.Response, second: httpx.Response, label: str) -> None:
    assert first.status_code == second.status_code, label
    assert first.headers.get("content-type") == second.headers.get("content-type"), label
    if first.headers.get("content-type") != "application/json":
        return  # pages and metrics: their figures and tokens differ from one request to the next
    timed = first.request.url.path in TIMED and first.status_code < 400
    if (first.status_code >= 400 or first.request.method == "GET") and not timed:
        assert first.content == second.content, label
    else:  # what was made differs (ids, tokens, times); its shape may not
        assert sorted(first.json()) == sorted(second.json()), label


@pytest.mark.usefixtures("sqlite_only")
async def test_every_route_is_planned(
    planned_routes: list[tuple[str, bool]], database_url: str
) -> None:
    app = create_app(make_settings(database_url))
    try:
        app.openapi()
        async with _plain_client(app) as client:
            await client.get("/no/such/path")  # matching it builds every route, documented or not
    finally:
        await shutdown(app)
    assert len(planned_routes) > 100, "the app's routes were not built with PlannedRoute"
    assert [route for route, planned in planned_routes if not planned] == []


@pytest.mark.usefixtures("sqlite_only")
async def test_every_operation_is_answered_alike(
    app: FastAPI, client: httpx.AsyncClient, twin: FastAPI
) -> None:
    mine: Tenant = await make_tenant(app, client, name="Planned")
    theirs: Tenant = await make_tenant(app, client, name="Other")
    full = {**mine.headers, "x-monite-version": VERSION}
    callers: list[dict[str, str]] = [
        {},
        {"authorization": "Bearer nope", "x-monite-version": VERSION},
        {**mine.auth, "x-monite-version": VERSION},
        full,
        {**full, "x-monite-version": "1999-01-01"},
        {**full, "x-monite-entity-id": "not-a-uuid"},
        {**full, "x-monite-entity-id": theirs.entity_id},
        {**full, "x-monite-entity-id": str(uuid.UUID(UNKNOWN_ID))},
    ]
    queries = [
        "",
        "?limit=ten&order=sideways&sort=nothing&foo=1",
        "?limit=1&status__in=NOPE",
        "?status__in=PAID&status__in=FUNDED&type__in=receivable&id__in=1",
    ]
    async with _plain_client(app) as planned, _plain_client(twin) as solved:
        compared = 0
        for method, template, takes_body in _operations(app):
            path = _filled(template, UNKNOWN_ID)
            cases: list[tuple[dict[str, str], str, bytes | None, str | None]] = [
                (headers, path, None, None) for headers in callers
            ]
            cases += [(full, path + query, None, None) for query in queries[1:]]
            if takes_body:
                cases += [(full, path, body, kind) for body, kind in BODIES]
            if "{" in template:  # a bad path parameter, with a bad query and a bad body
                bad = _filled(template, "not-a-uuid") + queries[1]
                cases.append((full, bad, b"[]" if takes_body else None, "application/json"))
            for headers, path, body, kind in cases:
                sent = {**headers, **({"content-type": kind} if kind else {})}
                label = f"{method} {path} {sent} {body!r}"
                first = await planned.request(method, path, headers=sent, content=body)
                second = await solved.request(method, path, headers=sent, content=body)
                _same(first, second, label)
                compared += 1
    assert compared > 1000


# A route set that uses what Fundline's routes do not, or not at one level: every parameter
# source at once, a model of query parameters with aliases and lists, sync, cached and
# generator dependencies, the sub-response, background tasks, security scopes, several bodies.


class Filters(BaseModel):
    status__in: list[Literal["a", "b"]] | None = None
    limit: int = Field(10, ge=1, le=100)
    named: str | None = Field(None, alias="the-name")


class Strict(BaseModel):
    """Extra keys refused, and a member with two names (the first preferred)."""

    model_config = ConfigDict(extra="forbid")
    member: str | None = Field(None, validation_alias=AliasChoices("first", "second"))
    limit: int = 10


class Item(BaseModel):
    name: str
    price: Decimal
    tags: list[str] = []
    note: str | None = None


calls: list[str] = []


def sync_dependency(x_trace: Annotated[str | None, Header()] = None) -> str:
    calls.append("sync")
    return x_trace or "none"


async def generator_dependency() -> AsyncIterator[str]:
    calls.append("enter")
    yield "resource"
    calls.append("exit")


async def cached(request: Request) -> str:
    calls.append("cached")
    return request.url.path


def scoped(security_scopes: SecurityScopes) -> list[str]:
    return security_scopes.scopes


def _synthetic(route_class: type[APIRoute]) -> FastAPI:
    app = FastAPI()
    router = APIRouter(route_class=route_class, prefix="/r")

    @router.get("/items/{item_id}", response_model=Item, response_model_exclude_none=True)
    async def read(
        item_id: uuid.UUID,
        response: Response,
        background: BackgroundTasks,
        q: Annotated[int, Query(ge=0)],
        tags: Annotated[list[str], Query()],
        x_token: Annotated[str, Header()],
        session_id: Annotated[int, Cookie()],
        trace: Annotated[str, Depends(sync_dependency)],
        resource: Annotated[str, Depends(generator_dependency)],
        first: Annotated[str, Depends(cached)],
        again: Annotated[str, Depends(cached)],
        fresh: Annotated[str, Depends(cached, use_cache=False)],
        scopes: Annotated[list[str], Security(scoped, scopes=["read"])],
    ) -> dict[str, Any]:
        response.headers["x-seen"] = f"{trace},{resource},{first},{again},{fresh},{scopes}"
        response.status_code = 203
        background.add_task(calls.append, "background")
        return {"name": str(item_id), "price": q, "tags": tags, "note": None}

    @router.get("/filtered")
    async def filtered(filters: Annotated[Filters, Query()]) -> Filters:
        return filters

    @router.get("/strict")
    async def strict(filters: Annotated[Strict, Query()]) -> Strict:
        return filters

    @router.post("/items", status_code=201)
    async def create(item: Item, count: Annotated[int, Body()]) -> list[Item]:
        return [item] * count

    @router.put("/items/{item_id}", status_code=204)
    async def replace(item_id: int, item: Item) -> None:
        return None

    @router.get("/plain")
    def plain(limit: int = 3) -> dict[str, int]:
        return {"limit": limit}

    app.include_router(router)
    return app


SYNTHETIC_ID = "7d5a7c55-0000-4000-8000-000000000001"
SYNTHETIC = [
    ("GET", f"/r/items/{SYNTHETIC_ID}?q=1&tags=a&tags=b", {"x-token": "t", "x-trace": "tr"}, None),
    ("GET", "/r/items/nope?q=-1", {}, None),
    ("GET", f"/r/items/{SYNTHETIC_ID}?q=x&tags=a", {"x-token": "t"}, None),
    ("GET", "/r/filtered?status__in=a&status__in=b&limit=5&the-name=n&extra=1", {}, None),
    ("GET", "/r/filtered?status__in=c&limit=0", {}, None),
    ("GET", "/r/filtered", {}, None),
    ("GET", "/r/strict?second=b&limit=2", {}, None),
    ("GET", "/r/strict?second=b&first=a", {}, None),
    ("GET", "/r/strict?first=a&first=c", {}, None),
    ("GET", "/r/strict?other=1&limit=3", {}, None),
    ("GET", "/r/strict?member=m", {}, None),
    ("GET", "/r/strict", {}, None),
    (
        "POST",
        "/r/items",
        {"content-type": "application/json"},
        b'{"item":{"name":"a","price":"1.5"},"count":2}',
    ),
    ("POST", "/r/items", {"content-type": "application/json"}, b'{"item":{"price":"x"}}'),
    ("POST", "/r/items", {"content-type": "application/json"}, b"{"),
    ("POST", "/r/items", {"content-type": "text/plain"}, b'{"count": 1}'),
    ("POST", "/r/items", {}, b'{"count": 1}'),
    ("POST", "/r/items", {"content-type": "application/vnd.x+json"}, b"[]"),
    ("PUT", "/r/items/3", {"content-type": "application/json"}, b'{"name":"a","price":1}'),
    ("PUT", "/r/items/x", {"content-type": "application/json"}, b""),
    ("GET", "/r/plain?limit=7", {}, None),
    ("GET", "/r/plain?limit=seven", {}, None),
]


@pytest.mark.parametrize(("method", "path", "headers", "body"), SYNTHETIC)
async def test_a_plan_answers_as_fastapi_does(
    method: str, path: str, headers: dict[str, str], body: bytes | None
) -> None:
    answers = []
    for route_class in (APIRoute, handlers.PlannedRoute):
        calls.clear()
        async with _plain_client(_synthetic(route_class)) as client:
            client.cookies.set("session_id", "12" if "nope" not in path else "x")
            response = await client.request(method, path, headers=headers, content=body)
        answers.append((response.status_code, response.headers.raw, response.content, list(calls)))
    assert answers[0] == answers[1]
