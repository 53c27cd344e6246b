"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy import inspect, select

from fundline.app import create_app, shutdown
from fundline.kit.db import Base, create_engine
from fundline.lending import servicing
from fundline.models import FinancingInvoice, FinancingStatusChange
from fundline.operations.migrations import alembic_config, current_revision, head_revision, upgrade
from tests.support.apps import make_client, make_settings
from tests.support.factories import make_tenant
from tests.support.lending import MANUAL, make_draft, make_offer, plans_of, walk
from tests.support.services import (
    create_postgres_database,
    drop_postgres_database,
    service_missing,
)


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


# --- approved_at: copied from the history on the way up, the history kept on the way down ----

BEFORE_APPROVED_AT = "20261201_sandbox_demos"


@pytest.fixture(params=["sqlite", "postgres"])
async def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database of its own, migrated to head: this test moves its schema."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        await upgrade(url)
        yield url
        return
    try:
        url = await create_postgres_database()
    except (OSError, asyncpg.PostgresError) as exc:
        service_missing("PostgreSQL", exc)
    try:
        await upgrade(url)
        yield url
    finally:
        await drop_postgres_database(url)


async def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    def run(connection: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def test_approved_at_is_read_from_the_history_on_upgrade(fresh_url: str) -> None:
    app = create_app(make_settings(fresh_url))
    try:
        async with make_client(app) as client:
            tenant = await make_tenant(app, client, name="Migrations")
        async with app.state.db.session() as session, session.begin():
            offer = await make_offer(session, tenant)
            plan = (await plans_of(session, offer))[0]
            approved, funded, waiting = [
                await walk(session, await make_draft(session, offer), "NEW", plan=plan)
                for _ in range(3)
            ]
            for fi in (approved, funded):
                await servicing.approve(session, fi, cause="by operator ops", policy=MANUAL)
            await servicing.fund(session, funded, cause="funded by operator ops")
    finally:
        await shutdown(app)

    async def approvals() -> dict[Any, Any]:
        engine = create_engine(fresh_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(select(FinancingInvoice.id, FinancingInvoice.approved_at))
                return dict(rows.all())
        finally:
            await engine.dispose()

    before = await approvals()
    assert before[approved.id] is not None
    assert before[funded.id] is not None
    assert before[waiting.id] is None

    await _migrate(fresh_url, BEFORE_APPROVED_AT, down=True)
    engine = create_engine(fresh_url)
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("financing_invoices")}
            )
            history = (
                await conn.execute(
                    select(
                        FinancingStatusChange.financing_invoice_id, FinancingStatusChange.at
                    ).where(FinancingStatusChange.cause == "approved: by operator ops")
                )
            ).all()
    finally:
        await engine.dispose()
    assert "approved_at" not in columns
    assert len(history) == 2  # the approvals' history rows stay as they were

    await _migrate(fresh_url, "head")
    # Each approval at the time of its history row (``approve`` wrote the column a moment
    # before it), and nothing for the invoice never approved.
    at = dict(history)
    assert {fi_id: at.get(fi_id) for fi_id in before} == await approvals()
    assert set(at) == {approved.id, funded.id}
