"""``locks.rows`` on a statement built once: its parameters given per call, its locking form
built once and kept while the statement lives."""

from __future__ import annotations

import gc
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import bindparam, select

from fundline.kit.db import Database
from fundline.lending import locks
from fundline.models import Receivable
from tests.support.factories import create_issued_invoice, make_tenant

BY_ENTITY = select(Receivable).where(
    Receivable.entity_id == bindparam("entity_id", type_=Receivable.entity_id.type)
)


async def test_a_kept_statement_locks_the_rows_its_parameters_choose(
    app: FastAPI, client: httpx.AsyncClient, db: Database
) -> None:
    tenants = [await make_tenant(app, client, name=name) for name in ("A", "B")]
    for tenant in (tenants[0], tenants[0], tenants[1]):
        await create_issued_invoice(client, tenant)
    for tenant, expected in zip(tenants, (2, 1), strict=True):
        entity_id = uuid.UUID(tenant.entity_id)
        async with db.session() as session, session.begin():
            found = await locks.rows(session, BY_ENTITY, {"entity_id": entity_id})
            assert len(found) == expected
            assert {r.entity_id for r in found} == {entity_id}
            # In primary-key order, and recorded as held in this transaction.
            assert [r.id for r in found] == sorted(r.id for r in found)
            assert locks.held(session, Receivable, [r.id for r in found])
    assert locks._LOCKING[BY_ENTITY][0] is Receivable  # built once, for both tenants


async def test_a_statement_built_per_call_is_not_kept(db: Database) -> None:
    async with db.session() as session, session.begin():
        stmt = select(Receivable).where(Receivable.id == uuid.uuid4())
        assert await locks.rows(session, stmt) == []
        assert stmt in locks._LOCKING
    kept = len(locks._LOCKING)
    del stmt
    gc.collect()
    assert len(locks._LOCKING) == kept - 1
