"""Webhook delivery: deliveries per second, and the delay from commit to delivery, per worker count.

Sustained deliveries per second with 1, 2 and 4 ``fundline worker`` processes, and the delay
from an event's commit to its delivery at a production rate below saturation:

    python -m bench.webhooks                               (--workers 1 2 4, the defaults below)
    python -m bench.webhooks --workers 2 --py-spy          (profile a worker while it drains)

On PostgreSQL only (several workers share the queue there). Creates the database (dropping it
first), runs the migrations, makes a partner, an entity and ``--subscriptions`` receivable
subscriptions, each to its own path of a local receiver (``bench/receiver.py``, a bare asyncio
HTTP/1.1 server on uvloop in a process of its own, answering 200 at once and noting each
request's arrival time and ``webhook-id``). Then, for each worker count N:

1. **Drain.** The events and deliveries tables are emptied, N ``fundline worker`` processes are
   started (production mode, the settings' defaults unless given here) and warmed up with a few
   events. Then one transaction records ``--backlog / --subscriptions`` events
   (``fundline.webhooks.outbox.record``, the function every domain's ``record_event`` calls)
   over ``--objects`` receivables, in the order they happened: after its commit the workers
   fan them out and deliver ``--backlog`` webhooks. Measured: deliveries per second in steady
   state (between the 10th and the 90th percentile of arrivals, which leaves out the start and
   the tail), and overall (from the commit to the last arrival); the workers' and PostgreSQL's
   CPU per delivery.
2. **Delay.** With the same N workers running, a producer records ``--rate`` events per
   second for ``--duration`` seconds, one event per committed transaction (as API requests
   record them), noting ``time.time()`` after each commit; the delay of a delivery is its
   arrival at the receiver minus its event's commit: p50, p90, p99, max.

Each phase also checks what arrived: every delivery once (duplicates are counted), each
object's events in the order they happened, for every subscription (``order violations``).

Prints a table, writes ``bench/results/<timestamp>-webhooks.json`` and appends a table to the
"Webhook delivery" section of ``docs/performance.md`` (``--no-doc``: not). Not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from rich.console import Console
from rich.markup import escape
from sqlalchemy import func, select

from bench.load import (
    append_to_section,
    cpu_seconds,
    free_port,
    git_revision,
    host_cpu,
    machine,
    other_benchmarks,
    postgres_version,
    py_spy,
)
from bench.profile import summarize
from bench.seed import asyncpg_dsn, sqlalchemy_url
from fundline.auth.service import create_partner
from fundline.kit.db import Database
from fundline.models import Entity, WebhookDelivery, WebhookSubscription
from fundline.operations.migrations import upgrade
from fundline.webhooks import outbox, signing

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SECTION = "## Webhook delivery"
console = Console(highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class Produced:
    """An event the producer committed: what the checks need to know of it."""

    id: str
    object_id: str
    order: tuple[datetime, str]  # (created_at, id): the order of one object's events
    committed: float  # time.time() after the commit


@dataclass
class World:
    database_url: str  # SQLAlchemy's
    partner_id: uuid.UUID
    entity_id: uuid.UUID
    paths: list[str]  # one per subscription
    objects: list[uuid.UUID]


@dataclass
class Workers:
    procs: list[subprocess.Popen[bytes]]
    metrics_ports: list[int]
    logs: list[Path] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]


# --- the database ---------------------------------------------------------------------------


async def prepare(url: str, *, subscriptions: int, objects: int, receiver_port: int) -> World:
    """A fresh database at ``url``, migrated, with a partner, an entity and its
    subscriptions."""
    dsn = asyncpg_dsn(url)
    name = dsn.rsplit("/", 1)[1].split("?", 1)[0]
    admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    await upgrade(sqlalchemy_url(url))
    db = Database(sqlalchemy_url(url))
    paths = [f"/hooks/{k}" for k in range(subscriptions)]
    try:
        async with db.session() as session, session.begin():
            partner = await create_partner(session, name="Webhook bench")
            entity = Entity(
                partner_id=partner.partner_id,
                type="organization",
                email="bench@example.com",
                address={
                    "country": "US",
                    "city": "Austin",
                    "postal_code": "78701",
                    "state": "TX",
                    "line1": "1 Main St",
                },
                organization={"legal_name": "Webhook Bench LLC"},
            )
            session.add(entity)
            await session.flush()
            for path in paths:
                session.add(
                    WebhookSubscription(
                        partner_id=partner.partner_id,
                        url=f"http://127.0.0.1:{receiver_port}{path}",
                        object_type="receivable",
                        event_types=[],
                        secret=signing.new_secret(),
                    )
                )
    finally:
        await db.dispose()
    return World(
        database_url=sqlalchemy_url(url),
        partner_id=partner.partner_id,
        entity_id=entity.id,
        paths=paths,
        objects=[uuid.uuid4() for _ in range(objects)],
    )


async def empty_queue(world: World) -> None:
    """No events, no deliveries: each worker count starts from the same tables."""
    conn = await asyncpg.connect(asyncpg_dsn(world.database_url))
    try:
        await conn.execute("TRUNCATE webhook_deliveries, events")
        await conn.execute("VACUUM ANALYZE webhook_deliveries")
        await conn.execute("VACUUM ANALYZE events")
    finally:
        await conn.close()


async def record_events(
    db: Database, world: World, count: int, *, start: int = 0
) -> list[Produced]:
    """``count`` events in one committed transaction, round-robin over the objects."""
    events = []
    async with db.session() as session, session.begin():
        for i in range(start, start + count):
            event = await outbox.record(
                session,
                partner_id=world.partner_id,
                entity_id=world.entity_id,
                object_type="receivable",
                object_id=world.objects[i % len(world.objects)],
                action="updated",
            )
            events.append(event)
    committed = time.time()
    return [
        Produced(str(e.id), str(e.object_id), (e.created_at, str(e.id)), committed) for e in events
    ]


async def produce(db: Database, world: World, rate: float, seconds: float) -> list[Produced]:
    """``rate`` events a second for ``seconds``, one committed transaction each, on a fixed
    schedule (an event that falls behind is sent at once, not skipped)."""
    produced: list[Produced] = []
    total = round(rate * seconds)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(total):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        produced += await record_events(db, world, 1, start=i)
    return produced


async def queue_state(world: World) -> dict[str, int]:
    db = Database(world.database_url)
    try:
        async with db.read_session() as session:
            rows = await session.execute(
                select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
            )
            return {str(status): count for status, count in rows.all()}
    finally:
        await db.dispose()


async def backend_pids(world: World) -> list[int]:
    """The PostgreSQL backends serving the benchmark's database (the workers' connections)."""
    conn = await asyncpg.connect(asyncpg_dsn(world.database_url))
    try:
        name = world.database_url.rsplit("/", 1)[1]
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        return [r["pid"] for r in rows]
    finally:
        await conn.close()


def cpu_of(pids: Sequence[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        try:
            found[pid] = cpu_seconds(pid)
        except OSError:
            continue  # gone
    return found


# --- processes --------------------------------------------------------------------------------


@contextmanager
def receiver(port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    argv = [sys.executable, "-m", "bench.receiver", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_for(f"http://127.0.0.1:{port}/stats", proc, "the receiver", log)
            yield proc
        finally:
            stop([proc])


def worker_env(world: World, args: argparse.Namespace) -> dict[str, str]:
    env = {
        **os.environ,
        "FUNDLINE_MODE": "production",
        "FUNDLINE_DATABASE_URL": world.database_url,
        "FUNDLINE_SECRET_KEY": secrets.token_urlsafe(48),
        "FUNDLINE_WEBHOOK_ALLOW_PRIVATE": "127.0.0.1",
        "FUNDLINE_LOG_LEVEL": "WARNING",
    }
    for name in ("FUNDLINE_REDIS_URL", "FUNDLINE_POLICY_FILE"):
        env.pop(name, None)
    for option, name in (
        ("concurrency", "FUNDLINE_WEBHOOK_CONCURRENCY"),
        ("per_subscription", "FUNDLINE_WEBHOOK_CONCURRENCY_PER_SUBSCRIPTION"),
        ("poll_seconds", "FUNDLINE_WEBHOOK_POLL_SECONDS"),
    ):
        value = getattr(args, option)
        if value is not None:
            env[name] = str(value)
    return env


@contextmanager
def workers(n: int, env: dict[str, str], work: Path) -> Iterator[Workers]:
    """``n`` ``fundline worker`` processes, each with its metrics on a port of its own."""
    fundline = str(Path(sys.executable).parent / "fundline")
    running = Workers([], [])
    try:
        for k in range(n):
            port = free_port(None)
            log = work / f"worker-{n}-{k}.log"
            out = log.open("wb")
            proc = subprocess.Popen(
                [fundline, "worker", "--metrics-port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
            out.close()
            running.procs.append(proc)
            running.metrics_ports.append(port)
            running.logs.append(log)
        for proc, port, log in zip(running.procs, running.metrics_ports, running.logs, strict=True):
            wait_for(f"http://127.0.0.1:{port}/metrics", proc, "fundline worker", log)
        yield running
    finally:
        stop(running.procs)


def stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (a worker's graceful stop), then SIGKILL after 20 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(url: str, proc: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}; see {log}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"{name} did not answer at {url} within 120 s; see {log}")


def succeeded_by_worker(ports: Sequence[int]) -> list[int]:
    """Each worker's ``fundline_webhook_deliveries_total{outcome="succeeded"}``."""
    counts = []
    for port in ports:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        value = 0.0
        for line in text.splitlines():
            if line.startswith('fundline_webhook_deliveries_total{outcome="succeeded"}'):
                value = float(line.rsplit(" ", 1)[1])
        counts.append(int(value))
    return counts


# --- the receiver's notes ---------------------------------------------------------------------


class Receiver:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def received(self) -> int:
        count: int = httpx.get(f"{self.base}/stats", timeout=10).json()["received"]
        return count

    def take(self) -> list[tuple[float, str, str]]:
        text = httpx.post(f"{self.base}/take", timeout=60).text
        notes = []
        for line in text.splitlines():
            at, path, webhook_id = line.split("\t")
            notes.append((float(at), path, webhook_id))
        return notes

    async def wait(self, expected: int, *, stall_seconds: float = 30.0) -> bool:
        """Until ``expected`` requests arrived; ``False`` when none arrived for
        ``stall_seconds``."""
        seen, since = -1, time.monotonic()
        while True:
            count = await asyncio.to_thread(self.received)
            if count >= expected:
                return True
            if count != seen:
                seen, since = count, time.monotonic()
            elif time.monotonic() - since > stall_seconds:
                return False
            await asyncio.sleep(0.1)


def check(
    notes: Sequence[tuple[float, str, str]], produced: Sequence[Produced], paths: Sequence[str]
) -> dict[str, Any]:
    """Which deliveries came, twice, or out of their object's order."""
    events = {p.id: p for p in produced}
    first: dict[tuple[str, str], float] = {}
    duplicates = unknown = 0
    for at, path, webhook_id in notes:
        if webhook_id not in events:
            unknown += 1  # the warm-up's
            continue
        key = (path, webhook_id)
        if key in first:
            duplicates += 1
        else:
            first[key] = at
    violations = 0
    per_object: dict[tuple[str, str], list[tuple[tuple[datetime, str], float]]] = defaultdict(list)
    for (path, webhook_id), at in first.items():
        event = events[webhook_id]
        per_object[(path, event.object_id)].append((event.order, at))
    for arrivals in per_object.values():
        arrivals.sort()
        violations += sum(1 for a, b in itertools.pairwise(arrivals) if b[1] < a[1])
    return {
        "expected": len(produced) * len(paths),
        "delivered": len(first),
        "missing": len(produced) * len(paths) - len(first),
        "duplicates": duplicates,
        "order_violations": violations,
        "unknown": unknown,
        "first": first,
    }


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))
    return values[index]


# --- the phases -------------------------------------------------------------------------------


@dataclass
class Usage:
    """CPU seconds of the workers, the receiver, PostgreSQL's backends and the machine."""

    workers: dict[int, float]
    receiver: float
    backends: dict[int, float]
    host: tuple[int, int]
    wall: float

    @classmethod
    async def now(cls, running: Workers, receiver_pid: int, world: World) -> Usage:
        return cls(
            workers=cpu_of(running.pids),
            receiver=cpu_seconds(receiver_pid),
            backends=cpu_of(await backend_pids(world)),
            host=host_cpu(),
            wall=time.monotonic(),
        )

    def since(self, before: Usage, deliveries: int, wall: float | None = None) -> dict[str, Any]:
        """Per delivery; the workers' share of one core over ``wall`` seconds (default: since
        ``before``)."""
        per = 1000 / max(1, deliveries)
        workers = sum(self.workers.values()) - sum(before.workers.values())
        backends = sum(cpu - before.backends.get(pid, 0.0) for pid, cpu in self.backends.items())
        wall = wall or self.wall - before.wall
        busy = (self.host[0] - before.host[0]) / max(1, self.host[1] - before.host[1])
        return {
            "worker_cpu_ms_per_delivery": round(workers * per, 3),
            "worker_cpu_share": round(workers / wall, 2),  # of one core, all workers together
            "postgres_cpu_ms_per_delivery": round(backends * per, 3),
            "receiver_cpu_ms_per_delivery": round((self.receiver - before.receiver) * per, 3),
            "machine_busy": round(busy, 2),
        }


async def drain(
    world: World,
    receiver: Receiver,
    receiver_pid: int,
    running: Workers,
    backlog: int,
    profile: Path | None,
) -> dict[str, Any]:
    db = Database(world.database_url)
    try:
        events = backlog // len(world.paths)
        before = await Usage.now(running, receiver_pid, world)
        produced = await record_events(db, world, events)
        committed = produced[0].committed
    finally:
        await db.dispose()
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [
                py_spy(), "record", "--pid", str(running.pids[0]), "--rate", "100",
                "--threads", "--nonblocking", "--format", "raw", "--output", str(profile),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    complete = await receiver.wait(events * len(world.paths))
    after = await Usage.now(running, receiver_pid, world)
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its profile when interrupted
        spy.wait(60)
    notes = receiver.take()
    checked = check(notes, produced, world.paths)
    times = sorted(checked.pop("first").values())
    n = len(times)
    steady = None
    if n >= 10:
        # Between the 10th and the 90th percentile of arrivals: the start and the tail left out.
        lo, hi = n // 10, (9 * n) // 10 - 1
        if times[hi] > times[lo]:
            steady = round((hi - lo) / (times[hi] - times[lo]), 1)
    return {
        "events": events,
        "deliveries": n,
        "complete": complete,
        "steady_per_second": steady,
        "overall_per_second": round(n / (times[-1] - committed), 1) if n else None,
        "first_after_commit_s": round(times[0] - committed, 3) if n else None,
        "drained_in_s": round(times[-1] - committed, 2) if n else None,
        **checked,
        **after.since(before, n, wall=times[-1] - committed if n else None),
        "profile": summarize(profile, top=25) if profile and profile.exists() else None,
    }


async def delay(
    world: World,
    receiver: Receiver,
    receiver_pid: int,
    running: Workers,
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    db = Database(world.database_url)
    try:
        before = await Usage.now(running, receiver_pid, world)
        started = time.monotonic()
        produced = await produce(db, world, rate, seconds)
        produced_in = time.monotonic() - started
    finally:
        await db.dispose()
    complete = await receiver.wait(len(produced) * len(world.paths))
    after = await Usage.now(running, receiver_pid, world)
    notes = receiver.take()
    checked = check(notes, produced, world.paths)
    first = checked.pop("first")
    committed = {p.id: p.committed for p in produced}
    delays = sorted(1000 * (at - committed[webhook_id]) for (_, webhook_id), at in first.items())
    return {
        "events": len(produced),
        "events_per_second": round(len(produced) / produced_in, 1),
        "deliveries": len(delays),
        "complete": complete,
        "p50_ms": round(percentile(delays, 50), 1),
        "p90_ms": round(percentile(delays, 90), 1),
        "p99_ms": round(percentile(delays, 99), 1),
        "max_ms": round(delays[-1], 1) if delays else None,
        "mean_ms": round(statistics.fmean(delays), 1) if delays else None,
        **checked,
        **after.since(before, len(delays)),
    }


async def warm_up(world: World, receiver: Receiver) -> None:
    """A few events through every worker's connections before anything is measured."""
    db = Database(world.database_url)
    try:
        for i in range(10):
            await record_events(db, world, 4, start=i * 4)
            await asyncio.sleep(0.05)
    finally:
        await db.dispose()
    await receiver.wait(40 * len(world.paths), stall_seconds=20)
    receiver.take()


async def measure(
    n: int, world: World, rcv: Receiver, receiver_pid: int, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    await empty_queue(world)
    with workers(n, worker_env(world, args), work) as running:
        await asyncio.sleep(1.0)  # past the migrations check, into the worker loop
        await warm_up(world, rcv)
        profile = None
        if args.py_spy:
            profile = RESULTS / f"{args.stamp}-webhooks-{n}.pyspy.txt"
        counts = [succeeded_by_worker(running.metrics_ports)]
        drained = await drain(world, rcv, receiver_pid, running, args.backlog, profile)
        counts.append(succeeded_by_worker(running.metrics_ports))
        await asyncio.sleep(1.0)
        delayed = await delay(world, rcv, receiver_pid, running, args.rate, args.duration)
        counts.append(succeeded_by_worker(running.metrics_ports))
        state = await queue_state(world)
    # Each worker's share of the deliveries: how evenly they split the queue.
    for phase, (a, b) in ((drained, counts[:2]), (delayed, counts[1:])):
        phase["by_worker"] = [y - x for x, y in zip(a, b, strict=True)]
    return {
        "workers": n,
        "subscriptions": len(world.paths),
        "drain": drained,
        "delay": delayed,
        "queue_after": state,
    }


# --- reporting --------------------------------------------------------------------------------


def offered(row: dict[str, Any]) -> float:
    """The delay phase's deliveries per second over what the drain sustained: at 100 % or
    more the queue grows and the delay measures the backlog, not the worker."""
    rate = row["delay"]["events_per_second"] * row["subscriptions"]
    sustained = row["drain"]["steady_per_second"]
    return float(rate / sustained) if sustained else 0.0


def markdown(report: dict[str, Any]) -> str:
    m, cfg = report["machine"], report["settings"]
    load = report["loadavg_before"]
    lines = [
        f"### {report['started_at'][:16].replace('T', ' ')} UTC — webhook delivery, "
        f"{m['cpus']} cores",
        "",
        f"{m['cpu_model']}, {m['memory_gb']} GB; Fundline {report['revision']}; "
        f"PostgreSQL {report['postgres']}; {cfg['subscriptions']} subscriptions, "
        f"{cfg['objects']:,} objects; drain {cfg['backlog']:,} deliveries; delay at "
        f"{cfg['rate']:g} events/s ({cfg['rate'] * cfg['subscriptions']:g} deliveries/s) for "
        f"{cfg['duration']:g} s; worker settings {report['worker_settings']}; load average "
        f"before {load[0]:.2f}.",
        "",
        "| workers | drain/s steady | drain/s overall | worker CPU ms/dlv | PG CPU ms/dlv | "
        "busy | delay load | p50 ms | p90 ms | p99 ms | max ms | busy | dup | order | missing |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in report["results"]:
        d, w = row["drain"], row["delay"]
        lines.append(
            f"| {row['workers']} | {d['steady_per_second'] or 0:,.0f} | "
            f"{d['overall_per_second'] or 0:,.0f} | {d['worker_cpu_ms_per_delivery']:.2f} | "
            f"{d['postgres_cpu_ms_per_delivery']:.2f} | {d['machine_busy']:.0%} | "
            f"{offered(row):.0%} | {w['p50_ms']:.1f} | {w['p90_ms']:.1f} | "
            f"{w['p99_ms']:.1f} | {w['max_ms']:.1f} | "
            f"{w['machine_busy']:.0%} | {d['duplicates'] + w['duplicates']} | "
            f"{d['order_violations'] + w['order_violations']} | "
            f"{d['missing'] + w['missing']} |"
        )
    return "\n".join(lines) + "\n"


def print_row(row: dict[str, Any]) -> None:
    d, w = row["drain"], row["delay"]
    console.print(
        f"  {row['workers']} worker(s): drain {d['steady_per_second'] or 0:7,.0f}/s steady, "
        f"{d['overall_per_second'] or 0:7,.0f}/s overall ({d['deliveries']:,} in "
        f"{d['drained_in_s']} s; worker CPU {d['worker_cpu_ms_per_delivery']:.2f} ms, PG "
        f"{d['postgres_cpu_ms_per_delivery']:.2f} ms per delivery; busy "
        f"{d['machine_busy']:.0%}; by worker {d['by_worker']})\n"
        f"               delay at {w['events_per_second']:g} events/s ({offered(row):.0%} of the "
        f"drain rate): p50 "
        f"{w['p50_ms']:.1f} ms, p90 {w['p90_ms']:.1f} ms, p99 {w['p99_ms']:.1f} ms, max "
        f"{w['max_ms']:.1f} ms (busy {w['machine_busy']:.0%})\n"
        f"               duplicates {d['duplicates'] + w['duplicates']}, order violations "
        f"{d['order_violations'] + w['order_violations']}, missing "
        f"{d['missing'] + w['missing']}",
        markup=False,
    )


# --- the run ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = datetime.now(UTC)
    revision = git_revision()  # now: the source may change while the run goes on
    args.stamp = started.strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fundline-bench-webhooks-"))
    port = free_port(args.receiver_port)
    loadavg = os.getloadavg()
    console.print(
        f"bench.webhooks: workers {args.workers}, logs in {work}; load average "
        f"{loadavg[0]:.2f} {loadavg[1]:.2f} {loadavg[2]:.2f} on {os.cpu_count()} cores",
        markup=False,
    )
    others = other_benchmarks()
    if others:
        console.print(f"warning: other benchmarks are running (pids {others}): figures will be low")
    world = await prepare(
        args.database_url,
        subscriptions=args.subscriptions,
        objects=args.objects,
        receiver_port=port,
    )
    results = []
    with receiver(port, work / "receiver.log") as rcv_proc:
        rcv = Receiver(port)
        for n in args.workers:
            row = await measure(n, world, rcv, rcv_proc.pid, args, work)
            results.append(row)
            print_row(row)
    env = worker_env(world, args)
    report = {
        "started_at": started.isoformat(),
        "revision": revision,
        "machine": machine(),
        "loadavg_before": loadavg,
        "loadavg_after": os.getloadavg(),
        "other_benchmarks_running": others,
        "postgres": await asyncio.to_thread(postgres_version, asyncpg_dsn(args.database_url)),
        "settings": {
            "subscriptions": args.subscriptions,
            "objects": args.objects,
            "backlog": args.backlog,
            "rate": args.rate,
            "duration": args.duration,
        },
        "worker_settings": {
            "concurrency": int(env.get("FUNDLINE_WEBHOOK_CONCURRENCY", 32)),
            "per_subscription": int(env.get("FUNDLINE_WEBHOOK_CONCURRENCY_PER_SUBSCRIPTION", 4)),
            "poll_seconds": float(env.get("FUNDLINE_WEBHOOK_POLL_SECONDS", 0.25)),
        },
        "results": results,
    }
    out = RESULTS / f"{args.stamp}-webhooks.json"
    out.write_text(json_dumps(report) + "\n")
    text = markdown(report)
    if not args.no_doc:
        append_to_section(SECTION, text)
    console.print("\n" + escape(text) + f"\nresults: {out}")
    return report


def json_dumps(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhooks",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/fundline_bench_webhooks",
        help="the PostgreSQL database to (re)create; its contents are replaced",
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts (1 2 4)"
    )
    parser.add_argument(
        "--subscriptions", type=int, default=4, help="each event goes to all of them (4)"
    )
    parser.add_argument(
        "--objects", type=int, default=1_000, help="receivables the events are of (1,000)"
    )
    parser.add_argument("--backlog", type=int, default=20_000, help="deliveries to drain (20,000)")
    parser.add_argument(
        "--rate", type=float, default=100, help="events per second in the delay phase (100)"
    )
    parser.add_argument("--duration", type=float, default=20, help="of the delay phase (20 s)")
    parser.add_argument(
        "--concurrency", type=int, help="FUNDLINE_WEBHOOK_CONCURRENCY (the default: 32)"
    )
    parser.add_argument(
        "--per-subscription",
        type=int,
        help="FUNDLINE_WEBHOOK_CONCURRENCY_PER_SUBSCRIPTION (the default: 4)",
    )
    parser.add_argument(
        "--poll-seconds", type=float, help="FUNDLINE_WEBHOOK_POLL_SECONDS (the default: 0.25)"
    )
    parser.add_argument("--receiver-port", type=int, help="default: a free one")
    parser.add_argument("--no-doc", action="store_true", help="do not append to performance.md")
    parser.add_argument(
        "--py-spy",
        action="store_true",
        help="profile the first worker while it drains (bench/results/*.pyspy.txt)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
