"""Drive Fundline and the ceiling with wrk on a seeded database; report req/s, p50, p99, RSS.

    bench/run --manifest bench/results/seed-100000.json            (or: python -m bench.load)

Starts ``fundline serve`` (one process, production settings, rate limits raised far above the
load, log level WARNING) and ``python -m bench.ceiling`` on the seeded database, gets a token
per partner, checks the ceiling (``bench.ceiling.checks``: for reads the same JSON and
Fundline's statements, for writes the same rows per table and the same response shapes),
then runs each scenario with ``wrk --latency`` through the Lua scripts in ``bench/wrk/``, on
Fundline and then on the ceiling. Only one server is under load at a time. After each write
scenario the database is put back as seeded (``bench.ceiling.restore``), so runs repeat.

Per scenario: req/s, latency p50/p90/p99 (wrk's histogram), the server's peak RSS during the
run (``VmHWM``, reset before each run through ``/proc/<pid>/clear_refs``), its CPU seconds per
request, and how busy the whole machine was (other work on a 2-core box skews everything).
Writes ``bench/results/<timestamp>-<invoices>.json`` and appends a table to
``docs/performance.md``. A Fundline ÷ ceiling ratio above 1 is reported as a fault of the
ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

from bench.ceiling import checks, restore, targets
from bench.profile import summarize
from bench.serving import serve_env

ROOT = Path(__file__).resolve().parents[1]
WRK_DIR = ROOT / "bench" / "wrk"
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "performance.md"
VERSION = "2024-05-25"
LIST = "/v1/financing_invoices"
OFFERS = "/v1/financing_offers"
TOKEN = "/v1/auth/token"
SLOWER = "ceiling slower than Fundline: the ceiling is wrong"
console = Console(highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class Scenario:
    name: str
    script: str  # bench/wrk/<script>.lua
    method: str
    path: str
    targets: str = "hot"  # hot | tokens | batches | confirmations | receivables
    warmup: bool = True
    write: bool = False  # rows compared before measuring, the database restored after

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.name)


SCENARIOS = (
    Scenario("list limit=100", "rotate", "GET", f"{LIST}?limit=100"),
    Scenario("list limit=10", "rotate", "GET", f"{LIST}?limit=10"),
    Scenario("list limit=100 status", "rotate", "GET", f"{LIST}?limit=100&status=PAID"),
    Scenario("list limit=10 status", "rotate", "GET", f"{LIST}?limit=10&status=PAID"),
    Scenario("list pages limit=100", "pages", "GET", f"{LIST}?limit=100"),
    Scenario("offers", "rotate", "GET", OFFERS),
    Scenario("auth token", "rotate", "POST", TOKEN, "tokens", warmup=False),
    Scenario("request financing x10", "once", "POST", LIST, "batches", warmup=False, write=True),
    Scenario(
        "confirm x10", "once", "POST", targets.CONFIRM, "confirmations", warmup=False, write=True
    ),
    Scenario(
        "receivable create+issue",
        "chain",
        "POST",
        targets.RECEIVABLES,
        "receivables",
        warmup=False,
        write=True,
    ),
)


# --- processes ------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of a process, in kB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def reset_peak(pid: int) -> None:
    """Start ``VmHWM`` over from the current RSS (Linux: 5 > clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@contextmanager
def server(
    name: str, argv: list[str], env: dict[str, str], port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, up until the block ends (SIGINT, then SIGKILL after 10 s)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_ready(proc, port, name, log)
            yield proc
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def free_port(port: int | None) -> int:
    """``port`` if nothing listens on it (else exit), or any free port when ``None``."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port or 0))
        except OSError:
            raise SystemExit(f"port {port} is in use (another benchmark?); pick another") from None
        found: int = probe.getsockname()[1]
        return found


def wait_ready(proc: subprocess.Popen[bytes], port: int, name: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}; see {log}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
        except httpx.TransportError:
            time.sleep(0.3)
            continue
        time.sleep(0.5)
        if proc.poll() is not None:  # another process answered on our port
            raise SystemExit(f"{name} exited with {proc.returncode}; see {log}")
        return
    raise SystemExit(f"{name} did not answer on port {port} within 120 s; see {log}")


# --- targets ---------------------------------------------------------------------------------


target_line = targets.line


def get_tokens(base: str, manifest: dict[str, Any]) -> dict[str, str]:
    """A client_credentials token per partner."""
    tokens = {}
    for partner in manifest["partners"]:
        response = httpx.post(
            f"{base}/v1/auth/token",
            headers={"x-monite-version": VERSION},
            json={
                "grant_type": "client_credentials",
                "client_id": partner["client_id"],
                "client_secret": manifest["client_secret"],
            },
            timeout=30,
        )
        response.raise_for_status()
        tokens[partner["partner_id"]] = response.json()["access_token"]
    return tokens


def hot_targets(manifest: dict[str, Any], tokens: dict[str, str]) -> list[tuple[str, str]]:
    """(bearer, entity id) of the hot entities, partners interleaved."""
    return [(tokens[e["partner_id"]], e["entity_id"]) for e in manifest["hot_entities"]]


async def fresh_batches(
    dsn: str, manifest: dict[str, Any], size: int = 10
) -> list[tuple[str, str, str]]:
    """POST bodies: batches of ``size`` issued receivables of one hot entity that are in no
    live financing and due far enough ahead (each batch used once, so always eligible).
    Returns (partner id, entity id, body), entities interleaved."""
    partner_of = {e["entity_id"]: e["partner_id"] for e in manifest["hot_entities"]}
    conn = await restore.connect(dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT r.entity_id::text AS entity_id, r.id::text AS id FROM receivables r
            WHERE r.entity_id = ANY($1::uuid[]) AND r.status = 'issued' AND r.type = 'invoice'
              AND r.due_date >= current_date + 8
              AND NOT EXISTS (SELECT 1 FROM financing_invoices f WHERE f.live_invoice_id = r.id)
            ORDER BY r.entity_id, r.id
            """,
            list(partner_of),
        )
    finally:
        await conn.close()
    by_entity: dict[str, list[str]] = {}
    for row in rows:
        by_entity.setdefault(row["entity_id"], []).append(row["id"])
    columns = [
        (entity, [ids[i : i + size] for i in range(0, len(ids) - size + 1, size)])
        for entity, ids in by_entity.items()
    ]
    batches = []
    # Round-robin over entities, so consecutive requests go to different entities.
    for k in range(max((len(b) for _, b in columns), default=0)):
        for entity, chunks in columns:
            if k < len(chunks):
                body = {"invoices": [{"id": i, "type": "receivable"} for i in chunks[k]]}
                batches.append((partner_of[entity], entity, json.dumps(body)))
    return batches


async def settle_outbox(dsn: str) -> dict[str, int]:
    """Mark the events earlier runs left behind as fanned out, as the delivery worker would
    have (the seed itself writes no events, but each ``request financing`` run records some,
    and a run with ``--no-worker`` or one before the delivery worker existed leaves them
    undispatched). Otherwise the embedded worker of the next run would fan out that backlog
    while the first scenarios are measured. Returns how many events were marked, and how many
    webhook subscriptions the database has (the seed makes none; with any, nothing is
    marked)."""
    conn = await restore.connect(dsn)
    try:
        subscriptions = await conn.fetchval("SELECT count(*) FROM webhook_subscriptions")
        marked = "UPDATE 0"
        if not subscriptions:  # with subscriptions, the events are someone's webhooks
            marked = await conn.execute(
                "UPDATE events SET dispatched_at = created_at WHERE dispatched_at IS NULL"
            )
    finally:
        await conn.close()
    return {"events": int(marked.split()[-1]), "subscriptions": int(subscriptions)}


def token_lines(manifest: dict[str, Any]) -> list[str]:
    return [
        target_line(
            "POST",
            "/v1/auth/token",
            "",
            "",
            json.dumps(
                {
                    "grant_type": "client_credentials",
                    "client_id": p["client_id"],
                    "client_secret": manifest["client_secret"],
                }
            ),
        )
        for p in manifest["partners"]
    ]


# --- measuring --------------------------------------------------------------------------------


class RunFailed(Exception):
    """One scenario could not be measured; the others still are."""


@dataclass
class Settings:
    duration: int
    warmup: int
    connections: int
    threads: int
    timeout: int


def run_wrk(
    scenario: Scenario,
    port: int,
    targets: Path,
    pid: int,
    cfg: Settings,
    work: Path,
    *,
    profile: Path | None = None,
) -> dict[str, Any]:
    env = {
        **os.environ,
        "BENCH_WRK_DIR": str(WRK_DIR),
        "BENCH_TARGETS": str(targets),
        "BENCH_THREADS": str(cfg.threads),
        "BENCH_HOST": f"127.0.0.1:{port}",
        "BENCH_MONITE_VERSION": VERSION,
    }
    url = f"http://127.0.0.1:{port}{LIST}"

    def wrk(seconds: int, out: Path) -> str:
        argv = [
            "wrk", "--latency", f"-t{cfg.threads}", f"-c{cfg.connections}", f"-d{seconds}s",
            f"--timeout={cfg.timeout}s", "-s", str(WRK_DIR / f"{scenario.script}.lua"), url,
        ]  # fmt: skip
        done = subprocess.run(
            argv, env={**env, "BENCH_OUT": str(out)}, capture_output=True, text=True, check=False
        )
        if done.returncode != 0 or not out.exists():
            raise RunFailed(f"wrk failed: {done.stdout} {done.stderr}".strip())
        return done.stdout

    if scenario.warmup and cfg.warmup:
        wrk(cfg.warmup, work / "warmup.json")
    reset_peak(pid)
    cpu_before, host_before = cpu_seconds(pid), host_cpu()
    out = work / "wrk.json"
    spy = None
    if profile is not None:
        # Sampling stops the process for a moment: the profiled run is a little slower.
        spy = subprocess.Popen(
            [
                py_spy(), "record", "--pid", str(pid), "--duration", str(max(1, cfg.duration - 1)),
                "--rate", "100", "--threads", "--nonblocking", "--format", "raw",
                "--output", str(profile),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    text = wrk(cfg.duration, out)
    if spy is not None:
        spy.wait()
    cpu = cpu_seconds(pid) - cpu_before
    host_after = host_cpu()
    if cpu < 0.01 * cfg.duration:
        raise RunFailed(f"the server (pid {pid}) did no work: wrk measured something else")
    memory = proc_status(pid)
    raw = json.loads(out.read_text())
    out.unlink()
    # A single-use script (once.lua) stops when its targets are spent: its rate is over the
    # time they lasted.
    seconds = (raw.get("active_us") or raw["duration_us"]) / 1e6
    requests = raw["requests"]
    latency = raw["latency_us"]
    errors = raw["errors"]
    busy = (host_after[0] - host_before[0]) / max(1, host_after[1] - host_before[1])
    return {
        "requests": requests,
        "rps": round(requests / seconds, 1),
        "p50_ms": latency["p50"] / 1000,
        "p90_ms": latency["p90"] / 1000,
        "p99_ms": latency["p99"] / 1000,
        "max_ms": latency["max"] / 1000,
        "errors": {k: v for k, v in errors.items() if v},
        "rss_peak_mb": round(memory["VmHWM"] / 1024, 1),
        "rss_end_mb": round(memory["VmRSS"] / 1024, 1),
        "server_cpu_ms_per_request": round(1000 * cpu / max(1, requests), 3),
        "server_cpu_share": round(cpu / seconds, 2),
        "machine_busy": round(busy, 2),
        "mb_per_s": round(raw["bytes"] / seconds / 1e6, 1),
        "wrk": text,
        "profile": summarize(profile, top=15) if profile and profile.exists() else None,
    }


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("--py-spy needs py-spy: .venv/bin/pip install py-spy")
    return found


# --- reporting --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(int(memory) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def other_benchmarks() -> list[int]:
    """Pids of other ``bench.load`` and ``bench.webhooks`` runs: they would share the CPU with
    this one."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"bench.load" in argv or b"bench.webhooks" in argv:
            found.append(int(entry.name))
    return found


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def markdown(report: dict[str, Any]) -> str:
    m, seed = report["machine"], report["seed"]
    lines = [
        f"### {report['started_at'][:16].replace('T', ' ')} UTC — "
        f"{seed['invoices']:,} financing invoices, {m['cpus']} cores",
        "",
        f"{m['cpu_model']}, {m['memory_gb']} GB; Fundline {report['revision']}, one process; "
        f"wrk -t{report['settings']['threads']} -c{report['settings']['connections']} "
        f"-d{report['settings']['duration']}s; PostgreSQL {report['postgres']}.",
        "",
        "| scenario | server | req/s | p50 ms | p99 ms | peak RSS MB | CPU ms/req | "
        "÷ ceiling req/s | ÷ ceiling CPU | busy | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for row in report["results"]:
        ratio = f"{row['ratio']:.2f}" if row.get("ratio") is not None else ""
        if ratio and not row["comparable"]:
            ratio += " (errors: not comparable)"
        elif row.get("ratio") is not None and row["ratio"] > 1:
            ratio += " (ceiling wrong)"
        cpu_ratio = f"{row['cpu_ratio']:.2f}" if row.get("cpu_ratio") is not None else ""
        errors = ", ".join(f"{k} {v}" for k, v in row["errors"].items())
        lines.append(
            f"| {row['scenario']} | {row['server']} | {row['rps']:,.0f} | {row['p50_ms']:.1f} | "
            f"{row['p99_ms']:.1f} | {row['rss_peak_mb']:.0f} | "
            f"{row['server_cpu_ms_per_request']:.2f} | {ratio} | {cpu_ratio} | "
            f"{row['machine_busy']:.0%} | "
            f"{errors} |"
        )
    for failure in report["failures"]:
        lines.append(f"| {failure['scenario']} | {failure['server']} | failed |||||||||")
    slower = [
        r["scenario"]
        for r in report["results"]
        if r.get("ratio") is not None and r["ratio"] > 1 and r["comparable"]
    ]
    if slower:
        lines += ["", f"**{', '.join(slower)}: {SLOWER}; those ratios are not results.**"]
    for name, why in report["ceiling_invalid"].items():
        lines += ["", f"**{name}: the ceiling is not valid ({why}): its ratios are not valid.**"]
    return "\n".join(lines) + "\n"


def append_table(text: str) -> None:
    append_to_section("## Results", text)


def append_to_section(section: str, text: str) -> None:
    """``text`` at the end of ``section`` of performance.md (before the next ``## ``
    heading), the section made at the end of the page if there is none."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    doc = DOC.read_text() if DOC.exists() else "# Performance\n"
    if f"\n{section}\n" not in doc:
        doc = doc.rstrip("\n") + f"\n\n{section}\n"
    start = doc.index(f"\n{section}\n") + 1
    end = doc.find("\n## ", start)
    head, tail = (doc, "") if end < 0 else (doc[:end], doc[end:])
    DOC.write_text(head.rstrip("\n") + "\n\n" + text + ("\n" + tail.lstrip("\n") if tail else ""))


# --- the run ----------------------------------------------------------------------------------


def seeded_at(manifest: dict[str, Any]) -> datetime:
    """When the seed finished, in naive UTC: every row written later is a run's."""
    return datetime.fromisoformat(manifest["created_at"]).astimezone(UTC).replace(tzinfo=None)


def read_checks(
    fundline: str,
    ceiling: str,
    env: dict[str, str],
    manifest: dict[str, Any],
    bearer: str,
    entity: str,
) -> dict[str, str]:
    """The read scenarios whose ceiling is not valid, with why: a body that differs, a
    statement Fundline does not run."""
    invalid: dict[str, str] = {}
    headers = {"x-monite-version": VERSION, "authorization": f"Bearer {bearer}",
               "x-monite-entity-id": entity}  # fmt: skip
    for scenario in SCENARIOS:
        if scenario.method == "GET":
            where = checks.same_json(fundline, ceiling, scenario.path, headers)
            if where is None and scenario.script == "pages":
                where = checks.same_next_page(fundline, ceiling, scenario.path, headers)
            if where:
                invalid[scenario.name] = f"JSON differs: {where}"
    credentials = {"grant_type": "client_credentials",
                   "client_id": manifest["partners"][0]["client_id"],
                   "client_secret": manifest["client_secret"]}  # fmt: skip
    answers = [
        httpx.post(f"{base}{TOKEN}", headers={"x-monite-version": VERSION}, json=credentials)
        for base in (fundline, ceiling)
    ]
    if answers[0].status_code != answers[1].status_code:
        invalid["auth token"] = f"status {answers[0].status_code} against {answers[1].status_code}"
    elif where := checks.difference(answers[0].json(), answers[1].json(), shape=True):
        invalid["auth token"] = f"JSON differs: {where}"
    missing = asyncio.run(
        checks.read_statements(
            env, version=VERSION, bearer=bearer, entity=entity, credentials=credentials
        )
    )
    for group, statements in missing.items():
        for sql in statements:
            console.print(f"ceiling statement Fundline does not run:\n  {sql}", markup=False)
        for scenario in SCENARIOS:
            if statements and scenario.name.startswith(group):
                invalid[scenario.name] = "runs a statement Fundline does not"
    for name, why in invalid.items():
        console.print(f"  {name}: ceiling not valid: {why}", markup=False)
    if not invalid:
        console.print("ceiling reads: the same JSON and Fundline's statements")
    return invalid


def write_check(
    dsn: str,
    scenario: Scenario,
    fundline: str,
    ceiling: str,
    fixed: dict[str, list[str] | None],
    tokens: dict[str, str],
    plans: dict[str, str],
    entity_ids: list[str],
) -> str | None:
    """One iteration on each server, on the same data (the database is restored in between):
    ``None`` when both wrote as many rows per table and answered the same statuses and JSON
    shapes, else what differs."""
    source = fixed["batches" if scenario.targets == "confirmations" else scenario.targets] or []
    if not source:
        return "no targets to check with"
    seen = []
    for base in (fundline, ceiling):
        mark = restore.now()
        target = source[0]
        if scenario.targets == "confirmations":
            _, _, bearer, entity, body = targets.parse(target)
            partner = next(p for p, t in tokens.items() if t == bearer)
            target = asyncio.run(
                targets.prepare_confirmations(
                    fundline, VERSION, tokens, [(partner, entity, body)], plans
                )
            )[0]
            time.sleep(11)  # the preparation's row counts reach the statistics first
        answers: list[tuple[int, Any]] = []

        async def act(base: str = base, target: str = target, out: list[Any] = answers) -> None:
            out += await targets.iterate(base, VERSION, target)

        changes = asyncio.run(checks.changes_after(dsn, act))
        asyncio.run(restore.restore(dsn, entity_ids, mark))
        seen.append((answers, changes))
    (f_answers, f_rows), (c_answers, c_rows) = seen
    if [a[0] for a in f_answers] != [a[0] for a in c_answers]:
        return f"statuses {[a[0] for a in f_answers]} against {[a[0] for a in c_answers]}"
    for (_, f_body), (_, c_body) in zip(f_answers, c_answers, strict=True):
        if where := checks.difference(f_body, c_body, shape=True):
            return f"JSON shape differs: {where}"
    if f_rows != c_rows:
        return f"rows differ: fundline {f_rows}, ceiling {c_rows}"
    return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    manifest = json.loads(args.manifest.read_text())
    dsn = manifest["database_url"]
    cfg = Settings(args.duration, args.warmup, args.connections, args.threads, args.timeout)
    selected = [s for s in SCENARIOS if not args.only or any(o in s.name for o in args.only)]
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    invoices = manifest["config"]["invoices"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fundline-bench-"))
    fundline_env = serve_env(dsn)
    port, ceiling_port = free_port(args.port), free_port(args.ceiling_port)
    if port == ceiling_port:
        raise SystemExit("--port and --ceiling-port must differ")
    bin_dir = Path(sys.executable).parent
    fundline_argv = [str(bin_dir / "fundline"), "serve", "--port", str(port)]
    if not args.worker:
        fundline_argv.append("--no-worker")
    ceiling_argv = [
        sys.executable, "-m", "bench.ceiling", "--database-url", dsn, "--port", str(ceiling_port),
    ]  # fmt: skip
    fundline_base = f"http://127.0.0.1:{port}"
    ceiling_base = f"http://127.0.0.1:{ceiling_port}"
    results: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    console.print(f"bench: {args.manifest.name}, {len(selected)} scenarios, logs in {work}")
    others = other_benchmarks()
    if others:
        console.print(f"warning: other benchmarks are running (pids {others}): figures will be low")
    settled = asyncio.run(settle_outbox(dsn))
    if settled["events"]:
        console.print(
            f"marked {settled['events']:,} events left by earlier runs as fanned out "
            "(the seeded database stands for a steady state)"
        )
    if settled["subscriptions"]:
        console.print(
            f"warning: the database has {settled['subscriptions']} webhook subscriptions: "
            "the embedded worker delivers to them during the run"
        )
    entity_ids = [e["entity_id"] for e in manifest["hot_entities"]]
    # Rows earlier runs left (an interrupted one) go first: every run starts from the seed.
    leftovers = asyncio.run(restore.restore(dsn, entity_ids, seeded_at(manifest)))
    if leftovers:
        console.print(f"removed what earlier runs wrote: {leftovers}", markup=False)
    # Fresh receivables for POST are picked before the servers start (and hold connections).
    batches = (
        asyncio.run(fresh_batches(dsn, manifest))
        if any(s.targets in ("batches", "confirmations") for s in selected)
        else []
    )
    plans = asyncio.run(targets.first_plans(dsn, entity_ids))
    with (
        server("fundline", fundline_argv, fundline_env, port, work / "fundline.log") as fl,
        server("ceiling", ceiling_argv, dict(os.environ), ceiling_port, work / "ceiling.log") as ce,
    ):
        tokens = get_tokens(fundline_base, manifest)
        hot = hot_targets(manifest, tokens)
        receivables = asyncio.run(targets.receivable_lines(dsn, manifest, tokens))
        fixed = {
            "hot": None,
            "tokens": token_lines(manifest),
            "batches": [target_line("POST", LIST, tokens[p], e, body) for p, e, body in batches],
            "receivables": receivables,
            "confirmations": [],  # prepared before each server's measurement
        }
        bearer, entity = hot[0]
        invalid = read_checks(fundline_base, ceiling_base, fundline_env, manifest, bearer, entity)
        if any(s.write for s in selected):
            # A backend reports its row counts up to 10 s after its last transaction: the
            # tokens just taken must be counted before the first write is compared.
            time.sleep(11)
        for scenario in (s for s in selected if s.write):
            problem = write_check(
                dsn, scenario, fundline_base, ceiling_base, fixed, tokens, plans, entity_ids
            )
            console.print(f"  {scenario.name}: {problem or 'the same rows on both servers'}")
            if problem:
                invalid[scenario.name] = problem
        for scenario in selected:
            servers = [("fundline", fl.pid, port)]
            if not args.no_ceiling:
                servers.append(("ceiling", ce.pid, ceiling_port))
            for name, pid, target_port in servers:
                mark = restore.now()
                lines = fixed[scenario.targets]
                if lines is None:
                    lines = [target_line("GET", scenario.path, b, e) for b, e in hot]
                if scenario.targets == "confirmations":
                    lines = asyncio.run(
                        targets.prepare_confirmations(
                            fundline_base, VERSION, tokens, batches[: args.confirmations], plans
                        )
                    )
                if not lines:
                    console.print(f"  {scenario.name}: no targets, skipped")
                    break
                path = work / "targets.tsv"
                path.write_text("".join(lines))
                profile = None
                if args.py_spy and name == "fundline":
                    profile = RESULTS / f"{stamp}-{invoices}-{scenario.slug}.pyspy.txt"
                try:
                    row = run_wrk(scenario, target_port, path, pid, cfg, work, profile=profile)
                except RunFailed as exc:
                    console.print(f"  {scenario.name:<24} {name:<8} failed: {exc}", markup=False)
                    failures.append({"scenario": scenario.name, "server": name, "error": str(exc)})
                    continue
                finally:
                    if scenario.write or scenario.targets == "tokens":
                        asyncio.run(restore.restore(dsn, entity_ids, mark))
                row = {"scenario": scenario.name, "server": name, "path": scenario.path, **row}
                row["targets"] = len(lines)
                results.append(row)
                console.print(
                    f"  {scenario.name:<24} {name:<8} {row['rps']:>9,.1f} req/s  "
                    f"p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  "
                    f"CPU {row['server_cpu_ms_per_request']:6.2f} ms/req  "
                    f"RSS {row['rss_peak_mb']:6.1f} MB  busy {row['machine_busy']:.0%}"
                    + (f"  errors {row['errors']}" if row["errors"] else ""),
                    markup=False,
                )
    for row in results:
        if row["server"] == "fundline":
            ceiling_row = next(
                (
                    r
                    for r in results
                    if r["server"] == "ceiling" and r["scenario"] == row["scenario"]
                ),
                None,
            )
            row["ratio"] = row["cpu_ratio"] = None
            row["comparable"] = True
            if ceiling_row:
                row["ratio"] = round(row["rps"] / ceiling_row["rps"], 3)
                row["cpu_ratio"] = round(
                    ceiling_row["server_cpu_ms_per_request"] / row["server_cpu_ms_per_request"], 3
                )
                # An error answers fast: with errors on either side the rates compare nothing.
                row["comparable"] = not (row["errors"] or ceiling_row["errors"])
            if row["ratio"] is not None and row["ratio"] > 1.0 and row["comparable"]:
                console.print(f"warning: {row['scenario']}: {SLOWER}")
    report = {
        "started_at": started.isoformat(),
        "revision": git_revision(),
        "machine": machine(),
        "postgres": postgres_version(dsn),
        "settings": dataclasses.asdict(cfg) | {"worker": args.worker},
        "outbox_settled": settled,
        "other_benchmarks_running": others,
        "seed": manifest["config"] | {"rows": manifest["rows"]},
        "ceiling_invalid": invalid,
        "results": results,
        "failures": failures,
    }
    out = RESULTS / f"{stamp}-{invoices}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    if not args.no_doc:
        append_table(text)
    console.print("\n" + escape(text) + f"\nresults: {out}")
    if any(r["errors"] for r in results) or failures:
        console.print(f"errors or failures: the servers' logs are kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return report


def postgres_version(dsn: str) -> str:
    async def version() -> str:
        conn = await restore.connect(dsn)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    return asyncio.run(version()).split(" ")[0]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--manifest",
        type=Path,
        default=RESULTS / "seed-10000.json",
        help="written by python -m bench.seed (default: bench/results/seed-10000.json)",
    )
    parser.add_argument("--duration", type=int, default=20, help="seconds per scenario")
    parser.add_argument("--warmup", type=int, default=3, help="seconds before each GET scenario")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--timeout", type=int, default=10, help="wrk request timeout, seconds")
    parser.add_argument("--port", type=int, help="Fundline's port (default: a free one)")
    parser.add_argument("--ceiling-port", type=int, help="the ceiling's port (default: a free one)")
    parser.add_argument("--only", nargs="*", help="run only scenarios whose name contains these")
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument(
        "--confirmations",
        type=int,
        default=1000,
        help="Connect confirmations prepared through Fundline per server for 'confirm x10' "
        "(each a financing request of 10 receivables; default 1000)",
    )
    parser.add_argument(
        "--no-worker",
        dest="worker",
        action="store_false",
        help="fundline serve --no-worker (default: the embedded worker runs, as in production)",
    )
    parser.add_argument("--no-doc", action="store_true", help="do not append to performance.md")
    parser.add_argument(
        "--py-spy",
        action="store_true",
        help="profile Fundline in each scenario (bench/results/*.pyspy.txt; needs py-spy)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
