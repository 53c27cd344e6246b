"""A request whose transaction the database aborted for a conflict with another (a deadlock, a
serialization failure) is run again whole, a bounded number of times, then answered 503 in
Monite's error shape with ``Retry-After`` (``kit/routing.py``, ``kit/errors.py``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.kit import routing
from fundline.kit.db import Database, is_retryable
from fundline.kit.errors import install_error_handlers
from fundline.kit.routing import TransactionalRoute, request_session
from fundline.models import Partner


class _Driver(Exception):
    """What a driver raises: an error with PostgreSQL's SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def _aborted(sqlstate: str = "40P01") -> DBAPIError:
    return DBAPIError("UPDATE financing_offers …", {}, _Driver(sqlstate))


RequestSession = Annotated[AsyncSession, Depends(request_session)]


class Flaky:
    """An endpoint's work: adds a partner, and fails its first ``failures`` runs with
    ``sqlstate``."""

    def __init__(self, failures: int, sqlstate: str = "40P01") -> None:
        self.failures, self.sqlstate, self.runs = failures, sqlstate, 0


@pytest.fixture
async def flaky_app(db: Database) -> AsyncIterator[tuple[httpx.AsyncClient, Flaky]]:
    flaky = Flaky(0)
    app = FastAPI()
    app.state.db = db
    install_error_handlers(app)
    router = APIRouter(route_class=TransactionalRoute)

    @router.post("/work")
    async def work(session: RequestSession) -> dict[str, int]:
        flaky.runs += 1
        session.add(Partner(name=f"run {flaky.runs}"))
        await session.flush()
        if flaky.runs <= flaky.failures:
            raise _aborted(flaky.sqlstate)
        return {"runs": flaky.runs}

    plain = APIRouter()

    @plain.post("/outside")
    async def outside() -> None:
        raise _aborted("40001")

    app.include_router(router)
    app.include_router(plain)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, flaky


async def _partners(db: Database) -> list[str]:
    async with db.session() as session:
        return list(await session.scalars(select(Partner.name).order_by(Partner.name)))


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
async def test_an_aborted_transaction_is_run_again_and_only_the_last_run_is_kept(
    db: Database, flaky_app: tuple[httpx.AsyncClient, Flaky], sqlstate: str
) -> None:
    client, flaky = flaky_app
    flaky.failures, flaky.sqlstate = routing.RETRIES, sqlstate
    response = await client.post("/work")
    assert response.status_code == 200, response.text
    assert response.json() == {"runs": routing.RETRIES + 1}
    assert await _partners(db) == [f"run {routing.RETRIES + 1}"]


async def test_one_aborted_too_often_is_a_503_with_retry_after(
    db: Database, flaky_app: tuple[httpx.AsyncClient, Flaky]
) -> None:
    client, flaky = flaky_app
    flaky.failures = routing.RETRIES + 1
    response = await client.post("/work")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert set(response.json()) == {"error"}
    assert "send the request again" in response.json()["error"]["message"]
    assert flaky.runs == routing.RETRIES + 1
    assert await _partners(db) == []


async def test_other_database_errors_are_not_run_again(
    db: Database, flaky_app: tuple[httpx.AsyncClient, Flaky]
) -> None:
    client, flaky = flaky_app
    flaky.failures, flaky.sqlstate = 1, "23505"  # a unique violation: a bug, not a conflict
    with pytest.raises(DBAPIError):
        await client.post("/work")
    assert flaky.runs == 1
    assert await _partners(db) == []


async def test_an_aborted_transaction_outside_the_route_class_is_a_503_too(
    flaky_app: tuple[httpx.AsyncClient, Flaky],
) -> None:
    client, _ = flaky_app
    response = await client.post("/outside")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert set(response.json()["error"]) == {"message"}


def test_what_counts_as_an_aborted_transaction() -> None:
    assert is_retryable(_aborted("40P01"))
    assert is_retryable(_aborted("40001"))
    assert is_retryable(_Driver("40P01"))  # straight from asyncpg
    assert not is_retryable(_aborted("23505"))
    assert not is_retryable(_aborted("40002"))  # integrity constraint violation at commit
    assert not is_retryable(ValueError("40P01"))


@pytest.mark.usefixtures("postgres_only")
async def test_a_real_deadlock_is_recognised(db: Database) -> None:
    """Two transactions locking two rows in opposite orders: PostgreSQL aborts one, with the
    error ``is_retryable`` knows."""
    ids = [uuid.uuid4(), uuid.uuid4()]
    async with db.session() as session, session.begin():
        session.add_all(Partner(id=i, name="deadlock") for i in ids)
    both_have_one = asyncio.Barrier(2)

    async def lock(first: uuid.UUID, second: uuid.UUID) -> None:
        async with db.session() as session, session.begin():
            await session.execute(text("SET LOCAL deadlock_timeout = '100ms'"))
            stmt = select(Partner).with_for_update()
            await session.execute(stmt.where(Partner.id == first))
            await both_have_one.wait()
            await session.execute(stmt.where(Partner.id == second))

    outcomes = await asyncio.gather(lock(*ids), lock(*reversed(ids)), return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failures) == 1, outcomes
    assert isinstance(failures[0], DBAPIError)
    assert is_retryable(failures[0])
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Partner)) == 2
