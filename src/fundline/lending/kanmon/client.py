"""Kanmon's Public V2 API over HTTP: the operations the adapter uses, and how a call survives
a slow, failing or rate-limiting Kanmon.

Every method returns Kanmon's JSON object as a dict, or raises one of two errors:
``KanmonError`` for Kanmon's refusal (a 4xx other than 429; ``errors.to_fundline_error`` says
what a partner sees), or ``LenderUnavailable`` (a 503 with ``Retry-After``) when Kanmon could
not be reached or kept failing. No httpx exception escapes.

Resilience (the constants below; the budget, attempts and breaker are constructor options):

- **Budget.** A call, its retries and its waits included, ends within ``timeout`` seconds
  (``FUNDLINE_KANMON_TIMEOUT_SECONDS``). An attempt connects within ``CONNECT_TIMEOUT`` and
  runs under ``asyncio.timeout`` of what is left (httpx's own timeouts bound each network
  read, not the request). An attempt that may be repeated gets at most ``ATTEMPT_SHARE`` of
  the budget, so that a stalled one leaves time for another; one that may not gets all of it.
- **Retries.** Up to ``MAX_ATTEMPTS`` attempts, on 429, 500, 502, 503 and 504, timeouts,
  connect and network errors, for requests safe to repeat: GETs, and POSTs the caller marks
  ``safe`` (see each method). Another request is sent again only when it failed to connect,
  so never left Fundline (not after a 429 or 503 either: it reached Kanmon). The wait before
  attempt n+1 is exponential with full jitter: uniform in
  ``[0, min(MAX_BACKOFF, BASE_BACKOFF * 2**(n-1))]``.
- **Rate limits.** The wait is at least what Kanmon asks: ``Retry-After`` (delay-seconds or an
  HTTP date) on a 429 or 5xx; on a 429 without it, ``RateLimit-Reset`` then
  ``X-RateLimit-Reset``, read as seconds from now when at most ``EPOCH_THRESHOLD`` (the IETF
  draft's meaning) and as a Unix time in seconds when larger (GitHub's). Kanmon's spec
  documents none of these headers. A wait that would end past the budget is not waited: the
  call fails at once, its ``Retry-After`` the one Kanmon gave.
- **Circuit breaker**, one per client, shared by its calls. A call that ends in failure (5xx,
  429 after its retries, timeout, connect or network error, an unreadable answer; never a
  4xx, which proves Kanmon is up) counts one; ``FAILURE_THRESHOLD`` in a row open it for
  ``OPEN_SECONDS``, during which calls fail at once. Then one call is let through as a probe
  (half-open; the others still fail at once): its success closes the breaker, its failure
  opens it again. A success or a refusal resets the count.
"""

from __future__ import annotations

import asyncio
import math
import random as random_module
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Final, Literal
from urllib.parse import quote

import httpx
import structlog
from pydantic import SecretStr

from fundline.config import Settings
from fundline.kit import clock
from fundline.lending.kanmon import metrics
from fundline.lending.kanmon.errors import DEFAULT_RETRY_AFTER, KanmonError, LenderUnavailable

log = structlog.get_logger("fundline.kanmon")

MAX_ATTEMPTS: Final = 4
BASE_BACKOFF: Final = 0.2  # seconds
MAX_BACKOFF: Final = 2.0
CONNECT_TIMEOUT: Final = 3.0
ATTEMPT_SHARE: Final = 0.5
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
EPOCH_THRESHOLD: Final = 1_000_000_000  # 2001-09-09 as a Unix time; 31 years as a delay
MAX_SERVER_WAIT: Final = 86_400.0  # a header's wait counts as a day at most
FAILURE_THRESHOLD: Final = 5
OPEN_SECONDS: Final = 30.0
PAGE_SIZE: Final = 100  # Kanmon's largest

PREFIX: Final = "/api/platform/v2"
IdType = Literal["KANMON", "PLATFORM"]
Sleep = Callable[[float], Awaitable[None]]

_DELAY_SECONDS = re.compile(r"\d{1,12}(?:\.\d{1,6})?")


class BreakerState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


_BREAKER_LEVEL: Final = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class CircuitBreaker:
    """Counts calls that ended in failure, and fails calls at once while Kanmon is down."""

    def __init__(
        self,
        *,
        threshold: int = FAILURE_THRESHOLD,
        open_seconds: float = OPEN_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1 or open_seconds <= 0:
            raise ValueError("a breaker opens after at least one failure, for some time")
        self.threshold = threshold
        self.open_seconds = open_seconds
        self._monotonic = monotonic
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._probing or self._monotonic() - self._opened_at >= self.open_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def failures(self) -> int:
        """Calls failed in a row since Kanmon last answered."""
        return self._failures

    def retry_after(self) -> int:
        """Seconds until the breaker lets a probe through (1 while a probe is out)."""
        if self._opened_at is None or self._probing:
            return 1
        left = self.open_seconds - (self._monotonic() - self._opened_at)
        return max(1, math.ceil(left))

    def acquire(self) -> bool:
        """Lets a call through, or raises ``LenderUnavailable``; ``True`` when the call is the
        half-open probe (its caller must ``release`` it however it ends)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        if state is BreakerState.OPEN or self._probing:
            raise LenderUnavailable(retry_after=self.retry_after())
        self._probing = True
        return True

    def release(self) -> None:
        """The probe ended without an outcome (cancelled): the next call may probe."""
        self._probing = False

    def record_success(self) -> None:
        if self._opened_at is not None:
            log.info("kanmon.breaker_closed")
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def record_failure(self) -> None:
        if self._opened_at is not None and not self._probing:
            return  # a call begun before it opened does not keep it open longer
        self._failures += 1
        if self._probing or self._failures >= self.threshold:
            self._opened_at = self._monotonic()
            self._probing = False
            metrics.KANMON_BREAKER_OPENED.inc()
            log.warning(
                "kanmon.breaker_opened", failures=self._failures, open_seconds=self.open_seconds
            )

    def level(self) -> float:
        """The state as the ``fundline_kanmon_breaker_state`` gauge shows it."""
        return _BREAKER_LEVEL[self.state]


@dataclass(frozen=True, slots=True)
class _Failure:
    """An attempt that failed without Kanmon refusing the request."""

    reason: str  # the metrics' outcome
    sent: bool  # the request may have reached Kanmon
    retryable: bool = True
    wait: float | None = None  # seconds Kanmon asked us to wait


class _ApiKeyAuth(httpx.Auth):
    """Adds Kanmon's ``Authorization: ApiKey <key>`` to each request; the key stays a
    ``SecretStr`` everywhere else."""

    def __init__(self, key: SecretStr) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"ApiKey {self._key.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "_ApiKeyAuth(key=SecretStr('**********'))"


class KanmonClient:
    """One client per process: its breaker is shared by every call made through it."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr | str,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        failure_threshold: int = FAILURE_THRESHOLD,
        open_seconds: float = OPEN_SECONDS,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = clock.system_now,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        if not key.get_secret_value().strip():
            raise ValueError("Kanmon needs an API key")
        if timeout <= 0 or max_attempts < 1:
            raise ValueError("a call needs a positive budget and at least one attempt")
        self._key = key
        self._base_url = base_url.rstrip("/")
        self._budget = timeout
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._monotonic = monotonic
        self._now = now
        self._random = random
        self.breaker = CircuitBreaker(
            threshold=failure_threshold, open_seconds=open_seconds, monotonic=monotonic
        )
        watched = weakref.ref(self.breaker)
        metrics.KANMON_BREAKER_STATE.set_function(
            lambda: b.level() if (b := watched()) is not None else 0.0
        )
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            transport=transport,
            auth=_ApiKeyAuth(key),
            headers={"Accept": "application/json", "User-Agent": "fundline"},
            follow_redirects=False,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> KanmonClient:
        if settings.kanmon_api_key is None:
            raise ValueError("FUNDLINE_KANMON_API_KEY is not set")
        return cls(
            base_url=settings.kanmon_base_url,
            api_key=settings.kanmon_api_key,
            timeout=settings.kanmon_timeout_seconds,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"KanmonClient(base_url={self._base_url!r}, breaker={self.breaker.state.value!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> KanmonClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # Businesses and users. A repeated create answers 409 (``KanmonError.is_duplicate``) and
    # the adapter reads the existing one, so creates are safe to repeat by default.

    async def create_business(
        self, body: Mapping[str, Any], *, safe: bool = True
    ) -> dict[str, Any]:
        return await self.request(
            "POST", "/businesses", operation="createBusiness", json=body, safe=safe
        )

    async def get_businesses(
        self,
        *,
        ids: Sequence[str] | None = None,
        platform_business_ids: Sequence[str] | None = None,
        offset: int = 0,
        limit: int = PAGE_SIZE,
    ) -> dict[str, Any]:
        filters = {"ids": ids, "platformBusinessIds": platform_business_ids}
        return await self._page(
            "/businesses", "getAllBusinesses", "businesses", filters, offset, limit
        )

    async def get_business(self, id: str, *, id_type: IdType = "KANMON") -> dict[str, Any]:
        return await self._get_one("/businesses", id, "getBusiness", id_type)

    async def create_user(self, body: Mapping[str, Any], *, safe: bool = True) -> dict[str, Any]:
        return await self.request("POST", "/users", operation="createUser", json=body, safe=safe)

    async def get_users(
        self,
        *,
        ids: Sequence[str] | None = None,
        platform_user_ids: Sequence[str] | None = None,
        platform_business_ids: Sequence[str] | None = None,
        business_ids: Sequence[str] | None = None,
        offset: int = 0,
        limit: int = PAGE_SIZE,
    ) -> dict[str, Any]:
        filters = {
            "ids": ids,
            "platformUserIds": platform_user_ids,
            "platformBusinessIds": platform_business_ids,
            "businessIds": business_ids,
        }
        return await self._page("/users", "getAllUsers", "users", filters, offset, limit)

    async def get_user(self, id: str, *, id_type: IdType = "KANMON") -> dict[str, Any]:
        return await self._get_one("/users", id, "getUser", id_type)

    # Tokens. Each call only issues another token (a connect token is one-time use and
    # several may be live at once), so a repeat is harmless.

    async def create_connect_token(
        self, body: Mapping[str, Any], *, safe: bool = True
    ) -> dict[str, Any]:
        return await self.request(
            "POST", "/connect-tokens", operation="createConnectToken", json=body, safe=safe
        )

    async def create_embedded_session(
        self, body: Mapping[str, Any], *, safe: bool = True
    ) -> dict[str, Any]:
        return await self.request(
            "POST", "/embedded-session", operation="createEmbeddedSession", json=body, safe=safe
        )

    # Offers, issued products and invoices.

    async def get_offers(
        self,
        *,
        ids: Sequence[str] | None = None,
        platform_business_ids: Sequence[str] | None = None,
        business_ids: Sequence[str] | None = None,
        offset: int = 0,
        limit: int = PAGE_SIZE,
    ) -> dict[str, Any]:
        filters = {
            "ids": ids,
            "platformBusinessIds": platform_business_ids,
            "businessIds": business_ids,
        }
        return await self._page("/offers", "getAllOffers", "offers", filters, offset, limit)

    async def get_issued_products(
        self,
        *,
        ids: Sequence[str] | None = None,
        offer_ids: Sequence[str] | None = None,
        platform_business_ids: Sequence[str] | None = None,
        business_ids: Sequence[str] | None = None,
        offset: int = 0,
        limit: int = PAGE_SIZE,
    ) -> dict[str, Any]:
        filters = {
            "ids": ids,
            "offerIds": offer_ids,
            "platformBusinessIds": platform_business_ids,
            "businessIds": business_ids,
        }
        return await self._page(
            "/issued-products", "getAllIssuedProducts", "issuedProducts", filters, offset, limit
        )

    async def get_invoices(
        self,
        *,
        ids: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        platform_business_ids: Sequence[str] | None = None,
        business_ids: Sequence[str] | None = None,
        platform_invoice_ids: Sequence[str] | None = None,
        offset: int = 0,
        limit: int = PAGE_SIZE,
    ) -> dict[str, Any]:
        filters = {
            "ids": ids,
            "statuses": statuses,
            "platformBusinessIds": platform_business_ids,
            "businessIds": business_ids,
            "platformInvoiceIds": platform_invoice_ids,
        }
        return await self._page("/invoices", "getAllInvoices", "invoices", filters, offset, limit)

    async def get_all_invoices(self, **filters: Sequence[str] | None) -> list[dict[str, Any]]:
        """Every invoice matching ``get_invoices``' filters, page after page."""
        return await self.all_pages(self.get_invoices, "invoices", **filters)

    async def get_invoice(self, id: str, *, id_type: IdType = "KANMON") -> dict[str, Any]:
        return await self._get_one("/invoices", id, "getInvoice", id_type)

    async def all_pages(
        self,
        list_page: Callable[..., Awaitable[dict[str, Any]]],
        key: str,
        /,
        **filters: Any,
    ) -> list[dict[str, Any]]:
        """Reads every page of a listing (``offset``/``limit``, ``pagination.totalCount``).

        Each page is a call with its own budget. A record that moves between pages while they
        are read (Kanmon pages a live list) is kept once, by ``id``.
        """
        found: list[dict[str, Any]] = []
        seen: set[object] = set()
        offset = 0
        while True:
            page = await list_page(offset=offset, limit=PAGE_SIZE, **filters)
            items = page.get(key)
            pagination = page.get("pagination")
            if not isinstance(items, list) or not isinstance(pagination, dict):
                log.warning("kanmon.unreadable", listing=key, what="a page without its list")
                raise LenderUnavailable()
            for item in items:
                item_id = item.get("id") if isinstance(item, dict) else None
                if item_id is None or item_id not in seen:
                    seen.add(item_id)
                    found.append(item)
            offset += len(items)
            total = pagination.get("totalCount")
            if isinstance(total, int | float):
                done = not items or offset >= total
            else:  # without a total, a short page is the last
                done = len(items) < PAGE_SIZE
            if done:
                return found

    # The one way out.

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        safe: bool | None = None,
    ) -> dict[str, Any]:
        """One call to ``PREFIX + path``, within the budget, retried when ``safe`` (a GET
        unless told otherwise)."""
        repeatable = method == "GET" if safe is None else safe
        deadline = self._monotonic() + self._budget
        try:
            probe = self.breaker.acquire()
        except LenderUnavailable:
            metrics.KANMON_CALLS.labels(operation, "circuit_open").inc()
            raise
        try:
            return await self._attempts(
                method, PREFIX + path, operation, params, json, repeatable, deadline
            )
        finally:
            if probe:
                self.breaker.release()

    async def _attempts(
        self,
        method: str,
        url: str,
        operation: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        safe: bool,
        deadline: float,
    ) -> dict[str, Any]:
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = await self._attempt(method, url, operation, params, body, safe, deadline)
            except KanmonError:
                self.breaker.record_success()  # Kanmon is up: it answered
                metrics.KANMON_CALLS.labels(operation, "refused").inc()
                raise
            if not isinstance(outcome, _Failure):
                self.breaker.record_success()
                metrics.KANMON_CALLS.labels(operation, "ok").inc()
                return outcome
            wait = self._wait_before_retry(outcome, attempt, safe, deadline)
            if wait is None:
                raise self._give_up(operation, outcome, attempt)
            metrics.KANMON_RETRIES.labels(operation, outcome.reason).inc()
            await self._sleep(wait)

    async def _attempt(
        self,
        method: str,
        url: str,
        operation: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        safe: bool,
        deadline: float,
    ) -> dict[str, Any] | _Failure:
        remaining = deadline - self._monotonic()
        if remaining <= 0:
            return _Failure("timeout", sent=False, retryable=False)
        ceiling = min(remaining, self._budget * ATTEMPT_SHARE) if safe else remaining
        connect = min(CONNECT_TIMEOUT, ceiling)
        timeout = httpx.Timeout(ceiling, connect=connect, pool=connect)
        try:
            async with asyncio.timeout(ceiling):
                response = await self._http.request(
                    method, url, params=params, json=body, timeout=timeout
                )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            return _Failure("connect_error", sent=False)
        except (httpx.TimeoutException, TimeoutError):
            return _Failure("timeout", sent=True)
        except httpx.HTTPError:
            return _Failure("network_error", sent=True)
        return self._read(response, operation)

    def _read(self, response: httpx.Response, operation: str) -> dict[str, Any] | _Failure:
        status = response.status_code
        if 200 <= status < 300:
            try:
                data = response.json()
            except ValueError:
                data = None
            if isinstance(data, dict):
                return data
            return _Failure("invalid_response", sent=True, retryable=False)
        if status in RETRY_STATUSES:
            reason = "rate_limited" if status == 429 else "server_error"
            return _Failure(reason, sent=True, wait=self._server_wait(response))
        if 400 <= status < 500:
            raise self._refusal(response, operation)
        # 3xx (redirects are not followed: Kanmon's API has none) and other 5xx: not retried.
        reason = "server_error" if status >= 500 else "invalid_response"
        return _Failure(reason, sent=True, retryable=False)

    def _wait_before_retry(
        self, failure: _Failure, attempt: int, safe: bool, deadline: float
    ) -> float | None:
        """Seconds to wait before the next attempt; ``None`` to stop trying."""
        if not failure.retryable or attempt >= self._max_attempts:
            return None
        if failure.sent and not safe:
            return None
        if self.breaker.state is BreakerState.OPEN:
            return None  # other calls found Kanmon down meanwhile
        wait = self._random() * min(MAX_BACKOFF, BASE_BACKOFF * 2.0 ** (attempt - 1))
        if failure.wait is not None:
            wait = max(wait, failure.wait)
        if self._monotonic() + wait >= deadline:
            return None
        return wait

    def _give_up(self, operation: str, failure: _Failure, attempts: int) -> LenderUnavailable:
        self.breaker.record_failure()
        metrics.KANMON_CALLS.labels(operation, failure.reason).inc()
        retry_after = DEFAULT_RETRY_AFTER
        if failure.wait is not None:
            retry_after = math.ceil(failure.wait)
        if self.breaker.state is BreakerState.OPEN:
            retry_after = max(retry_after, self.breaker.retry_after())
        log.warning(
            "kanmon.unavailable",
            operation=operation,
            reason=failure.reason,
            attempts=attempts,
            retry_after=retry_after,
            breaker=self.breaker.state.value,
        )
        return LenderUnavailable(retry_after=retry_after)

    def _server_wait(self, response: httpx.Response) -> float | None:
        """Seconds Kanmon asked us to wait, from the first header that reads."""
        headers = response.headers
        wait = self._retry_after(headers.get("Retry-After"))
        if wait is None and response.status_code == 429:
            for name in ("RateLimit-Reset", "X-RateLimit-Reset"):
                wait = self._reset(headers.get(name))
                if wait is not None:
                    break
        return None if wait is None else min(wait, MAX_SERVER_WAIT)

    def _retry_after(self, value: str | None) -> float | None:
        if value is None:
            return None
        value = value.strip()
        if _DELAY_SECONDS.fullmatch(value):
            return float(value)
        try:
            at = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if at.tzinfo is None:  # "-0000": no zone given, while an HTTP date is GMT
            return None
        return max(0.0, (at - self._now()).total_seconds())

    def _reset(self, value: str | None) -> float | None:
        if value is None or not _DELAY_SECONDS.fullmatch(value.strip()):
            return None
        number = float(value)
        if number > EPOCH_THRESHOLD:
            return max(0.0, number - self._now().timestamp())
        return number

    def _refusal(self, response: httpx.Response, operation: str) -> KanmonError:
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("errorCode"), str):
            code, message = data["errorCode"], str(data.get("message", ""))
        else:
            # Not Kanmon's shape (a proxy's page, a wrong base URL): its text is not kept.
            kind = response.headers.get("content-type", "no content-type")
            code, message = "", f"an answer without Kanmon's error body ({kind})"
        message = self._redact(message)[:500]
        return KanmonError(response.status_code, code, message, operation=operation)

    def _redact(self, text: str) -> str:
        # Kanmon's messages are shown to operators; one echoing our header must not leak it.
        return text.replace(self._key.get_secret_value(), "**********")

    async def _get_one(
        self, collection: str, id: str, operation: str, id_type: IdType
    ) -> dict[str, Any]:
        params = {"idType": id_type} if id_type != "KANMON" else None
        path = f"{collection}/{quote(id, safe='')}"
        return await self.request("GET", path, operation=operation, params=params)

    async def _page(
        self,
        path: str,
        operation: str,
        key: str,
        filters: Mapping[str, Sequence[str] | None],
        offset: int,
        limit: int,
    ) -> dict[str, Any]:
        if not 1 <= limit <= PAGE_SIZE or offset < 0:
            raise ValueError(f"a page is 1 to {PAGE_SIZE} records from an offset of 0 or more")
        params = {"offset": str(offset), "limit": str(limit)}
        for name, values in filters.items():
            if values is None:
                continue
            if isinstance(values, str):
                raise TypeError(f"{name} is a list of ids, not one string")
            if not values:
                # Kanmon would read an empty filter as no filter at all: every record.
                pagination = {"offset": offset, "limit": limit, "totalCount": 0}
                return {key: [], "pagination": pagination}
            if any("," in value for value in values):
                raise ValueError(f"{name}: an id holds a comma, Kanmon's list separator")
            params[name] = ",".join(values)
        return await self.request("GET", path, operation=operation, params=params)
