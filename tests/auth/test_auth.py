"""POST /v1/auth/token and /v1/auth/revoke, and every way a token is refused."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from fundline.kit import clock
from fundline.models import AccessToken, ApiClient
from tests.support.factories import Tenant, create_entity_user, new_partner, revoke, token_for


async def test_client_credentials_token(client: httpx.AsyncClient, app: FastAPI) -> None:
    _, client_id, secret = await new_partner(app.state.db)
    response = await client.post(
        "/v1/auth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": str(client_id),
            "client_secret": secret,
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert len(body["access_token"]) >= 40


async def test_tokens_and_secrets_are_stored_hashed(
    client: httpx.AsyncClient, app: FastAPI, tenant: Tenant
) -> None:
    async with app.state.db.session() as session:
        stored = (await session.scalars(select(AccessToken.token_hash))).all()
        api_client = await session.get(ApiClient, tenant.client_id)
    assert tenant.token not in stored
    assert api_client is not None
    assert api_client.secret_hash.startswith("$argon2id$")
    assert tenant.client_secret not in api_client.secret_hash


@pytest.mark.parametrize(
    "body_change",
    [
        {"client_secret": "wrong"},
        {"client_id": str(uuid.uuid4())},
    ],
    ids=["wrong-secret", "unknown-client"],
)
async def test_bad_credentials_are_401(
    client: httpx.AsyncClient, tenant: Tenant, body_change: dict[str, str]
) -> None:
    body = {
        "grant_type": "client_credentials",
        "client_id": str(tenant.client_id),
        "client_secret": tenant.client_secret,
        **body_change,
    }
    response = await client.post("/v1/auth/token", json=body)
    assert response.status_code == 401
    assert response.json() == {"error": {"message": "Invalid client credentials"}}


async def test_extra_fields_are_422(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/auth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": str(tenant.client_id),
            "client_secret": tenant.client_secret,
            "scope": "everything",
        },
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "scope"]


async def test_unknown_grant_type_is_422(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/auth/token",
        json={
            "grant_type": "password",
            "client_id": str(tenant.client_id),
            "client_secret": tenant.client_secret,
        },
    )
    assert response.status_code == 422


async def test_missing_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/entities")
    assert response.status_code == 401
    assert response.json() == {"error": {"message": "Authorization header is missing"}}


async def test_unknown_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/entities", headers={"authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid access token"


async def test_other_scheme_is_401(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/v1/entities", headers={"authorization": f"Basic {tenant.token}"})
    assert response.status_code == 401


def later(monkeypatch: pytest.MonkeyPatch, delta: timedelta) -> None:
    """Move real time (what credentials run on) forward by ``delta``."""
    real = clock.system_now
    monkeypatch.setattr(clock, "system_now", lambda: real() + delta)


async def test_expired_token_is_401(
    client: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    later(monkeypatch, timedelta(seconds=86401))
    response = await client.get("/v1/entities", headers=tenant.auth)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The access token has expired"


async def test_sandbox_clock_does_not_expire_tokens(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    clock.set_offset(timedelta(days=90))
    assert (await client.get("/v1/entities", headers=tenant.auth)).status_code == 200


async def test_token_ttl_is_configurable(
    client: httpx.AsyncClient, app: FastAPI, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.state.settings.token_ttl_seconds = 120
    try:
        token = await token_for(client, tenant.client_id, tenant.client_secret)
    finally:
        app.state.settings.token_ttl_seconds = 86400
    later(monkeypatch, timedelta(seconds=121))
    response = await client.get("/v1/entities", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_revoke_stops_the_token_at_once(client: httpx.AsyncClient, tenant: Tenant) -> None:
    second = await token_for(client, tenant.client_id, tenant.client_secret)
    response = await revoke(client, tenant, second)
    assert response.status_code == 200
    assert response.json() == {"message": "Token revoked"}
    refused = await client.get("/v1/entities", headers={"authorization": f"Bearer {second}"})
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "The access token has been revoked"
    # The token that asked is untouched.
    assert (await client.get("/v1/entities", headers=tenant.auth)).status_code == 200


async def test_revoke_needs_the_owning_client(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    response = await revoke(client, other_tenant, tenant.token)
    assert response.status_code == 200
    # Another partner's client cannot revoke this token.
    assert (await client.get("/v1/entities", headers=tenant.auth)).status_code == 200


async def test_revoke_with_wrong_secret_is_401(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/auth/revoke",
        headers=tenant.auth,
        json={"client_id": str(tenant.client_id), "client_secret": "bad", "token": tenant.token},
    )
    assert response.status_code == 401


async def test_entity_user_token(client: httpx.AsyncClient, tenant: Tenant) -> None:
    user = await create_entity_user(client, tenant)
    token = await token_for(
        client, tenant.client_id, tenant.client_secret, entity_user_id=user["id"]
    )
    headers = {"authorization": f"Bearer {token}", "x-monite-entity-id": tenant.entity_id}
    response = await client.get(f"/v1/entity_users/{user['id']}", headers=headers)
    assert response.status_code == 200
    listed = await client.get("/v1/entities", headers={"authorization": f"Bearer {token}"})
    assert [e["id"] for e in listed.json()["data"]] == [tenant.entity_id]


async def test_entity_user_token_acts_only_on_its_entity(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    user = await create_entity_user(client, tenant)
    second_entity = (
        await client.post(
            "/v1/entities",
            headers=tenant.auth,
            json={
                "type": "individual",
                "email": "solo@example.com",
                "address": {
                    "line1": "1 A St",
                    "city": "Reno",
                    "postal_code": "89501",
                    "country": "US",
                },
                "individual": {"first_name": "Sam", "last_name": "Solo"},
            },
        )
    ).json()["id"]
    token = await token_for(
        client, tenant.client_id, tenant.client_secret, entity_user_id=user["id"]
    )
    auth = {"authorization": f"Bearer {token}"}
    assert (await client.get(f"/v1/entities/{second_entity}", headers=auth)).status_code == 404
    other = await client.get(
        "/v1/entity_users", headers={**auth, "x-monite-entity-id": second_entity}
    )
    assert other.status_code == 404
    # Creating entities is a partner's job.
    created = await client.post(
        "/v1/entities",
        headers=auth,
        json={
            "type": "organization",
            "email": "x@example.com",
            "address": {"line1": "1 A St", "city": "Reno", "postal_code": "89501", "country": "US"},
            "organization": {"legal_name": "X"},
        },
    )
    assert created.status_code == 403


async def test_entity_user_of_another_partner_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    user = await create_entity_user(client, other_tenant)
    response = await client.post(
        "/v1/auth/token",
        json={
            "grant_type": "entity_user",
            "client_id": str(tenant.client_id),
            "client_secret": tenant.client_secret,
            "entity_user_id": user["id"],
        },
    )
    assert response.status_code == 401


async def test_entity_user_grant_needs_the_user_id(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.post(
        "/v1/auth/token",
        json={
            "grant_type": "entity_user",
            "client_id": str(tenant.client_id),
            "client_secret": tenant.client_secret,
        },
    )
    assert response.status_code == 401


async def test_deleted_entity_user_token_stops_working(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    user = await create_entity_user(client, tenant)
    token = await token_for(
        client, tenant.client_id, tenant.client_secret, entity_user_id=user["id"]
    )
    deleted = await client.delete(f"/v1/entity_users/{user['id']}", headers=tenant.headers)
    assert deleted.status_code == 204
    response = await client.get("/v1/entities", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 401
