"""A partner's day, open loop: each request sent at its scheduled time, answered or not, and
timed from then (``bench/mix.py`` runs it step by step)."""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.client import Client, TransportError
from bench.mix_partners import MixEntity, MixPartner

RATE_PER_PARTNER = 30.0  # Monite's rate limit per partner: requests a second

# One partner's 20 requests, sent 1/30 s apart and then again (each cycle on the partner's
# next entity). Shares: financing invoice reads 40 %, offers 10 %, counterparts created 5 %,
# receivables created 10 % and issued 10 %, receivable reads 10 %, financing requested 5 %,
# Connect 10 % (the session exchange and the confirmation).
CYCLE = (
    "counterpart.create",
    "financing.list",
    "receivable.create_a",
    "offers.read",
    "financing.list_100",
    "receivable.issue_a",
    "financing.get",
    "receivable.create_b",
    "financing.list",
    "receivable.list",
    "receivable.issue_b",
    "financing.list",
    "offers.read",
    "financing.request",
    "financing.get",
    "connect.session",
    "financing.list_100",
    "receivable.get",
    "connect.confirm",
    "financing.list",
)


# --- recording --------------------------------------------------------------------------------


@dataclass
class Record:
    """What one step measured: requests scheduled in its measured window."""

    latencies: list[float] = field(default_factory=list)  # seconds from the scheduled start
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)  # "kind status" or "kind transport"
    skipped: int = 0  # not sent: a request it depended on had failed
    error_samples: list[str] = field(default_factory=list)

    def add(self, kind: str, latency: float, error: str | None) -> None:
        self.by_kind.setdefault(kind, []).append(latency)
        self.latencies.append(latency)
        if error is not None:
            self.errors[f"{kind} {error.split(':')[0]}"] += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(f"{kind}: {error}")

    def summary(self, seconds: float) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        pick = functools.partial(_quantile_ms, ordered)

        return {
            "requests": len(ordered),
            "achieved_rps": round(len(ordered) / seconds, 1),
            "p50_ms": round(pick(0.50), 1),
            "p90_ms": round(pick(0.90), 1),
            "p99_ms": round(pick(0.99), 1),
            "max_ms": round(1000 * ordered[-1], 1) if ordered else 0,
            "errors": sum(self.errors.values()),
            "errors_by_kind": dict(self.errors),
            "error_samples": self.error_samples,
            "skipped": self.skipped,
            "by_kind": {
                kind: {
                    "requests": len(values),
                    "p50_ms": round(_quantile_ms(sorted(values), 0.5), 1),
                    "p99_ms": round(_quantile_ms(sorted(values), 0.99), 1),
                }
                for kind, values in sorted(self.by_kind.items())
            },
        }


def _quantile_ms(ordered: Sequence[float], q: float) -> float:
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class Failed(Exception):
    """A request of a chain failed: what depends on it is not sent."""


class Clock:
    """Scheduled times on the event loop's clock; ``measuring`` from ``start`` to ``end``."""

    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end


# --- the partner day ---------------------------------------------------------------------------


class Day:
    """Plays the partners' cycles against ``client`` and records what ``clock`` measures."""

    def __init__(self, client: Client, record: Record, clock: Clock) -> None:
        self.client = client
        self.record = record
        self.clock = clock
        self.pending: set[asyncio.Task[None]] = set()
        self._counterpart = orjson.dumps(
            {
                "type": "organization",
                "organization": {
                    "legal_name": "Globex Corp",
                    "is_customer": True,
                    "is_vendor": False,
                    "email": "ap@globex.example",
                    "address": {
                        "line1": "100 Congress Ave",
                        "city": "Austin",
                        "state": "TX",
                        "postal_code": "78701",
                        "country": "US",
                    },
                },
            }
        )

    def spawn(
        self, kind: str, at: float, work: Callable[[], Awaitable[Any]]
    ) -> asyncio.Future[Any]:
        """Run ``work`` (which waits for what it needs, then sends) as of ``at``, the request's
        scheduled start; its result, or ``Failed``, is the returned future's."""
        result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def run() -> None:
            try:
                value = await work()
            except Failed:
                result.set_exception(Failed())
                if at >= self.clock.start:
                    self.record.skipped += 1
                return
            except (TransportError, RequestFailed) as exc:
                result.set_exception(Failed())
                self._note(kind, at, str(exc))
                return
            except Exception as exc:  # a fault of the generator's: shown, and never a pass
                result.set_exception(Failed())
                self._note(kind, at, f"generator fault: {exc!r}")
                return
            result.set_result(value)
            self._note(kind, at, None)

        task = asyncio.get_running_loop().create_task(run())
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        result.add_done_callback(_quiet)
        return result

    def _note(self, kind: str, at: float, error: str | None) -> None:
        if self.clock.start <= at < self.clock.end:
            latency = asyncio.get_running_loop().time() - at
            self.record.add(kind, latency, error)

    async def call(
        self, method: str, path: str, headers: bytes, body: Any = None, expect: int = 200
    ) -> Any:
        data = body if isinstance(body, bytes) else b"" if body is None else orjson.dumps(body)
        status, answer = await self.client.request(method, path, headers, data)
        if status != expect:
            raise RequestFailed(f"{status}: {method} {path} {answer[:200]!r}")
        # Reads are not parsed: a page of 100 invoices costs the generator more than its send.
        return orjson.loads(answer) if answer and method != "GET" else None

    async def partner(self, partner: MixPartner, phase: float, rng: random.Random) -> None:
        """The partner's requests, one every 1/30 s from ``phase`` on, until the clock ends."""
        loop = asyncio.get_running_loop()
        interval = 1 / RATE_PER_PARTNER
        n = 0
        cycle = 0
        while True:
            entity = partner.entities[cycle % len(partner.entities)]
            futures: dict[str, asyncio.Future[Any]] = {}
            steps = self._steps(partner, entity, futures, rng)
            for kind in CYCLE:
                at = phase + n * interval
                if at >= self.clock.end:
                    return
                delay = at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                futures[kind] = self.spawn(kind, at, steps[kind])
                n += 1
            cycle += 1

    def _steps(
        self,
        partner: MixPartner,
        entity: MixEntity,
        done: dict[str, asyncio.Future[Any]],
        rng: random.Random,
    ) -> dict[str, Callable[[], Awaitable[Any]]]:
        """What each kind of request of one cycle does, given its earlier requests ``done``."""
        h = entity.headers

        async def needs(name: str) -> Any:
            return await done[name]  # raises Failed when it failed

        async def counterpart() -> Any:
            return await self.call("POST", "/v1/counterparts", h, self._counterpart, 201)

        def create(cp: str) -> Callable[[], Awaitable[Any]]:
            async def run() -> Any:
                made = await needs(cp)
                body = _invoice(made["id"], made["default_billing_address_id"], rng)
                return await self.call("POST", "/v1/receivables", h, body, 201)

            return run

        def issue(created: str) -> Callable[[], Awaitable[Any]]:
            async def run() -> Any:
                invoice = await needs(created)
                return await self.call("POST", f"/v1/receivables/{invoice['id']}/issue", h)

            return run

        async def request() -> Any:
            a, b = await needs("receivable.issue_a"), await needs("receivable.issue_b")
            body = {"invoices": [{"id": i["id"], "type": "receivable"} for i in (a, b)]}
            return await self.call("POST", "/v1/financing_invoices", h, body, 201)

        async def session() -> Any:
            tokens = await needs("financing.request")
            body = {"token": tokens["session_token"]}
            return await self.call(
                "POST", "/connect/v1/sessions", partner.connect_headers, body, 201
            )

        async def confirm() -> Any:
            opened = await needs("connect.session")
            a, b = await needs("receivable.issue_a"), await needs("receivable.issue_b")
            headers = partner.connect_headers + b"Authorization: Bearer %s\r\n" % (
                opened["access_token"].encode()
            )
            items = [{"invoice_id": i["id"], "pricing_plan_id": entity.plan_id} for i in (a, b)]
            answer = await self.call(
                "POST", "/connect/v1/invoices/confirm", headers, {"invoices": items}
            )
            entity.financed[:] = [a["id"], b["id"]]
            return answer

        async def financing_get() -> Any:
            # One invoice's financing, as a partner shows it: by the receivable's id.
            query = f"?invoice_id={entity.financed[0]}" if entity.financed else "?limit=10"
            return await self.call("GET", f"/v1/financing_invoices{query}", h)

        async def receivable_get() -> Any:
            invoice = await needs("receivable.create_a")
            return await self.call("GET", f"/v1/receivables/{invoice['id']}", h)

        def get(path: str) -> Callable[[], Awaitable[Any]]:
            async def run() -> Any:
                return await self.call("GET", path, h)

            return run

        steps: dict[str, Callable[[], Awaitable[Any]]] = {
            "counterpart.create": counterpart,
            "receivable.create_a": create("counterpart.create"),
            "receivable.create_b": create("counterpart.create"),
            "receivable.issue_a": issue("receivable.create_a"),
            "receivable.issue_b": issue("receivable.create_b"),
            "financing.request": request,
            "connect.session": session,
            "connect.confirm": confirm,
            "financing.get": financing_get,
            "receivable.get": receivable_get,
            "financing.list": get("/v1/financing_invoices?limit=10"),
            "financing.list_100": get("/v1/financing_invoices?limit=100"),
            "offers.read": get("/v1/financing_offers"),
            "receivable.list": get("/v1/receivables?limit=10"),
        }
        return steps


class RequestFailed(Exception):
    """The server answered something other than the expected status."""


def _quiet(future: asyncio.Future[Any]) -> None:
    """Nobody may wait for a failed request's future: read its exception so asyncio does not
    warn about it."""
    if not future.cancelled():
        future.exception()


def _invoice(counterpart_id: str, address_id: str, rng: random.Random) -> dict[str, Any]:
    """A draft invoice of one untaxed line, due in 30 days (eligible for financing)."""
    amount = rng.randrange(50_000, 500_000, 100)
    return {
        "type": "invoice",
        "counterpart_id": counterpart_id,
        "counterpart_billing_address_id": address_id,
        "currency": "USD",
        "line_items": [
            {
                "quantity": 1,
                "product": {
                    "name": "Consulting",
                    "price": {"currency": "USD", "value": amount},
                    "measure_unit": {"name": "unit"},
                },
                "tax_rate_value": 0,
            }
        ],
        "payment_terms": {"name": "Net 30", "term_final": {"number_of_days": 30}},
        "memo": "Thank you for your business",
    }


# --- a step ------------------------------------------------------------------------------------


async def play_step(
    port: int, partners: Sequence[MixPartner], *, warmup: float, duration: float, seed: int
) -> tuple[Record, float, float]:
    """Play ``partners`` for ``warmup`` + ``duration`` s; the record of the measured part, the
    generator's CPU seconds during it, and its wall seconds."""
    client = Client("127.0.0.1", port, max_connections=1024)
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    begin = loop.time() + 0.2
    clock = Clock(begin + warmup, begin + warmup + duration)
    record = Record()
    day = Day(client, record, clock)
    players = [
        loop.create_task(day.partner(p, begin + rng.random() / RATE_PER_PARTNER, rng))
        for p in partners
    ]
    await asyncio.sleep(max(0.0, clock.start - loop.time()))
    cpu_before = time.process_time()
    await asyncio.gather(*players)
    await drain(day, record, seconds=30)
    cpu = time.process_time() - cpu_before
    client.close()
    return record, cpu, duration


async def drain(day: Day, record: Record, *, seconds: float) -> None:
    """Wait for the requests still in flight; those not answered within ``seconds`` count as
    errors."""
    if day.pending:
        _, late = await asyncio.wait(set(day.pending), timeout=seconds)
        for task in late:
            task.cancel()
        if late:
            record.errors["unanswered"] += len(late)
