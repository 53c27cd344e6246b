"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI

from fundline.kit.db import Base
from fundline.operations.migrations import current_revision, head_revision


async def test_models_match_migrations(app: FastAPI) -> None:
    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with app.state.db.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


async def test_database_is_at_head(app: FastAPI) -> None:
    async with app.state.db.engine.connect() as conn:
        assert await conn.run_sync(current_revision) == head_revision()
