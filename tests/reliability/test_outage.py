"""PostgreSQL stops for 10 s under load: requests fail fast with a Monite-shaped 503 and no
trace in the log, ``/ready`` says why, and service comes back by itself. (Redis going away is
tests/kit/test_ratelimit.py's.)"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc

from fundline.app import create_app, shutdown
from fundline.kit.db import unavailable
from tests.support.apps import make_client, make_settings
from tests.support.factories import Tenant, counterpart_payload, make_tenant
from tests.support.faults import TcpProxy

OUTAGE_SECONDS = 10.0
CLIENTS = 4


@dataclass
class Outcome:
    status: int
    started: float  # time.monotonic()
    finished: float
    body: dict[str, object] = field(default_factory=dict)
    retry_after: str | None = None

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@pytest.fixture
async def behind_proxy(fresh_database: str) -> AsyncIterator[tuple[FastAPI, TcpProxy]]:
    """An app (with its embedded worker) whose PostgreSQL is reached through a proxy the test
    can take down."""
    url = fresh_database
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.up()
    app = create_app(make_settings(url.replace(":5432/", f":{proxy.port}/")), worker=True)
    try:
        async with app.router.lifespan_context(app):
            yield app, proxy
    finally:
        if not proxy.is_up:
            await proxy.up()
        await shutdown(app)
        await proxy.down()


async def _load(
    client: httpx.AsyncClient, tenant: Tenant, stop: asyncio.Event
) -> tuple[list[Outcome], list[str]]:
    """Reads and writes until ``stop``; what each got, and the ids of writes answered 201."""
    outcomes: list[Outcome] = []
    created: list[str] = []
    i = 0
    while not stop.is_set():
        i += 1
        started = time.monotonic()
        if i % 3 == 0:
            body = counterpart_payload(f"Load {uuid.uuid4().hex[:8]}")
            response = await client.post("/v1/counterparts", json=body, headers=tenant.headers)
        else:
            path = "/v1/counterparts" if i % 3 == 1 else "/v1/entities"
            headers = tenant.headers if path == "/v1/counterparts" else tenant.auth
            response = await client.get(path, headers=headers)
        outcome = Outcome(response.status_code, started, time.monotonic())
        if response.status_code >= 400:
            outcome.body = response.json()
            outcome.retry_after = response.headers.get("retry-after")
        elif response.status_code == 201:
            created.append(response.json()["id"])
        outcomes.append(outcome)
        await asyncio.sleep(0.01)
    return outcomes, created


async def _all_counterpart_ids(client: httpx.AsyncClient, tenant: Tenant) -> set[str]:
    found: set[str] = set()
    params: dict[str, str] = {"limit": "100"}
    while True:
        response = await client.get("/v1/counterparts", params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        found.update(c["id"] for c in page["data"])
        if not page.get("next_pagination_token"):
            return found
        params = {"pagination_token": page["next_pagination_token"]}


async def test_postgres_stopped_for_ten_seconds_under_load(
    behind_proxy: tuple[FastAPI, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    app, proxy = behind_proxy
    caplog.set_level(logging.INFO)
    async with make_client(app) as client:
        tenant = await make_tenant(app, client, name="Outage")
        stop = asyncio.Event()
        loads = [asyncio.create_task(_load(client, tenant, stop)) for _ in range(CLIENTS)]
        await asyncio.sleep(1.0)

        down_at = time.monotonic()
        await proxy.down()
        await asyncio.sleep(0.5)
        ready_down = await client.get("/ready")
        await asyncio.sleep(OUTAGE_SECONDS - (time.monotonic() - down_at))
        await proxy.up()
        up_at = time.monotonic()
        recovered_after = None
        while time.monotonic() - up_at < 15:
            if (await client.get("/v1/entities", headers=tenant.auth)).status_code == 200:
                recovered_after = time.monotonic() - up_at
                break
            await asyncio.sleep(0.1)
        back_at = time.monotonic()
        await asyncio.sleep(1.0)
        stop.set()
        results = await asyncio.gather(*loads)
        ready_up = await client.get("/ready")

        outcomes = [o for result, _ in results for o in result]
        created = [c for _, ids in results for c in ids]
        found = await _all_counterpart_ids(client, tenant)

    before = [o for o in outcomes if o.finished < down_at]
    during = [o for o in outcomes if o.started > down_at + 0.1 and o.finished < up_at]
    after = [o for o in outcomes if o.started > back_at]
    assert before
    assert during
    assert after
    assert {o.status for o in before} <= {200, 201}
    # During the outage: a 503 in Monite's shape, fast, with Retry-After (a request already on
    # its way when the connection dropped is answered 503 too).
    failed = [o for o in during if o.status not in (200, 201)]
    assert {o.status for o in failed} == {503}, {o.status for o in failed}
    assert len(failed) > len(during) * 0.9
    for o in failed:
        assert set(o.body) == {"error"}
        assert "message" in o.body["error"]  # type: ignore[operator]
        assert o.retry_after == "5"
    assert max(o.seconds for o in during) < 6.0  # no request hangs
    assert ready_down.status_code == 503
    assert ready_down.json() == {"status": "unavailable", "reason": "database unreachable"}
    # Back by itself.
    assert recovered_after is not None
    assert recovered_after < 10
    assert {o.status for o in after} <= {200, 201}
    assert ready_up.status_code == 200
    # Every write answered 201 is there.
    assert created
    assert set(created) <= found
    # No trace in the log: the outage is a warning per request, without a traceback.
    traced = [r for r in caplog.records if r.exc_info]
    assert traced == [], [r.getMessage() for r in traced]
    assert any("database_unavailable" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), True),
        (TimeoutError(), True),
        (asyncpg.ConnectionDoesNotExistError("connection was closed"), True),
        (asyncpg.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), True),
        (sa_exc.OperationalError("SELECT 1", {}, ConnectionResetError(104, "reset")), True),
        (sa_exc.TimeoutError("QueuePool limit reached"), True),
        (sa_exc.IntegrityError("INSERT", {}, ValueError("duplicate key")), False),
        (asyncpg.DeadlockDetectedError("deadlock detected"), False),
        (ValueError("a bug"), False),
        (FileNotFoundError(2, "No such file"), False),
    ],
)
def test_what_counts_as_the_database_being_away(error: BaseException, outage: bool) -> None:
    assert unavailable(error) is outage


def test_an_error_caused_by_an_outage_is_an_outage() -> None:
    """SQLAlchemy and the app wrap what the driver raised: the cause decides."""
    caused = RuntimeError("commit failed")
    caused.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    during = RuntimeError("rollback failed")
    during.__context__ = asyncpg.ConnectionDoesNotExistError("connection was closed")
    assert unavailable(caused)
    assert unavailable(during)
    assert not unavailable(RuntimeError("no cause"))
