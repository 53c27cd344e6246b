"""kit.statements.Prepared: compiled once, run on the driver, values as SQLAlchemy gives them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pytest
from sqlalchemy import Dialect, bindparam, cast, select, update
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite.aiosqlite import dialect as sqlite_dialect

from fundline.kit import clock
from fundline.kit.db import Database, StrEnumColumn
from fundline.kit.statements import Prepared
from fundline.models import Partner


async def _partner(db: Database) -> Partner:
    async with db.session() as session, session.begin():
        partner = Partner(name="Statements")
        session.add(partner)
    return partner


BY_ID = select(Partner.id, Partner.name, Partner.created_at).where(
    Partner.id == bindparam("id", type_=Partner.id.type)
)


async def test_rows_match_what_sqlalchemy_reads(db: Database) -> None:
    partner = await _partner(db)
    async with db.driver_reads() as conn:
        (row,) = await Prepared(BY_ID).rows(conn, {"id": partner.id})
    assert (uuid.UUID(str(row[0])), row[1], row[2]) == (
        partner.id,
        "Statements",
        partner.created_at,
    )
    assert row[2].tzinfo is UTC


async def test_for_json_leaves_timestamps_as_stored(db: Database) -> None:
    partner = await _partner(db)
    async with db.driver_reads() as conn:
        (row,) = await Prepared(BY_ID, for_json=True).mappings(conn, {"id": partner.id})
    assert isinstance(row["created_at"], datetime)
    assert row["created_at"].tzinfo is None
    assert row["created_at"] == partner.created_at.replace(tzinfo=None)


class Letter(StrEnum):
    A = "a"
    B = "b"


LETTER = StrEnumColumn(Letter, 1)
BY_LETTER = select(cast(bindparam("letter", type_=LETTER), LETTER).label("letter"))


async def test_enum_columns_give_members_and_for_json_their_strings(db: Database) -> None:
    async with db.driver_reads() as conn:
        (members,) = await Prepared(BY_LETTER).rows(conn, {"letter": "b"})
        (strings,) = await Prepared(BY_LETTER, for_json=True).rows(conn, {"letter": Letter.B})
    assert members[0] is Letter.B
    assert type(strings[0]) is str
    assert strings[0] == "b"


async def test_a_value_outside_its_enum_is_refused_before_it_is_sent(db: Database) -> None:
    async with db.driver_reads() as conn:
        with pytest.raises(ValueError, match="'c' is not a valid Letter"):
            await Prepared(BY_LETTER).rows(conn, {"letter": "c"})


async def test_also_runs_on_sqlalchemy_connections_and_sessions(db: Database) -> None:
    partner = await _partner(db)
    prepared = Prepared(BY_ID)
    async with db.reader.connect() as conn:
        assert len(await prepared.rows(conn, {"id": partner.id})) == 1
    async with db.read_session() as session:
        assert len(await prepared.rows(session, {"id": partner.id})) == 1


async def test_a_missing_value_is_an_error_not_null(db: Database) -> None:
    async with db.driver_reads() as conn:
        with pytest.raises(KeyError):
            await Prepared(BY_ID).rows(conn, {})


async def test_values_the_statement_carries_need_not_be_given(db: Database) -> None:
    partner = await _partner(db)
    # SQLite renders LIMIT with an OFFSET parameter of its own.
    limited = Prepared(BY_ID.limit(bindparam("limit")))
    async with db.driver_reads() as conn:
        assert len(await limited.rows(conn, {"id": partner.id, "limit": 1})) == 1


RENAME = (
    update(Partner)
    .where(Partner.id == bindparam("id", type_=Partner.id.type))
    .values(name=bindparam("name", type_=Partner.name.type), updated_at=bindparam("now"))
    .returning(Partner.name)
)


@pytest.mark.parametrize("commit", [True, False], ids=["committed", "rolled back"])
async def test_an_update_returning_runs_in_the_sessions_transaction(
    db: Database, commit: bool
) -> None:
    partner = await _partner(db)
    async with db.session() as session:
        # The session's first statement: the write begins its transaction itself.
        values = {"id": partner.id, "name": "Renamed", "now": clock.now()}
        renamed = await Prepared(RENAME).rows(session, values)
        assert [tuple(row) for row in renamed] == [("Renamed",)]
        await (session.commit() if commit else session.rollback())
    async with db.driver_reads() as conn:
        (row,) = await Prepared(BY_ID).rows(conn, {"id": partner.id})
    assert row[1] == ("Renamed" if commit else "Statements")


async def test_an_update_must_give_its_onupdate_columns(db: Database) -> None:
    # Partner.updated_at has an onupdate that SQLAlchemy's execution would compute.
    stale = update(Partner).values(name=bindparam("name")).returning(Partner.name)
    async with db.session() as session:
        with pytest.raises(ValueError, match="onupdate"):
            await Prepared(stale).rows(session, {"name": "Renamed"})


DIALECTS: list[Dialect] = [sqlite_dialect(), asyncpg_dialect()]  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_values_convert_with_each_dialects_own_type_processing(dialect: Dialect) -> None:
    # The processors come from the types' public API (dialect_impl, bind_processor,
    # result_processor): if an upgrade changes what those return, this fails first.
    compiled = Prepared(BY_ID).compiled(dialect)
    partner_id = uuid.UUID(int=1)
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    if dialect.name == "sqlite":  # UUIDs as hex, timestamps as text, back as on PostgreSQL
        assert compiled.arguments({"id": partner_id}) == [partner_id.hex]
        raw: list[tuple[Any, ...]] = [(partner_id.hex, "Statements", "2026-01-02 03:04:05.000000")]
    else:  # asyncpg takes and gives UUIDs; its naive UTC timestamps become aware
        assert compiled.arguments({"id": partner_id}) == [partner_id]
        raw = [(partner_id, "Statements", created.replace(tzinfo=None))]
    assert compiled.convert(raw) == [(partner_id, "Statements", created)]
