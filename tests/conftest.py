"""Fixtures every test may use: a migrated database per backend (SQLite and PostgreSQL), the
app, a client whose every ``/v1`` response is checked against Monite's OpenAPI, tenants, the
app's policy and an operator. Helpers that are not fixtures (settings, clients, factories, the
spec check, the tenancy guard) are in ``tests/support/``; a fixture only one package's tests use
is in that package's ``conftest.py``.

PostgreSQL and Redis are real servers. On a developer machine without them those tests skip,
saying so; with ``FUNDLINE_REQUIRE_SERVICES=1`` (as ``.ci/run`` sets) they fail instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import inspect, text

from fundline.app import create_app, shutdown
from fundline.kit import clock
from fundline.kit.db import Base, Database
from fundline.lending.policy import Policy
from fundline.operations.migrations import upgrade
from tests.support import lock_order, secrets_in_logs, tenancy_guard
from tests.support.apps import make_client, make_settings
from tests.support.factories import Tenant, make_operator_key, make_tenant
from tests.support.services import (
    REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    service_missing,
)

_postgres_url: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    secrets_in_logs.install()


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log() -> Iterator[None]:
    """At the end of the session (of each xdist worker), no log written during it holds a
    token or secret minted during it (``tests/support/secrets_in_logs.py``)."""
    yield
    leaks = secrets_in_logs.leaks()
    assert not leaks, f"secrets in logs ({secrets_in_logs.summary()}): {leaks[:20]}"


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    global _postgres_url
    try:
        url = await create_postgres_database()
    except (OSError, asyncpg.PostgresError) as exc:
        service_missing("PostgreSQL", exc)
    await upgrade(url)
    _postgres_url = url
    yield url
    await drop_postgres_database(url)


@pytest.fixture(scope="session")
async def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("db") / "fundline.db"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade(url)
    return url


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every test that uses the database runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture(scope="session")
def postgres_only(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("this test is about PostgreSQL alone; its SQLite run is the other id")


async def _truncate(db: Database) -> None:
    # Tables the migrations made; test_migrations checks they are exactly the models' tables.
    async with db.engine.begin() as conn:
        existing = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        tables = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name in existing]
        if db.is_postgres:
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(scope="session")
async def _apps() -> AsyncIterator[dict[str, FastAPI]]:
    apps: dict[str, FastAPI] = {}
    yield apps
    for app in apps.values():
        await shutdown(app)


@pytest.fixture
async def app(database_url: str, _apps: dict[str, FastAPI]) -> AsyncIterator[FastAPI]:
    """The app on a clean database (one app per backend, tables emptied before each test).

    Its requests are watched: a test whose requests read or change an entity-owned table
    without an ``entity_id`` condition fails (``tests/support/tenancy_guard.py``), and so does
    one whose requests take row locks out of the one order (``tests/support/lock_order.py``)."""
    if database_url not in _apps:
        created = create_app(make_settings(database_url))
        created.state.tenancy_guard = tenancy_guard.watch(created)
        lock_order.enforce(created)
        _apps[database_url] = created
    application = _apps[database_url]
    await _truncate(application.state.db)
    clock.reset()
    guard: tenancy_guard.Guard = application.state.tenancy_guard
    guard.violations.clear()
    yield application
    if guard.violations:
        pytest.fail(guard.report(), pytrace=False)


@pytest.fixture
def db(app: FastAPI) -> Database:
    database: Database = app.state.db
    return database


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app) as c:
        yield c


@pytest.fixture
async def tenant(app: FastAPI, client: httpx.AsyncClient) -> Tenant:
    """A partner with a token and one US organization entity."""
    return await make_tenant(app, client, name="Tenant A")


@pytest.fixture
async def other_tenant(app: FastAPI, client: httpx.AsyncClient) -> Tenant:
    return await make_tenant(app, client, name="Tenant B")


@pytest.fixture
def policy(app: FastAPI) -> Policy:
    """The credit policy the app serves."""
    loaded: Policy = app.state.policy
    return loaded


@pytest.fixture
async def operator(db: Database) -> dict[str, str]:
    """The headers of an operator on ``/lender/v1``."""
    return {"authorization": f"Bearer {await make_operator_key(db)}"}


@pytest.fixture
def redis_url() -> str:
    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2) as r:
            r.ping()
    except (OSError, redis.RedisError) as exc:
        service_missing("Redis", exc)
    return REDIS_URL


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    yield
    clock.reset()
