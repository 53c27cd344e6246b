"""The lock order (``fundline.lending.locks``) enforced on every request the test apps serve: a
row lock taken out of order raises ``LockOrderError`` (a 500, and the test fails) instead of
being logged. Setups that build rows straight through the services are not requests, and are
not held to it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Send

from fundline.lending import locks


def enforce(app: FastAPI) -> None:
    """Hold ``app``'s requests to the lock order (before its first request)."""
    app.add_middleware(_StrictLocks)


class _StrictLocks:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        token = locks.STRICT.set(True)
        try:
            await self.app(scope, receive, send)
        finally:
            locks.STRICT.reset(token)
