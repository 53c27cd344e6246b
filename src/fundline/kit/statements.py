"""Statements compiled once and run on the driver connection: for reads on hot paths.

SQLAlchemy builds, caches and processes every statement it runs; on a page of ten rows that
costs several times what the database does. A ``Prepared`` statement is a SQLAlchemy Core
``select`` with named ``bindparam``s, compiled once per dialect; running it converts the
parameters and columns with the same type processors SQLAlchemy would apply (so UTC
timestamps, dates and UUIDs come back as everywhere else) and sends the SQL straight to asyncpg
or aiosqlite. asyncpg keeps its own prepared statement per connection.

Only for plain ``SELECT``s (no row locks). On a driver connection (``Database.driver_reads``)
a statement runs in no transaction. On a session's connection it runs in the session's
transaction, except on PostgreSQL before the session's first SQLAlchemy statement, when that
transaction has not begun yet: READ COMMITTED makes that the same for a plain read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect, Select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.types import TypeEngine

from fundline.kit.db import DriverConnection, StrEnumColumn, UTCDateTime

AnySelect = Select[*tuple[Any, ...]]
# Where a statement runs: a driver connection (``Database.driver_reads``), or SQLAlchemy's.
Connection = DriverConnection | AsyncConnection | AsyncSession
Processor = Callable[[Any], Any] | None
_REQUIRED = object()  # a parameter the statement has no value for: each run must give it


@dataclass(frozen=True, slots=True)
class Compiled:
    """One statement for one dialect: its SQL, and how to convert what goes in and out."""

    sql: str
    # (name, processor, value the statement itself carries), in the order the SQL numbers them
    binds: tuple[tuple[str, Processor, Any], ...]
    keys: tuple[str, ...]
    columns: tuple[Processor, ...] | None  # None: the driver's values are already right
    sqlite: bool

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        args = []
        for name, process, carried in self.binds:
            value = values[name] if carried is _REQUIRED or name in values else carried
            args.append(value if process is None or value is None else process(value))
        return args

    def convert(self, raw: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
        if self.columns is None:
            return raw
        return [
            tuple(
                value if process is None else process(value)
                for value, process in zip(row, self.columns, strict=True)
            )
            for row in raw
        ]


class Prepared:
    """A select, compiled on first use for each dialect it runs on.

    With ``for_json``, values come back as they are stored where orjson renders them the same:
    timestamps naive, in UTC (for ``OPT_NAIVE_UTC``), and enum columns as their strings. For
    rows rendered straight to JSON, that saves converting each of them (on PostgreSQL, every
    conversion: asyncpg's values are then used as they come).
    """

    def __init__(self, statement: AnySelect, *, for_json: bool = False) -> None:
        self.statement = statement
        self.for_json = for_json
        self._compiled: dict[str, Compiled] = {}

    def compiled(self, dialect: Dialect) -> Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = _compile(self.statement, dialect, for_json=self.for_json)
            self._compiled[dialect.name] = found
        return found

    async def rows(self, conn: Connection, values: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        """Every row, each a sequence in the order of the selected columns."""
        return (await self._run(conn, values))[1]

    async def mappings(self, conn: Connection, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every row as a dict keyed by column name."""
        compiled, rows = await self._run(conn, values)
        return [dict(zip(compiled.keys, row, strict=True)) for row in rows]

    async def _run(
        self, conn: Connection, values: Mapping[str, Any]
    ) -> tuple[Compiled, Sequence[Sequence[Any]]]:
        if isinstance(conn, DriverConnection):
            driver, dialect = conn.driver, conn.dialect
        else:
            connection = conn if isinstance(conn, AsyncConnection) else await conn.connection()
            driver = (await connection.get_raw_connection()).driver_connection
            dialect = connection.dialect
        compiled = self.compiled(dialect)
        args = compiled.arguments(values)
        if compiled.sqlite:
            async with driver.execute(compiled.sql, args) as cursor:
                raw = await cursor.fetchall()
        else:
            raw = await driver.fetch(compiled.sql, *args)
        return compiled, compiled.convert(raw)


def _compile(statement: AnySelect, dialect: Dialect, *, for_json: bool) -> Compiled:
    compiled = statement.compile(dialect=dialect)
    order = compiled.positiontup or []
    binds = tuple(
        (
            name,
            bind.type.dialect_impl(dialect).bind_processor(dialect),
            _REQUIRED if bind.required else bind.value,
        )
        for name in order
        for bind in (compiled.binds[name],)
    )
    columns = tuple(
        _result_type(column.type, for_json).dialect_impl(dialect).result_processor(dialect, None)
        for column in statement.selected_columns
    )
    keys = tuple(str(column.key) for column in statement.selected_columns)
    return Compiled(
        compiled.string,
        binds,
        keys,
        None if all(process is None for process in columns) else columns,
        dialect.name == "sqlite",
    )


def _result_type(type_: TypeEngine[Any], for_json: bool) -> TypeEngine[Any]:
    """The type whose result processing a column gets: for JSON, the storage type of a UTC
    timestamp or an enum."""
    if for_json and isinstance(type_, UTCDateTime | StrEnumColumn):
        return type_.impl_instance
    return type_
