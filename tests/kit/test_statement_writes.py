"""kit.statements.Insert and Update: many rows in one statement, in the session's transaction,
values as the ORM would write them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from fundline.kit import clock
from fundline.kit.db import Database
from fundline.kit.statements import Insert, Update, written
from fundline.models import Entity, Event, Partner

EVENTS = Insert(Event)
DISPATCH = Update(Event, scope="entity_id")


async def _entity(db: Database) -> Entity:
    async with db.session() as session, session.begin():
        partner = Partner(name="Writes")
        session.add(partner)
        await session.flush()
        entity = Entity(partner_id=partner.id, type="organization", address={"country": "US"})
        session.add(entity)
    return entity


def _event(entity: Entity, n: int) -> dict[str, object]:
    object_id = uuid.uuid4()
    return {
        "partner_id": entity.partner_id,
        "entity_id": entity.id,
        "object_type": "receivable",
        "object_id": object_id,
        "action": "receivable.created",
        "description": "receivable_created",
        "object": {"id": str(object_id), "n": n, "note": "ünïcode"},
    }


async def test_insert_writes_every_row_with_the_orm_defaults(db: Database) -> None:
    entity = await _entity(db)
    rows = [_event(entity, n) for n in range(3)]
    before = clock.now()
    async with db.session() as session, session.begin():
        assert await EVENTS.rows(session, rows) == 3
        # Read in the same transaction: the rows are there before the commit.
        found = (await session.scalars(select(Event).where(Event.entity_id == entity.id))).all()
        assert len(found) == 3
    async with db.session() as session:
        events = (
            await session.scalars(
                select(Event).where(Event.entity_id == entity.id).order_by(Event.object_id)
            )
        ).all()
    assert sorted((e.object or {})["n"] for e in events) == [0, 1, 2]
    by_object = {e.object_id: e for e in events}
    for row in rows:
        event = by_object[row["object_id"]]  # type: ignore[index]
        assert event.object == row["object"]
        assert isinstance(event.id, uuid.UUID)  # the column's default
        assert event.created_at >= before - timedelta(seconds=1)
        assert event.created_at.tzinfo is UTC
        assert event.dispatched_at is None


async def test_insert_is_rolled_back_with_its_transaction(db: Database) -> None:
    entity = await _entity(db)
    async with db.session() as session:
        async with session.begin():
            await EVENTS.rows(session, [_event(entity, 1)])
            await session.rollback()
    async with db.session() as session:
        assert not (await session.scalars(select(Event).where(Event.entity_id == entity.id))).all()


async def test_insert_flushes_what_the_session_holds_first(db: Database) -> None:
    """A row may refer to one the ORM has not flushed yet."""
    entity = await _entity(db)
    async with db.session() as session, session.begin():
        partner = Partner(id=uuid.uuid4(), name="Pending")
        session.add(partner)
        row = {**_event(entity, 1), "partner_id": partner.id}
        assert await EVENTS.rows(session, [row]) == 1


async def test_a_broken_constraint_is_sqlalchemys_integrity_error(db: Database) -> None:
    entity = await _entity(db)
    row = {**_event(entity, 1), "id": uuid.uuid4()}
    async with db.session() as session, session.begin():
        await EVENTS.rows(session, [row])
        with pytest.raises(IntegrityError):
            await EVENTS.rows(session, [row])
        await session.rollback()


async def test_update_sets_each_rows_values_within_the_scope(db: Database) -> None:
    entity, other = await _entity(db), await _entity(db)
    mine = [{**_event(entity, n), "id": uuid.uuid4()} for n in range(2)]
    theirs = {**_event(other, 9), "id": uuid.uuid4()}
    when = [datetime(2026, 1, 1, 12, tzinfo=UTC), datetime(2026, 1, 2, 12, tzinfo=UTC)]
    async with db.session() as session, session.begin():
        await EVENTS.rows(session, [*mine, theirs])
    async with db.session() as session, session.begin():
        changes = [
            {"id": row["id"], "dispatched_at": at, "object": {"n": -1}}
            for row, at in zip(mine, when, strict=True)
        ]
        changes.append({"id": theirs["id"], "dispatched_at": when[0], "object": {"n": -1}})
        # The other entity's row is out of the scope: untouched.
        assert await DISPATCH.rows(session, changes, scope=entity.id) == 2
    async with db.session() as session:
        events = {e.id: e for e in (await session.scalars(select(Event))).all()}
    assert [events[row["id"]].dispatched_at for row in mine] == when  # type: ignore[index]
    assert all(events[row["id"]].object == {"n": -1} for row in mine)  # type: ignore[index]
    assert events[theirs["id"]].dispatched_at is None  # type: ignore[index]
    assert events[theirs["id"]].object["n"] == 9  # type: ignore[index]


async def test_every_refuses_a_row_that_updated_nothing(db: Database) -> None:
    entity, other = await _entity(db), await _entity(db)
    mine, theirs = (
        {**_event(entity, 1), "id": uuid.uuid4()},
        {**_event(other, 2), "id": uuid.uuid4()},
    )
    async with db.session() as session, session.begin():
        await EVENTS.rows(session, [mine, theirs])
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    async with db.session() as session, session.begin():
        await DISPATCH.every(session, [{"id": mine["id"], "dispatched_at": at}], scope=entity.id)
    rows = [{"id": mine["id"], "dispatched_at": at}, {"id": theirs["id"], "dispatched_at": at}]
    async with db.session() as session:
        with pytest.raises(StaleDataError, match="1 of 2 rows of events not updated"):
            await DISPATCH.every(session, rows, scope=entity.id)  # theirs is out of the scope
    async with db.session() as session:
        found = await session.get(Event, theirs["id"])
    assert found is not None
    assert found.dispatched_at is None


def test_a_table_with_server_defaults_is_refused() -> None:
    from sqlalchemy import Column, Integer, MetaData, Table, text

    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True, server_default=text("1"))
    )
    with pytest.raises(ValueError, match="server defaults"):
        Insert(table)


async def test_written_values_are_expired_by_the_rollback_that_undoes_them(db: Database) -> None:
    entity = await _entity(db)
    row = {**_event(entity, 1), "id": uuid.uuid4()}
    async with db.session() as session, session.begin():
        await EVENTS.rows(session, [row])
    when = datetime(2026, 1, 1, 12, tzinfo=UTC)
    async with db.session() as session:
        event = await session.get(Event, row["id"])
        assert event is not None
        # In a savepoint: marked, so its rollback expires what it wrote.
        savepoint = await session.begin_nested()
        await DISPATCH.rows(session, [{"id": event.id, "dispatched_at": when}], scope=entity.id)
        written(event, {"dispatched_at": when})
        assert event in session.dirty
        await savepoint.rollback()
        assert "dispatched_at" in inspect(event).expired_attributes
        await session.refresh(event)
        assert event.dispatched_at is None
        # Outside one: not marked (the transaction's rollback expires everything).
        await DISPATCH.rows(session, [{"id": event.id, "dispatched_at": when}], scope=entity.id)
        written(event, {"dispatched_at": when})
        assert event.dispatched_at == when
        assert not session.dirty
        await session.rollback()
        assert "dispatched_at" in inspect(event).expired_attributes
