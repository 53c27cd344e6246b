"""The Monite header rules: versions, request id, timing, entity echo, and error shapes."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from tests.support.apps import make_client
from tests.support.factories import Tenant


@pytest.fixture
async def bare(app: FastAPI) -> httpx.AsyncClient:
    """A client that sends no x-monite-version of its own."""
    c = make_client(app)
    del c.headers["x-monite-version"]
    return c


async def test_missing_version_is_400(bare: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await bare.get("/v1/entities", headers=tenant.auth)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "type": "missing_api_version",
            "message": "Missing the x-monite-version HTTP header",
        }
    }


async def test_missing_version_on_auth_is_400(bare: httpx.AsyncClient) -> None:
    response = await bare.post("/v1/auth/token", json={})
    assert response.status_code == 400


@pytest.mark.parametrize("value", ["2024-5-25", "yesterday", "2024-13-01", "20240525"])
async def test_malformed_version_is_422(
    bare: httpx.AsyncClient, tenant: Tenant, value: str
) -> None:
    response = await bare.get("/v1/entities", headers={**tenant.auth, "x-monite-version": value})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "x-monite-version"]


@pytest.mark.parametrize("value", ["2024-05-25", "2030-01-01", "2024-06-01", "2022-11-16"])
async def test_known_or_newer_version_is_served_and_echoed(
    bare: httpx.AsyncClient, tenant: Tenant, value: str
) -> None:
    response = await bare.get("/v1/entities", headers={**tenant.auth, "x-monite-version": value})
    assert response.status_code == 200
    assert response.headers["x-monite-version"] == value


async def test_version_older_than_oldest_is_404(bare: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await bare.get(
        "/v1/entities", headers={**tenant.auth, "x-monite-version": "2022-11-15"}
    )
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "Not Found"}}


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient, tenant: Tenant) -> None:
    echoed = await client.get("/v1/entities", headers={**tenant.auth, "x-request-id": "req-123"})
    assert echoed.headers["x-request-id"] == "req-123"
    made = await client.get("/v1/entities", headers=tenant.auth)
    uuid.UUID(made.headers["x-request-id"])
    assert float(made.headers["x-process-time"]) >= 0


async def test_entity_id_is_echoed(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/v1/entity_users", headers=tenant.headers)
    assert response.status_code == 200
    assert response.headers["x-monite-entity-id"] == tenant.entity_id
    assert response.headers["x-monite-version"] == "2024-05-25"


async def test_headers_on_errors_too(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/entities")
    assert response.status_code == 401
    for name in ("x-request-id", "x-process-time", "x-monite-version", "ratelimit-limit"):
        assert name in response.headers


async def test_missing_entity_header_is_422(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/v1/entity_users", headers=tenant.auth)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "x-monite-entity-id"]


async def test_malformed_entity_header_is_422(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get(
        "/v1/entity_users", headers={**tenant.auth, "x-monite-entity-id": "not-a-uuid"}
    )
    assert response.status_code == 422


async def test_another_partners_entity_is_404(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    response = await client.get(
        "/v1/entity_users",
        headers={**tenant.auth, "x-monite-entity-id": other_tenant.entity_id},
    )
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "Entity not found"}}


async def test_unknown_entity_is_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get(
        "/v1/entity_users", headers={**tenant.auth, "x-monite-entity-id": str(uuid.uuid4())}
    )
    assert response.status_code == 404


async def test_unknown_route_is_404_in_monite_shape(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.get("/v1/no_such_thing", headers=tenant.auth)
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "Not Found"}}


async def test_wrong_method_is_405_in_monite_shape(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.put("/v1/entities", headers=tenant.auth)
    assert response.status_code == 405
    assert response.json() == {"error": {"message": "Method Not Allowed"}}


async def test_bad_json_is_422(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/entities",
        headers={**tenant.auth, "content-type": "application/json"},
        content=b"{not json",
    )
    assert response.status_code == 422


async def test_unhandled_error_is_a_bare_500_and_logged(
    app: FastAPI, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug never shows its stack trace or SQL to a client; the log has it with the request id."""
    from fundline.entities import service

    original = service.list_entities

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("SELECT secret FROM somewhere")

    service.list_entities = broken  # type: ignore[assignment]
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://fundline.test",
            headers={"x-monite-version": "2024-05-25", "x-request-id": "boom-1", **tenant.auth},
        ) as c:
            response = await c.get("/v1/entities")
    finally:
        service.list_entities = original
    assert response.status_code == 500
    assert response.json() == {"error": {"message": "Server Error"}}
    assert "SELECT" not in response.text
    assert response.headers["x-request-id"] == "boom-1"
    logged = caplog.text
    assert "boom-1" in logged
    assert "unhandled_error" in logged
