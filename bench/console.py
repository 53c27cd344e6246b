"""Time the lender console's pages on a seeded book: p50 and p95 of each page's latency.

    python -m bench.console --manifest bench/results/seed-1000000.json
    python -m bench.console --invoices 1000000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/fundline_bench_1m   (seeds first)

Uses the book of ``bench/seed.py`` (seeding it first when the manifest is missing, or with
``--seed``), starts ``fundline serve`` on it as ``bench/run`` does (production mode, one
process, the embedded worker), makes an operator key with ``fundline operator create-key``,
signs in, and GETs each console page one request at a time over one keep-alive connection:
``--warmup`` requests first, then ``--requests`` timed ones. A page that answers 404 is not
built on this branch yet and is skipped (and said so); any other answer but 200 is a failure.

The first request of a page is reported apart: the portfolio computes its figures on it
(``console/portfolio.py`` keeps the figures of a book that slow and computes them again in
the background). Once those are a minute old the portfolio is timed again, a request every
40 ms, while the background computation runs (``--no-refresh`` skips the wait). In process,
on the same database, it also times each of the portfolio's
aggregates and ``lending.ledger.reconcile`` (what the reconciliation page runs: it reads
every funded invoice).

Writes ``bench/results/<timestamp>-<invoices>-console.json`` and appends a table to the
"Lender console" section of ``docs/performance.md`` (``--no-doc`` to skip).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from rich.console import Console

from bench.load import (
    RESULTS,
    append_to_section,
    free_port,
    git_revision,
    host_cpu,
    machine,
    other_benchmarks,
    postgres_version,
    server,
)
from bench.serving import serve_env

console = Console(highlight=False, soft_wrap=True)
SECTION = "## Lender console"
# The portfolio keeps slow figures this long (``portfolio.Snapshots.max_age``), and a second.
REFRESH_AFTER = 61.0
PAGES = (
    "/lender/portfolio",
    "/lender/portfolio/funnel.csv",
    "/lender/portfolio/exposures.csv",
    "/lender/queue",
    "/lender/businesses",
    "/lender/servicing",
    "/lender/reconciliation",
    "/lender/audit",
)


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0 … 1) of ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


# --- the book ---------------------------------------------------------------------------------


async def invoice_count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM financing_invoices"))
    finally:
        await conn.close()


def ensure_book(args: argparse.Namespace) -> dict[str, Any]:
    """The manifest of the seeded book: seeded now when asked to or when there is none."""
    manifest: Path = args.manifest or RESULTS / f"seed-{args.invoices}.json"
    if args.seed or not manifest.exists():
        if not args.database_url:
            raise SystemExit(f"no manifest at {manifest}: give --database-url to seed one")
        console.print(f"seeding {args.invoices:,} financing invoices into {args.database_url}")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.seed",
                "--invoices",
                str(args.invoices),
                "--database-url",
                args.database_url,
                "--manifest",
                str(manifest),
            ],
            check=True,
        )
    found: dict[str, Any] = json.loads(manifest.read_text())
    count = asyncio.run(invoice_count(found["database_url"]))
    console.print(f"book: {manifest} ({count:,} financing invoices)")
    found["counted_invoices"] = count
    return found


def operator_key(env: dict[str, str]) -> str:
    fundline = str(Path(sys.executable).with_name("fundline"))
    done = subprocess.run(
        [fundline, "operator", "create-key", "--name", "bench-console"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    key: str = json.loads(done.stdout.strip().splitlines()[-1])["operator_key"]
    return key


def sign_in(client: httpx.Client, key: str) -> None:
    """The console's cookie is ``Secure``: httpx keeps it from plain http, so it is sent by hand
    (the server is on 127.0.0.1 without TLS)."""
    response = client.post("/lender/sign-in", data={"key": key, "next": "/lender/audit"})
    if response.status_code != 303 or "fundline_console" not in response.cookies:
        raise SystemExit(f"sign-in failed: {response.status_code} {response.text[:200]}")
    client.headers["cookie"] = f"fundline_console={response.cookies['fundline_console']}"


# --- timing -----------------------------------------------------------------------------------


def across_refresh(
    client: httpx.Client, path: str, first_at: float, requests: int, pause: float
) -> dict[str, Any]:
    """The portfolio's latency while its kept figures are computed again: past their minute,
    the first request starts the background computation and the next ones, ``pause``
    seconds apart, are served meanwhile."""
    wait = first_at + REFRESH_AFTER - time.monotonic()
    if wait > 0:
        console.print(f"  waiting {wait:.0f} s for the kept figures to age")
        time.sleep(wait)
    busy_before = host_cpu()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
        time.sleep(pause)
    busy_after = host_cpu()
    return {
        "path": f"{path} (across a refresh)",
        "status": 200,
        "first_ms": times[0],
        "requests": requests,
        "p50_ms": statistics.median(times),
        "p95_ms": percentile(times, 0.95),
        "max_ms": max(times),
        "machine_busy": (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1]),
    }


def time_page(client: httpx.Client, path: str, warmup: int, requests: int) -> dict[str, Any]:
    started = time.perf_counter()
    first = client.get(path)
    first_ms = (time.perf_counter() - started) * 1000
    row: dict[str, Any] = {"path": path, "status": first.status_code, "first_ms": first_ms}
    if first.status_code != 200:
        return row
    for _ in range(warmup):
        client.get(path)
    busy_before = host_cpu()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            row["status"] = response.status_code
            return row
    busy_after = host_cpu()
    row |= {
        "requests": requests,
        "p50_ms": statistics.median(times),
        "p95_ms": percentile(times, 0.95),
        "max_ms": max(times),
        "bytes": len(first.content),
        "machine_busy": (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1]),
    }
    return row


async def in_process(dsn: str, currency: str, *, reconcile: bool) -> dict[str, Any]:
    """Each portfolio aggregate's time (median of 3), and ``ledger.reconcile``'s, in process."""
    from fundline.console import portfolio
    from fundline.kit import clock
    from fundline.kit.db import Database
    from fundline.lending import ledger

    db = Database("postgresql+asyncpg://" + dsn.removeprefix("postgresql://"))
    result: dict[str, Any] = {}
    try:
        steps = {
            "outstanding by month": lambda s: portfolio.outstanding_by_month(
                s, currency, clock.now()
            ),
            "exposures and outstanding": lambda s: portfolio.exposures(s, currency),
            "totals": lambda s: portfolio.totals(s, currency, outstanding=0, owing_invoices=0),
            "funnel": lambda s: portfolio.funnel(s, currency),
            "aging": lambda s: portfolio.aging(s, currency, clock.today()),
            "all (portfolio.compute)": lambda s: portfolio.compute(s, currency),
        }
        timings: dict[str, float] = {}
        async with db.read_session() as session:
            for name, step in steps.items():
                runs = []
                for _ in range(3):
                    started = time.perf_counter()
                    await step(session)  # type: ignore[no-untyped-call]
                    runs.append((time.perf_counter() - started) * 1000)
                timings[name] = statistics.median(runs)
                console.print(f"  portfolio {name:<28} {timings[name]:9.1f} ms")
        result["portfolio_ms"] = timings
        if reconcile:
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            async with db.read_session() as session:
                differences = await ledger.reconcile(session)
            seconds = time.perf_counter() - started
            rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            result["reconcile"] = {
                "seconds": seconds,
                "differences": len(differences),
                "peak_rss_growth_mb": (rss_after - rss_before) / 1024,
            }
            console.print(
                f"  ledger.reconcile: {seconds:.1f} s, {len(differences)} differences, "
                f"peak RSS +{(rss_after - rss_before) / 1024:.0f} MB"
            )
    finally:
        await db.engine.dispose()
    return result


# --- the report -------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"### {report['started_at'][:16].replace('T', ' ')} UTC — console, "
        f"{report['invoices']:,} financing invoices, {m['cpus']} cores",
        "",
        f"{m['cpu_model']}, {m['memory_gb']} GB; Fundline {report['revision']}, one process; "
        f"PostgreSQL {report['postgres']}; one request at a time, {report['warmup']} warm-up "
        f"then {report['requests']} timed requests per page.",
        "",
        "| page | status | first ms | p50 ms | p95 ms | max ms | busy |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for row in report["pages"]:
        if row["status"] == 404:
            lines.append(f"| `{row['path']}` | 404: not on this branch, skipped | | | | | |")
        elif "p50_ms" not in row:
            lines.append(f"| `{row['path']}` | {row['status']}: failed | | | | | |")
        else:
            lines.append(
                f"| `{row['path']}` | 200 | {row['first_ms']:,.0f} | {row['p50_ms']:.1f} | "
                f"{row['p95_ms']:.1f} | {row['max_ms']:.1f} | {row['machine_busy']:.0%} |"
            )
    timings = report["in_process"].get("portfolio_ms", {})
    if timings:
        lines += [
            "",
            "The portfolio's aggregates in process (median of 3, ms): "
            + ", ".join(f"{name} {ms:,.0f}" for name, ms in timings.items())
            + ".",
        ]
    found = report["in_process"].get("reconcile")
    if found:
        lines += [
            "",
            f"`ledger.reconcile` (the reconciliation page's work) in process: "
            f"{found['seconds']:.1f} s, {found['differences']} differences, peak RSS "
            f"+{found['peak_rss_growth_mb']:,.0f} MB.",
        ]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> dict[str, Any]:
    book = ensure_book(args)
    dsn = book["database_url"]
    started = datetime.now(UTC)
    others = other_benchmarks()
    if others:
        console.print(
            f"warning: other benchmarks are running (pids {others}): figures will be high"
        )
    env = serve_env(dsn)
    port = free_port(args.port)
    work = Path(tempfile.mkdtemp(prefix="fundline-bench-console-"))
    argv = [str(Path(sys.executable).with_name("fundline")), "serve", "--port", str(port)]
    if not args.worker:
        argv.append("--no-worker")
    pages = []
    with server("fundline", argv, env, port, work / "fundline.log"):
        key = operator_key(env)  # after serve: its start applied the migrations
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            sign_in(client, key)
            first_at = time.monotonic()
            for path in args.pages or PAGES:
                row = time_page(client, path, args.warmup, args.requests)
                pages.append(row)
                if path == "/lender/portfolio" and row["status"] == 200 and args.refresh:
                    pages.append(across_refresh(client, path, first_at, args.requests, 0.04))
                    console.print(
                        f"  {path} across a refresh: p50 {pages[-1]['p50_ms']:.1f} ms, "
                        f"p95 {pages[-1]['p95_ms']:.1f} ms, max {pages[-1]['max_ms']:.1f} ms"
                    )
                if row["status"] == 404:
                    console.print(f"  {path:<34} 404: not built on this branch, skipped")
                elif "p50_ms" not in row:
                    console.print(f"  {path:<34} failed: {row['status']}")
                else:
                    console.print(
                        f"  {path:<34} first {row['first_ms']:8.1f} ms  p50 {row['p50_ms']:7.1f} "
                        f"ms  p95 {row['p95_ms']:7.1f} ms  max {row['max_ms']:7.1f} ms  "
                        f"busy {row['machine_busy']:.0%}"
                    )
    report = {
        "started_at": started.isoformat(),
        "revision": git_revision(),
        "machine": machine(),
        "postgres": postgres_version(dsn),
        "invoices": book["counted_invoices"],
        "warmup": args.warmup,
        "requests": args.requests,
        "worker": args.worker,
        "other_benchmarks_running": others,
        "pages": pages,
        "in_process": asyncio.run(in_process(dsn, args.currency, reconcile=args.reconcile)),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"{stamp}-{book['counted_invoices']}-console.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    if not args.no_doc:
        append_to_section(SECTION, text)
    console.print("\n" + text + f"\nresults: {out}", markup=False)
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.console", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--manifest", type=Path, help="default: bench/results/seed-<invoices>.json")
    parser.add_argument("--invoices", type=int, default=1_000_000, help="to seed (and find)")
    parser.add_argument("--database-url", help="where to seed when there is no manifest")
    parser.add_argument("--seed", action="store_true", help="seed again even with a manifest")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first")
    parser.add_argument("--currency", default="USD", help="of the in-process portfolio timings")
    parser.add_argument("--pages", nargs="*", help=f"paths to time (default: {' '.join(PAGES)})")
    parser.add_argument("--port", type=int, help="Fundline's port (default: a free one)")
    parser.add_argument("--no-worker", dest="worker", action="store_false")
    parser.add_argument(
        "--no-reconcile", dest="reconcile", action="store_false", help="skip ledger.reconcile"
    )
    parser.add_argument(
        "--no-refresh",
        dest="refresh",
        action="store_false",
        help="skip timing the portfolio while its kept figures are computed again (waits 61 s)",
    )
    parser.add_argument("--no-doc", action="store_true", help="do not append to performance.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
