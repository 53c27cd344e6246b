"""Per-client rate limits with the ``limits`` library, and Monite's five headers.

In memory by default (one process); with ``FUNDLINE_REDIS_URL`` the window lives in Redis,
so the limit holds across every process and host. A moving window: no burst at a boundary.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import redis.asyncio as redis
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fundline.kit.headers import send_json


class LimitStore:
    """The window storage, and the Redis pool behind it (closed on shutdown)."""

    def __init__(self, redis_url: str | None, *, key_prefix: str = "fundline") -> None:
        self._pool: redis.ConnectionPool | None = None
        if redis_url:
            self._pool = redis.ConnectionPool.from_url(redis_url)
            scheme = "async+rediss://" if redis_url.startswith("rediss") else "async+redis://"
            self.storage: Storage = RedisStorage(
                scheme,
                implementation="redispy",
                key_prefix=key_prefix,
                connection_pool=self._pool,  # type: ignore[arg-type]  # passed on to redis-py
            )
        else:
            self.storage = MemoryStorage()

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


class RateLimitMiddleware:
    """Limits requests on the paths ``applies`` accepts, keyed per API client (else per IP).

    Token requests are anonymous and brute-forceable, so they get a lower limit of their own.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        storage: Storage,
        per_second: int,
        auth_per_second: int,
        applies: Callable[[str], bool],
        auth_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        self.item = RateLimitItemPerSecond(per_second)
        self.auth_item = RateLimitItemPerSecond(auth_per_second)
        self.applies = applies
        self.auth_paths = auth_paths

    def _key(self, scope: Scope) -> tuple[str, RateLimitItemPerSecond]:
        if scope["path"] in self.auth_paths:
            return "token:" + self._ip(scope), self.auth_item
        client = scope.get("fundline.client_id")
        if client:
            return "client:" + str(client), self.item
        return "ip:" + self._ip(scope), self.item

    @staticmethod
    def _ip(scope: Scope) -> str:
        # The peer address only: a client can write any X-Forwarded-For it likes. Behind a
        # proxy, uvicorn rewrites the peer from that header for the proxies it trusts
        # (FORWARDED_ALLOW_IPS), before this runs.
        client = scope.get("client")
        return str(client[0]) if client else "unknown"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies(scope["path"]):
            await self.app(scope, receive, send)
            return
        key, item = self._key(scope)
        allowed = await self.limiter.hit(item, key)
        stats = await self.limiter.get_window_stats(item, key)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        limit_headers = {
            "ratelimit-limit": str(item.amount),
            "ratelimit-remaining": str(stats.remaining),
            "ratelimit-reset": str(reset),
            "x-ratelimit-limit-second": str(item.amount),
            "x-ratelimit-remaining-second": str(stats.remaining),
        }
        if not allowed:
            await send_json(
                send,
                429,
                {"message": "API rate limit exceeded"},
                {**limit_headers, "retry-after": str(max(1, reset))},
            )
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in limit_headers.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
