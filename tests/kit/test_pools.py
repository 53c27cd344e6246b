"""Each process's PostgreSQL budget comes from the settings: SQLAlchemy's pool and overflow, and
the plain-read pool as large as SQLAlchemy's (``fundline serve --workers N`` multiplies it)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from fundline.app import create_app
from fundline.config import Settings
from fundline.kit.db import Database

URL = "postgresql+asyncpg://fundline@db.invalid:5432/fundline"  # never connected to here


def test_the_pools_follow_the_settings() -> None:
    app = create_app(Settings(database_url=URL, database_pool_size=7, database_max_overflow=3))
    pool = app.state.db.engine.pool
    assert isinstance(pool, QueuePool)
    assert (pool.size(), pool._max_overflow) == (7, 3)
    assert app.state.db._driver_pool_size == 7


def test_the_defaults_are_those_the_docs_state() -> None:
    app = create_app(Settings(database_url=URL))
    pool = app.state.db.engine.pool
    assert isinstance(pool, QueuePool)
    assert (pool.size(), pool._max_overflow, app.state.db._driver_pool_size) == (20, 10, 20)


@pytest.mark.usefixtures("postgres_only")
async def test_every_connection_plans_each_statement_for_its_values(db: Database) -> None:
    """Sessions and the plain-read pool alike: a plan cached for the average entity is wrong
    for the largest ones (``kit.db.SERVER_SETTINGS``)."""
    async with db.session() as session:
        assert await session.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
    async with db.driver_reads() as conn:
        assert await conn.driver.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
