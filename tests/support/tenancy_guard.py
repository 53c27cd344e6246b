"""A watch on every statement a request sends: each entity-owned table it reads or changes
must be constrained by ``entity_id``.

``kit/tenancy.py`` adds that condition to every ORM statement of a scoped session. This guard
checks what reaches the database, so it also catches Core statements, ``Prepared`` ones on a
driver connection, raw SQL, and a request path that never scoped its session. The test apps
of ``tests/conftest.py`` carry it: a test whose requests send an unscoped statement fails, naming
the path and the SQL.

The lender API (``/lender/v1``) is the operator's view across every entity by design, and is
not watched.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast

from fastapi import FastAPI
from sqlalchemy import Table, event

import fundline.models  # noqa: F401  (every model registered before the tables are listed)
from fundline.kit import statements
from fundline.kit.db import Base
from fundline.kit.statements import Compiled, Connection, Prepared
from fundline.kit.tenancy import EntityOwned

ENTITY_OWNED_TABLES = frozenset(
    cast(Table, mapper.local_table).name
    for mapper in Base.registry.mappers
    if issubclass(mapper.class_, EntityOwned)
)
# Paths that act across entities by design, and why.
ACROSS_ENTITIES_PATHS = {
    "/lender/": "the operator's API sees every entity",
    "/sandbox/v1/clock/advance": "the clock is the deployment's: servicing runs for all, as the "
    "worker's beat does",
    "/demo": "the sandbox's local demo page (no caller) shows the deployment's latest demo",
}

# Statements that find their tenant from a secret before any scope exists: the secret is the
# scope. Each is matched on the SQL and says why it may read without entity_id.
EXEMPT = {
    "a bearer token is resolved: its digest names its partner, entity and user": re.compile(
        r"FROM access_tokens LEFT OUTER JOIN entity_users "
        r"ON entity_users\.id = access_tokens\.entity_user_id .* WHERE access_tokens\.token_hash = "
    ),
    "a Connect token is exchanged: the token's digest names its entity": re.compile(
        r"\bWHERE connect_tokens\.token_hash = "
    ),
    "a Connect session is resolved: its digest names its entity": re.compile(
        r"^SELECT .* FROM connect_sessions WHERE connect_sessions\.token_hash = "
    ),
    "an entity user's token is issued: the user is found among the partner's entities": (
        re.compile(
            r"^SELECT .* FROM entity_users JOIN entities ON entities\.id = entity_users\.entity_id "
            r"WHERE entity_users\.id = .* AND entities\.partner_id = "
        )
    ),
    "a filter that can match nothing reads no row": re.compile(
        r" WHERE (0 = 1|false)( ORDER| LIMIT|$)"
    ),
}

# The unit of work writes back the objects a session loaded (in its scope) or created, and
# reloads the attributes a rollback expired, by primary key alone (SQLAlchemy applies no loader
# criteria to a refresh). Only statements SQLAlchemy sends are let through so; reading an
# object unscoped in the first place is what the guard catches.
BY_PRIMARY_KEY = re.compile(
    r"^(UPDATE (\w+) SET .*|DELETE FROM (\w+)|SELECT .* FROM (\w+)) "
    r"WHERE (\w+\.)?(id|token_hash) = (\?|\$\d+(::\w+)?)$"
)

_WRITE_OR_READ = re.compile(r"^\s*(WITH|SELECT|UPDATE|DELETE)\b", re.IGNORECASE)


def _reference(table: str) -> re.Pattern[str]:
    # The table named as a source (not as a column's qualifier), with its alias if it has one.
    return re.compile(rf'(?<![\w."]){table}(?![\w."])(?:\s+AS\s+(\w+))?')


_REFERENCES = {table: _reference(table) for table in ENTITY_OWNED_TABLES}


def unscoped_tables(sql: str, *, orm: bool = True) -> list[str]:
    """The entity-owned tables (or aliases) ``sql`` reads or changes without an ``entity_id``
    condition on them (or a ``partner_id`` one, for the tables that carry their partner: a
    partner token reaches all its entities); empty for a statement that is scoped, or that
    only inserts. ``orm``: SQLAlchemy sent it (see ``BY_PRIMARY_KEY``)."""
    sql = " ".join(sql.split())
    if not _WRITE_OR_READ.match(sql) or any(p.search(sql) for p in EXEMPT.values()):
        return []
    if orm and BY_PRIMARY_KEY.match(sql):
        return []
    named = [
        match.group(1) or table
        for table, pattern in _REFERENCES.items()
        for match in pattern.finditer(sql)
    ]
    missing = []
    for name in dict.fromkeys(named):
        qualified = rf"\b{name}\.(entity_id\s*(=|IN\b)|partner_id\s*=)"
        bare = len(named) == 1 and re.search(r'(?<![\w."])entity_id\s*(=|IN\b)', sql)
        if not (re.search(qualified, sql) or bare):
            missing.append(name)
    return missing


@dataclass
class Guard:
    """What one app's requests sent that was not scoped: (path, SQL, tables)."""

    violations: list[tuple[str, str, list[str]]] = field(default_factory=list)

    def see(self, path: str, sql: str, *, orm: bool) -> None:
        if path.startswith(tuple(ACROSS_ENTITIES_PATHS)):
            return
        tables = unscoped_tables(sql, orm=orm)
        if tables:
            self.violations.append((path, " ".join(sql.split()), tables))

    def report(self) -> str:
        lines = [f"{path}: {', '.join(tables)} unscoped in {sql}" for path, sql, tables in self]
        return "requests read entity-owned tables without entity_id:\n  " + "\n  ".join(lines)

    def __iter__(self) -> Any:
        return iter(self.violations)


_REQUEST: ContextVar[tuple[str, Guard] | None] = ContextVar("tenancy_guard", default=None)

Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


class _WatchRequests:
    """ASGI middleware: statements sent while a request is served are the request's."""

    def __init__(self, app: Any, guard: Guard) -> None:
        self.app, self.guard = app, guard

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _REQUEST.set((scope["path"], self.guard))
        try:
            await self.app(scope, receive, send)
        finally:
            _REQUEST.reset(token)


def _seen(sql: str, *, orm: bool) -> None:
    current = _REQUEST.get()
    if current is not None:
        path, guard = current
        guard.see(path, sql, orm=orm)


_original_run = Prepared._run


async def _watched_run(
    self: Prepared, conn: Connection, values: Mapping[str, Any]
) -> tuple[Compiled, Any]:
    compiled, rows = await _original_run(self, conn, values)
    _seen(compiled.sql, orm=False)
    return compiled, rows


_original_send = statements.send


async def _watched_send(driver: Any, written: Any, columns: list[list[Any]]) -> int:
    count = await _original_send(driver, written, columns)
    _seen(written.sql, orm=False)
    return count


def watch(app: FastAPI) -> Guard:
    """Put ``app``'s requests under the guard (before its first request)."""
    guard = Guard()
    app.add_middleware(_WatchRequests, guard=guard)
    event.listen(
        app.state.db.engine.sync_engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_: _seen(statement, orm=True),
    )
    # Prepared statements go to the driver past SQLAlchemy's events.
    Prepared._run = _watched_run  # type: ignore[method-assign]
    # So do the writes of kit.statements.Insert and Update.
    statements.send = _watched_send
    return guard
