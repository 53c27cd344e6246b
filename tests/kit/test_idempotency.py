"""Idempotency-Key on POST: replay, mismatch, in-flight, scope, retention, concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from fundline.kit import clock
from fundline.kit.idempotency import scope_of
from fundline.models import EntityUser, IdempotencyKey
from tests.support.factories import Tenant


async def _users(app: FastAPI) -> int:
    async with app.state.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(EntityUser)) or 0)


def _post(client: httpx.AsyncClient, tenant: Tenant, key: str, body: dict[str, Any]) -> Any:
    return client.post(
        "/v1/entity_users",
        headers={**tenant.headers, "idempotency-key": key, "content-type": "application/json"},
        content=json.dumps(body).encode(),
    )


async def test_replay_returns_the_stored_response(
    client: httpx.AsyncClient, app: FastAPI, tenant: Tenant
) -> None:
    body = {"login": "once", "first_name": "Once"}
    first = await _post(client, tenant, "key-1", body)
    second = await _post(client, tenant, "key-1", body)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _users(app) == 1


async def test_same_key_different_body_is_422(
    client: httpx.AsyncClient, app: FastAPI, tenant: Tenant
) -> None:
    await _post(client, tenant, "key-2", {"login": "a", "first_name": "A"})
    response = await _post(client, tenant, "key-2", {"login": "b", "first_name": "B"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await _users(app) == 1


async def test_keys_are_scoped_per_client_and_entity(
    client: httpx.AsyncClient, app: FastAPI, tenant: Tenant, other_tenant: Tenant
) -> None:
    body = {"login": "shared", "first_name": "S"}
    mine = await _post(client, tenant, "same-key", body)
    theirs = await _post(client, other_tenant, "same-key", body)
    assert mine.status_code == theirs.status_code == 200
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers
    assert await _users(app) == 2


async def test_in_flight_key_is_409(
    client: httpx.AsyncClient, app: FastAPI, tenant: Tenant
) -> None:
    async with app.state.db.session() as session, session.begin():
        session.add(_claimed_row(tenant, "busy", BODY, locked_ago=timedelta(seconds=5)))
    response = await _post(client, tenant, "busy", BODY)
    assert response.status_code == 409
    assert await _users(app) == 0


async def test_stale_claim_is_taken_over(
    client: httpx.AsyncClient, app: FastAPI, tenant: Tenant
) -> None:
    async with app.state.db.session() as session, session.begin():
        session.add(_claimed_row(tenant, "stale", BODY, locked_ago=timedelta(seconds=91)))
    response = await _post(client, tenant, "stale", BODY)
    assert response.status_code == 200
    assert await _users(app) == 1


async def test_client_errors_are_stored_and_replayed(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await _post(client, tenant, "k-a", {"login": "taken", "first_name": "T"})
    conflict = await _post(client, tenant, "k-b", {"login": "taken", "first_name": "T"})
    assert conflict.status_code == 409
    again = await _post(client, tenant, "k-b", {"login": "taken", "first_name": "T"})
    assert again.status_code == 409
    assert again.headers["idempotent-replayed"] == "true"


async def test_validation_failures_are_not_stored(
    client: httpx.AsyncClient, app: FastAPI, tenant: Tenant
) -> None:
    bad = await _post(client, tenant, "k-v", {"login": "v"})
    assert bad.status_code == 422
    good = await _post(client, tenant, "k-v", {"login": "v", "first_name": "V"})
    assert good.status_code == 200
    assert await _users(app) == 1


async def test_keys_expire_after_retention(
    client: httpx.AsyncClient, app: FastAPI, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _post(client, tenant, "old", {"login": "one", "first_name": "O"})
    real = clock.system_now
    monkeypatch.setattr(clock, "system_now", lambda: real() + timedelta(hours=24, seconds=1))
    # Re-authenticate: the first token has expired with the clock too.
    token = (
        await client.post(
            "/v1/auth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": str(tenant.client_id),
                "client_secret": tenant.client_secret,
            },
        )
    ).json()["access_token"]
    fresh = Tenant(
        tenant.partner_id,
        tenant.client_id,
        tenant.client_secret,
        token,
        tenant.entity_id,
        {"authorization": f"Bearer {token}", "x-monite-entity-id": tenant.entity_id},
    )
    response = await _post(client, fresh, "old", {"login": "two", "first_name": "T"})
    assert response.status_code == 200
    assert response.json()["login"] == "two"


async def test_too_long_key_is_400(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await _post(client, tenant, "k" * 256, {"login": "x", "first_name": "X"})
    assert response.status_code == 400


async def test_fifty_concurrent_requests_create_one_row(
    client: httpx.AsyncClient, app: FastAPI, tenant: Tenant
) -> None:
    body = {"login": "racer", "first_name": "R"}
    responses = await asyncio.gather(*(_post(client, tenant, "race", body) for _ in range(50)))
    statuses = sorted({r.status_code for r in responses})
    assert set(statuses) <= {200, 409}, statuses
    created = [r for r in responses if r.status_code == 200]
    assert created
    assert len({r.content for r in created}) == 1
    assert await _users(app) == 1


async def test_fifty_concurrent_keys_on_postgres(
    postgres_only: None, client: httpx.AsyncClient, app: FastAPI, tenant: Tenant
) -> None:
    """Different keys, same login: the unique login still holds and every key has a result."""
    body = {"login": "contested", "first_name": "C"}
    responses = await asyncio.gather(*(_post(client, tenant, f"key-{i}", body) for i in range(50)))
    assert sorted(r.status_code for r in responses) == [200] + [409] * 49
    async with app.state.db.session() as session:
        stored = (await session.scalars(select(IdempotencyKey.response_status))).all()
    assert sorted(s or 0 for s in stored) == [200] + [409] * 49


BODY = {"login": "x", "first_name": "X"}


def _claimed_row(
    tenant: Tenant, key: str, body: dict[str, Any], *, locked_ago: timedelta
) -> IdempotencyKey:
    """A key row as a request that is (or was) running would have left it."""

    request = SimpleNamespace(
        scope={"fundline.client_id": str(tenant.client_id)},
        headers={"x-monite-entity-id": tenant.entity_id},
    )

    now = clock.system_now()
    return IdempotencyKey(
        id=uuid.uuid4(),
        scope=scope_of(request),  # type: ignore[arg-type]
        key=key,
        method="POST",
        path="/v1/entity_users",
        request_hash=hashlib.sha256(
            b"POST /v1/entity_users?\n" + json.dumps(body).encode()
        ).hexdigest(),
        locked_at=now - locked_ago,
        created_at=now - locked_ago,
        expires_at=now + timedelta(hours=1),
    )
