"""Webhook delivery under faults, with real processes: a receiver down for a thousand events, a
server killed outright while it works, four workers on one database, a worker stopped while a
slow receiver holds its attempts.

Every process is a real ``fundline serve`` or ``fundline worker`` on a database of its own,
every receiver a real HTTP server on loopback (``tests/support/receiver.py``) in the test's
event loop; the processes are in ``tests/support/processes.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from fundline.app import create_app, shutdown
from fundline.kit import clock
from fundline.kit.db import Database
from fundline.models import Event, FinancingInvoice, Receivable, WebhookDelivery
from fundline.models.webhook import WebhookDeliveryStatus
from fundline.operations.migrations import upgrade
from fundline.webhooks import outbox
from tests.support.apps import make_client, make_settings
from tests.support.factories import (
    Tenant,
    create_counterpart,
    create_entity,
    invoice_payload,
    make_tenant,
    new_partner,
    onboard,
    token_for,
)
from tests.support.processes import eventually, fleet, fundline_env, live_client
from tests.support.receiver import Received, Receiver, Reply
from tests.support.services import create_postgres_database, drop_postgres_database
from tests.support.webhooks import subscribe

log = logging.getLogger(__name__)


@pytest.fixture
async def url(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated database of the test's backend, for its processes alone."""
    if database_url.startswith("postgresql"):
        fresh = await create_postgres_database()
    else:
        fresh = f"sqlite+aiosqlite:///{tmp_path / 'faults.db'}"
    await upgrade(fresh)
    yield fresh
    if fresh.startswith("postgresql"):
        await drop_postgres_database(fresh)


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    """The test's reads of that database (and the rows it writes itself)."""
    database = Database(url)
    yield database
    await database.dispose()


async def live_tenant(db: Database, client: httpx.AsyncClient, name: str = "Faults") -> Tenant:
    """A partner (made in the database, as ``fundline partner create`` does), its token from
    the live server, and one entity."""
    partner_id, client_id, secret = await new_partner(db, name)
    token = await token_for(client, client_id, secret)
    entity_id = await create_entity(client, token, name=f"{name} LLC")
    headers = {"authorization": f"Bearer {token}", "x-monite-entity-id": entity_id}
    return Tenant(partner_id, client_id, secret, token, entity_id, headers)


async def events_of(db: Database, *object_types: str) -> list[Event]:
    async with db.session() as session:
        stmt = select(Event).order_by(Event.created_at, Event.id)
        if object_types:
            stmt = stmt.where(Event.object_type.in_(object_types))
        return list(await session.scalars(stmt))


async def deliveries(db: Database) -> list[WebhookDelivery]:
    async with db.session() as session:
        return list(await session.scalars(select(WebhookDelivery)))


def at(line: dict[str, Any]) -> datetime:
    """When a log line was written."""
    return datetime.fromisoformat(line["timestamp"])


def first_receipts(received: list[Received]) -> dict[str, int]:
    """Each event id's position among the receiver's requests, first receipt only."""
    first: dict[str, int] = {}
    for position, request in enumerate(received):
        first.setdefault(request.event_id, position)
    return first


def assert_in_order_per_object(events: list[Event], received: list[Received]) -> None:
    """For each object, its events were first received in the order they happened."""
    first = first_receipts(received)
    by_object: dict[uuid.UUID, list[Event]] = defaultdict(list)
    for event in events:
        by_object[event.object_id].append(event)
    for object_id, own in by_object.items():
        own.sort(key=lambda e: (e.created_at, e.id))
        positions = [first[str(e.id)] for e in own]
        assert positions == sorted(positions), f"the events of {object_id} came out of order"


def assert_signed_as_sent(received: list[Received], secret: str) -> None:
    """Every request, retries and duplicates too: its ``webhook-id`` is the body's id, and it
    verifies with the subscription's secret."""
    verifier = Webhook(secret)
    for request in received:
        assert request.headers["webhook-id"] == request.json["id"]
        verifier.verify(request.body, request.headers)


# --- 1. the receiver is down while a thousand events happen ------------------------------------

OBJECTS = 50
PATCHES = 18  # created, updated 18 times, status_changed (issued): 20 events each


async def one_receivable(
    client: httpx.AsyncClient, tenant: Tenant, counterpart: dict[str, Any], n: int
) -> None:
    """Twenty events of one receivable, through the API: created, updated 18 times, issued."""
    created = await client.post(
        "/v1/receivables", json=invoice_payload(counterpart), headers=tenant.headers
    )
    assert created.status_code == 201, created.text
    path = f"/v1/receivables/{created.json()['id']}"
    for i in range(PATCHES):
        patched = await client.patch(
            path, json={"invoice": {"memo": f"receivable {n}, change {i}"}}, headers=tenant.headers
        )
        assert patched.status_code == 200, patched.text
    issued = await client.post(f"{path}/issue", headers=tenant.headers)
    assert issued.status_code == 200, issued.text


async def test_receiver_down_for_a_thousand_events_then_up(
    url: str, db: Database, tmp_path: Path
) -> None:
    receiver = Receiver()  # not started: down
    env = fundline_env(
        url,
        webhook_poll_seconds=0.05,
        webhook_timeout_seconds=2,
        webhook_lease_seconds=30,
        webhook_concurrency=64,
        webhook_concurrency_per_subscription=64,
        worker_interval_seconds=600,
    )
    async with fleet(tmp_path) as processes:
        (_, server_url), worker = await asyncio.gather(
            processes.server(env, worker=False), processes.worker(env)
        )
        async with live_client(server_url) as client:
            tenant = await live_tenant(db, client)
            subscription = await subscribe(client, tenant, url=receiver.url)
            counterpart = await create_counterpart(client, tenant)
            semaphore = asyncio.Semaphore(10)

            async def produce(n: int) -> None:
                async with semaphore:
                    await one_receivable(client, tenant, counterpart, n)

            started = time.monotonic()
            await asyncio.gather(*(produce(n) for n in range(OBJECTS)))
            produced = time.monotonic() - started
            events = await events_of(db, "receivable")
            assert len(events) == OBJECTS * (PATCHES + 2) == 1000

            # While the receiver is down each object's first event is tried, and tried again
            # 5 s later; the rest of each object waits behind it. The next try is 5 minutes on.
            async def every_head_failed_twice() -> bool:
                rows = await deliveries(db)
                tried = {d.object_id for d in rows if d.requests_made_count >= 2}
                return len(rows) == 1000 and len(tried) == OBJECTS

            failing = await eventually(
                every_head_failed_twice, seconds=60, what="two attempts of each"
            )
            assert receiver.received == []
            rows = await deliveries(db)
            heads = [d for d in rows if d.requests_made_count]
            assert len(heads) == OBJECTS
            assert min(d.next_attempt_at for d in heads) > clock.system_now() + timedelta(minutes=3)

            await receiver.start()
            try:
                # The sandbox clock moves a day on, in the API process: the worker, another
                # process whose beat (which reads the clock too) is ten minutes away, takes the
                # move up at its next round, and the retries are due.
                moved = await client.post(
                    "/sandbox/v1/clock/advance", json={"days": 1}, headers=tenant.auth
                )
                assert moved.status_code == 200, moved.text
                ids = {str(e.id) for e in events}
                waited = await eventually(
                    lambda: ids <= set(receiver.event_ids()),
                    seconds=60,
                    what="every event delivered",
                )
            finally:
                await receiver.stop()
    received = receiver.received
    assert set(receiver.event_ids()) == ids
    assert_in_order_per_object(events, received)
    assert_signed_as_sent(received, subscription["secret"])
    assert not worker.logged("webhook_round_failed")
    log.info(
        "1000 events made in %.1f s, every first one failed twice %.1f s later; all delivered "
        "%.1f s after the clock moved, in %d requests",
        produced,
        failing,
        waited,
        len(received),
    )


# --- 2. the server is killed outright while it works -------------------------------------------

WRITES = 200
KILL_AFTER = 80  # answered writes, at least, before the kill
FINANCED = ("receivable", "financing_invoice", "financing_offer")


class Stopped(Exception):
    """A write got no answer (the server is gone), or the budget of writes is spent."""


class Writes:
    """The client's account of its writes: each one's answer, or that it got none (cut off:
    sent, and the server died before answering; refused: the server was gone already)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.sent = 0
        self.in_flight = 0
        self.answered: list[tuple[str, dict[str, Any]]] = []  # (what, response body), 2xx
        self.cut_off: list[str] = []
        self.refused: list[str] = []

    async def __call__(
        self, client: httpx.AsyncClient, what: str, path: str, **kwargs: Any
    ) -> dict[str, Any]:
        if self.sent >= self.budget:
            raise Stopped
        self.sent += 1
        self.in_flight += 1
        try:
            response = await client.post(path, **kwargs)
        except httpx.ConnectError:
            self.refused.append(what)
            raise Stopped from None
        except httpx.TransportError:
            self.cut_off.append(what)
            raise Stopped from None
        finally:
            self.in_flight -= 1
        assert response.is_success, (what, response.status_code, response.text)
        body: dict[str, Any] = response.json()
        self.answered.append((what, body))
        return body


async def finance_one(
    client: httpx.AsyncClient, tenant: Tenant, counterpart: dict[str, Any], write: Writes
) -> None:
    """One invoice from creation to funding, five writes: create, issue, request financing,
    open the Connect session, confirm (funded at once under the sandbox policy)."""
    headers = tenant.headers
    payload = invoice_payload(counterpart, amount=20_000)
    invoice = await write(client, "create", "/v1/receivables", json=payload, headers=headers)
    path = f"/v1/receivables/{invoice['id']}"
    await write(client, "issue", f"{path}/issue", headers=headers)
    items = {"invoices": [{"id": invoice["id"], "type": "receivable"}]}
    tokens = await write(client, "request", "/v1/financing_invoices", json=items, headers=headers)
    opened = await write(
        client, "session", "/connect/v1/sessions", json={"token": tokens["session_token"]}
    )
    connect = {"authorization": f"Bearer {opened['access_token']}"}
    try:
        quotes = await client.get("/connect/v1/invoices", headers=connect)
    except httpx.TransportError:
        raise Stopped from None  # a read: nothing to account for
    assert quotes.status_code == 200, quotes.text
    plan = quotes.json()["invoices"][0]["quotes"][0]["pricing_plan_id"]
    chosen = {"invoices": [{"invoice_id": invoice["id"], "pricing_plan_id": plan}]}
    confirmed = await write(
        client, "confirm", "/connect/v1/invoices/confirm", json=chosen, headers=connect
    )
    assert [fi["status"] for fi in confirmed["invoices"]] == ["FUNDED"]


async def finance_until_stopped(
    client: httpx.AsyncClient, tenant: Tenant, counterpart: dict[str, Any], write: Writes
) -> None:
    with contextlib.suppress(Stopped):
        while True:
            await finance_one(client, tenant, counterpart, write)


async def test_server_killed_while_financing_then_restarted(
    url: str, db: Database, tmp_path: Path
) -> None:
    receiver = Receiver(lambda _: Reply(delay=0.1))  # each attempt held a while
    await receiver.start()
    env = fundline_env(
        url, webhook_poll_seconds=0.05, webhook_timeout_seconds=2, webhook_lease_seconds=3
    )
    write = Writes(WRITES)
    try:
        async with fleet(tmp_path) as processes:
            server, server_url = await processes.server(env)
            async with live_client(server_url) as client:
                tenant = await live_tenant(db, client)
                secrets = {}
                for kind in FINANCED:
                    made = await subscribe(client, tenant, object_type=kind, url=receiver.url)
                    secrets[kind] = made["secret"]
                await onboard(client, tenant)  # Connect: the business form, the offer accepted
                counterpart = await create_counterpart(client, tenant)
                chains = [
                    asyncio.create_task(finance_until_stopped(client, tenant, counterpart, write))
                    for _ in range(4)
                ]
                # Killed with writes and webhooks in flight: after KILL_AFTER answers, at a
                # moment a write waits for its answer and the receiver holds an attempt (whose
                # answer the server will never read). The check, the kill and the note of what
                # the receiver holds come with nothing awaited in between.
                await eventually(
                    lambda: (
                        len(write.answered) >= KILL_AFTER
                        and write.in_flight > 0
                        and bool(receiver.unanswered)
                    ),
                    seconds=60,
                    every=0.002,
                    what="the moment to kill",
                )
                server.signal(signal.SIGKILL)
                held = {r.event_id for r in receiver.unanswered}
                await server.exited(10)
                await asyncio.gather(*chains)
            killed_at = len(write.answered)
            assert write.cut_off, "no write was cut off by the kill"

            restarted, server_url = await processes.server(env, name="restarted")
            async with live_client(server_url) as client:
                await finance_until_stopped(client, tenant, counterpart, write)
                events = await events_of(db, *FINANCED)
                ids = {str(e.id) for e in events}
                waited = await eventually(
                    lambda: ids <= set(receiver.event_ids()),
                    seconds=30,
                    what="every committed event delivered",
                )
    finally:
        await receiver.stop()
    assert write.sent == WRITES
    received = receiver.received
    # Delivered at least once each, and nothing else: no event of a write that did not commit.
    assert set(receiver.event_ids()) == ids
    times = Counter(receiver.event_ids())
    assert all(times[i] >= 2 for i in held), "an attempt cut off by the kill was not sent again"
    for kind, secret in secrets.items():
        own = [r for r in received if r.json["object_type"] == kind]
        assert_signed_as_sent(own, secret)
        assert_in_order_per_object([e for e in events if e.object_type == kind], own)
    await assert_events_match_what_committed(db, events, write)
    assert not restarted.logged("webhook_round_failed")
    log.info(
        "killed after %d answers (cut off: %s, refused: %s); %d events, %d requests, %d sent "
        "again (%d held at the kill); all delivered %.1f s after the restarted server's writes",
        killed_at,
        write.cut_off,
        write.refused,
        len(events),
        len(received),
        sum(n - 1 for n in times.values()),
        len(held),
        waited,
    )


async def assert_events_match_what_committed(
    db: Database, events: list[Event], write: Writes
) -> None:
    """An event for every write answered, and the events say what the database holds: a
    receivable and a financing invoice exist exactly when their ``created`` event does, is
    issued exactly when its move to ``issued`` was told, funded exactly when that was."""

    def objects(action: str, **data: str) -> set[uuid.UUID]:
        return {
            e.object_id
            for e in events
            if e.action == action and all((e.object or {}).get(k) == v for k, v in data.items())
        }

    async with db.session() as session:
        rows = await session.execute(select(Receivable.id, Receivable.status))
        receivables = {row.id: row.status for row in rows}
        rows = await session.execute(select(FinancingInvoice.id, FinancingInvoice.status))
        financed = {row.id: row.status for row in rows}
    assert objects("receivable.created") == set(receivables)
    issued = {i for i, status in receivables.items() if status != "draft"}
    assert objects("receivable.status_changed", status="issued") == issued
    assert objects("financing_invoice.created") == set(financed)
    funded = {i for i, status in financed.items() if status == "FUNDED"}
    assert objects("financing_invoice.status_changed", status="FUNDED") == funded
    for what, body in write.answered:
        if what == "create":
            assert uuid.UUID(body["id"]) in receivables
        elif what == "issue":
            assert uuid.UUID(body["id"]) in issued
        elif what == "confirm":
            assert {uuid.UUID(fi["id"]) for fi in body["invoices"]} <= funded


# --- 3. four workers on one PostgreSQL database -------------------------------------------------


@contextlib.asynccontextmanager
async def subscribed(
    url: str, receiver: Receiver, count: int
) -> AsyncIterator[tuple[Tenant, list[dict[str, Any]]]]:
    """A tenant with ``count`` receivable subscriptions at ``receiver`` (``/hooks/<n>``), made
    through the app in this process (no server runs in these tests, only workers)."""
    app = create_app(make_settings(url, webhook_allow_private="127.0.0.1"))
    try:
        async with make_client(app) as client:
            tenant = await make_tenant(app, client, name="Workers")
            subscriptions = [
                await subscribe(client, tenant, url=f"{receiver.url}/{n}") for n in range(count)
            ]
            yield tenant, subscriptions
    finally:
        await shutdown(app)


async def record_events(
    db: Database, tenant: Tenant, objects: list[uuid.UUID], action: str
) -> list[Event]:
    """One event for each of ``objects``, in one transaction (as one batch of API writes)."""
    async with db.session() as session, session.begin():
        return [
            await outbox.record(
                session,
                partner_id=tenant.partner_id,
                entity_id=uuid.UUID(tenant.entity_id),
                object_type="receivable",
                object_id=object_id,
                action=action,
            )
            for object_id in objects
        ]


def by_subscription(received: list[Received]) -> dict[str, list[Received]]:
    found: dict[str, list[Received]] = defaultdict(list)
    for request in received:
        found[request.json["webhook_subscription_id"]].append(request)
    return found


@pytest.mark.usefixtures("postgres_only")
async def test_four_workers_send_each_delivery_once(url: str, db: Database, tmp_path: Path) -> None:
    receiver = Receiver(lambda _: Reply(delay=0.01))
    await receiver.start()
    env = fundline_env(
        url,
        webhook_poll_seconds=0.05,
        webhook_timeout_seconds=5,
        webhook_lease_seconds=300,  # longer than the run: no claim runs out
        webhook_concurrency=8,
        webhook_concurrency_per_subscription=8,
    )
    objects = [uuid.uuid4() for _ in range(40)]
    try:
        async with subscribed(url, receiver, 3) as (tenant, subscriptions):
            async with fleet(tmp_path) as processes:
                workers = await asyncio.gather(
                    *(processes.worker(env, name=f"worker-{n}") for n in range(4))
                )
                events: list[Event] = []
                for n in range(10):  # 400 events, ten per object, written while workers run
                    events += await record_events(db, tenant, objects, f"updated_{n}")
                    await asyncio.sleep(0.05)
                wanted = {(s["id"], str(e.id)) for s in subscriptions for e in events}
                waited = await eventually(
                    lambda: (
                        wanted
                        <= {
                            (r.json["webhook_subscription_id"], r.event_id)
                            for r in receiver.received
                        }
                    ),
                    seconds=60,
                    what="every delivery",
                )
                await asyncio.sleep(0.3)  # a second send of anything would have come by now
                for worker in workers:
                    worker.signal(signal.SIGTERM)
                codes = [await worker.exited(30) for worker in workers]
    finally:
        await receiver.stop()
    assert codes == [0, 0, 0, 0]
    sent = Counter((r.json["webhook_subscription_id"], r.event_id) for r in receiver.received)
    assert len(wanted) == 1200
    assert set(sent) == wanted
    twice = {key: n for key, n in sent.items() if n > 1}
    assert twice == {}, f"sent by two workers (or twice by one): {twice}"
    rows = await deliveries(db)
    assert len(rows) == 1200
    assert {(d.status, d.requests_made_count, d.lease_until) for d in rows} == {
        (WebhookDeliveryStatus.SUCCEEDED, 1, None)
    }
    for subscription in subscriptions:
        assert_in_order_per_object(events, by_subscription(receiver.received)[subscription["id"]])
        assert_signed_as_sent(
            by_subscription(receiver.received)[subscription["id"]], subscription["secret"]
        )
    # Each worker did part of the work (its count on stopping), together all of it once.
    shares = [worker.logged("webhook_worker_stopped")[0]["attempts"] for worker in workers]
    assert all(share > 0 for share in shares), shares
    assert sum(shares) == 1200
    assert not [w.name for w in workers if w.logged("webhook_round_failed")]
    log.info("1200 deliveries in %.1f s; each worker's share: %s", waited, shares)


# --- 4. a worker stopped while a slow receiver holds its attempts --------------------------------

TIMEOUT = 1.0  # FUNDLINE_WEBHOOK_TIMEOUT_SECONDS: the grace period is this and 5 s
GRACE = TIMEOUT + 5
CONCURRENCY = 8


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Reply(delay=0.6), id="slow"),  # answers within the timeout
        pytest.param(Reply(delay=2.5), id="hanging"),  # past the timeout
    ],
)
async def test_sigterm_with_attempts_held_leaves_no_lease(
    url: str, db: Database, tmp_path: Path, answer: Reply
) -> None:
    receiver = Receiver(lambda _: answer)
    await receiver.start()
    env = fundline_env(
        url,
        webhook_poll_seconds=0.05,
        webhook_timeout_seconds=TIMEOUT,
        webhook_lease_seconds=300,
        webhook_concurrency=CONCURRENCY,
        webhook_concurrency_per_subscription=CONCURRENCY,
    )
    try:
        async with subscribed(url, receiver, 1) as (tenant, _):
            async with fleet(tmp_path) as processes:
                worker = await processes.worker(env)
                await record_events(db, tenant, [uuid.uuid4() for _ in range(20)], "created")
                await eventually(
                    lambda: len(receiver.unanswered) == CONCURRENCY,
                    seconds=20,
                    every=0.005,
                    what="the receiver holding every attempt",
                )
                worker.signal(signal.SIGTERM)
                stopped = time.monotonic()
                code = await worker.exited(GRACE + 10)
                took = time.monotonic() - stopped
            # the receiver lets go of what it still holds, before it stops
            await eventually(lambda: not receiver.unanswered, seconds=10, what="the receiver")
    finally:
        await receiver.stop()
    assert code == 0, worker.output()
    # Its attempts ended (answered, or at their timeout) well within the grace period, and so
    # did the process (the interpreter's own exit included).
    [stopping] = worker.logged("worker_stopping")
    [stopped_at] = worker.logged("worker_stopped")
    shutdown = (at(stopped_at) - at(stopping)).total_seconds()
    assert shutdown < min(answer.delay, TIMEOUT) + 1, f"{shutdown:.1f} s to shut down"
    assert took < GRACE, f"{took:.1f} s to exit"
    assert len(receiver.received) == CONCURRENCY  # nothing claimed once it was told to stop
    rows = await deliveries(db)
    assert [d.lease_until for d in rows] == [None] * 20  # no lease left behind
    attempted = [d for d in rows if d.requests_made_count]
    assert len(attempted) == CONCURRENCY  # every attempt written down
    assert {str(d.event_id) for d in attempted} == set(receiver.event_ids())
    if answer.delay < TIMEOUT:
        assert {d.status for d in attempted} == {WebhookDeliveryStatus.SUCCEEDED}
    else:
        assert {(d.status, d.was_successful) for d in attempted} == {
            (WebhookDeliveryStatus.PENDING, False)
        }
        assert {d.last_response for d in attempted} == {f"no answer within {TIMEOUT:g} s"}
    assert worker.logged("webhook_worker_stopped")[0]["attempts"] == CONCURRENCY
    assert not worker.logged("webhook_round_failed")
    log.info("shut down in %.2f s, exited %.2f s after SIGTERM", shutdown, took)
