"""Rate limits with the ``limits`` library, and Monite's five headers: per API client on the
authenticated APIs, per address elsewhere, and on failed credentials per address.

In memory by default (one process); with ``FUNDLINE_REDIS_URL`` the window lives in Redis,
so the limit holds across every process and host (and falls back to the process's own windows
while Redis is away). A moving window: no burst at a boundary.

In memory the windows are ``LocalWindows``: ``limits``' own memory storages expire old hits
from a timer thread every 10 ms (the synchronous one) or hand work to a worker thread on every
request (the asyncio one), which costs more than the limit itself.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import redis.asyncio as redis
import structlog
from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond, WindowStats
from limits import strategies as sync_strategies
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import MemoryStorage
from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fundline.kit.headers import send_json
from fundline.kit.metrics import registry

log = structlog.get_logger("fundline.ratelimit")

REDIS_UP = Gauge(
    "fundline_rate_limit_redis_up",
    "1 while the rate-limit windows are in Redis; 0 while this process counts on its own "
    "because Redis cannot be reached, or when FUNDLINE_REDIS_URL is unset.",
    registry=registry,
)
FALLBACKS = Counter(
    "fundline_rate_limit_fallbacks_total",
    "Requests counted in this process's own windows because Redis could not be reached.",
    registry=registry,
)


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
    """The moving windows: in Redis when a URL is given, else in this process.

    When Redis cannot be reached the windows fall back to this process's own (each process
    then counts on its own) with a warning in the log and the ``fundline_rate_limit_redis_up``
    gauge at 0; Redis is tried again every ``RETRY_SECONDS`` and used again once it answers.
    A request never waits on Redis for more than ``REDIS_TIMEOUT_SECONDS``.
    """

    RETRY_SECONDS = 5.0
    REDIS_TIMEOUT_SECONDS = 0.5

    def __init__(self, redis_url: str | None, *, key_prefix: str = "fundline") -> None:
        self._pool: redis.ConnectionPool | None = None
        self._limiter: MovingWindowRateLimiter | None = None
        self._memory = sync_strategies.MovingWindowRateLimiter(LocalWindows())
        self._retry_at = 0.0  # while Redis is down: when to try it again (time.monotonic)
        if redis_url:
            self._pool = redis.ConnectionPool.from_url(
                redis_url,
                socket_timeout=self.REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=self.REDIS_TIMEOUT_SECONDS,
            )
            scheme = "async+rediss://" if redis_url.startswith("rediss") else "async+redis://"
            storage = RedisStorage(
                scheme,
                implementation="redispy",
                key_prefix=key_prefix,
                connection_pool=self._pool,  # type: ignore[arg-type]  # passed on to redis-py
            )
            self._limiter = MovingWindowRateLimiter(storage)
            REDIS_UP.set(1)

    @property
    def shared(self) -> bool:
        """Whether the windows are in Redis right now (not fallen back)."""
        return self._limiter is not None and self._retry_at == 0.0

    async def hit(self, item: RateLimitItem, key: str) -> tuple[bool, WindowStats]:
        """Count one request against ``key``'s window: whether it may pass, and the window."""
        if self._limiter is not None and time.monotonic() >= self._retry_at:
            try:
                allowed = await self._limiter.hit(item, key)
                stats = await self._limiter.get_window_stats(item, key)
            except (redis.RedisError, OSError, TimeoutError) as exc:
                self._fall_back(exc)
            else:
                self._back()
                return allowed, stats
        if self._limiter is not None:
            FALLBACKS.inc()
        return self._memory.hit(item, key), self._memory.get_window_stats(item, key)

    async def test(self, item: RateLimitItem, key: str) -> bool:
        """Whether ``key``'s window has room left, without counting a hit."""
        if self._limiter is not None and time.monotonic() >= self._retry_at:
            try:
                room = await self._limiter.test(item, key)
            except (redis.RedisError, OSError, TimeoutError) as exc:
                self._fall_back(exc)
            else:
                self._back()
                return room
        return self._memory.test(item, key)

    def _fall_back(self, exc: BaseException) -> None:
        if self._retry_at == 0.0:
            log.warning(
                "rate_limit_redis_unavailable",
                error=f"{type(exc).__name__}: {exc}",
                fallback="this process's own windows",
                retry_seconds=self.RETRY_SECONDS,
            )
            REDIS_UP.set(0)
        self._retry_at = time.monotonic() + self.RETRY_SECONDS

    def _back(self) -> None:
        if self._retry_at != 0.0:
            self._retry_at = 0.0
            REDIS_UP.set(1)
            log.info("rate_limit_redis_back")

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


@dataclass(frozen=True)
class Rule:
    """A limit on the paths under ``prefix`` (or that path alone, ``exact``), keyed per API
    client once authentication named one (``per_client``), else per client address.

    With ``failures_per_minute``, credential failures (401 and 403 answers) are counted per
    address too, and an address past that many in a minute gets 429 until the minute moves
    on, before its credentials are even checked: guessing keys is slow whatever the
    per-second limit allows.
    """

    name: str
    prefix: str
    per_second: int
    exact: bool = False
    per_client: bool = False
    failures_per_minute: int | None = None

    def matches(self, path: str) -> bool:
        if self.exact:
            return path == self.prefix
        return path == self.prefix or path.startswith(self.prefix + "/")

    @cached_property
    def item(self) -> RateLimitItemPerSecond:
        return RateLimitItemPerSecond(self.per_second)

    @cached_property
    def failures(self) -> RateLimitItemPerMinute | None:
        if self.failures_per_minute is None:
            return None
        return RateLimitItemPerMinute(self.failures_per_minute)


class RateLimitMiddleware:
    """Limits requests by the first of ``rules`` whose path matches (others pass freely), and
    sends Monite's rate-limit headers with every answer it limits."""

    def __init__(self, app: ASGIApp, *, store: LimitStore, rules: Sequence[Rule]) -> None:
        self.app = app
        self.store = store
        self.rules = tuple(rules)

    def _rule(self, path: str) -> Rule | None:
        for rule in self.rules:
            if rule.matches(path):
                return rule
        return None

    @staticmethod
    def _ip(scope: Scope) -> str:
        # The peer address only: a client can write any X-Forwarded-For it likes. Behind a
        # proxy, uvicorn rewrites the peer from that header for the proxies it trusts
        # (FORWARDED_ALLOW_IPS), before this runs.
        client = scope.get("client")
        return str(client[0]) if client else "unknown"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = self._rule(scope["path"]) if scope["type"] == "http" else None
        if rule is None:
            await self.app(scope, receive, send)
            return
        ip = self._ip(scope)
        client = scope.get("fundline.client_id") if rule.per_client else None
        key = f"{rule.name}:client:{client}" if client else f"{rule.name}:ip:{ip}"
        failures_key = f"{rule.name}:failures:{ip}"
        if rule.failures is not None and not await self.store.test(rule.failures, failures_key):
            await send_json(
                send,
                429,
                {"message": "Too many failed attempts: try again in a minute"},
                {"retry-after": "60"},
            )
            return
        allowed, stats = await self.store.hit(rule.item, key)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        limit_headers = {
            "ratelimit-limit": str(rule.item.amount),
            "ratelimit-remaining": str(stats.remaining),
            "ratelimit-reset": str(reset),
            "x-ratelimit-limit-second": str(rule.item.amount),
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
        failed = False

        async def send_with_headers(message: Message) -> None:
            nonlocal failed
            if message["type"] == "http.response.start":
                failed = message["status"] in (401, 403)
                # Headers no endpoint sets, so appended rather than replaced.
                message["headers"] = [*message.get("headers", ()), *raw]
            await send(message)

        await self.app(scope, receive, send_with_headers)
        if failed and rule.failures is not None:
            await self.store.hit(rule.failures, failures_key)
