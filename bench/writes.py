"""The three writes, measured one by one: CPU per request, latency, statements per request.

    .venv/bin/python -m bench.writes --manifest bench/results/seed-100000.json
    .venv/bin/python -m bench.writes --manifest … --in-process [--profile out.prof]

The writes (``--only`` picks some by name):

- ``request financing x10``: ``POST /v1/financing_invoices`` with 10 issued receivables of a
  hot entity never requested before;
- ``confirm x10``: the Connect confirmation of such a request's 10 invoices
  (``POST /connect/v1/invoices/confirm``, the first plan, its maximum amount unless
  ``--confirm-amount``); the request, its session and the plan are made beforehand, unmeasured;
- ``receivable create+issue``: ``POST /v1/receivables`` then ``…/{id}/issue``, one pair per
  "request" (its figures are per pair).

By default ``fundline serve`` runs as ``bench/run`` starts it (production settings, one
process, the embedded worker) and a client sends ``--requests`` of each write,
``--concurrency`` at a time, rotating over the hot entities; the server's CPU time per request
comes from ``/proc``. ``--in-process`` serves the app in this process instead (httpx's ASGI
transport, so its CPU figure includes the client's), records every statement each request
sends to PostgreSQL (``BEGIN`` and ``COMMIT`` included), and with ``--profile`` writes a
cProfile of the measured requests. Not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from rich.console import Console

from bench.ceiling.targets import receivable_body
from bench.load import (
    LIST,
    VERSION,
    cpu_seconds,
    free_port,
    fresh_batches,
    get_tokens,
    server,
    settle_outbox,
)
from bench.serving import production_settings, serve_env
from fundline.kit import statements
from fundline.kit.statements import Prepared

CONFIRM = "/connect/v1/invoices/confirm"
console = Console(highlight=False, soft_wrap=True)


@dataclass
class Target:
    """What one hot entity's requests need."""

    partner_id: str
    entity_id: str
    bearer: str = ""
    counterpart_id: str = ""
    billing_address_id: str = ""
    batches: list[str] = field(default_factory=list)  # request bodies, each used once

    @property
    def headers(self) -> dict[str, str]:
        return {
            "authorization": f"Bearer {self.bearer}",
            "x-monite-entity-id": self.entity_id,
            "x-monite-version": VERSION,
            "content-type": "application/json",
        }


# One measured call: the client, the call's index (to rotate entities) and what setup gave it.
Call = Callable[[httpx.AsyncClient, int, Any], Awaitable[None]]
Setup = Callable[[httpx.AsyncClient, int], Awaitable[Any]]


@dataclass(frozen=True)
class Write:
    name: str
    call: Call
    setup: Setup | None = None  # run for every call first, unmeasured


def _check(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response


def writes(targets: list[Target], *, confirm_amount: int | None) -> list[Write]:
    def target(i: int) -> Target:
        return targets[i % len(targets)]

    async def request_financing(client: httpx.AsyncClient, i: int, _: Any) -> None:
        t = target(i)
        body = t.batches.pop()
        _check(await client.post(LIST, content=body, headers=t.headers), 201)

    async def open_request(client: httpx.AsyncClient, i: int) -> Any:
        """A request of 10 invoices, its Connect session and the body that confirms them."""
        t = target(i)
        body = t.batches.pop()
        tokens = _check(await client.post(LIST, content=body, headers=t.headers), 201).json()
        opened = _check(
            await client.post("/connect/v1/sessions", json={"token": tokens["session_token"]}),
            201,
        ).json()
        connect = {"authorization": f"Bearer {opened['access_token']}"}
        drafts = _check(await client.get("/connect/v1/invoices", headers=connect), 200).json()
        items = []
        for invoice in drafts["invoices"]:
            item: dict[str, Any] = {
                "invoice_id": invoice["invoice_id"],
                "pricing_plan_id": invoice["quotes"][0]["pricing_plan_id"],
            }
            if confirm_amount is not None:
                item["requested_amount"] = confirm_amount
            items.append(item)
        return connect, {"invoices": items}

    async def confirm(client: httpx.AsyncClient, i: int, prepared: Any) -> None:
        headers, body = prepared
        _check(await client.post(CONFIRM, json=body, headers=headers), 200)

    async def create_and_issue(client: httpx.AsyncClient, i: int, _: Any) -> None:
        t = target(i)
        body = receivable_body(t.counterpart_id, t.billing_address_id)
        created = _check(await client.post("/v1/receivables", json=body, headers=t.headers), 201)
        path = f"/v1/receivables/{created.json()['id']}/issue"
        _check(await client.post(path, headers=t.headers), 200)

    return [
        Write("request financing x10", request_financing),
        Write("confirm x10", confirm, setup=open_request),
        Write("receivable create+issue", create_and_issue),
    ]


async def load_targets(dsn: str, manifest: dict[str, Any], needed: int) -> list[Target]:
    """The hot entities with a counterpart each and their fresh batches of 10 receivables."""
    targets = {
        e["entity_id"]: Target(e["partner_id"], e["entity_id"]) for e in manifest["hot_entities"]
    }
    for _, entity_id, body in await fresh_batches(dsn, manifest):
        targets[entity_id].batches.append(body)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT DISTINCT ON (c.entity_id) c.entity_id::text, c.id::text, a.id::text
            FROM counterparts c JOIN counterpart_addresses a ON a.counterpart_id = c.id
            WHERE c.entity_id = ANY($1::uuid[]) ORDER BY c.entity_id, c.id, a.id
            """,
            list(targets),
        )
    finally:
        await conn.close()
    for entity_id, counterpart_id, address_id in rows:
        targets[entity_id].counterpart_id = counterpart_id
        targets[entity_id].billing_address_id = address_id
    found = [t for t in targets.values() if t.counterpart_id]
    spare = sum(len(t.batches) for t in found)
    if spare < needed:
        raise SystemExit(f"only {spare} fresh batches of receivables left; seed again")
    return found


@dataclass
class Measured:
    name: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    cpu_s: float
    statements: list[int] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "write": self.name,
            "requests": self.requests,
            "rps": round(self.requests / self.seconds, 1),
            "p50_ms": round(statistics.median(lat), 2),
            "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2),
            "cpu_ms_per_request": round(1000 * self.cpu_s / self.requests, 2),
            "statements_per_request": (
                round(statistics.mean(self.statements), 1) if self.statements else None
            ),
        }


async def measure(
    write: Write,
    client: httpx.AsyncClient,
    *,
    requests: int,
    concurrency: int,
    start: int,
    cpu: Callable[[], float],
    statements: list[int] | None = None,
    count: Callable[[], int] | None = None,
    profile: cProfile.Profile | None = None,
    spy: Callable[[str], Callable[[], None]] | None = None,
) -> Measured:
    prepared: list[Any] = [None] * requests
    if write.setup is not None:
        for k in range(requests):
            prepared[k] = await write.setup(client, start + k)
    latencies: list[float] = []
    queue = iter(range(requests))

    async def worker() -> None:
        for k in queue:
            begun = time.perf_counter()
            before = count() if count else 0
            await write.call(client, start + k, prepared[k])
            latencies.append(1000 * (time.perf_counter() - begun))
            if count is not None and statements is not None and concurrency == 1:
                statements.append(count() - before)

    cpu_before, begun = cpu(), time.perf_counter()
    stop_spy = spy(write.name) if spy is not None else None
    if profile is not None:
        profile.enable()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if profile is not None:
        profile.disable()
    if stop_spy is not None:
        stop_spy()
    return Measured(
        write.name,
        requests,
        time.perf_counter() - begun,
        latencies,
        cpu() - cpu_before,
        statements or [],
    )


async def drive(
    client: httpx.AsyncClient,
    selected: list[Write],
    args: argparse.Namespace,
    cpu: Callable[[], float],
    **options: Any,
) -> list[dict[str, Any]]:
    rows = []
    start = 0
    for write in selected:
        if args.warmup:
            await measure(write, client, requests=args.warmup, concurrency=1, start=start, cpu=cpu)
            start += args.warmup
        statements: list[int] = []
        result = await measure(
            write,
            client,
            requests=args.requests,
            concurrency=args.concurrency,
            start=start,
            cpu=cpu,
            statements=statements,
            **options,
        )
        start += args.requests
        row = result.row()
        rows.append(row)
        console.print(
            f"  {row['write']:<24} {row['rps']:>7.1f} req/s  p50 {row['p50_ms']:7.2f} ms  "
            f"p99 {row['p99_ms']:7.2f} ms  CPU {row['cpu_ms_per_request']:6.2f} ms/req"
            + (
                f"  {row['statements_per_request']} statements/req"
                if row["statements_per_request"] is not None
                else ""
            ),
            markup=False,
        )
    return rows


async def run_server(args: argparse.Namespace, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    dsn = manifest["database_url"]
    port = free_port(args.port)
    work = Path(tempfile.mkdtemp(prefix="fundline-writes-"))
    argv = [str(Path(sys.executable).parent / "fundline"), "serve", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    targets = await load_targets(dsn, manifest, needed(args))
    with server("fundline", argv, serve_env(dsn), port, work / "fundline.log") as proc:
        tokens = get_tokens(base, manifest)
        for t in targets:
            t.bearer = tokens[t.partner_id]
        selected = pick(args, targets)
        limits = httpx.Limits(max_connections=args.concurrency + 2)
        spy = functools.partial(py_spy, proc.pid, args.py_spy) if args.py_spy else None
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
            return await drive(
                client, selected, args, functools.partial(cpu_seconds, proc.pid), spy=spy
            )


def py_spy(pid: int, folder: Path, name: str) -> Callable[[], None]:
    """Sample ``pid`` with py-spy until the returned function is called; the profile goes to
    ``folder/<name>.pyspy.txt`` (``python -m bench.profile`` summarizes it)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / ("".join(c if c.isalnum() else "-" for c in name) + ".pyspy.txt")
    argv = [
        str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--rate", "200",
        "--threads", "--nonblocking", "--format", "raw", "--output", str(out),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # py-spy attaches

    def stop() -> None:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        console.print(f"  profile: {out}", markup=False)

    return stop


async def run_in_process(
    args: argparse.Namespace, manifest: dict[str, Any]
) -> list[dict[str, Any]]:
    from fundline.app import create_app

    dsn = manifest["database_url"]
    targets = await load_targets(dsn, manifest, needed(args))
    app = create_app(production_settings(dsn))
    seen = record_statements(app)
    # CPU time only: waiting for PostgreSQL is not what a profile of the server looks for.
    profile = cProfile.Profile(time.process_time) if args.profile else None
    try:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://fundline") as client,
        ):
            tokens: dict[str, str] = {}
            for partner in manifest["partners"]:
                response = await client.post(
                    "/v1/auth/token",
                    headers={"x-monite-version": VERSION},
                    json={
                        "grant_type": "client_credentials",
                        "client_id": partner["client_id"],
                        "client_secret": manifest["client_secret"],
                    },
                )
                tokens[partner["partner_id"]] = _check(response, 200).json()["access_token"]
            for t in targets:
                t.bearer = tokens[t.partner_id]
            rows = await drive(
                client,
                pick(args, targets),
                args,
                time.process_time,
                count=lambda: len(seen),
                profile=profile,
            )
            if args.show_statements:
                seen.clear()
                for write in pick(args, targets):
                    prepared = await write.setup(client, 10_000) if write.setup else None
                    seen.clear()
                    await write.call(client, 10_000, prepared)
                    console.print(f"\n{write.name}: {len(seen)} statements")
                    for sql in seen:
                        console.print("   ", sql[:160], markup=False)
    finally:
        Prepared._run = _PREPARED_RUN  # type: ignore[method-assign]
        statements.send = _SEND
    if profile is not None:
        profile.dump_stats(args.profile)
        console.print(f"profile: {args.profile}")
    return rows


_PREPARED_RUN = Prepared._run
_SEND = statements.send


def record_statements(app: Any) -> list[str]:
    """Every statement ``app`` sends from now on, as it is sent: SQLAlchemy's (with each
    transaction's ``BEGIN`` and its end) and ``kit.statements``' reads and writes, which go to
    the driver past SQLAlchemy's events."""
    from sqlalchemy import event

    seen: list[str] = []
    engine = app.state.db.engine.sync_engine

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    for name in ("begin", "commit", "rollback"):
        event.listen(engine, name, lambda _conn, name=name: seen.append(name.upper()))

    async def run(self: Prepared, conn: Any, values: Any) -> Any:
        compiled, rows = await _PREPARED_RUN(self, conn, values)
        seen.append(" ".join(compiled.sql.split()))
        return compiled, rows

    async def send(driver: Any, written: Any, columns: Any) -> int:
        seen.append(written.sql)
        return await _SEND(driver, written, columns)

    Prepared._run = run  # type: ignore[method-assign]
    statements.send = send
    return seen


def needed(args: argparse.Namespace) -> int:
    return 2 * (int(args.requests) + int(args.warmup)) + 10


def pick(args: argparse.Namespace, targets: list[Target]) -> list[Write]:
    every = writes(targets, confirm_amount=args.confirm_amount)
    return [w for w in every if not args.only or any(o in w.name for o in args.only)]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.writes", description=__doc__)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=200, help="measured, per write")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured, per write")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--only", nargs="*", help="writes whose name contains one of these")
    parser.add_argument("--confirm-amount", type=int, help="requested_amount of each confirmed")
    parser.add_argument("--in-process", action="store_true", help="serve the app in process")
    parser.add_argument("--profile", type=Path, help="with --in-process: a cProfile file")
    parser.add_argument(
        "--show-statements", action="store_true", help="with --in-process: list one request's SQL"
    )
    parser.add_argument("--py-spy", type=Path, help="a folder for py-spy profiles of each write")
    parser.add_argument("--port", type=int)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    manifest = json.loads(args.manifest.read_text())
    asyncio.run(settle_outbox(manifest["database_url"]))
    mode = "in process" if args.in_process else "fundline serve, one process"
    console.print(
        f"writes: {args.manifest.name}, {mode}, {args.requests} requests each, "
        f"{args.concurrency} at a time",
        markup=False,
    )
    run = run_in_process if args.in_process else run_server
    rows = asyncio.run(run(args, manifest))
    console.print(json.dumps(rows, indent=2), markup=False)


if __name__ == "__main__":
    main()
