"""Rate limits: Monite's five headers, 429 with Retry-After, in memory and in Redis."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from fundline.app import shutdown
from fundline.kit.metrics import registry
from fundline.kit.ratelimit import LimitStore, LocalWindows
from tests.support.apps import make_client, make_settings, started_app
from tests.support.factories import make_tenant
from tests.support.live import free_port, wait_until_up
from tests.support.services import RedisProcess

LIMIT = 5
HEADERS = (
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-ratelimit-limit-second",
    "x-ratelimit-remaining-second",
)


@pytest.fixture(params=["memory", "redis"])
async def limited_app(
    request: pytest.FixtureRequest, app: FastAPI, database_url: str
) -> AsyncIterator[FastAPI]:
    """An app on the test database with a limit of 5 per second."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    limited = started_app(
        make_settings(
            database_url,
            rate_limit_per_second=LIMIT,
            auth_rate_limit_per_second=3,
            redis_url=redis_url,
            # Every test's windows apart: anonymous requests here all come from one address.
            redis_key_prefix=f"fundline-test-{uuid.uuid4().hex}",
        )
    )
    yield limited
    await shutdown(limited)


async def test_headers_count_down_then_429(limited_app: FastAPI, app: FastAPI) -> None:
    async with make_client(app) as setup:
        tenant = await make_tenant(app, setup, name="Limited")
    async with make_client(limited_app) as client:
        responses = [await client.get("/v1/entities", headers=tenant.auth) for _ in range(LIMIT)]
        blocked = await client.get("/v1/entities", headers=tenant.auth)
    for i, response in enumerate(responses):
        assert response.status_code == 200
        for name in HEADERS:
            assert name in response.headers
        assert response.headers["ratelimit-limit"] == str(LIMIT)
        assert response.headers["x-ratelimit-limit-second"] == str(LIMIT)
        assert response.headers["ratelimit-remaining"] == str(LIMIT - 1 - i)
        assert response.headers["x-ratelimit-remaining-second"] == str(LIMIT - 1 - i)
    assert blocked.status_code == 429
    assert blocked.json() == {"message": "API rate limit exceeded"}
    assert int(blocked.headers["retry-after"]) >= 1
    assert blocked.headers["ratelimit-remaining"] == "0"


async def test_one_client_does_not_throttle_another(limited_app: FastAPI, app: FastAPI) -> None:
    async with make_client(app) as setup:
        first = await make_tenant(app, setup, name="Busy")
        second = await make_tenant(app, setup, name="Quiet")
    async with make_client(limited_app) as client:
        for _ in range(LIMIT + 1):
            await client.get("/v1/entities", headers=first.auth)
        assert (await client.get("/v1/entities", headers=first.auth)).status_code == 429
        assert (await client.get("/v1/entities", headers=second.auth)).status_code == 200


async def test_token_endpoint_has_its_own_lower_limit(limited_app: FastAPI, app: FastAPI) -> None:
    async with make_client(app) as setup:
        tenant = await make_tenant(app, setup, name="Tokens")
    body = {
        "grant_type": "client_credentials",
        "client_id": str(tenant.client_id),
        "client_secret": "wrong",
    }
    async with make_client(limited_app) as client:
        statuses = [(await client.post("/v1/auth/token", json=body)).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


async def test_window_moves_on(limited_app: FastAPI, app: FastAPI) -> None:
    async with make_client(app) as setup:
        tenant = await make_tenant(app, setup, name="Patient")
    async with make_client(limited_app) as client:
        for _ in range(LIMIT + 1):
            last = await client.get("/v1/entities", headers=tenant.auth)
        assert last.status_code == 429
        await asyncio.sleep(int(last.headers["retry-after"]) + 0.1)
        assert (await client.get("/v1/entities", headers=tenant.auth)).status_code == 200


async def test_operations_are_not_limited(limited_app: FastAPI) -> None:
    async with make_client(limited_app) as client:
        statuses = {(await client.get("/health")).status_code for _ in range(LIMIT * 2)}
    assert statuses == {200}


# --- two server processes share one Redis window --------------------------------------------


def _fundline(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fundline", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


@pytest.fixture
def two_servers(redis_url: str, tmp_path: Path) -> Iterator[tuple[list[str], dict[str, str]]]:
    env = {
        **os.environ,
        "FUNDLINE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}",
        "FUNDLINE_REDIS_URL": redis_url,
        "FUNDLINE_RATE_LIMIT_PER_SECOND": str(LIMIT),
        "FUNDLINE_LOG_LEVEL": "WARNING",
    }
    _fundline("migrate", env=env)
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "fundline", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, proc in zip(urls, procs, strict=True):
            wait_until_up(url, proc)
        yield urls, env
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


async def test_limit_holds_across_processes(two_servers: tuple[list[str], dict[str, str]]) -> None:
    urls, env = two_servers
    partner = json.loads(_fundline("partner", "create", "--name", "Shared", env=env).stdout)
    headers = {"x-monite-version": "2024-05-25"}
    async with httpx.AsyncClient(headers=headers, timeout=10) as http:
        token = (
            await http.post(
                f"{urls[0]}/v1/auth/token",
                json={
                    "grant_type": "client_credentials",
                    "client_id": partner["client_id"],
                    "client_secret": partner["client_secret"],
                },
            )
        ).json()["access_token"]
        auth = {"authorization": f"Bearer {token}"}
        # The moving window is one second: if the burst took longer (a very slow machine),
        # run it again rather than judge it.
        for _ in range(3):
            started = time.monotonic()
            statuses = [
                (await http.get(f"{urls[i % 2]}/v1/entities", headers=auth)).status_code
                for i in range(4 * LIMIT)
            ]
            if time.monotonic() - started < 1:
                break
            await asyncio.sleep(1.1)
        else:
            pytest.fail("could not send a burst within one second in three tries")
    assert statuses.count(200) == LIMIT, statuses
    assert statuses.count(429) == 3 * LIMIT


async def test_forwarded_for_from_a_client_is_not_believed(
    limited_app: FastAPI, app: FastAPI
) -> None:
    """A brute-forcer cannot get a fresh token-endpoint window by inventing addresses."""
    async with make_client(app) as setup:
        tenant = await make_tenant(app, setup, name="Spoofer")
    body = {
        "grant_type": "client_credentials",
        "client_id": str(tenant.client_id),
        "client_secret": "wrong",
    }
    async with make_client(limited_app) as client:
        statuses = [
            (
                await client.post(
                    "/v1/auth/token", json=body, headers={"x-forwarded-for": f"10.0.0.{i}"}
                )
            ).status_code
            for i in range(4)
        ]
    assert statuses == [401, 401, 401, 429]


def test_local_windows_move_with_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("fundline.kit.ratelimit.time.time", lambda: now[0])
    windows = LocalWindows()
    assert [windows.acquire_entry("k", 3, 1) for _ in range(4)] == [True, True, True, False]
    assert windows.get_moving_window("k", 3, 1) == (1000.0, 3)
    now[0] = 1000.5
    assert not windows.acquire_entry("k", 3, 1)  # the three hits are still inside the second
    now[0] = 1001.0
    assert windows.acquire_entry("k", 3, 1)  # they left the window together
    assert windows.get_moving_window("k", 3, 1) == (1001.0, 1)


def test_local_windows_drop_idle_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr("fundline.kit.ratelimit.time.time", lambda: now[0])
    monkeypatch.setattr(LocalWindows, "MAX_KEYS", 3)
    windows = LocalWindows()
    for key in "abc":
        windows.acquire_entry(key, 5, 1)
    now[0] = 0.5
    windows.acquire_entry("c", 5, 1)
    now[0] = 1.2  # a and b are idle; c was hit 0.7 s ago
    windows.acquire_entry("d", 5, 1)
    assert set(windows.windows) == {"c", "d"}


# --- the other APIs, and failed credentials -------------------------------------------------


def _from(app: FastAPI, address: str) -> httpx.AsyncClient:
    """A client on ``app`` whose requests come from ``address``."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 4711)),
        base_url="http://fundline.test",
    )


@pytest.mark.parametrize("path", ["/connect/v1/business", "/lender/v1/financing_invoices"])
async def test_connect_and_lender_apis_are_limited_per_address(
    limited_app: FastAPI, path: str
) -> None:
    async with _from(limited_app, "203.0.113.7") as client:
        statuses = [(await client.get(path)).status_code for _ in range(LIMIT + 1)]
    async with _from(limited_app, "203.0.113.8") as other:
        elsewhere = (await other.get(path)).status_code
    assert statuses == [401] * LIMIT + [429]
    assert elsewhere == 401


async def test_failed_operator_keys_lock_out_the_address(
    app: FastAPI, operator: dict[str, str]
) -> None:
    """Guessing operator keys: after ``credential_failures_per_minute`` failures an address
    is refused for the minute, even with a right key; other addresses are not."""
    failures = 4
    guarded = started_app(
        make_settings(
            app.state.settings.database_url,
            rate_limit_per_second=1_000,
            credential_failures_per_minute=failures,
            redis_key_prefix=f"fundline-test-{uuid.uuid4().hex}",
        )
    )
    wrong = {"authorization": "Bearer fko_not-a-key"}
    try:
        async with _from(guarded, "198.51.100.20") as guesser:
            guesses = [
                (await guesser.get("/lender/v1/financing_invoices", headers=wrong)).status_code
                for _ in range(failures)
            ]
            locked = await guesser.get("/lender/v1/financing_invoices", headers=operator)
        async with _from(guarded, "198.51.100.21") as colleague:
            allowed = await colleague.get("/lender/v1/financing_invoices", headers=operator)
    finally:
        await shutdown(guarded)
    assert guesses == [401] * failures
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "60"
    assert "failed attempts" in locked.json()["message"]
    assert allowed.status_code == 200


async def test_failed_connect_tokens_lock_out_the_address(app: FastAPI) -> None:
    guarded = started_app(
        make_settings(app.state.settings.database_url, credential_failures_per_minute=3)
    )
    try:
        async with _from(guarded, "198.51.100.30") as guesser:
            statuses = [
                (
                    await guesser.post("/connect/v1/sessions", json={"token": f"guess-{i}"})
                ).status_code
                for i in range(4)
            ]
    finally:
        await shutdown(guarded)
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3] == 429


# --- Redis goes away, and comes back --------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A Redis server of this test's own, which it may stop and start again."""
    server = RedisProcess(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


async def _entities(app: FastAPI, tenant_auth: dict[str, str], n: int) -> list[int]:
    async with make_client(app) as client:
        return [
            (await client.get("/v1/entities", headers=tenant_auth)).status_code for _ in range(n)
        ]


async def test_without_redis_the_limit_falls_back_to_the_process_and_comes_back(
    app: FastAPI,
    private_redis: RedisProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(LimitStore, "RETRY_SECONDS", 0.2)
    async with make_client(app) as setup:
        tenant = await make_tenant(app, setup, name="Resilient")
    limited = started_app(
        make_settings(
            app.state.settings.database_url,
            rate_limit_per_second=LIMIT,
            redis_url=private_redis.url,
            redis_key_prefix=f"fundline-test-{uuid.uuid4().hex}",
            log_level="INFO",
        )
    )
    store: LimitStore = limited.state.limits
    try:
        assert await _entities(limited, tenant.auth, 1) == [200]
        assert store.shared
        fallbacks = _metric("fundline_rate_limit_fallbacks_total")

        private_redis.stop()
        started = time.monotonic()
        statuses = await _entities(limited, tenant.auth, LIMIT + 1)
        assert time.monotonic() - started < 5  # no request waits long on a Redis that is gone
        assert statuses == [200] * LIMIT + [429]  # still limited: by this process's windows
        assert not store.shared
        assert _metric("fundline_rate_limit_redis_up") == 0
        assert _metric("fundline_rate_limit_fallbacks_total") >= fallbacks + LIMIT + 1
        logged = capsys.readouterr()
        assert "rate_limit_redis_unavailable" in logged.out + logged.err

        private_redis.start()
        await asyncio.sleep(1.1)  # past the retry delay, and a fresh one-second window
        assert await _entities(limited, tenant.auth, 1) == [200]
        assert store.shared
        assert _metric("fundline_rate_limit_redis_up") == 1
        logged = capsys.readouterr()
        assert "rate_limit_redis_back" in logged.out + logged.err
    finally:
        await shutdown(limited)


async def test_a_redis_that_never_answers_does_not_stop_the_api(app: FastAPI) -> None:
    async with make_client(app) as setup:
        tenant = await make_tenant(app, setup, name="No Redis")
    limited = started_app(
        make_settings(
            app.state.settings.database_url,
            rate_limit_per_second=LIMIT,
            redis_url=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        )
    )
    try:
        assert await _entities(limited, tenant.auth, LIMIT + 1) == [200] * LIMIT + [429]
    finally:
        await shutdown(limited)


def _metric(name: str) -> float:
    value = registry.get_sample_value(name)
    assert value is not None, name
    return value
