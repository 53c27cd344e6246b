"""The retry schedule: its waits, their jitter and a receiver's ``Retry-After``, as functions
and as the worker keeps them against a real receiver on a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from fundline.kit import clock
from fundline.kit.db import Database
from fundline.models.webhook import WebhookDeliveryStatus
from fundline.webhooks import schedule
from fundline.webhooks.schedule import MAX_RETRY_AFTER, next_attempt_at, parse_retry_after
from fundline.webhooks.worker import DeliveryWorker
from tests.support.factories import Tenant
from tests.support.receiver import Reply, always, by_path, receiving
from tests.support.webhooks import FakeClock, deliveries_of, delivery_of, record_event, subscribe

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
WAITS = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
]


def no_jitter() -> float:
    return 1.0


def test_eight_attempts_with_the_documented_waits() -> None:
    """After attempt k (1 to 7) the next is the k-th wait later; after the 8th there is none."""
    for made, wait in enumerate(WAITS, start=1):
        assert next_attempt_at(made, NOW, jitter=no_jitter) == NOW + wait
    assert next_attempt_at(8, NOW, jitter=no_jitter) is None
    assert schedule.MAX_ATTEMPTS == 8
    with pytest.raises(ValueError, match="at least one attempt"):
        next_attempt_at(0, NOW)


@pytest.mark.parametrize("factor", [0.8, 1.2])
def test_jitter_scales_the_wait(factor: float) -> None:
    """The jitter factor multiplies each wait (its bounds, 0.8 and 1.2, exactly)."""
    for made, wait in enumerate(WAITS, start=1):
        assert next_attempt_at(made, NOW, jitter=lambda: factor) == NOW + wait * factor


def test_random_jitter_stays_within_twenty_percent_and_spreads() -> None:
    """The real jitter stays within ±20 % and does spread the retries over that range."""
    factors = [schedule.random_jitter() for _ in range(2000)]
    assert all(0.8 <= f <= 1.2 for f in factors)
    assert min(factors) < 0.85
    assert max(factors) > 1.15


def test_retry_after_lengthens_a_wait_but_never_shortens_it() -> None:
    """A Retry-After longer than the wait replaces it (up to a day); a shorter one changes
    nothing."""
    first = timedelta(seconds=5)
    assert next_attempt_at(1, NOW, retry_after=timedelta(minutes=10), jitter=no_jitter) == (
        NOW + timedelta(minutes=10)
    )
    assert next_attempt_at(1, NOW, retry_after=timedelta(seconds=1), jitter=no_jitter) == (
        NOW + first
    )
    assert next_attempt_at(1, NOW, retry_after=timedelta(), jitter=no_jitter) == NOW + first
    # Up to a day, whatever the receiver asks.
    for made in (1, 7):
        asked = timedelta(days=3)
        assert next_attempt_at(made, NOW, retry_after=asked, jitter=no_jitter) == (
            NOW + MAX_RETRY_AFTER
        )
    # The last attempt stays the last.
    assert next_attempt_at(8, NOW, retry_after=timedelta(minutes=1)) is None


@pytest.mark.parametrize(
    ("value", "wait"),
    [
        ("120", timedelta(seconds=120)),
        (" 7 ", timedelta(seconds=7)),
        ("0", timedelta()),
        (format_datetime(NOW + timedelta(hours=1), usegmt=True), timedelta(hours=1)),
        ("Tue, 01 Dec 2026 10:00:30 +0000", timedelta(seconds=30)),
        (format_datetime(NOW - timedelta(hours=1), usegmt=True), timedelta()),  # past: no wait
        # More than any wait is capped (it used to overflow timedelta and raise).
        ("9" * 30, MAX_RETRY_AFTER),
    ],
)
def test_retry_after_in_seconds_or_as_an_http_date(value: str, wait: timedelta) -> None:
    """Retry-After is read as seconds or as an HTTP date (a past date: no wait)."""
    assert parse_retry_after(value, NOW) == wait


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "soon",
        "-5",
        "1.5",
        "Mon, 32 Jan 2026 00:00:00 GMT",
        "Tue, 01 Dec 2026 10:00:30 -0000",  # no zone: not an HTTP date
        "²",  # a digit to str.isdigit, not to int() (a latin-1 byte a receiver can send)
        "١٢",  # Arabic-Indic digits
    ],
)
def test_an_unreadable_retry_after_is_ignored(value: str | None) -> None:
    """What is neither ASCII seconds nor an HTTP date with a zone is no Retry-After."""
    assert parse_retry_after(value, NOW) is None


async def test_the_schedule_attempt_by_attempt(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    loopback: None,
    fake_clock: FakeClock,
    timed_worker: DeliveryWorker,
) -> None:
    """A receiver that always fails gets 8 attempts, each exactly its wait after the one
    before and not a microsecond earlier; then the delivery is failed, and stays in the log."""
    async with receiving(always(500)) as receiver:
        await subscribe(client, tenant, url=receiver.url)
        event = await record_event(db, tenant)
        attempted_at = fake_clock.now()
        await timed_worker.run_until_idle()
        assert len(receiver.received) == 1
        for made, wait in enumerate(WAITS, start=1):
            delivery = await delivery_of(db, event.id)
            assert delivery.status is WebhookDeliveryStatus.PENDING
            assert (delivery.requests_made_count, delivery.was_successful) == (made, False)
            assert delivery.lease_until is None
            assert delivery.next_attempt_at == attempted_at + wait, made
            fake_clock.at = delivery.next_attempt_at - timedelta(microseconds=1)
            await timed_worker.run_until_idle()
            assert len(receiver.received) == made, f"attempt {made + 1} was sent early"
            fake_clock.at = attempted_at = delivery.next_attempt_at
            await timed_worker.run_until_idle()
            assert len(receiver.received) == made + 1
        delivery = await delivery_of(db, event.id)
        assert delivery.status is WebhookDeliveryStatus.FAILED
        assert (delivery.requests_made_count, delivery.was_successful) == (8, False)
        fake_clock.advance(timedelta(days=30))
        await timed_worker.run_until_idle()
        assert len(receiver.received) == 8
    assert {r.event_id for r in receiver.received} == {str(event.id)}
    listed = await client.get("/v1/webhook_deliveries", headers=tenant.headers)
    assert listed.status_code == 200
    (shown,) = listed.json()["data"]
    assert shown["id"] == str(delivery.id)
    assert shown["event_id"] == str(event.id)
    assert shown["requests_made_count"] == 8
    assert shown["was_successful"] is False
    assert (shown["response_status_code"], shown["response"]) == (500, "ok")


# Retry-After in seconds, as a receiver sends it, and the first retry's wait that follows.
RETRY_AFTER_SECONDS = {
    "/longer": ("600", timedelta(minutes=10)),  # longer than 5 s: waited for
    "/shorter": ("1", timedelta(seconds=5)),  # shorter: the schedule's wait stands
    "/unreadable": ("soon", timedelta(seconds=5)),  # ignored
    "/latin-1": ("²", timedelta(seconds=5)),  # ignored (it used to stop the write-down)
    "/huge": ("9" * 30, MAX_RETRY_AFTER),  # capped at a day (it used to overflow)
}


async def test_a_receivers_retry_after_seconds(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    loopback: None,
    fake_clock: FakeClock,
    timed_worker: DeliveryWorker,
) -> None:
    """A 503 with ``Retry-After`` in seconds moves the retry out, never in; what is not a
    number of seconds is ignored."""
    answers = {
        path: always(503, **{"Retry-After": value})
        for path, (value, _) in RETRY_AFTER_SECONDS.items()
    }
    async with receiving(by_path(answers)) as receiver:
        for path in RETRY_AFTER_SECONDS:
            await subscribe(client, tenant, url=receiver.url_at(path))
        event = await record_event(db, tenant)
        await timed_worker.run_until_idle()
    assert len(receiver.received) == len(RETRY_AFTER_SECONDS)
    for delivery in await deliveries_of(db, event.id):
        path = "/" + delivery.url.rsplit("/", 1)[1]
        assert delivery.last_response_status_code == 503
        assert delivery.next_attempt_at == fake_clock.now() + RETRY_AFTER_SECONDS[path][1], path


async def test_a_receivers_retry_after_date(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    loopback: None,
    fake_clock: FakeClock,
    timed_worker: DeliveryWorker,
) -> None:
    """``Retry-After`` as an HTTP date counts from the real time (the receiver's clock): an
    hour ahead waits about an hour; a date in two seconds does not shorten the next, 5 min, wait."""
    answers = iter(
        [
            format_datetime(clock.system_now() + timedelta(hours=1), usegmt=True),
            format_datetime(clock.system_now() + timedelta(seconds=2), usegmt=True),
        ]
    )
    async with receiving(lambda _: Reply(503, {"Retry-After": next(answers)})) as receiver:
        await subscribe(client, tenant, url=receiver.url)
        event = await record_event(db, tenant)
        await timed_worker.run_until_idle()
        delivery = await delivery_of(db, event.id)
        waited = delivery.next_attempt_at - fake_clock.now()
        # An HTTP date has whole seconds; a little real time passed since it was made.
        assert timedelta(minutes=59, seconds=55) <= waited <= timedelta(hours=1)
        fake_clock.at = delivery.next_attempt_at
        await timed_worker.run_until_idle()
    assert len(receiver.received) == 2
    delivery = await delivery_of(db, event.id)
    assert delivery.next_attempt_at == fake_clock.now() + timedelta(minutes=5)
