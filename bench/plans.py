"""PostgreSQL's CPU per run of a statement, with the plans it caches and with a plan per run.

    .venv/bin/python -m bench.plans --manifest bench/results/seed-1000000.json

Fundline opens every connection with ``plan_cache_mode = force_custom_plan``
(``fundline.kit.db.SERVER_SETTINGS``). This measures what that choice costs and saves on a
hot entity of the seeded book: the list's page statement (as ``bench/ceiling/lists.py`` sends
it, which the ceiling's checks hold equal to Fundline's) at limit 10 and 100, and the
eligibility read of ``POST /v1/financing_invoices`` (``financing.service``'s statement for 10
receivables), each prepared once and run ``--runs`` times on one connection, after 20 untimed
runs (past the five after which PostgreSQL may settle on a generic plan). The figure is the
backend's CPU time (``/proc/<pid>/stat``, so PostgreSQL on this machine) per run; the modes
alternate ``--rounds`` times. Not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.dialects import postgresql

from bench.ceiling import lists
from fundline.financing import service

MODES = ("auto", "force_custom_plan")


def backend_cpu_ms(pid: int) -> float:
    """User and system CPU of one PostgreSQL backend, in milliseconds (needs the same host)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


async def statements(
    conn: asyncpg.Connection, entity_id: uuid.UUID
) -> list[tuple[str, str, list[Any]]]:
    """(name, SQL, arguments) of each statement measured."""
    ids = [
        row["id"]
        for row in await conn.fetch(
            "SELECT id FROM receivables WHERE entity_id = $1 AND status = 'issued' "
            "AND type = 'invoice' LIMIT 10",
            entity_id,
        )
    ]
    if len(ids) < 10:
        raise SystemExit("the hot entity has fewer than 10 issued receivables: seed again")
    dialect = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
    eligibility = service._receivables_statement(10).compiled(dialect)
    values: dict[str, Any] = {f"id_{i}": value for i, value in enumerate(ids)}
    values["entity_id"] = entity_id
    page = lists.page_sql(False, False)
    return [
        ("list page, limit=10", page, [entity_id, 10]),
        ("list page, limit=100", page, [entity_id, 100]),
        ("eligibility of 10 receivables", eligibility.sql, eligibility.arguments(values)),
    ]


async def measure(dsn: str, entity_id: uuid.UUID, mode: str, runs: int) -> dict[str, float]:
    conn = await asyncpg.connect(dsn, server_settings={"plan_cache_mode": mode})
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        found = {}
        for name, sql, args in await statements(conn, entity_id):
            prepared = await conn.prepare(sql)
            for _ in range(20):
                await prepared.fetch(*args)
            before = backend_cpu_ms(pid)
            for _ in range(runs):
                await prepared.fetch(*args)
            found[name] = (backend_cpu_ms(pid) - before) / runs
        return found
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> None:
    manifest = json.loads(args.manifest.read_text())
    dsn = manifest["database_url"].replace("postgresql+asyncpg", "postgresql")
    entity_id = uuid.UUID(manifest["hot_entities"][0]["entity_id"])
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for mode in MODES:
            for name, cpu in (await measure(dsn, entity_id, mode, args.runs)).items():
                samples.setdefault((name, mode), []).append(cpu)
    names = list(dict.fromkeys(name for name, _ in samples))
    lines = [
        f"PostgreSQL CPU ms per run, {args.runs} runs x {args.rounds} rounds (least to most):",
        f"  {'statement':32} {'generic when chosen':>22} {'planned per run':>22}",
    ]
    for name in names:
        cells = [_cell(samples[(name, mode)]) for mode in MODES]
        lines.append(f"  {name:32} {cells[0]:>22} {cells[1]:>22}")
    print("\n".join(lines))  # noqa: T201


def _cell(values: Sequence[float]) -> str:
    return f"{min(values):.3f} to {max(values):.3f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, required=True, help="bench/results/seed-*.json")
    parser.add_argument("--runs", type=int, default=3000, help="runs per statement and mode")
    parser.add_argument("--rounds", type=int, default=2, help="times the modes alternate")
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
