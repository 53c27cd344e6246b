"""Fill a PostgreSQL database with a financing book to benchmark the performance targets.

    python -m bench.seed --invoices 100000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/fundline_bench_100k

Creates the database (dropping it first; ``--reuse`` keeps it and empties Fundline's tables),
runs Fundline's migrations, then loads with COPY: partners and API clients (one known secret),
US entities and their users, counterparts and addresses, issued receivables, onboarded
financing businesses, offers with the production policy's plans, and N financing invoices in
requests, spread over statuses, with their instalments, status history and ledger entries
(``bench/book.py`` makes them, consistent with Fundline's rules). Rows are generated in chunks
(memory stays flat) by a pure function of the chunk number: one seed always gives the same
data.

Indexes and constraints of the loaded tables are dropped before the load and recreated after
it from the catalog's own definitions (one sorted build instead of millions of random B-tree
inserts); the schema ends exactly as the migrations left it. Then ANALYZE.

Half of the invoices (``--hot-share``) belong to a few "hot" entities (``--hot-entities``):
the ones the load scripts rotate over, so a page of 100 is full at every size and p50 at 10k
and at 1M rows compares the same work. Hot entities also get ``--spare`` unfinanced issued
receivables each, for ``POST /v1/financing_invoices``.

Writes ``bench/results/seed-<invoices>.json``: credentials, entity ids, sample invoice ids.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench.book import (
    COLUMNS,
    Chunk,
    Config,
    EntityInfo,
    Id,
    Row,
    Totals,
    World,
    dashed,
    generate_chunk,
    generate_spare,
    make_world,
    offer_rows,
)
from fundline.kit.security import hash_secret
from fundline.operations.migrations import upgrade

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_SECRET = "bench-client-secret-not-for-production"


# --- loading ----------------------------------------------------------------------------------


@dataclass
class Ddl:
    """The loaded tables' keys, unique constraints, foreign keys and indexes, as the catalog
    defines them: dropped before the load, recreated after it."""

    foreign_keys: list[tuple[str, str, str]]  # table, name, definition
    keys: list[tuple[str, str, str]]  # primary keys and unique constraints
    indexes: list[tuple[str, str, str]]  # table, name, CREATE INDEX statement


async def read_ddl(conn: asyncpg.Connection, tables: Sequence[str]) -> Ddl:
    oids = [f"public.{t}" for t in tables]
    constraints = await conn.fetch(
        """
        SELECT c.conrelid::regclass::text AS tbl, c.conname, c.contype::text AS contype,
               pg_get_constraintdef(c.oid) AS def
        FROM pg_constraint c
        WHERE c.contype IN ('p', 'u', 'f')
          AND (c.conrelid = ANY($1::regclass[]) OR c.confrelid = ANY($1::regclass[]))
        ORDER BY 1, 2
        """,
        oids,
    )
    indexes = await conn.fetch(
        """
        SELECT i.indrelid::regclass::text AS tbl, i.indexrelid::regclass::text AS name,
               pg_get_indexdef(i.indexrelid) AS def
        FROM pg_index i
        WHERE i.indrelid = ANY($1::regclass[])
          AND NOT EXISTS (
              SELECT 1 FROM pg_constraint c
              WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x')
          )
        ORDER BY 1, 2
        """,
        oids,
    )
    return Ddl(
        foreign_keys=[
            (r["tbl"], r["conname"], r["def"]) for r in constraints if r["contype"] == "f"
        ],
        keys=[(r["tbl"], r["conname"], r["def"]) for r in constraints if r["contype"] != "f"],
        indexes=[(r["tbl"], r["name"], r["def"]) for r in indexes],
    )


async def drop_ddl(conn: asyncpg.Connection, ddl: Ddl) -> None:
    async with conn.transaction():
        for table, name, _ in ddl.foreign_keys + ddl.keys:
            await conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for _, name, _ in ddl.indexes:
            await conn.execute(f"DROP INDEX {name}")


async def restore_ddl(
    pool: asyncpg.Pool, ddl: Ddl, sizes: dict[str, int], advance: Callable[[], None]
) -> None:
    """Keys and indexes, the biggest tables first over every pooled connection; then the
    foreign keys one by one (each locks both its tables)."""
    builds = [
        (sizes.get(table, 0), f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for table, name, definition in ddl.keys
    ] + [(sizes.get(table, 0), definition) for table, _, definition in ddl.indexes]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for _, statement in sorted(builds, key=lambda b: -b[0]):
        queue.put_nowait(statement)

    async def worker() -> None:
        async with pool.acquire() as conn:
            await conn.execute("SET maintenance_work_mem = '512MB'")
            while not queue.empty():
                statement = queue.get_nowait()
                await conn.execute(statement)
                advance()

    await asyncio.gather(*(worker() for _ in range(pool.get_max_size())))
    async with pool.acquire() as conn:
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for table, name, definition in ddl.foreign_keys:
            await conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            advance()


async def check_columns(conn: asyncpg.Connection) -> None:
    """Refuse to load when the schema has a required column the seed does not fill (a
    migration added one): better a clear message than a half-loaded database."""
    rows = await conn.fetch(
        """
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = ANY($1::text[])
          AND is_nullable = 'NO' AND column_default IS NULL
        """,
        list(COLUMNS),
    )
    missing = sorted(
        f"{r['table_name']}.{r['column_name']}"
        for r in rows
        if r["column_name"] not in COLUMNS[r["table_name"]]
    )
    if missing:
        raise SystemExit(f"bench.seed does not fill these required columns: {', '.join(missing)}")


async def copy_rows(
    conn: asyncpg.Connection, rows: dict[str, list[Row]], counts: dict[str, int]
) -> int:
    copied = 0
    for table, records in rows.items():
        if records:
            await conn.copy_records_to_table(table, records=records, columns=COLUMNS[table])
            copied += len(records)
            counts[table] += len(records)
    return copied


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def sqlalchemy_url(url: str) -> str:
    return "postgresql+asyncpg://" + asyncpg_dsn(url).removeprefix("postgresql://")


async def prepare_database(url: str, *, reuse: bool, console: Console) -> None:
    """A fresh database at ``url`` (or the same one emptied with ``reuse``), migrated."""
    dsn = asyncpg_dsn(url)
    name = dsn.rsplit("/", 1)[1].split("?", 1)[0]
    if not reuse:
        admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
    console.log(f"migrating {name}")
    await upgrade(sqlalchemy_url(url))
    if reuse:
        conn = await asyncpg.connect(dsn)
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
            names = ", ".join(f'"{r["tablename"]}"' for r in tables)
            await conn.execute(f"TRUNCATE {names} CASCADE")
        finally:
            await conn.close()


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


async def load(
    pool: asyncpg.Pool, world: World, cfg: Config, progress: Progress
) -> tuple[dict[str, int], Totals, dict[Id, list[tuple[str, str, str]]]]:
    """COPY the world, then every chunk: chunk k+1 is generated in a thread while chunk k
    streams into PostgreSQL. Returns rows per table, the offers' totals and sample ids."""
    counts: dict[str, int] = defaultdict(int)
    totals = Totals()
    samples: dict[Id, list[tuple[str, str, str]]] = defaultdict(list)
    spans = [
        (i, start, min(cfg.chunk, cfg.invoices - start))
        for i, start in enumerate(range(0, cfg.invoices, cfg.chunk))
    ]
    groups = [world.hot[i : i + 50] for i in range(0, len(world.hot), 50)] if cfg.spare else []
    jobs: list[Callable[[], Chunk]] = [
        functools.partial(generate_chunk, world, cfg, *span) for span in spans
    ]
    jobs += [
        functools.partial(generate_spare, world, cfg, len(spans) + i, group)
        for i, group in enumerate(groups)
    ]
    invoices = progress.add_task("financing invoices", total=cfg.invoices, rate="")
    spare = progress.add_task("spare receivables", total=cfg.spare * len(world.hot), rate="")
    started = time.perf_counter()
    copied = 0
    async with pool.acquire() as conn:
        await conn.execute("SET synchronous_commit = off")
        copied += await copy_rows(conn, world.rows, counts)
        pending = asyncio.ensure_future(asyncio.to_thread(jobs[0])) if jobs else None
        for j in range(len(jobs)):
            assert pending is not None
            chunk = await pending
            if j + 1 < len(jobs):
                pending = asyncio.ensure_future(asyncio.to_thread(jobs[j + 1]))
            copied += await copy_rows(conn, chunk.rows, counts)
            totals.add(chunk.totals)
            for key, found in chunk.samples.items():
                samples[key].extend(found[: 5 - len(samples[key])])
            rate = f"{copied / (time.perf_counter() - started):,.0f} rows/s"
            progress.update(
                invoices if j < len(spans) else spare, advance=chunk.invoices, rate=rate
            )
        await copy_rows(conn, {"financing_offers": offer_rows(world, totals)}, counts)
    return counts, totals, samples


async def seed(
    cfg: Config, *, url: str, reuse: bool, secret: str, manifest: Path
) -> dict[str, Any]:
    console = Console(stderr=True)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    await prepare_database(url, reuse=reuse, console=console)
    timings["migrate"] = time.perf_counter() - started

    # Timestamps are naive UTC throughout, as Fundline stores them (``kit.db.UTCDateTime``).
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    world = make_world(cfg, now=now, secret_hash=hash_secret(secret))
    pool = await asyncpg.create_pool(asyncpg_dsn(url), min_size=2, max_size=2)
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            await check_columns(conn)
            ddl = await read_ddl(conn, list(COLUMNS))
            await drop_ddl(conn, ddl)
        with progress_bar(console) as progress:
            mark = time.perf_counter()
            counts, _, samples = await load(pool, world, cfg, progress)
            timings["load"] = time.perf_counter() - mark

            mark = time.perf_counter()
            steps = len(ddl.keys) + len(ddl.indexes) + len(ddl.foreign_keys)
            task = progress.add_task("indexes, constraints", total=steps, rate="")
            await restore_ddl(pool, ddl, counts, lambda: progress.advance(task))
            timings["indexes"] = time.perf_counter() - mark

            mark = time.perf_counter()
            task = progress.add_task("analyze", total=1, rate="")
            async with pool.acquire() as conn:
                await conn.execute("ANALYZE")
            progress.advance(task)
            timings["analyze"] = time.perf_counter() - mark
    finally:
        await pool.close()
    timings["total"] = time.perf_counter() - started

    def partner_entities(partner_id: Id, entities: Sequence[EntityInfo]) -> list[str]:
        return [dashed(e.id) for e in entities if e.partner_id == partner_id]

    result = {
        "database_url": asyncpg_dsn(url),
        "created_at": now.isoformat() + "Z",
        "config": dataclasses.asdict(cfg),
        "machine": {"cpus": os.cpu_count(), "loadavg_after": os.getloadavg()},
        "rows": dict(sorted(counts.items())),
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "client_secret": secret,
        "partners": [
            {
                "partner_id": dashed(p["partner_id"]),
                "client_id": dashed(p["client_id"]),
                "entity_ids": partner_entities(p["partner_id"], world.entities),
                "hot_entity_ids": partner_entities(p["partner_id"], world.hot),
            }
            for p in world.partners
        ],
        "hot_entities": [
            {
                "entity_id": dashed(e.id),
                "partner_id": dashed(e.partner_id),
                "entity_user_id": dashed(e.user_id),
                "samples": [
                    {"financing_invoice_id": f, "invoice_id": r, "status": s}
                    for f, r, s in samples[e.id]
                ],
            }
            for e in world.hot
        ],
    }
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps(result, indent=2) + "\n")
    console.log(
        f"seeded {cfg.invoices:,} financing invoices ({sum(counts.values()):,} rows) in "
        f"{timings['total']:.1f}s: load {timings['load']:.1f}s, indexes "
        f"{timings['indexes']:.1f}s, analyze {timings['analyze']:.1f}s → {manifest}"
    )
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.seed", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--invoices", type=int, default=10_000, help="financing invoices")
    parser.add_argument("--entities", type=int, default=1_000)
    parser.add_argument("--partners", type=int, default=5)
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/fundline_bench",
        help="the database to (re)create; its contents are replaced",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database, empty Fundline's tables"
    )
    parser.add_argument("--hot-entities", type=int, default=20)
    parser.add_argument("--hot-share", type=float, default=0.5)
    parser.add_argument(
        "--spare", type=int, default=2_500, help="unfinanced issued receivables per hot entity"
    )
    parser.add_argument("--chunk", type=int, default=10_000, help="invoices per COPY chunk")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--client-secret", default=DEFAULT_SECRET)
    parser.add_argument("--manifest", type=Path, help="default: bench/results/seed-<invoices>.json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = Config(
        invoices=args.invoices,
        entities=args.entities,
        partners=args.partners,
        hot_entities=args.hot_entities,
        hot_share=args.hot_share,
        spare=args.spare,
        chunk=args.chunk,
        seed=args.seed,
    )
    manifest = args.manifest or RESULTS / f"seed-{args.invoices}.json"
    asyncio.run(
        seed(
            cfg,
            url=args.database_url,
            reuse=args.reuse,
            secret=args.client_secret,
            manifest=manifest,
        )
    )


if __name__ == "__main__":
    main()
