"""Statements compiled once and run on the driver connection: reads on hot paths, and writes of
many rows in one statement.

SQLAlchemy builds, caches and processes every statement it runs; on a page of ten rows that
costs several times what the database does. A ``Prepared`` statement is a SQLAlchemy Core
``select`` with named ``bindparam``s, compiled once per dialect; running it converts the
parameters and columns with the same type processors SQLAlchemy would apply (so UTC
timestamps, dates and UUIDs come back as everywhere else) and sends the SQL straight to asyncpg
or aiosqlite. asyncpg keeps its own prepared statement per connection.

``Prepared`` is for plain ``SELECT``s (no row locks), and for an ``UPDATE … RETURNING`` on a
session's connection (run as ``Insert`` and ``Update`` are, below; its ``onupdate`` columns
given by the statement). On a driver connection
(``Database.driver_reads``) a statement runs in no transaction. On a session's connection it
runs in the session's transaction, except on PostgreSQL before the session's first SQLAlchemy
statement, when that transaction has not begun yet: READ COMMITTED makes that the same for a
plain read.

``Insert`` and ``Update`` write rows the server built itself, many in one statement and without
the ORM's unit of work: on PostgreSQL the rows go as one array per column (``unnest``), so the
SQL is the same for one row or a hundred and asyncpg prepares it once per connection; on
SQLite, ``executemany``. They run in the session's transaction (begun first if it has not
been; what the session holds unflushed is flushed before), and a broken constraint raises
SQLAlchemy's ``IntegrityError``, as a flush would. Rows they write are not in the session's
identity map: read them back with a statement, not ``session.get``.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import JSON, Column, Dialect, Select, Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import object_session
from sqlalchemy.orm.attributes import flag_dirty, set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql import dml
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

    def __init__(self, statement: AnySelect | dml.Update, *, for_json: bool = False) -> None:
        self.statement = statement
        self.for_json = for_json
        self.writes = isinstance(statement, dml.Update)
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
        driver, dialect = await _driver(conn, write=self.writes)
        compiled = self.compiled(dialect)
        args = compiled.arguments(values)
        if compiled.sqlite:
            async with driver.execute(compiled.sql, args) as cursor:
                raw = await cursor.fetchall()
        else:
            raw = await driver.fetch(compiled.sql, *args)
        return compiled, compiled.convert(raw)


async def _driver(conn: Connection, *, write: bool) -> tuple[Any, Dialect]:
    """The driver connection under ``conn`` and its dialect. On a session, what it holds
    unflushed is flushed first (as the ORM's autoflush would before a query); for a write, on
    PostgreSQL, the transaction's ``BEGIN`` is sent (the SQLAlchemy adapter sends it lazily,
    before its own first statement)."""
    if isinstance(conn, DriverConnection):
        return conn.driver, conn.dialect
    if isinstance(conn, AsyncSession):
        await conn.flush()
    connection = conn if isinstance(conn, AsyncConnection) else await conn.connection()
    raw = await connection.get_raw_connection()
    if write and connection.dialect.name == "postgresql":
        adapter: Any = raw.dbapi_connection
        if getattr(adapter, "_transaction", True) is None and not adapter.autocommit:
            await adapter._start_transaction()
    return raw.driver_connection, connection.dialect


@dataclass(frozen=True, slots=True)
class _Written:
    """A write statement for one dialect: its SQL and each parameter's processor. On
    PostgreSQL each parameter but the last ``scalars`` is an array (one element per row);
    those last ones are the same in every row and go once."""

    sql: str
    processors: tuple[Processor, ...]
    sqlite: bool
    scalars: int = 0


class _Rows:
    """What ``Insert`` and ``Update`` share: the table's columns, their defaults, and running a
    statement over many rows."""

    def __init__(self, table: Table | type[Any]) -> None:
        found = table if isinstance(table, Table) else table.__table__
        assert isinstance(found, Table)
        self.table = found
        self._compiled: dict[tuple[str, tuple[str, ...]], _Written] = {}

    def _column(self, name: str) -> Column[Any]:
        return self.table.columns[name]

    async def _send(self, conn: Connection, key: tuple[str, ...], columns: list[list[Any]]) -> int:
        """Run the statement of ``key`` over ``columns``: each parameter's values, one per
        row (column by column: the arrays PostgreSQL is sent)."""
        driver, dialect = await _driver(conn, write=True)
        written = self._compiled.get((dialect.name, key))
        if written is None:
            written = self._compiled[(dialect.name, key)] = self._compile(dialect, key)
        processed = [
            values
            if process is None
            else [None if value is None else process(value) for value in values]
            for values, process in zip(columns, written.processors, strict=True)
        ]
        return await send(driver, written, processed)

    def _compile(self, dialect: Dialect, key: tuple[str, ...]) -> _Written:
        raise NotImplementedError

    def _processors(self, dialect: Dialect, names: Sequence[str]) -> tuple[Processor, ...]:
        return tuple(
            self._column(name).type.dialect_impl(dialect).bind_processor(dialect) for name in names
        )

    def _array(self, dialect: Dialect, name: str, number: int) -> str:
        """``$n`` as an array of the column's type; JSON goes as text (cast back by
        ``_value``), which needs no codec for arrays of it."""
        column_type = self._column(name).type
        if isinstance(column_type, JSON):
            return f"${number}::TEXT[]"
        return f"${number}::{column_type.compile(dialect=dialect)}[]"

    def _value(self, name: str) -> str:
        return f"v.{name}::JSON" if isinstance(self._column(name).type, JSON) else f"v.{name}"


class Insert(_Rows):
    """``INSERT`` of rows of one table in one statement. Each row gives some columns; every
    other column takes its Python default, or NULL (Fundline's tables have no server-side
    defaults, and a table with one is refused)."""

    def __init__(self, table: Table | type[Any]) -> None:
        super().__init__(table)
        served = [c.name for c in self.table.columns if c.server_default is not None]
        if served:
            raise ValueError(f"{self.table.name}: server defaults are not supported ({served})")
        self.names = tuple(c.name for c in self.table.columns)
        self.defaults = tuple((c.name, _default(c)) for c in self.table.columns)

    async def rows(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert ``rows`` (dicts keyed by column name); returns how many."""
        if not rows:
            return 0
        columns = [
            [row[name] if name in row else default() for row in rows]
            for name, default in self.defaults
        ]
        return await self._send(conn, (), columns)

    def _compile(self, dialect: Dialect, key: tuple[str, ...]) -> _Written:
        names = self.names
        listed = ", ".join(names)
        if dialect.name == "sqlite":
            sql = f"INSERT INTO {self.table.name} ({listed}) VALUES ({', '.join('?' * len(names))})"
        else:
            arrays = ", ".join(self._array(dialect, n, i) for i, n in enumerate(names, start=1))
            chosen = ", ".join(self._value(n) for n in names)
            sql = (
                f"INSERT INTO {self.table.name} ({listed}) SELECT {chosen} "
                f"FROM unnest({arrays}) AS v({listed})"
            )
        return _Written(sql, self._processors(dialect, names), dialect.name == "sqlite")


class Update(_Rows):
    """``UPDATE`` of rows of one table by their key, each with its own values of the same
    columns, in one statement. ``scope`` names a column every row must match too (an
    ``entity_id``: the tenant condition the statement states itself). Columns with an
    ``onupdate`` (``updated_at``) are set as the ORM would unless a row gives them."""

    def __init__(
        self, table: Table | type[Any], *, key: Sequence[str] = ("id",), scope: str | None = None
    ) -> None:
        super().__init__(table)
        self.key = tuple(key)
        self.scope = scope
        self.touched = tuple(
            c.name for c in self.table.columns if c.onupdate is not None and c.name not in key
        )

    async def rows(
        self, conn: Connection, rows: Sequence[Mapping[str, Any]], *, scope: Any = None
    ) -> int:
        """Set, in each row of the table whose key columns (and ``scope`` column, equal to
        ``scope``) match a given row's, the other columns that row gives (every row gives the
        same columns). Returns how many rows were updated."""
        if not rows:
            return 0
        changed = tuple(n for n in rows[0] if n not in self.key)
        changed += tuple(n for n in self.touched if n not in changed)
        updates = {n: _default(self._column(n), onupdate=True) for n in self.touched}
        columns = [[row[n] if n in row else updates[n]() for row in rows] for n in changed]
        columns += [[row[n] for row in rows] for n in self.key]
        if self.scope is not None:
            columns.append([scope] * len(rows))
        return await self._send(conn, changed, columns)

    async def every(
        self, conn: Connection, rows: Sequence[Mapping[str, Any]], *, scope: Any = None
    ) -> None:
        """``rows`` (as ``rows``), each of which must update a row of the table, as in the
        ORM's flush: ``StaleDataError`` when one matched none."""
        updated = await self.rows(conn, rows, scope=scope)
        if updated != len(rows):
            raise StaleDataError(
                f"{len(rows) - updated} of {len(rows)} rows of {self.table.name} not updated"
            )

    def _compile(self, dialect: Dialect, key: tuple[str, ...]) -> _Written:
        changed, table = key, self.table.name
        names = (*changed, *self.key)
        scoped = (self.scope,) if self.scope is not None else ()
        if dialect.name == "sqlite":
            sets = ", ".join(f"{n} = ?" for n in changed)
            where = " AND ".join(f"{table}.{n} = ?" for n in (*self.key, *scoped))
            sql = f"UPDATE {table} SET {sets} WHERE {where}"
        else:
            arrays = ", ".join(self._array(dialect, n, i) for i, n in enumerate(names, start=1))
            sets = ", ".join(f"{n} = {self._value(n)}" for n in changed)
            where = " AND ".join(f"{table}.{n} = v.{n}" for n in self.key)
            if scoped:
                where += f" AND {table}.{self.scope} = ${len(names) + 1}"
            sql = (
                f"UPDATE {table} SET {sets} FROM unnest({arrays}) AS v({', '.join(names)}) "
                f"WHERE {where}"
            )
        processors = self._processors(dialect, (*names, *scoped))
        return _Written(sql, processors, dialect.name == "sqlite", len(scoped))


def written(obj: Any, values: Mapping[str, Any]) -> None:
    """Tell the session that ``obj``'s row now holds ``values``, written past the ORM (by
    ``Update``): its attributes take them as if loaded, and a rollback expires it as it would
    had the ORM written them. The rollback of a transaction expires everything its session
    holds; that of a savepoint only what it changed, so inside one ``obj`` is marked dirty (no
    UPDATE follows: nothing differs). Outside, the mark would only cost the next flush a pass
    over ``obj``."""
    for name, value in values.items():
        set_committed_value(obj, name, value)
    session = object_session(obj)
    if session is None or session.in_nested_transaction():
        flag_dirty(obj)


def _default(column: Column[Any], *, onupdate: bool = False) -> Callable[[], Any]:
    """The column's Python-side default (or ``onupdate``) as a function; NULL when it has none."""
    default: Any = column.onupdate if onupdate else column.default
    if default is None:
        return lambda: None
    if default.is_callable:
        return functools.partial(default.arg, None)  # SQLAlchemy's wrapper takes a context
    value = default.arg
    return lambda: value


async def send(driver: Any, written: _Written, columns: list[list[Any]]) -> int:
    """Run a write over ``columns`` (each parameter's processed values, one per row); returns
    how many rows it wrote. Integrity errors are SQLAlchemy's, as from a flush."""
    try:
        if written.sqlite:
            cursor = await driver.executemany(written.sql, list(zip(*columns, strict=True)))
            return int(cursor.rowcount)
        arrays = len(columns) - written.scalars
        args = [*columns[:arrays], *(values[0] for values in columns[arrays:])]
        status = await driver.execute(written.sql, *args)
        return int(status.rsplit(" ", 1)[-1])
    except (asyncpg.IntegrityConstraintViolationError, sqlite3.IntegrityError) as exc:
        raise IntegrityError(written.sql, None, exc) from exc


def _compile(statement: AnySelect | dml.Update, dialect: Dialect, *, for_json: bool) -> Compiled:
    compiled = statement.compile(dialect=dialect)
    if compiled.insert_prefetch or compiled.update_prefetch:
        # SQLAlchemy's execution computes these; a statement run on the driver would send NULL.
        raise ValueError(f"give the Python-side defaults of {statement} (onupdate) explicitly")
    selected = (
        statement.exported_columns
        if isinstance(statement, dml.Update)
        else statement.selected_columns
    )
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
        for column in selected
    )
    keys = tuple(str(column.key) for column in selected)
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
