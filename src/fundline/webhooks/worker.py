"""The delivery worker: from the outbox to the receivers, at least once.

Each round, in its own short transactions: write down the attempts that finished, fan out new
events (``fanout``), claim due deliveries (``queue.claim``). Claimed deliveries are sent by
tasks of their own, at most ``concurrency`` at once and ``per_subscription`` for any one
subscription, so a slow receiver holds its own slots and nobody else's. Rounds follow one
another while there is work, and otherwise wait for an attempt to finish or for the poll
interval.

``fundline serve`` runs one inside the server (the embedded default); ``fundline worker``
processes run one each, on any number of hosts on PostgreSQL. Stopping one (SIGTERM, Ctrl-C)
stops its claiming, lets its attempts finish for a grace period, writes down what they got and
releases the rest; a worker killed outright leaves leases that run out (``lease_seconds``),
after which another worker sends those deliveries again: same event, same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from fundline.config import Settings
from fundline.kit import clock
from fundline.kit.db import Database, unavailable
from fundline.webhooks import fanout, metrics, queue, schedule, signing
from fundline.webhooks.addresses import Resolver, parse_allow_list
from fundline.webhooks.queue import Claimed
from fundline.webhooks.sender import Answer, Sender

log = structlog.get_logger("fundline.webhooks")

DEPTH_EVERY_SECONDS = 5.0
# Reads the business clock back from where other processes move it (the sandbox clock).
ClockSync = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Limits:
    concurrency: int = 32
    per_subscription: int = 4
    lease_seconds: float = 60.0
    poll_seconds: float = 0.25
    grace_seconds: float = 20.0

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            concurrency=settings.webhook_concurrency,
            per_subscription=settings.webhook_concurrency_per_subscription,
            lease_seconds=settings.webhook_lease_seconds,
            poll_seconds=settings.webhook_poll_seconds,
            grace_seconds=settings.webhook_timeout_seconds + 5.0,
        )


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        sender: Sender,
        limits: Limits = Limits(),
        *,
        now: Callable[[], datetime] = clock.now,
        real_now: Callable[[], datetime] = clock.system_now,
        jitter: schedule.Jitter = schedule.random_jitter,
        sync_clock: ClockSync | None = None,
    ) -> None:
        """``now`` is business time (when a delivery is due), ``real_now`` real time (leases,
        signatures, ``Retry-After`` dates)."""
        self.db = db
        self.sender = sender
        self.limits = limits
        self._now = now
        self._real_now = real_now
        self._jitter = jitter
        self._sync_clock = sync_clock
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._held: dict[uuid.UUID, Claimed] = {}
        self._busy: Counter[uuid.UUID] = Counter()
        self._done: list[tuple[Claimed, Answer]] = []
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._depth_at = 0.0
        self.attempts = 0  # attempts written down

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self) -> None:
        """Rounds until ``stop``; then the shutdown: finish, write down, release."""
        try:
            outage = 0  # rounds failed in a row because the database could not be reached
            while not self._stopping.is_set():
                await self._observe_depth()
                try:
                    worked = await self.round()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # keep going: the next round may succeed
                    worked = False
                    if unavailable(exc):
                        if outage == 0:
                            log.warning("webhook_worker_database_unavailable", error=str(exc))
                        outage += 1
                    else:
                        log.error("webhook_round_failed", exc_info=exc)
                else:
                    if outage:
                        log.info("webhook_worker_database_back", rounds_missed=outage)
                    outage = 0
                if not worked:
                    # While the database is away, look less often (up to every 5 s).
                    wait = self.limits.poll_seconds * 2 ** min(outage, 5)
                    await self._pause(min(wait, max(self.limits.poll_seconds, 5.0)))
        finally:
            await self._shut_down()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def round(self) -> bool:
        """One round; whether it did anything (wrote results, fanned out or claimed)."""
        self._wake.clear()  # an attempt finishing from here on wakes the next pause
        if self._sync_clock is not None:
            await self._sync_clock()  # the sandbox clock, moved perhaps by another process
        wrote = await self._write_down()
        now = self._now()
        if not wrote and not self._tasks:
            async with self.db.driver_reads() as conn:
                if not await queue.work_waiting(conn, now):
                    return False
        async with self.db.session() as session, session.begin():
            fanned = await fanout.fan_out(session)
        free = self.limits.concurrency - len(self._tasks)
        claims: list[Claimed] = []
        if free > 0 and not self._stopping.is_set():
            async with self.db.session() as session, session.begin():
                claims = await queue.claim(
                    session,
                    now=self._now(),
                    real_now=self._real_now(),
                    lease=timedelta(seconds=self.limits.lease_seconds),
                    limit=free,
                    busy=self._busy,
                    per_subscription=self.limits.per_subscription,
                )
        for claimed in claims:
            self._start(claimed)
        return bool(wrote or fanned or claims)

    async def run_until_idle(self) -> None:
        """Rounds until nothing is due and nothing is in flight (tests and ``--once``)."""
        while True:
            worked = await self.round()
            if self._tasks:
                await asyncio.wait(list(self._tasks.values()), return_when=asyncio.FIRST_COMPLETED)
            elif not worked and not self._done:
                return

    def _start(self, claimed: Claimed) -> None:
        self._held[claimed.id] = claimed
        self._busy[claimed.subscription_id] += 1
        self._tasks[claimed.id] = asyncio.create_task(self._attempt(claimed))

    async def _attempt(self, claimed: Claimed) -> None:
        try:
            headers = signing.signature_headers(
                claimed.secret, event_id=claimed.event_id, body=claimed.body, at=self._real_now()
            )
            answer = await self.sender.post(claimed.url, body=claimed.body, headers=headers)
        except Exception as exc:  # a bug in sending must not lose the delivery: retry it
            log.error("webhook_attempt_failed", delivery_id=str(claimed.id), exc_info=exc)
            answer = Answer(None, error="the attempt failed inside Fundline")
        self._done.append((claimed, answer))
        self._finish(claimed)
        self._wake.set()

    def _finish(self, claimed: Claimed) -> None:
        self._tasks.pop(claimed.id, None)
        self._busy[claimed.subscription_id] -= 1
        if self._busy[claimed.subscription_id] <= 0:
            del self._busy[claimed.subscription_id]

    async def _write_down(self) -> int:
        """Record the finished attempts, in one transaction; how many.

        Recording one locks its subscription (the failure streak): in subscription order, the
        same in every worker, so two workers' batches wait for each other and never deadlock.
        """
        if not self._done:
            return 0
        done, self._done = self._done, []
        done.sort(key=lambda item: (item[0].subscription_id, item[0].id))
        outcomes: list[queue.Outcome] = []
        try:
            async with self.db.session() as session, session.begin():
                for claimed, answer in done:
                    outcome = await queue.record(
                        session,
                        claimed,
                        answer,
                        now=self._now(),
                        real_now=self._real_now(),
                        jitter=self._jitter,
                    )
                    outcomes.append(outcome)
        except BaseException:
            self._done[:0] = done  # not written: try again next round
            raise
        self.attempts += len(done)
        for (claimed, answer), outcome in zip(done, outcomes, strict=True):
            self._held.pop(claimed.id, None)
            metrics.WEBHOOK_DELIVERIES.labels(outcome.value).inc()
            if outcome is not queue.Outcome.SUCCEEDED:
                log.info(
                    "webhook_attempt",
                    delivery_id=str(claimed.id),
                    event_id=str(claimed.event_id),
                    outcome=outcome.value,
                    status_code=answer.status_code,
                    error=answer.error,
                )
        return len(done)

    async def _observe_depth(self) -> None:
        """The queue's gauges, read every few seconds."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._depth_at < DEPTH_EVERY_SECONDS:
            return
        self._depth_at = loop.time()
        with contextlib.suppress(Exception):  # a metric is not worth a failed round
            async with self.db.read_session() as session:
                found = await queue.depth(session, self._now())
            metrics.WEBHOOK_OUTBOX.set(found.outbox)
            metrics.WEBHOOK_PENDING.set(found.pending)
            metrics.WEBHOOK_OLDEST_PENDING.set(found.oldest_pending_seconds)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _shut_down(self) -> None:
        """Let attempts in flight finish for the grace period, write down what they got and
        give back what is left."""
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=self.limits.grace_seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._write_down()
        unfinished = list(self._held)
        if unfinished:
            with contextlib.suppress(Exception):
                async with self.db.session() as session, session.begin():
                    await queue.release(session, unfinished)
            log.info("webhook_claims_released", count=len(unfinished))
        self._held.clear()


def sender_for(settings: Settings, resolve: Resolver | None = None) -> Sender:
    return Sender(
        allow=parse_allow_list(settings.webhook_allow_private),
        max_connections=settings.webhook_concurrency,
        timeout_seconds=settings.webhook_timeout_seconds,
        resolve=resolve,
    )


@contextlib.asynccontextmanager
async def running(
    db: Database, settings: Settings, *, sync_clock: ClockSync | None = None
) -> AsyncIterator[DeliveryWorker]:
    """A delivery worker for the duration of the block; stopped gracefully at its end.
    ``sync_clock`` reads the shared sandbox clock back each round (``operations.worker``
    passes it in sandbox mode)."""
    async with sender_for(settings) as sender:
        worker = DeliveryWorker(db, sender, Limits.of(settings), sync_clock=sync_clock)
        task = asyncio.create_task(worker.run())
        try:
            yield worker
        finally:
            worker.stop()
            await task
            if worker.attempts:  # what this process sent, in all (a worker among several)
                log.info("webhook_worker_stopped", attempts=worker.attempts)


async def deliver_due(
    db: Database, settings: Settings, *, sync_clock: ClockSync | None = None
) -> int:
    """Send what is due until nothing is (``fundline worker --once``); the attempts made."""
    async with sender_for(settings) as sender:
        worker = DeliveryWorker(db, sender, Limits.of(settings), sync_clock=sync_clock)
        await worker.run_until_idle()
        return worker.attempts
