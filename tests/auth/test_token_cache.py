"""The per-process token cache: on only while it can be told of changes, emptied in every
process when a token is revoked or an entity user deleted (PostgreSQL NOTIFY)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from fundline.app import create_app, shutdown
from fundline.auth.cache import TokenCache, TokenRow
from fundline.kit import security
from tests.support.apps import make_client, make_settings
from tests.support.factories import Tenant, create_entity_user, make_tenant, revoke, token_for

pytestmark = pytest.mark.usefixtures("postgres_only")

LIST = "/v1/financing_invoices"


@pytest.fixture
async def two_apps(app: FastAPI, database_url: str) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    """Two running apps (lifespans on, so their caches listen) on the test database, as two
    server processes would be."""
    async with AsyncExitStack() as stack:
        apps = []
        for _ in range(2):
            running = create_app(make_settings(database_url))
            await stack.enter_async_context(running.router.lifespan_context(running))
            stack.push_async_callback(shutdown, running)
            apps.append(running)
        yield apps[0], apps[1]


async def _wait_for(condition: object, seconds: float = 3.0) -> None:
    assert callable(condition)
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def _cached(app: FastAPI, tenant: Tenant) -> TokenRow | None:
    cache: TokenCache = app.state.tokens
    return cache.get(security.token_digest(tenant.token))


async def test_revocation_empties_the_cache_of_every_process(
    two_apps: tuple[FastAPI, FastAPI],
) -> None:
    first, second = two_apps
    async with make_client(first) as a, make_client(second) as b:
        tenant = await make_tenant(first, a, name="Cached")
        assert first.state.tokens.active
        assert (await a.get(LIST, headers=tenant.headers)).status_code == 200
        assert await _cached(first, tenant) is not None
        # Served from the cache now: no row is read for the token or its entity.
        assert (await a.get(LIST, headers=tenant.headers)).status_code == 200

        revoked = await revoke(b, tenant, tenant.token)
        assert revoked.status_code == 200, revoked.text
        await _wait_for(lambda: first.state.tokens.get(security.token_digest(tenant.token)) is None)
        refused = await a.get(LIST, headers=tenant.headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["message"] == "The access token has been revoked"


async def test_deleting_an_entity_user_stops_its_cached_token(
    two_apps: tuple[FastAPI, FastAPI],
) -> None:
    first, second = two_apps
    async with make_client(first) as a, make_client(second) as b:
        tenant = await make_tenant(first, a, name="Users")
        user = await create_entity_user(a, tenant)
        user_token = await token_for(
            a, tenant.client_id, tenant.client_secret, entity_user_id=user["id"]
        )
        headers = {"authorization": f"Bearer {user_token}", "x-monite-entity-id": tenant.entity_id}
        assert (await a.get(LIST, headers=headers)).status_code == 200
        assert first.state.tokens.get(security.token_digest(user_token)) is not None

        deleted = await b.delete(f"/v1/entity_users/{user['id']}", headers=tenant.headers)
        assert deleted.status_code == 204, deleted.text
        await _wait_for(lambda: first.state.tokens.get(security.token_digest(user_token)) is None)
        refused = await a.get(LIST, headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["message"] == (
            "The entity user of this token is no longer active"
        )


async def test_a_cached_token_is_still_checked_against_each_entity(
    two_apps: tuple[FastAPI, FastAPI],
) -> None:
    first, _ = two_apps
    async with make_client(first) as a:
        tenant = await make_tenant(first, a, name="Mine")
        other = await make_tenant(first, a, name="Theirs")
        assert (await a.get(LIST, headers=tenant.headers)).status_code == 200
        assert await _cached(first, tenant) is not None
        foreign = {**tenant.headers, "x-monite-entity-id": other.entity_id}
        assert (await a.get(LIST, headers=foreign)).status_code == 404
        assert (await a.get(LIST, headers=tenant.headers)).status_code == 200


async def test_the_cache_is_off_while_it_cannot_listen(two_apps: tuple[FastAPI, FastAPI]) -> None:
    first, _ = two_apps
    cache: TokenCache = first.state.tokens
    async with make_client(first) as a:
        tenant = await make_tenant(first, a, name="Lost")
        assert (await a.get(LIST, headers=tenant.headers)).status_code == 200
        assert cache._listener is not None
        cache._listener.terminate()  # the connection is gone: no change can reach us now
        await _wait_for(lambda: not cache.active)
        assert await _cached(first, tenant) is None
        assert (await a.get(LIST, headers=tenant.headers)).status_code == 200
        assert await _cached(first, tenant) is None  # read, not kept


async def test_a_row_read_before_the_cache_was_emptied_is_not_kept(
    two_apps: tuple[FastAPI, FastAPI],
) -> None:
    cache: TokenCache = two_apps[0].state.tokens
    row = TokenRow(
        uuid.uuid4(), uuid.uuid4(), None, None, datetime.now(UTC) + timedelta(hours=1), None, None
    )
    generation = cache.generation
    cache.clear()  # a revocation arrived while the row was being read
    cache.put("digest", row, generation=generation)
    assert cache.get("digest") is None
    cache.put("digest", row, generation=cache.generation)
    assert cache.get("digest") == row


async def test_without_postgresql_nothing_is_cached() -> None:
    cache = TokenCache(None)
    await cache.start()
    assert not cache.active
    row = TokenRow(uuid.uuid4(), uuid.uuid4(), None, None, datetime.now(UTC), None, None)
    cache.put("digest", row, generation=cache.generation)
    assert cache.get("digest") is None
    await cache.close()


async def test_the_default_test_app_does_not_cache(
    client: httpx.AsyncClient, tenant: Tenant, app: FastAPI
) -> None:
    # The shared test app runs no lifespan: its tables are emptied between tests without a
    # NOTIFY, so a listening cache would keep tokens of rows that are gone.
    assert (await client.get(LIST, headers=tenant.headers)).status_code == 200
    assert not app.state.tokens.active


async def test_closing_stops_listening_for_good(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fundline.auth.cache.RECONNECT_SECONDS", 0.01)
    cache = TokenCache(app.state.db.driver_dsn)
    await cache.start()
    assert cache.active
    await cache.close()
    await asyncio.sleep(0.1)  # closing its connection must not bring a new one
    assert not cache.active
    assert cache._reconnect is None or cache._reconnect.done()


async def test_a_full_cache_drops_only_the_least_recently_used(app: FastAPI) -> None:
    cache = TokenCache(app.state.db.driver_dsn, size=2)
    await cache.start()
    try:
        assert cache.active
        rows = {
            digest: TokenRow(uuid.uuid4(), uuid.uuid4(), None, None, datetime.now(UTC), None, None)
            for digest in ("a", "b", "c")
        }
        cache.put("a", rows["a"], generation=cache.generation)
        cache.put("b", rows["b"], generation=cache.generation)
        assert cache.get("a") == rows["a"]  # "b" is now the least recently used
        cache.put("c", rows["c"], generation=cache.generation)
        assert [cache.get(digest) for digest in ("a", "b", "c")] == [rows["a"], None, rows["c"]]

        partner = uuid.uuid4()
        first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        cache.add_owned(partner, first)
        cache.add_owned(partner, second)
        assert cache.owns(partner, first)
        cache.add_owned(partner, third)
        assert [cache.owns(partner, e) for e in (first, second, third)] == [True, False, True]
    finally:
        await cache.close()
