"""What an authenticated ``/v1`` request costs before its handler: CPU per request, in process.

    python -m bench.prehandler --database-url postgresql://postgres@127.0.0.1:5432/fundline_x
    python -m bench.prehandler --manifest bench/results/seed-100000.json --path /v1/financing_offers

Builds the app as ``fundline serve`` does (production mode, a random secret key, in-memory rate
limiting on with its limits raised, metrics on, log level WARNING, ``gc.freeze()``), runs its
lifespan (so the token cache listens, as in production), and calls it through its ASGI
interface, no sockets, one request at a time, after ``--warmup`` untimed ones. CPU is
``time.process_time()`` over a round of calls, divided by their number (so it includes the
driver's work on this side of the socket, not PostgreSQL's); ``--requests`` are split in
``--rounds`` and each figure is the least of its rounds (other work on the machine only adds).

The same app is measured with its middleware stack cut down, innermost layer first, down to
the routes alone with the caller put into the request by a stand-in for authentication that
costs nothing (what ``AuthenticationMiddleware`` would have found): the difference between the
full stack and the routes alone is the pre-handler cost, and the steps between the variants
are each layer's share ("in the stack"). Those steps are small differences of large figures,
so each layer is also measured on its own ("alone"), around a route that answers at once.
Every variant must answer the same status, or the run stops. The rounds interleave the
variants, so a change in the machine's load falls on all of them.

The default path, ``GET /v1/entities/{entity_id}`` (the tenant's own entity, read by id), is
the cheapest authenticated ``/v1`` GET: one row by primary key. Requests carry what partners
send: bearer token, ``x-monite-version`` and ``x-monite-entity-id``. Without ``--manifest``
the tenant is made here (a partner, its token and an entity, in the database given, migrated
first); with one, a hot entity of the seeded book and its partner's client.

``--profile`` prints cProfile's top functions for the full stack; ``--fastapi-handlers`` serves
every route with FastAPI's own handler instead of its plan (``fundline.kit.handlers``), for the
difference the plans make. Not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import pstats
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.serving import production_settings
from fundline.app import create_app, shutdown
from fundline.auth.middleware import AuthenticationMiddleware
from fundline.auth.service import Caller, create_partner, resolve_token
from fundline.kit import handlers
from fundline.operations.migrations import upgrade_sync

VERSION = "2024-05-25"
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/fundline_bench_prehandler"
BENCH_PARTNER = "bench.prehandler"

ORGANIZATION = {
    "type": "organization",
    "email": "finance@prehandler.example",
    "address": {
        "line1": "100 Congress Ave",
        "city": "Austin",
        "state": "TX",
        "postal_code": "78701",
        "country": "US",
    },
    "organization": {"legal_name": "Pre-handler Bench LLC"},
    "tax_id": "12-3456789",
}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


async def call(
    app: ASGIApp, method: str, path: str, headers: Sequence[tuple[bytes, bytes]], body: bytes = b""
) -> Answer:
    """One request through the app's ASGI interface, as uvicorn would hand it over."""
    path, _, query = path.partition("?")
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # as a server does: nothing until the client leaves
        raise AssertionError("unreachable")

    status, out_headers, chunks = 0, [], []

    async def send(message: Message) -> None:
        nonlocal status, out_headers
        if message["type"] == "http.response.start":
            status, out_headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return Answer(status, out_headers, b"".join(chunks))


@dataclass(frozen=True)
class Tenant:
    token: str
    entity_id: str

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"bench.prehandler"),
            (b"accept", b"*/*"),
            (b"authorization", f"Bearer {self.token}".encode()),
            (b"x-monite-version", VERSION.encode()),
            (b"x-monite-entity-id", self.entity_id.encode()),
        ]


async def token_of(app: FastAPI, client_id: str, secret: str) -> str:
    body = {"client_id": client_id, "client_secret": secret, "grant_type": "client_credentials"}
    answer = await call(
        app,
        "POST",
        "/v1/auth/token",
        [(b"content-type", b"application/json"), (b"x-monite-version", VERSION.encode())],
        json.dumps(body).encode(),
    )
    if answer.status != 200:
        raise SystemExit(f"POST /v1/auth/token answered {answer.status}: {answer.body!r}")
    return str(json.loads(answer.body)["access_token"])


async def new_tenant(app: FastAPI) -> Tenant:
    """A partner, its token and one entity, made through the service and the API."""
    async with app.state.db.session() as session, session.begin():
        created = await create_partner(session, name=BENCH_PARTNER)
    token = await token_of(app, str(created.client_id), created.client_secret)
    headers = [
        (b"content-type", b"application/json"),
        (b"x-monite-version", VERSION.encode()),
        (b"authorization", f"Bearer {token}".encode()),
    ]
    answer = await call(app, "POST", "/v1/entities", headers, json.dumps(ORGANIZATION).encode())
    if answer.status != 201:
        raise SystemExit(f"POST /v1/entities answered {answer.status}: {answer.body!r}")
    return Tenant(token, str(json.loads(answer.body)["id"]))


async def manifest_tenant(app: FastAPI, manifest: dict[str, Any]) -> Tenant:
    hot = manifest["hot_entities"][0]
    client_id = next(
        p["client_id"] for p in manifest["partners"] if p["partner_id"] == hot["partner_id"]
    )
    token = await token_of(app, client_id, manifest["client_secret"])
    return Tenant(token, hot["entity_id"])


class KnownCaller:
    """Stands in for ``AuthenticationMiddleware`` in the variants without it: puts in the
    request what it would have found for the bench's token, without looking anything up."""

    def __init__(self, app: ASGIApp, *, caller: Caller, entity_id: uuid.UUID) -> None:
        self.app = app
        self.caller = caller
        self.entity_id = entity_id
        self.client_id = str(caller.client_id)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["fundline.caller"] = self.caller
        scope["fundline.client_id"] = self.client_id
        scope["fundline.partner_entity"] = self.entity_id
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Variant:
    name: str  # the layer this variant adds to the previous one
    stack: ASGIApp  # what the app runs as its middleware stack in this variant


def variants(app: FastAPI, caller: Caller, entity_id: uuid.UUID) -> list[Variant]:
    """The app with its middleware from none to all, innermost added first. Starlette's own
    error middleware and the routes are in every variant."""
    full: list[Middleware] = list(app.user_middleware)  # outermost first
    known = Middleware(KnownCaller, caller=caller, entity_id=entity_id)
    found: list[Variant] = []
    for depth in range(len(full) + 1):
        layers = full[len(full) - depth :]
        has_auth = any(_layer_name(m) == AuthenticationMiddleware.__name__ for m in layers)
        app.user_middleware = layers if has_auth else [known, *layers]
        name = "routes and handler" if depth == 0 else _layer_name(layers[0])
        found.append(Variant(name, app.build_middleware_stack()))
    app.user_middleware = full
    return found


async def _answered(scope: Scope, receive: Receive, send: Send) -> None:
    """A route that answers at once, for a layer measured on its own."""
    scope["route"] = _AnsweredRoute
    await send({"type": "http.response.start", "status": 200, "headers": _JSON})
    await send({"type": "http.response.body", "body": b"{}"})


class _AnsweredRoute:
    path = "/entities/{entity_id}"


_JSON = [(b"content-type", b"application/json"), (b"content-length", b"2")]


def alone(app: FastAPI, caller: Caller, entity_id: uuid.UUID) -> list[Variant]:
    """Each layer on its own around a route that answers at once (the rate limit behind the
    stand-in for authentication, which it needs), and that route alone first."""
    found = [Variant("answered", KnownCaller(_answered, caller=caller, entity_id=entity_id))]
    for middleware in app.user_middleware:
        cls: Any = middleware.cls
        layer = cls(_answered, *middleware.args, **middleware.kwargs)
        if _layer_name(middleware) != AuthenticationMiddleware.__name__:
            layer = KnownCaller(layer, caller=caller, entity_id=entity_id)
        found.append(Variant(_layer_name(middleware), layer))
    return found


async def cpu_alone(
    stack: ASGIApp, path: str, headers: Sequence[tuple[bytes, bytes]], requests: int
) -> float:
    started = time.process_time()
    for _ in range(requests):
        if (await call(stack, "GET", path, headers)).status != 200:
            raise SystemExit(f"a layer alone refused GET {path}")
    return (time.process_time() - started) / requests


def _layer_name(middleware: Middleware) -> str:
    cls: Any = middleware.cls
    return str(cls.__name__)


async def cpu_per_request(
    app: FastAPI, path: str, headers: Sequence[tuple[bytes, bytes]], requests: int, expect: int
) -> float:
    """CPU seconds per call of ``stack`` on ``path``."""
    started = time.process_time()
    for _ in range(requests):
        answer = await call(app, "GET", path, headers)
        if answer.status != expect:
            raise SystemExit(f"GET {path} answered {answer.status}: {answer.body[:300]!r}")
    return (time.process_time() - started) / requests


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    manifest = json.loads(args.manifest.read_text()) if args.manifest else None
    database_url = manifest["database_url"] if manifest else args.database_url
    if manifest is None:
        await ensure_database(database_url)
        upgrade_sync(production_settings(database_url).database_url)
    if args.fastapi_handlers:
        # Every route on FastAPI's own handler, as before kit/handlers planned them.
        handlers._planned_handler = lambda route, fastapi_handler: None
    app = create_app(production_settings(database_url))
    gc.freeze()
    async with app.router.lifespan_context(app):
        tenant = await (manifest_tenant(app, manifest) if manifest else new_tenant(app))
        path = args.path.replace("{entity_id}", tenant.entity_id)
        headers = tenant.headers()
        found = await resolve_token(
            app.state.db, app.state.tokens, tenant.token, entity_id=uuid.UUID(tenant.entity_id)
        )
        assert not isinstance(found, str), found
        caller, _ = found
        stacks = variants(app, caller, uuid.UUID(tenant.entity_id))
        first = await call(app, "GET", path, headers)
        for variant in stacks:
            app.middleware_stack = variant.stack
            await cpu_per_request(app, path, headers, args.warmup, first.status)
        # Rounds interleave the variants, so a change in the machine's load falls on all.
        samples: dict[str, list[float]] = {v.name: [] for v in stacks}
        per_round = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):
            for variant in stacks:
                app.middleware_stack = variant.stack
                cost = await cpu_per_request(app, path, headers, per_round, first.status)
                samples[variant.name].append(cost)
        singles = alone(app, caller, uuid.UUID(tenant.entity_id))
        single: dict[str, list[float]] = {v.name: [] for v in singles}
        for _ in range(args.rounds):
            for variant in singles:
                single[variant.name].append(
                    await cpu_alone(variant.stack, path, headers, per_round)
                )
        if args.profile:
            app.middleware_stack = stacks[-1].stack
            await profile(app, path, headers, per_round, first.status, args.profile)
        await shutdown(app)
    # The least disturbed round of each variant: other work on the machine only ever adds CPU
    # (caches, a collection), so the minimum is the steadiest figure.
    best = {name: min(values) for name, values in samples.items()}
    names = list(best)
    layers = [
        {"layer": names[i], "ms": (best[names[i]] - best[names[i - 1]]) * 1000}
        for i in range(1, len(names))
    ]
    full_ms, bare_ms = best[names[-1]] * 1000, best[names[0]] * 1000
    answered = min(single.pop("answered"))
    each = [{"layer": name, "ms": (min(v) - answered) * 1000} for name, v in single.items()]
    return {
        "path": args.path,
        "status": first.status,
        "requests": per_round * args.rounds,
        "rounds": args.rounds,
        "full_ms": full_ms,
        "bare_ms": bare_ms,
        "prehandler_ms": full_ms - bare_ms,
        "layers": layers[::-1],  # outermost first, as a request meets them
        "alone": each,  # outermost first too
    }


async def profile(
    app: FastAPI,
    path: str,
    headers: Sequence[tuple[bytes, bytes]],
    requests: int,
    expect: int,
    sort: str,
) -> None:
    """cProfile's top functions (by own time) over ``requests`` calls of ``app``."""
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    await cpu_per_request(app, path, headers, requests, expect)
    profiler.disable()
    pstats.Stats(profiler).sort_stats(sort).print_stats(45)


async def ensure_database(database_url: str) -> None:
    base, _, name = database_url.rpartition("/")
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def report(result: dict[str, Any]) -> str:
    lines = [
        f"GET {result['path']} → {result['status']}, {result['requests']:,} requests in "
        f"{result['rounds']} rounds (the least of the rounds), CPU ms per request:",
        f"  full app (as fundline serve builds it)  {result['full_ms']:.3f}",
        f"  routes and handler alone                {result['bare_ms']:.3f}",
        f"  pre-handler cost                        {result['prehandler_ms']:.3f}",
    ]
    alone = {layer["layer"]: layer["ms"] for layer in result["alone"]}
    lines.append(f"    {'layer':<36}{'in the stack':>12}{'alone':>8}")
    lines += [
        f"    {layer['layer']:<36}{layer['ms']:>12.3f}{alone[layer['layer']]:>8.3f}"
        for layer in result["layers"]
    ]
    lines.append(f"    {'sum':<36}{result['prehandler_ms']:>12.3f}{sum(alone.values()):>8.3f}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.prehandler", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--database-url", default=DEFAULT_DATABASE, help="created and migrated if missing"
    )
    parser.add_argument("--manifest", type=Path, help="a seeded book's (bench/seed.py)")
    parser.add_argument("--path", default="/v1/entities/{entity_id}", help="a GET to measure")
    parser.add_argument("--requests", type=int, default=20_000, help="timed, per variant")
    parser.add_argument("--rounds", type=int, default=20, help="the requests split in rounds")
    parser.add_argument("--warmup", type=int, default=500, help="untimed, per variant")
    parser.add_argument(
        "--profile",
        metavar="SORT",
        help="cProfile the full stack, its functions sorted by SORT (tottime, cumulative)",
    )
    parser.add_argument(
        "--fastapi-handlers",
        action="store_true",
        help="serve every route with FastAPI's own handler instead of its plan (kit/handlers)",
    )
    parser.add_argument("--json", type=Path, help="write the figures there too")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn's standard extra installs it
        result = asyncio.run(measure(args))
    else:
        result = uvloop.run(measure(args))
    print(report(result))  # noqa: T201
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
