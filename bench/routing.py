"""What finding a request's route costs: the route index against FastAPI's own matching.

    python -m bench.routing [--calls 3000]

Builds the app (sandbox mode, SQLite in memory: routing touches no database), replaces every
route's handler with one that answers 200 at once, and calls the app's router through its ASGI
interface, once through the index (``kit/dispatch.RouteIndex``) and once through FastAPI's
matching (the index's fallback), for a few paths partners and the widget use. CPU per call,
``time.process_time()``, the least of five rounds. Not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from starlette.types import ASGIApp, Receive, Scope, Send

from fundline.app import build_route_handlers, create_app
from fundline.config import Settings
from fundline.kit import dispatch
from fundline.kit.dispatch import RouteIndex

console = Console(highlight=False, soft_wrap=True)

REQUESTS = [
    ("GET", "/v1/financing_offers"),
    ("GET", "/v1/financing_invoices"),
    ("POST", "/v1/receivables"),
    ("POST", f"/v1/receivables/{uuid.UUID(int=1)}/issue"),
    ("POST", "/connect/v1/invoices/confirm"),
    ("GET", "/lender/v1/financing_invoices"),
]


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _ignore(message: Any) -> None:
    return None


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def index_with_bare_routes() -> RouteIndex:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", log_level="WARNING"))
    build_route_handlers(app)
    for leaf in dispatch._walk(app.router):
        if leaf.target is not None and leaf.target.context is not None:
            leaf.target.context.app = _answer
        elif leaf.target is not None:
            leaf.route.app = _answer  # type: ignore[attr-defined]
    index: RouteIndex = app.state.route_index
    index.build()
    return index


async def cpu_per_call(router: ASGIApp, method: str, path: str, calls: int) -> float:
    best = float("inf")
    for _ in range(5):
        began = time.process_time()
        for _ in range(calls):
            scope = {"type": "http", "method": method, "path": path, "root_path": ""}
            await router(scope, _receive, _ignore)
        best = min(best, (time.process_time() - began) / calls)
    return best


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.routing", description=__doc__)
    parser.add_argument("--calls", type=int, default=3000, help="per round, per request")
    args = parser.parse_args(argv)
    index = index_with_bare_routes()
    console.print(f"{'request':<64} {'FastAPI':>9} {'index':>9}  (µs of CPU per call)")
    for method, path in REQUESTS:
        walked = await cpu_per_call(index.fallback, method, path, args.calls)
        indexed = await cpu_per_call(index, method, path, args.calls)
        row = f"{method + ' ' + path:<64} {walked * 1e6:9.1f} {indexed * 1e6:9.1f}"
        console.print(row, markup=False)


if __name__ == "__main__":
    asyncio.run(main())
