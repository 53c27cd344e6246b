"""What ``bench.load`` verifies before it measures: that the ceiling is a ceiling of the same
work.

- Reads: every statement the ceiling runs must be one Fundline runs for the same requests
  (recorded from a Fundline in this process, on every connection it opens: SQLAlchemy's and
  the asyncpg pool of its hot reads), and both must answer the same JSON (pagination tokens
  aside; ``same_json``).
- Writes: Fundline's write statements change as it is optimised, so the rows are compared
  instead: one iteration on each server, then the rows inserted, updated and deleted per table
  (PostgreSQL's statistics, ``row_changes``) must be the same, and so must the response's
  status and JSON shape (``same_shape``: the same keys and types, ids and times aside).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from bench.ceiling import auth, lists, offers, restore
from bench.serving import production_settings

# The embedded delivery worker marks events as sent in its own transactions, whichever server
# wrote them: those updates are not the request's.
NOT_THE_REQUESTS = {("events", "upd")}
CHANGES = """
SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables
"""


def normal(sql: str) -> str:
    return " ".join(sql.split())


async def fundline_statements(
    env: dict[str, str], steps: Callable[[httpx.AsyncClient], Awaitable[None]]
) -> set[str]:
    """The statements a Fundline in this process sends to PostgreSQL while ``steps`` runs."""
    from sqlalchemy import event

    from fundline.app import create_app

    settings = production_settings(
        env["FUNDLINE_DATABASE_URL"], secret_key=env["FUNDLINE_SECRET_KEY"]
    )
    app = create_app(settings)
    seen: set[str] = set()

    def record(query: Any) -> None:
        seen.add(normal(str(query.query)))

    async def log_queries(connection: Any) -> None:
        connection.add_query_logger(record)

    # Hot reads go to asyncpg directly (a pool of their own): every asyncpg pool this process
    # opens logs its statements. SQLAlchemy runs prepared statements, which asyncpg's logger
    # does not see: its own event does.
    real_create_pool = asyncpg.create_pool
    asyncpg.create_pool = functools.partial(real_create_pool, init=log_queries)
    engine = app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", lambda *a: seen.add(normal(a[2])))
    try:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://fundline") as client,
        ):
            await steps(client)
    finally:
        asyncpg.create_pool = real_create_pool
    return seen


class CheckFailed(Exception):
    pass


async def read_statements(
    env: dict[str, str], *, version: str, bearer: str, entity: str, credentials: dict[str, str]
) -> dict[str, list[str]]:
    """The ceiling's read statements that Fundline does not run, by scenario (``list``,
    ``offers``, ``auth token``; empty lists when it runs them all): two pages of a filtered
    list, the offers, a token."""
    headers = {"x-monite-version": version, "authorization": f"Bearer {bearer}",
               "x-monite-entity-id": entity}  # fmt: skip
    rows: list[int] = []
    offer_count = [0]

    async def steps(client: httpx.AsyncClient) -> None:
        path = "/v1/financing_invoices"
        first = await client.get(f"{path}?limit=10&status=PAID", headers=headers)
        if first.status_code != 200:
            raise CheckFailed(f"in-process Fundline answered {first.status_code}: {first.text}")
        rows.append(len(first.json()["data"]))
        token = first.json().get("next_pagination_token")
        if token:
            second = await client.get(f"{path}?pagination_token={token}", headers=headers)
            second.raise_for_status()
            rows.append(len(second.json()["data"]))
        found = await client.get("/v1/financing_offers", headers=headers)
        found.raise_for_status()
        offer_count[0] = len(found.json()["offers"])
        token_response = await client.post(
            "/v1/auth/token", headers={"x-monite-version": version}, json=credentials
        )
        token_response.raise_for_status()

    seen = await fundline_statements(env, steps)
    pages = [lists.page_sql(True, False)]
    if len(rows) > 1:
        pages.append(lists.page_sql(True, True))
    for count in set(rows):
        if count:
            pages += [lists.in_sql(lists.INSTALMENTS, count), lists.in_sql(lists.HISTORY, count)]
    wanted = {
        "list": pages,
        "offers": offers.statements(offer_count[0]),
        "auth token": [auth.CLIENT, auth.INSERT_TOKEN],
    }
    return {name: [s for s in sqls if normal(s) not in seen] for name, sqls in wanted.items()}


def difference(a: Any, b: Any, path: str = "", *, shape: bool = False) -> str | None:
    """The first place where ``a`` and ``b`` differ, as a JSON path; with ``shape``, only
    keys, list lengths and value types count."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key} only in {'fundline' if key in a else 'ceiling'}"
            found = difference(a[key], b[key], f"{path}.{key}", shape=shape)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items against {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = difference(x, y, f"{path}[{i}]", shape=shape)
            if found:
                return found
        return None
    if shape:
        return None if type(a) is type(b) else f"{path}: {a!r} against {b!r}"
    return None if a == b else f"{path}: {a!r} against {b!r}"


def same_json(fundline: str, ceiling: str, path: str, headers: dict[str, str]) -> str | None:
    """Where the two servers' answers to a GET differ (pagination tokens aside), or ``None``."""
    bodies: list[Any] = []
    for name, base in (("fundline", fundline), ("ceiling", ceiling)):
        response = httpx.get(f"{base}{path}", headers=headers, timeout=30)
        if response.status_code != 200:
            return f"{path}: {name} answered {response.status_code}"
        body = response.json()
        body.pop("next_pagination_token", None)
        body.pop("prev_pagination_token", None)
        bodies.append(body)
    where = difference(bodies[0], bodies[1])
    return None if where is None else f"{path}: {where}"


def same_next_page(fundline: str, ceiling: str, path: str, headers: dict[str, str]) -> str | None:
    """Where the pages after the first differ: each server's own token leads to its next page
    (the tokens themselves are each server's own)."""
    bodies = []
    for base in (fundline, ceiling):
        token = httpx.get(f"{base}{path}", headers=headers).json().get("next_pagination_token")
        if token is None:
            return None
        body = httpx.get(
            f"{base}{path.split('?')[0]}?pagination_token={token}", headers=headers
        ).json()
        body.pop("next_pagination_token", None)
        body.pop("prev_pagination_token", None)
        bodies.append(body)
    where = difference(bodies[0], bodies[1])
    return None if where is None else f"{path}, next page: {where}"


async def row_changes(dsn: str) -> dict[tuple[str, str], int]:
    """Rows inserted, updated and deleted so far per table of the database (``(table, ins|upd|
    del)``), as PostgreSQL's statistics count them."""
    conn = await restore.connect(dsn)
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        found: dict[tuple[str, str], int] = {}
        for name, ins, upd, dele in await conn.fetch(CHANGES):
            for kind, value in (("ins", ins), ("upd", upd), ("del", dele)):
                if value:
                    found[(name, kind)] = value
        return found
    finally:
        await conn.close()


async def changes_after(
    dsn: str, act: Callable[[], Awaitable[None]], *, settle: float = 12.0
) -> dict[str, int]:
    """What ``act`` changed, per ``table ins|upd|del``. A server's backend reports its counts
    once it is idle (at most a second or so later, up to 10 s when it reported just before),
    so the counts are read until they stop moving.

    PostgreSQL counts an update per statement and row: a row updated ten times counts ten. So
    for a table with ``updated_at``, the rows updated are counted instead (one row updated
    once per invoice, or once for all of them, is the same row written)."""
    since = datetime.now(UTC).replace(tzinfo=None)
    before = await row_changes(dsn)
    await act()
    deadline = asyncio.get_running_loop().time() + settle
    last: dict[str, int] = {}
    steady = 0
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.5)
        after = await row_changes(dsn)
        delta = {
            f"{table} {kind}": after.get((table, kind), 0) - before.get((table, kind), 0)
            for table, kind in after
            if (table, kind) not in NOT_THE_REQUESTS
        }
        delta = {k: v for k, v in delta.items() if v}
        steady = steady + 1 if delta and delta == last else 0
        last = delta
        if steady >= 3:
            break
    return await _distinct_updates(dsn, last, since, datetime.now(UTC).replace(tzinfo=None))


async def _distinct_updates(
    dsn: str, changes: dict[str, int], since: datetime, until: datetime
) -> dict[str, int]:
    # Bounded on both sides: the seed dates some rows' updated_at in the days ahead.
    conn = await restore.connect(dsn)
    try:
        for key in [k for k in changes if k.endswith(" upd")]:
            table = key.split()[0]
            has_column = await conn.fetchval(
                "SELECT count(*) FROM information_schema.columns "
                "WHERE table_name = $1 AND column_name = 'updated_at'",
                table,
            )
            if has_column:
                changes[key] = await conn.fetchval(
                    f'SELECT count(*) FROM "{table}" WHERE updated_at BETWEEN $1 AND $2',
                    since,
                    until,
                )
    finally:
        await conn.close()
    return changes
