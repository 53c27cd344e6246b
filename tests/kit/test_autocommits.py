"""``kit.db.autocommits``: which sessions commit each statement on their own (a read's session
on PostgreSQL), where a write is no transaction and a row lock ends with its statement."""

from __future__ import annotations

from fundline.kit.db import Database, autocommits


async def test_only_a_reads_session_on_postgresql_autocommits(db: Database) -> None:
    async with db.read_session() as read, db.session() as write:
        assert autocommits(read) is db.is_postgres
        assert autocommits(write) is False
