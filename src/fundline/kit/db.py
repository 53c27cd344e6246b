"""Database engine, sessions and column types shared by every model.

One schema serves SQLite (the embedded default) and PostgreSQL. On SQLite every transaction
begins IMMEDIATE, so writers queue on the database lock instead of failing half way.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import DateTime, MetaData, String, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from fundline.kit import clock
from fundline.kit.tenancy import ScopedSession

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# PostgreSQL's SQLSTATEs for a transaction it aborted so that others could go on:
# serialization_failure and deadlock_detected. Run again from the start, it may well succeed.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is the database aborting a transaction for a conflict with another (a
    deadlock, a serialization failure): nothing of it was kept, and it may be run again.

    Seen through SQLAlchemy (``DBAPIError.orig``) or straight from asyncpg.
    """
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    return getattr(cause, "sqlstate", None) in RETRYABLE_SQLSTATES


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as naive UTC and returned timezone-aware, the same on both databases."""

    impl = DateTime
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


E = TypeVar("E", bound=StrEnum)


class StrEnumColumn(TypeDecorator[E]):
    """A ``StrEnum`` stored as its value in a ``VARCHAR(length)``: members come back from the
    database, and a value outside the enum is refused before it is written."""

    impl = String
    cache_ok = True

    def __init__(self, enum_cls: type[E], length: int) -> None:
        super().__init__(length)
        self.enum_cls = enum_cls
        self.length = length

    @property
    def python_type(self) -> type[E]:
        return self.enum_cls

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_cls(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_cls(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


# What every PostgreSQL connection is opened with. Each statement is planned for the values it
# is sent with (``force_custom_plan``) rather than with the plan PostgreSQL settles on for a
# prepared statement after five runs, which is made for the average row count. Entities differ
# in size by orders of magnitude (at 1M financing invoices the benchmark's hot entities hold
# 27,000 receivables, the average one 1,000): for a hot entity the average's plan of the
# eligibility read of ``POST /v1/financing_invoices`` scans the whole entity's index, 2.1 ms of
# database CPU where its own plan takes 0.4 ms, planning included. Planning every run costs
# the list's statements 0.01 ms or less (``bench/plans.py``; docs/performance.md, "Plans for
# every entity's size").
SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}

# Per process, by default (``FUNDLINE_DATABASE_POOL_SIZE``, ``FUNDLINE_DATABASE_MAX_OVERFLOW``).
POOL_SIZE = 20
MAX_OVERFLOW = 10


def create_engine(
    url: str, *, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW, **options: Any
) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **options)
        _sqlite_pragmas(engine)
        return engine
    # No pre-ping: it costs a round trip (or three) on every checkout, on every request. A
    # connection the server dropped fails one statement and is discarded; the pool refills.
    # A database that does not answer fails a request within seconds rather than hold it:
    # connecting gives up after CONNECT_TIMEOUT_SECONDS, waiting for a pooled connection after
    # POOL_TIMEOUT_SECONDS (``unavailable`` below tells the error handler it is an outage).
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=3600,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS, "server_settings": SERVER_SETTINGS},
        **options,
    )


CONNECT_TIMEOUT_SECONDS = 5.0
POOL_TIMEOUT_SECONDS = 10.0
# errno values of a server that is not there, or went away.
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
        errno.EPIPE,
    }
)


def autocommits(session: AsyncSession) -> bool:
    """Whether ``session`` commits each statement on its own (``Database.read_session`` on
    PostgreSQL): a write there is no transaction, and a row lock ends with its statement."""
    bind = session.bind
    if not isinstance(bind, AsyncEngine):
        return False
    return bind.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database cannot be reached right now: a
    refused, reset or timed-out connection, a connection lost mid-statement, a server that
    is starting or shutting down or full, a pool with no connection to give. Such a request
    is answered 503, not 500: nothing is wrong with it, and it may be sent again."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_outage(current):
            return True
        orig = getattr(current, "orig", None)
        current = (
            orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
        )
    return False


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.TimeoutError):  # the pool had no connection within its timeout
        return True
    if isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError
        | asyncpg.ConnectionDoesNotExistError,
    ):
        return True
    if isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc):
        return True
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return True
    return isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself, so the "begin" hook below decides its kind.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@dataclass(frozen=True, slots=True)
class DriverConnection:
    """A connection of the database driver (asyncpg or aiosqlite) and the dialect it speaks."""

    driver: Any
    dialect: Dialect


async def _plain_reads_leave_nothing(_: asyncpg.Connection) -> None:
    """asyncpg resets a returned connection with one more round trip (``RESET ALL``,
    ``UNLISTEN *``, …) by default. Plain reads set, lock and listen to nothing; an open
    transaction, the one thing that could be left, asyncpg rolls back before this runs."""


class Database:
    """The engine and session factory of one running app."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = POOL_SIZE,
        max_overflow: int = MAX_OVERFLOW,
        **options: Any,
    ) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, **options)
        # The driver pool keeps as many as SQLAlchemy's pool: with fewer connections than
        # requests in flight, asyncpg's pool lets new requests take a returned connection
        # before those already waiting.
        self._driver_pool_size = pool_size
        self.sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=ScopedSession
        )
        # Reads that need no transaction (token lookups, GET requests) skip BEGIN and COMMIT on
        # PostgreSQL: two round trips fewer on the hottest paths. The same pool serves both.
        # SQLite keeps its one kind of transaction.
        self.reader = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.is_postgres
            else self.engine
        )
        self.read_sessions = async_sessionmaker(
            self.reader, expire_on_commit=False, sync_session_class=ScopedSession
        )
        self._driver_pool: asyncpg.Pool | None = None
        self._driver_pool_lock = asyncio.Lock()

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def session(self) -> AsyncSession:
        return self.sessions()

    def read_session(self) -> AsyncSession:
        """A session for requests that only read: no transaction on PostgreSQL."""
        return self.read_sessions()

    @asynccontextmanager
    async def driver_reads(self) -> AsyncIterator[DriverConnection]:
        """A connection of the driver itself, for plain reads with ``kit.statements.Prepared``.

        On PostgreSQL it comes from a small asyncpg pool of its own, without a transaction:
        taking a connection from it costs a fraction of what SQLAlchemy's pool and its async
        bridge cost, which counts on the paths every request takes (the token lookup, the
        list of financing invoices). On SQLite it is the connection under SQLAlchemy's.
        """
        if not self.is_postgres:
            async with self.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                yield DriverConnection(raw.driver_connection, self.engine.dialect)
            return
        pool = self._driver_pool or await self._open_driver_pool()
        async with pool.acquire() as driver:
            yield DriverConnection(driver, self.engine.dialect)

    @property
    def driver_dsn(self) -> str | None:
        """The PostgreSQL address as asyncpg takes it (``None`` on SQLite)."""
        if not self.is_postgres:
            return None
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def _open_driver_pool(self) -> asyncpg.Pool:
        async with self._driver_pool_lock:
            if self._driver_pool is None:
                self._driver_pool = await asyncpg.create_pool(
                    self.driver_dsn,
                    min_size=0,
                    max_size=self._driver_pool_size,
                    timeout=CONNECT_TIMEOUT_SECONDS,
                    reset=_plain_reads_leave_nothing,
                    server_settings=SERVER_SETTINGS,
                )
            return self._driver_pool

    async def dispose(self) -> None:
        if self._driver_pool is not None:
            await self._driver_pool.close()
            self._driver_pool = None
        await self.engine.dispose()
