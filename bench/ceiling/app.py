"""The ceiling's ASGI application: a dictionary from method and path to a handler, the body
read whole, JSON bytes written back. No framework: routing and request objects are Python a
ceiling should not pay for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench.ceiling import auth, lists, offers, receivables, writes
from fundline.kit.db import SERVER_SETTINGS

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Answer = tuple[int, bytes]
Handler = Callable[["Call"], Awaitable[Answer]]
log = logging.getLogger("bench.ceiling")
ISSUE_PREFIX, ISSUE_SUFFIX = "/v1/receivables/", "/issue"


async def text_uuids(conn: asyncpg.Connection) -> None:
    """UUIDs to and from the driver as text, for the handlers that build ids and compare them
    with the request's (the lists keep the driver's binary UUIDs: faster to decode)."""
    await conn.set_type_codec("uuid", schema="pg_catalog", encoder=str, decoder=str, format="text")


async def _no_reset(_: asyncpg.Connection) -> None:
    return None


def _entity(headers: dict[bytes, bytes]) -> str:
    return headers[b"x-monite-entity-id"].decode()


def _bearer(headers: dict[bytes, bytes]) -> str:
    return headers[b"authorization"].decode().removeprefix("Bearer ").strip()


@dataclass(frozen=True, slots=True)
class Call:
    pool: asyncpg.Pool
    headers: dict[bytes, bytes]
    path: str
    query: bytes
    body: bytes


async def _list(c: Call) -> Answer:
    return 200, await lists.handle(c.pool, c.headers, c.query)


async def _offers(c: Call) -> Answer:
    return 200, await offers.handle(c.pool, c.headers)


async def _token(c: Call) -> Answer:
    return await auth.handle(c.pool, c.body)


async def _request(c: Call) -> Answer:
    return await writes.request_financing(c.pool, _entity(c.headers), c.body)


async def _confirm(c: Call) -> Answer:
    return await writes.confirm(c.pool, _bearer(c.headers), c.body)


async def _create(c: Call) -> Answer:
    return await receivables.create_receivable(c.pool, _entity(c.headers), c.body)


async def _issue(c: Call) -> Answer:
    receivable_id = c.path[len(ISSUE_PREFIX) : -len(ISSUE_SUFFIX)]
    return await receivables.issue_receivable(c.pool, _entity(c.headers), receivable_id)


async def _patiently(handler: Handler, call: Call) -> Answer:
    """The handler's answer, waiting while PostgreSQL has no connection to spare (its
    ``max_connections`` is shared with whatever else runs on the machine)."""
    for _ in range(100):
        try:
            return await handler(call)
        except asyncpg.TooManyConnectionsError:
            await asyncio.sleep(0.02)
    return 503, b'{"error":{"message":"PostgreSQL has no connection to spare"}}'


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/v1/financing_invoices"): _list,
    ("GET", "/v1/financing_offers"): _offers,
    ("POST", "/v1/auth/token"): _token,
    ("POST", "/v1/financing_invoices"): _request,
    ("POST", "/connect/v1/invoices/confirm"): _confirm,
    ("POST", "/v1/receivables"): _create,
}
# Handlers that take the driver's own UUIDs; the others get them as text.
BINARY = {_list}
JSON_HEADERS = [(b"content-type", b"application/json")]


def create_app(database_url: str, *, pool_size: int = 20) -> Callable[..., Awaitable[None]]:
    pools: dict[bool, asyncpg.Pool] = {}

    async def lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # As many connections as Fundline's pool keeps; idle ones close soon, so the
                # ceiling holds none while Fundline is measured (max_connections is shared),
                # nor those of one pool while the other serves. No reset query when a
                # connection goes back, as Fundline's hot-read pool.
                for text in (False, True):
                    pools[text] = await asyncpg.create_pool(
                        database_url,
                        min_size=0,
                        max_size=pool_size,
                        max_inactive_connection_lifetime=5,
                        reset=_no_reset,
                        init=text_uuids if text else None,
                        server_settings=SERVER_SETTINGS,  # Fundline's plans, so its work
                    )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for pool in pools.values():
                    await pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        handler = ROUTES.get((method, path))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        if handler is None and method == "POST" and path.startswith(ISSUE_PREFIX):
            if path.endswith(ISSUE_SUFFIX):
                handler = _issue
        if handler is None:
            status, out = 404, b'{"error":{"message":"not served by the ceiling"}}'
        else:
            call = Call(pools[handler not in BINARY], headers, path, scope["query_string"], body)
            status, out = await _patiently(handler, call)
            if status >= 400:  # the load scripts send nothing a server should refuse
                log.warning("%s %s answered %s: %s", method, path, status, out[:200])
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(out)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": out})

    return app
