"""Per-client rate limits with the ``limits`` library, and Monite's five headers.

In memory by default (one process); with ``FUNDLINE_REDIS_URL`` the window lives in Redis,
so the limit holds across every process and host. A moving window: no burst at a boundary.

In memory the windows are ``LocalWindows``: ``limits``' own memory storages expire old hits
from a timer thread every 10 ms (the synchronous one) or hand work to a worker thread on every
request (the asyncio one), which costs more than the limit itself.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

import redis.asyncio as redis
from limits import RateLimitItem, RateLimitItemPerSecond, WindowStats
from limits import strategies as sync_strategies
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import MemoryStorage
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fundline.kit.headers import send_json


class LocalWindows(MemoryStorage):
    """Moving windows of one process for ``limits``' strategy: each key's hits in a queue,
    oldest first, trimmed when the key is next used (no timer, no thread)."""

    MAX_KEYS = 10_000  # idle keys are dropped when there are more

    def __init__(self) -> None:
        super().__init__()
        self.windows: dict[str, deque[float]] = {}

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        now = time.time()
        window = self._window(key, now - expiry)
        if len(window) + amount > limit:
            return False
        window.extend([now] * amount)
        return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        window = self._window(key, now - expiry)
        return (window[0] if window else now), len(window)

    def _window(self, key: str, cutoff: float) -> deque[float]:
        window = self.windows.get(key)
        if window is None:
            if len(self.windows) >= self.MAX_KEYS:
                self.windows = {k: w for k, w in self.windows.items() if w and w[-1] > cutoff}
            window = self.windows[key] = deque()
        while window and window[0] <= cutoff:
            window.popleft()
        return window


class LimitStore:
    """The moving windows, and the Redis pool behind them (closed on shutdown)."""

    def __init__(self, redis_url: str | None, *, key_prefix: str = "fundline") -> None:
        self._pool: redis.ConnectionPool | None = None
        self._limiter: MovingWindowRateLimiter | None = None
        self._memory: sync_strategies.MovingWindowRateLimiter | None = None
        if redis_url:
            self._pool = redis.ConnectionPool.from_url(redis_url)
            scheme = "async+rediss://" if redis_url.startswith("rediss") else "async+redis://"
            storage = RedisStorage(
                scheme,
                implementation="redispy",
                key_prefix=key_prefix,
                connection_pool=self._pool,  # type: ignore[arg-type]  # passed on to redis-py
            )
            self._limiter = MovingWindowRateLimiter(storage)
        else:
            self._memory = sync_strategies.MovingWindowRateLimiter(LocalWindows())

    async def hit(self, item: RateLimitItem, key: str) -> tuple[bool, WindowStats]:
        """Count one request against ``key``'s window: whether it may pass, and the window."""
        if self._memory is not None:
            return self._memory.hit(item, key), self._memory.get_window_stats(item, key)
        assert self._limiter is not None
        allowed = await self._limiter.hit(item, key)
        return allowed, await self._limiter.get_window_stats(item, key)

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
        store: LimitStore,
        per_second: int,
        auth_per_second: int,
        applies: Callable[[str], bool],
        auth_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.store = store
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
        allowed, stats = await self.store.hit(item, key)
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

        raw = [(name.encode(), value.encode()) for name, value in limit_headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Headers no endpoint sets, so appended rather than replaced.
                message["headers"] = [*message.get("headers", ()), *raw]
            await send(message)

        await self.app(scope, receive, send_with_headers)
