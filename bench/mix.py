"""A partner day at a fixed rate: how many partners at Monite's 30 requests/s one machine serves.

    python -m bench.mix --manifest bench/results/seed-100000.json                 # 1 process
    python -m bench.mix --manifest ... --workers 1 2 --partners 10 20 30 40 50 60
    python -m bench.mix --manifest ... --scenario request-financing --rate 20 --duration 30

Starts ``fundline serve --workers N`` on the seeded database as ``bench/run`` does (production
mode, log level WARNING, the embedded worker unless ``--no-worker``, rate limits on and raised
far above the load),
with its rate-limit windows in Redis (``--redis``, db 3 by default), then plays each step's
partners for ``--warmup`` + ``--duration`` seconds and steps up while the step passes (p99 ≤
``--p99`` ms and no errors).

The load is open-loop, as wrk2's: each partner sends a request every 1/30 s (its phase drawn
at random), whether or not the earlier ones were answered, and a request's latency runs from
its *scheduled* start. A server that falls behind cannot hide its queue by slowing the client
down ("coordinated omission"). Each partner's requests follow ``CYCLE``: 20 requests, in which
a counterpart is created, two invoices are created and issued, their financing is requested
and then confirmed in Connect, between reads of financing invoices, offers and receivables.
Chained requests use the ids the server returned, and wait for the request they depend on
(that wait counts in their latency).

The partners (``mix partner 000``…) are made once per database by direct inserts (not
measured): a partner, its API client, and ``ENTITIES_PER_PARTNER`` entities copied from seeded
ones, each onboarded as the seed's are (a business and a CURRENT offer with the production
policy's plans). Their books start empty and fill as the mix runs.

``--scenario request-financing`` sends only ``POST /v1/financing_invoices`` with 10 fresh
receivables of the seed's hot entities (``bench.load.fresh_batches``) at ``--rate`` requests
a second, and reports latency from the scheduled start: the fixed-rate measurement behind
the target "p99 ≤ 50 ms at half the saturated rate".

``bench/mix_partners.py`` makes the partners, ``bench/mix_day.py`` plays their day,
``bench/client.py`` is the HTTP client; ``--generator-only`` plays the steps against
``bench/fake_api.py`` to measure the generator by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import uvloop

from bench.client import Client
from bench.load import (
    ROOT,
    append_to_section,
    cpu_seconds,
    free_port,
    fresh_batches,
    host_cpu,
    server,
    settle_outbox,
)
from bench.mix_day import RATE_PER_PARTNER, Clock, Day, Record, RequestFailed, drain, play_step
from bench.mix_partners import (
    ENTITIES_PER_PARTNER,
    VERSION,
    MixEntity,
    MixPartner,
    ensure_partners,
    sign_in,
)

RESULTS = ROOT / "bench" / "results"
DEFAULT_PARTNERS = (10, 20, 30, 40, 50, 60, 70, 80, 100)
DEFAULT_REDIS = "redis://127.0.0.1:6379/3"
SECTION = "## Partner mix"


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def server_cpu(pid: int) -> float:
    """CPU seconds of a server and of its children (the processes of ``--workers N``)."""
    return cpu_seconds(pid) + sum(process_cpus(pid).values())


def process_cpus(pid: int) -> dict[int, float]:
    """CPU seconds of each child of the server (its ``--workers N`` processes; none with one)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return {}
    return {
        int(c): cpu_seconds(int(c))
        for c in children
        if Path(f"/proc/{c}").exists() and not _is_resource_tracker(int(c))
    }


def _is_resource_tracker(pid: int) -> bool:
    """multiprocessing's helper process, which the supervisor's ``spawn`` starts beside them."""
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def cpu_split(before: dict[int, float], after: dict[int, float]) -> list[float]:
    """Each server process's share of their CPU over a step, largest first ([] with one): an
    uneven split means one process queues while another idles."""
    used = [after[pid] - before[pid] for pid in after if pid in before]
    total = sum(used)
    return sorted((round(u / total, 2) for u in used), reverse=True) if total > 0 else []


def server_env(dsn: str, redis_url: str | None, workers: int) -> dict[str, str]:
    env = {
        # One host's PostgreSQL budget, whatever its number of processes: Fundline's default
        # pools (20 + 10 overflow, 51 connections at most) shared between them.
        "FUNDLINE_DATABASE_POOL_SIZE": str(max(5, 20 // workers)),
        "FUNDLINE_DATABASE_MAX_OVERFLOW": str(10 // workers),
        **os.environ,
        "FUNDLINE_MODE": "production",
        "FUNDLINE_DATABASE_URL": "postgresql+asyncpg://" + dsn.removeprefix("postgresql://"),
        "FUNDLINE_SECRET_KEY": secrets.token_urlsafe(48),
        # On (every request counts in its windows), never refusing: the schedule is the limit.
        "FUNDLINE_RATE_LIMIT_PER_SECOND": "1000000",
        "FUNDLINE_AUTH_RATE_LIMIT_PER_SECOND": "1000000",
        "FUNDLINE_LOG_LEVEL": "WARNING",
        "FUNDLINE_REDIS_KEY_PREFIX": "fundline-bench-mix",
    }
    env.pop("FUNDLINE_POLICY_FILE", None)
    env.pop("FUNDLINE_REDIS_URL", None)
    if redis_url:
        env["FUNDLINE_REDIS_URL"] = redis_url
    return env


async def wait_for_processes(port: int, workers: int, *, seconds: float = 90) -> None:
    """Until ``workers`` distinct server processes have answered (a process that starts late
    would otherwise be measured while it warms up)."""
    if workers == 1:
        return
    seen: set[bytes] = set()
    deadline = time.monotonic() + seconds
    while len(seen) < workers:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(seen)} of {workers} server processes answered")
        client = Client("127.0.0.1", port)  # a new connection each time: any process takes it
        _, text = await client.request("GET", "/metrics")
        client.close()
        for line in text.splitlines():
            if line.startswith(b"fundline_server_process_info{"):
                seen.add(line)
        await asyncio.sleep(0.05)


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()]}


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


# --- the runs ----------------------------------------------------------------------------------


def run_mix(args: argparse.Namespace, manifest: dict[str, Any], work: Path) -> dict[str, Any]:
    dsn = manifest["database_url"]
    most = max(args.partners)
    say(f"mix: {most} partners at most, {ENTITIES_PER_PARTNER} entities each; logs in {work}")
    started = time.monotonic()
    partners = asyncio.run(ensure_partners(dsn, manifest, most))
    say(f"partners ready in {time.monotonic() - started:.1f} s")
    runs = []
    for workers in args.workers:
        asyncio.run(settle_outbox(dsn))
        port = free_port(args.port)
        argv = [str(Path(sys.executable).parent / "fundline"), "serve", "--port", str(port)]
        argv += ["--workers", str(workers)] + (["--no-worker"] if args.no_worker else [])
        env = server_env(dsn, None if args.no_redis else args.redis, workers)
        log = work / f"fundline-{workers}.log"
        steps: list[dict[str, Any]] = []
        with server("fundline", argv, env, port, log) as proc:
            uvloop.run(wait_for_processes(port, workers))
            uvloop.run(_sign_in(port, partners))
            for count in sorted(args.partners):
                step = measure_step(args, port, proc.pid, partners[:count], dsn=dsn, seed=count)
                step["workers"] = workers
                steps.append(step)
                say(step_line(step))
                if not step["passed"] and not args.keep_going:
                    break
                time.sleep(2)  # let the server's queues settle before the next step
        passed = [s["partners"] for s in steps if s["passed"]]
        runs.append({"workers": workers, "steps": steps, "most_partners": max(passed, default=0)})
    return {"kind": "mix", "runs": runs}


async def _sign_in(port: int, partners: Sequence[MixPartner]) -> None:
    client = Client("127.0.0.1", port)
    try:
        await sign_in(client, partners)
    finally:
        client.close()


def measure_step(
    args: argparse.Namespace,
    port: int,
    pid: int,
    partners: Sequence[MixPartner],
    *,
    dsn: str,
    seed: int,
) -> dict[str, Any]:
    pg_before = asyncio.run(postgres_cpu(dsn))
    cpu_before, host_before = server_cpu(pid), host_cpu()
    processes_before = process_cpus(pid)
    record, generator_cpu, seconds = uvloop.run(
        play_step(port, partners, warmup=args.warmup, duration=args.duration, seed=seed)
    )
    # The server's and PostgreSQL's CPU over the whole step (warm-up included), per request
    # sent in it.
    cpu = server_cpu(pid) - cpu_before
    split = cpu_split(processes_before, process_cpus(pid))
    host_after = host_cpu()
    pg_after = asyncio.run(postgres_cpu(dsn))
    pg = _difference(pg_before, pg_after)
    summary = record.summary(seconds)
    sent_in_step = max(1.0, summary["requests"] * (args.warmup + args.duration) / args.duration)
    busy = (host_after[0] - host_before[0]) / max(1, host_after[1] - host_before[1])
    per_request = {
        "server": 1000 * cpu / sent_in_step,
        "postgres": None if pg is None else 1000 * pg / sent_in_step,
        "generator": 1000 * generator_cpu / max(1, summary["requests"]),
    }
    # The partners whose requests would take every core's whole time: the p99 target is met
    # well below it, but unlike latency it hardly moves with what else the machine runs.
    known = [v for v in per_request.values() if v is not None]
    cpu_bound = (os.cpu_count() or 1) * 1000 / sum(known) / RATE_PER_PARTNER
    return {
        "partners": len(partners),
        "offered_rps": round(len(partners) * RATE_PER_PARTNER, 1),
        **summary,
        "server_cpu_ms_per_request": round(per_request["server"], 3),
        "server_cpu_split": split,
        "postgres_cpu_ms_per_request": _rounded(per_request["postgres"]),
        "generator_cpu_ms_per_request": round(per_request["generator"], 3),
        "generator_cpu_share": round(generator_cpu / seconds, 2),
        "cpu_bound_partners": round(cpu_bound, 1) if pg is not None else None,
        "machine_busy": round(busy, 2),
        "passed": summary["errors"] == 0
        and summary["skipped"] == 0
        and summary["p99_ms"] <= args.p99,
    }


async def postgres_cpu(dsn: str) -> dict[int, float] | None:
    """CPU seconds of each PostgreSQL backend connected to the benchmark's database (``None``
    when PostgreSQL has no connection to spare for the question: the figure is then not
    known, and the run goes on)."""
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.TooManyConnectionsError:
        return None
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    found = {}
    for row in rows:
        try:
            found[row["pid"]] = cpu_seconds(row["pid"])
        except OSError:
            continue  # gone meanwhile
    return found


def _difference(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
    """CPU seconds the backends spent between two readings (new backends from zero)."""
    if before is None or after is None:
        return None
    return sum(seconds - before.get(backend, 0.0) for backend, seconds in after.items())


def _shown(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _split(step: dict[str, Any]) -> str:
    shares = step.get("server_cpu_split") or []
    return ", by process " + " / ".join(f"{share:.0%}" for share in shares) if shares else ""


def step_line(step: dict[str, Any]) -> str:
    verdict = "ok" if step["passed"] else "FAIL"
    line = (
        f"  {step['workers']} process(es), {step['partners']:>3} partners: offered "
        f"{step['offered_rps']:.0f}/s, achieved {step['achieved_rps']:.0f}/s, p50 "
        f"{step['p50_ms']} ms, p99 {step['p99_ms']} ms, max {step['max_ms']} ms, errors "
        f"{step['errors']}, skipped {step['skipped']}, CPU ms/req server "
        f"{step['server_cpu_ms_per_request']}, PostgreSQL "
        f"{_shown(step['postgres_cpu_ms_per_request'])}, generator "
        f"{step['generator_cpu_ms_per_request']} (CPU-bound at "
        f"{_shown(step['cpu_bound_partners'])} partners), busy {step['machine_busy']:.0%}"
        f"{_split(step)}: {verdict}"
    )
    if step["error_samples"]:
        line += "\n    " + "\n    ".join(step["error_samples"])
    return line


def run_scenario(args: argparse.Namespace, manifest: dict[str, Any], work: Path) -> dict[str, Any]:
    """``POST /v1/financing_invoices`` with 10 fresh receivables at ``--rate`` a second."""
    dsn = manifest["database_url"]
    asyncio.run(settle_outbox(dsn))
    needed = int(args.rate * (args.warmup + args.duration)) + 1
    batches = asyncio.run(fresh_batches(dsn, manifest))
    if len(batches) < needed:
        raise SystemExit(
            f"{len(batches)} fresh batches of 10 receivables left, {needed} needed: seed again"
        )
    port = free_port(args.port)
    workers = args.workers[0]
    argv = [str(Path(sys.executable).parent / "fundline"), "serve", "--port", str(port)]
    argv += ["--workers", str(workers)]
    env = server_env(dsn, args.redis if args.redis_given else None, workers)
    with server("fundline", argv, env, port, work / "fundline.log") as proc:
        uvloop.run(wait_for_processes(port, workers))
        tokens = uvloop.run(_seed_tokens(port, manifest))
        pg_before = asyncio.run(postgres_cpu(dsn))
        cpu_before, host_before = server_cpu(proc.pid), host_cpu()
        record, generator_cpu, seconds = uvloop.run(
            _fixed_rate(port, tokens, batches[:needed], args.rate, args.warmup, args.duration)
        )
        cpu = server_cpu(proc.pid) - cpu_before
        host_after = host_cpu()
        pg_after = asyncio.run(postgres_cpu(dsn))
    pg = _difference(pg_before, pg_after)
    summary = record.summary(seconds)
    busy = (host_after[0] - host_before[0]) / max(1, host_after[1] - host_before[1])
    sent = args.rate * (args.warmup + args.duration)
    step = {
        "scenario": args.scenario,
        "workers": workers,
        "offered_rps": args.rate,
        **summary,
        "server_cpu_ms_per_request": round(1000 * cpu / max(1.0, sent), 3),
        "postgres_cpu_ms_per_request": None if pg is None else _rounded(1000 * pg / max(1.0, sent)),
        "generator_cpu_ms_per_request": round(
            1000 * generator_cpu / max(1, summary["requests"]), 3
        ),
        "machine_busy": round(busy, 2),
    }
    say(
        f"  {args.scenario} at {args.rate:g}/s, {workers} process(es): achieved "
        f"{step['achieved_rps']}/s, p50 {step['p50_ms']} ms, p99 {step['p99_ms']} ms, max "
        f"{step['max_ms']} ms, errors {step['errors']}, CPU ms/req server "
        f"{step['server_cpu_ms_per_request']}, PostgreSQL "
        f"{_shown(step['postgres_cpu_ms_per_request'])}, busy {step['machine_busy']:.0%}"
    )
    for sample in summary["error_samples"]:
        say(f"    {sample}")
    return {"kind": "scenario", "step": step}


async def _seed_tokens(port: int, manifest: dict[str, Any]) -> dict[str, str]:
    client = Client("127.0.0.1", port)
    tokens = {}
    try:
        for partner in manifest["partners"]:
            body = orjson.dumps(
                {
                    "grant_type": "client_credentials",
                    "client_id": partner["client_id"],
                    "client_secret": manifest["client_secret"],
                }
            )
            status, answer = await client.request(
                "POST", "/v1/auth/token", f"x-monite-version: {VERSION}\r\n".encode(), body
            )
            if status != 200:
                raise SystemExit(f"token: {status} {answer[:200]!r}")
            tokens[partner["partner_id"]] = orjson.loads(answer)["access_token"]
    finally:
        client.close()
    return tokens


async def _fixed_rate(
    port: int,
    tokens: dict[str, str],
    batches: Sequence[tuple[str, str, str]],
    rate: float,
    warmup: float,
    duration: float,
) -> tuple[Record, float, float]:
    """Each batch sent at its scheduled time, 1/``rate`` s apart, answered or not."""
    client = Client("127.0.0.1", port, max_connections=1024)
    loop = asyncio.get_running_loop()
    begin = loop.time() + 0.2
    clock = Clock(begin + warmup, begin + warmup + duration)
    record = Record()
    day = Day(client, record, clock)
    cpu_before = 0.0
    for n, (partner, entity, body) in enumerate(batches):
        at = begin + n / rate
        if at >= clock.end:
            break
        if at >= clock.start and not cpu_before:
            cpu_before = time.process_time()
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        headers = (
            f"Authorization: Bearer {tokens[partner]}\r\nx-monite-version: {VERSION}\r\n"
            f"x-monite-entity-id: {entity}\r\n"
        ).encode()
        request = client.prepare("POST", "/v1/financing_invoices", headers, body.encode())

        async def send(request: bytes = request) -> Any:
            status, answer = await client.send(request)
            if status != 201:
                raise RequestFailed(f"{status}: {answer[:200]!r}")

        day.spawn("financing.request_x10", at, send)
    await drain(day, record, seconds=30)
    cpu = time.process_time() - cpu_before
    client.close()
    return record, cpu, duration


def generator_only(args: argparse.Namespace) -> None:
    """The mix's steps against ``bench.fake_api``: what the generator costs by itself."""
    port = free_port(args.port)
    argv = [sys.executable, "-m", "bench.fake_api", "--port", str(port)]
    log = Path(tempfile.mkdtemp(prefix="fundline-mix-")) / "fake_api.log"
    with server("fake api", argv, dict(os.environ), port, log):
        for count in sorted(args.partners):
            entity = MixEntity("-", "-", headers=b"x-fake: 1\r\n")
            partners = [MixPartner(n, "-", [entity]) for n in range(count)]
            record, cpu, seconds = uvloop.run(
                play_step(port, partners, warmup=args.warmup, duration=args.duration, seed=count)
            )
            summary = record.summary(seconds)
            say(
                f"  {count:>3} partners: offered {count * RATE_PER_PARTNER:.0f}/s, achieved "
                f"{summary['achieved_rps']:.0f}/s, errors {summary['errors']}, p99 "
                f"{summary['p99_ms']} ms, generator CPU "
                f"{1000 * cpu / max(1, summary['requests']):.3f} ms/req "
                f"({cpu / seconds:.0%} of a core)"
            )


# --- the report --------------------------------------------------------------------------------


def report_text(report: dict[str, Any]) -> str:
    when = report["started"][:16].replace("T", " ")
    what = "fixed rate" if report["kind"] == "scenario" else "partner mix"
    head = (
        f"### {when} UTC — {what}, {report['invoices']:,} financing invoices\n\n"
        f"Fundline {report['commit']}; {report['machine']['cpus']} cores, load average "
        f"{report['machine']['loadavg'][0]} before; rate limits in "
        f"{'Redis' if report['redis'] else 'process memory'}; "
        f"{'' if report.get('embedded_worker', True) else 'no embedded worker; '}"
        f"{report['warmup']:g} s warm-up "
        f"and {report['duration']:g} s measured per step; open loop, latency from each "
        "request's scheduled start"
    )
    if report["kind"] == "scenario":
        s = report["step"]
        return head + (
            ".\n\n| scenario | processes | offered/s | achieved/s | p50 ms | p99 ms | max ms | "
            "errors | CPU ms/req: server | PostgreSQL | busy |\n"
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"
            f"| {s['scenario']} | {s['workers']} | {s['offered_rps']:g} | {s['achieved_rps']} | "
            f"{s['p50_ms']} | {s['p99_ms']} | {s['max_ms']} | {s['errors']} | "
            f"{s['server_cpu_ms_per_request']} | {_shown(s['postgres_cpu_ms_per_request'])} | "
            f"{s['machine_busy']:.0%} |\n"
        )
    lines = [
        head + "; 30 requests/s per partner.\n",
        "| processes | partners | offered/s | achieved/s | p50 ms | p99 ms | max ms | errors | "
        "CPU ms/req: server | PostgreSQL | generator | CPU-bound partners | busy | "
        "server CPU by process | p99 ≤ 100 ms, no errors |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for run in report["runs"]:
        for s in run["steps"]:
            lines.append(
                f"| {s['workers']} | {s['partners']} | {s['offered_rps']:.0f} | "
                f"{s['achieved_rps']:.0f} | {s['p50_ms']} | {s['p99_ms']} | {s['max_ms']} | "
                f"{s['errors'] + s['skipped']} | {s['server_cpu_ms_per_request']} | "
                f"{_shown(s['postgres_cpu_ms_per_request'])} | "
                f"{s['generator_cpu_ms_per_request']} | {_shown(s['cpu_bound_partners'])} | "
                f"{s['machine_busy']:.0%} | "
                f"{' / '.join(f'{share:.0%}' for share in s.get('server_cpu_split', [])) or '—'} | "
                f"{'yes' if s['passed'] else 'no'} |"
            )
    most = {r["workers"]: r["most_partners"] for r in report["runs"]}
    ratio = f"; 2 ÷ 1: {most[2] / most[1]:.2f}" if most.get(1) and 2 in most else ""
    served = ", ".join(f"{n} with {w} process{'es' if w > 1 else ''}" for w, n in most.items())
    lines += ["", f"Most partners served: {served}{ratio}."]
    # Where the time goes: each kind of request at the first run's largest passing step.
    steps = report["runs"][0]["steps"]
    shown = next((s for s in reversed(steps) if s["passed"]), steps[0])
    kinds = ", ".join(f"{kind} {v['p50_ms']}/{v['p99_ms']}" for kind, v in shown["by_kind"].items())
    lines += [
        "",
        f"p50/p99 ms by request at {shown['partners']} partners, "
        f"{shown['workers']} process{'es' if shown['workers'] > 1 else ''}: {kinds}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mix", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--manifest", type=Path, help="bench/results/seed-N.json (required)")
    parser.add_argument(
        "--partners", type=int, nargs="+", default=list(DEFAULT_PARTNERS),
        help="partner counts to step through, smallest first (stops at the first that fails)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1],
        help="server processes (fundline serve --workers N), each measured in turn",
    )  # fmt: skip
    parser.add_argument("--duration", type=float, default=30, help="measured seconds per step")
    parser.add_argument("--warmup", type=float, default=5, help="unmeasured seconds per step")
    parser.add_argument("--p99", type=float, default=100, help="a step passes below this (ms)")
    parser.add_argument("--keep-going", action="store_true", help="run every step")
    parser.add_argument(
        "--redis", default=None,
        help=f"rate limits in this Redis (default {DEFAULT_REDIS} for the mix; the scenario "
        "keeps them in process memory, as bench/run, unless given)",
    )  # fmt: skip
    parser.add_argument("--no-redis", action="store_true", help="the mix without Redis")
    parser.add_argument(
        "--scenario", choices=["request-financing"], default=None,
        help="one scenario at a fixed --rate instead of the mix",
    )  # fmt: skip
    parser.add_argument("--rate", type=float, default=10, help="--scenario: requests a second")
    parser.add_argument("--port", type=int, default=None, help="Fundline's port (default: free)")
    parser.add_argument("--no-doc", action="store_true", help="do not append to performance.md")
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="serve without the embedded background worker (fundline serve --no-worker)",
    )
    parser.add_argument(
        "--generator-only", action="store_true",
        help="play the --partners steps against bench.fake_api, which answers at once: the "
        "generator's own CPU per request (no database, no Fundline)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.generator_only:
        generator_only(args)
        return
    if args.manifest is None:
        parser.error("--manifest is required")
    args.redis_given = args.redis is not None
    args.redis = args.redis or DEFAULT_REDIS
    manifest = json.loads(args.manifest.read_text())
    work = Path(tempfile.mkdtemp(prefix="fundline-mix-"))
    started = datetime.now(UTC)
    head = {
        "started": started.isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "invoices": manifest["config"]["invoices"],
        "warmup": args.warmup,
        "duration": args.duration,
        "embedded_worker": not args.no_worker,
    }
    if args.scenario:
        report = {**head, "redis": args.redis_given, **run_scenario(args, manifest, work)}
    else:
        report = {**head, "redis": not args.no_redis, **run_mix(args, manifest, work)}
    text = report_text(report)
    say("\n" + text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"{stamp}-mix-{report['invoices']}.json"
    out.write_text(json.dumps(report, indent=2))
    say(f"wrote {out.relative_to(ROOT)}")
    if not args.no_doc:
        append_to_section(SECTION, text)


if __name__ == "__main__":
    main()
