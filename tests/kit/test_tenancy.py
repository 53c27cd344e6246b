"""Tenant scope in one place: a scoped session sees and changes its entity's rows only, and
the guard the test apps carry catches a request that reads an entity-owned table unscoped."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text, update

from fundline.app import create_app, shutdown
from fundline.kit.db import Database
from fundline.kit.statements import Prepared
from fundline.kit.tenancy import ACROSS_ENTITIES, scope_of, scope_to
from fundline.models import Counterpart, Event
from tests.support import tenancy_guard
from tests.support.apps import make_client, make_settings
from tests.support.factories import Tenant, create_counterpart


@pytest.fixture
async def two_counterparts(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> tuple[uuid.UUID, uuid.UUID]:
    mine = await create_counterpart(client, tenant)
    theirs = await create_counterpart(client, other_tenant)
    return uuid.UUID(mine["id"]), uuid.UUID(theirs["id"])


async def test_a_scoped_session_reads_its_entitys_rows_only(
    db: Database, tenant: Tenant, two_counterparts: tuple[uuid.UUID, uuid.UUID]
) -> None:
    mine, theirs = two_counterparts
    async with db.session() as session:
        scope_to(session, uuid.UUID(tenant.entity_id))
        assert scope_of(session) == uuid.UUID(tenant.entity_id)
        # No entity condition written: the scope adds it.
        assert list(await session.scalars(select(Counterpart.id))) == [mine]
        assert await session.scalar(select(func.count()).select_from(Counterpart)) == 1
        assert await session.get(Counterpart, theirs) is None
        assert (await session.get(Counterpart, mine)) is not None
        # Events are entity-owned too: the other entity's are not seen.
        objects = set(await session.scalars(select(Event.object_id)))
        assert mine in objects
        assert theirs not in objects


async def test_a_scoped_session_changes_its_entitys_rows_only(
    db: Database, tenant: Tenant, two_counterparts: tuple[uuid.UUID, uuid.UUID]
) -> None:
    mine, theirs = two_counterparts
    async with db.session() as session:
        scope_to(session, uuid.UUID(tenant.entity_id))
        result = await session.execute(
            update(Counterpart).values(language="de").execution_options(synchronize_session=False)
        )
        assert result.rowcount == 1  # type: ignore[attr-defined]
        await session.commit()
    async with db.session() as session:
        languages = dict(
            (await session.execute(select(Counterpart.id, Counterpart.language))).all()
        )
    assert languages[mine] == "de"
    assert languages[theirs] != "de"


async def test_a_session_keeps_one_scope_and_may_cross_only_when_it_says_so(
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    two_counterparts: tuple[uuid.UUID, uuid.UUID],
) -> None:
    async with db.session() as session:
        scope_to(session, uuid.UUID(tenant.entity_id))
        scope_to(session, uuid.UUID(tenant.entity_id))  # the same scope again is harmless
        with pytest.raises(RuntimeError, match="one entity"):
            scope_to(session, uuid.UUID(other_tenant.entity_id))
        across = select(Counterpart.id).execution_options(**ACROSS_ENTITIES)
        assert set(await session.scalars(across)) == set(two_counterparts)
    async with db.session() as session:  # an unscoped session (the worker's) sees them all
        assert set(await session.scalars(select(Counterpart.id))) == set(two_counterparts)


async def test_another_entitys_id_is_a_404_through_the_api(
    client: httpx.AsyncClient, tenant: Tenant, two_counterparts: tuple[uuid.UUID, uuid.UUID]
) -> None:
    _, theirs = two_counterparts
    response = await client.get(f"/v1/counterparts/{theirs}", headers=tenant.headers)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("sql", "unscoped"),
    [
        ("SELECT receivables.id FROM receivables WHERE receivables.entity_id = $1", []),
        (
            "SELECT receivables.id FROM receivables WHERE receivables.document_id = $1",
            ["receivables"],
        ),
        (
            "SELECT r.id FROM receivables AS r JOIN financing_invoices "
            "ON financing_invoices.invoice_id = r.id WHERE r.entity_id = ?",
            ["financing_invoices"],
        ),
        (
            "SELECT events.id FROM events, receivables WHERE events.entity_id = ?",
            ["receivables"],
        ),
        ("DELETE FROM events WHERE entity_id IN (?, ?)", []),
        ("DELETE FROM events WHERE events.object_id = ?", ["events"]),
        ("UPDATE payables SET status=? WHERE payables.id = ?", []),  # a loaded object's flush
        ("SELECT payables.status FROM payables WHERE payables.id = ?", []),  # and its refresh
        ("UPDATE payables SET status=? WHERE payables.status = ?", ["payables"]),
        ("INSERT INTO events (id, entity_id) VALUES (?, ?)", []),
        ("SELECT payables.id FROM payables WHERE false ORDER BY payables.id LIMIT $1", []),
        ("SELECT payables.id FROM payables WHERE 0 = 1 LIMIT ? OFFSET ?", []),
        ("SELECT entities.id FROM entities WHERE entities.partner_id = ?", []),
        ("SELECT financing_instalments.id FROM financing_instalments", []),  # not entity-owned
    ],
)
def test_the_guard_reads_sql(sql: str, unscoped: list[str]) -> None:
    assert tenancy_guard.unscoped_tables(sql) == unscoped


def test_the_guard_lets_only_sqlalchemy_reload_by_primary_key() -> None:
    sql = "SELECT receivables.id FROM receivables WHERE receivables.id = $1"
    assert tenancy_guard.unscoped_tables(sql, orm=False) == ["receivables"]


@pytest.fixture
async def watched(sqlite_url: str) -> AsyncIterator[tuple[FastAPI, tenancy_guard.Guard]]:
    """An app with two routes that forget the scope: raw SQL, and a ``Prepared`` statement on
    a driver connection."""
    application = create_app(make_settings(sqlite_url))
    forgetful = Prepared(select(Counterpart.id))

    @application.get("/forgetful/raw")
    async def raw() -> int:
        async with application.state.db.session() as session:
            return len((await session.execute(text("SELECT id FROM counterparts"))).all())

    @application.get("/forgetful/prepared")
    async def prepared() -> int:
        async with application.state.db.driver_reads() as conn:
            return len(await forgetful.rows(conn, {}))

    guard = tenancy_guard.watch(application)
    yield application, guard
    await shutdown(application)


@pytest.mark.parametrize("path", ["/forgetful/raw", "/forgetful/prepared"])
async def test_the_guard_catches_a_request_that_forgets_the_scope(
    watched: tuple[FastAPI, tenancy_guard.Guard], path: str
) -> None:
    application, guard = watched
    async with make_client(application) as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert [(p, tables) for p, _, tables in guard] == [(path, ["counterparts"])]
    assert "counterparts unscoped" in guard.report()
