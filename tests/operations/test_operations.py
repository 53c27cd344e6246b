"""``/health``, ``/ready`` and ``/metrics``: public, unversioned, and honest about the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from fundline.app import create_app, shutdown
from fundline.kit.db import create_engine
from fundline.operations.migrations import alembic_config, head_revision
from tests.support.apps import make_client, make_settings
from tests.support.factories import Tenant

REQUESTS = "fundline_http_requests_total"
LATENCY = "fundline_http_request_duration_seconds"


@pytest.fixture
async def bare_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """No x-monite-version and no token: operations endpoints need neither."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://fundline.test"
    ) as c:
        yield c


async def _app_answering_ready(settings_url: str) -> httpx.Response:
    application = create_app(make_settings(settings_url))
    try:
        async with make_client(application) as c:
            return await c.get("/ready")
    finally:
        await shutdown(application)


async def _migrate_to(url: str, revision: str) -> None:
    def run(connection: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


async def test_health(bare_client: httpx.AsyncClient) -> None:
    response = await bare_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "x-request-id" in response.headers


async def test_ready_on_a_migrated_database(bare_client: httpx.AsyncClient) -> None:
    response = await bare_client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "migration": head_revision()}


async def test_ready_is_503_when_the_database_is_unreachable() -> None:
    response = await _app_answering_ready("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "database unreachable"}


async def test_ready_is_503_on_a_database_never_migrated(tmp_path: Path) -> None:
    response = await _app_answering_ready(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["reason"] == f"migrations at none applied, expected {head_revision()}"


async def test_ready_is_503_one_migration_behind(tmp_path: Path) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_revision("head")
    assert head is not None
    previous = head.down_revision
    assert isinstance(previous, str)
    url = f"sqlite+aiosqlite:///{tmp_path / 'behind.db'}"
    await _migrate_to(url, previous)
    response = await _app_answering_ready(url)
    assert response.status_code == 503
    assert response.json()["reason"] == f"migrations at {previous}, expected {head.revision}"


async def test_metrics_count_requests_by_route_template_and_status(
    client: httpx.AsyncClient, bare_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    before = _samples((await bare_client.get("/metrics")).text)
    for _ in range(3):
        ok = await client.get(f"/v1/entities/{tenant.entity_id}", headers=tenant.auth)
        assert ok.status_code == 200
    missing = await client.get(
        "/v1/entities/00000000-0000-0000-0000-000000000000", headers=tenant.auth
    )
    assert missing.status_code == 404
    assert (await client.get("/v1/entities")).status_code == 401
    assert (await client.get("/v1/no_such_thing", headers=tenant.auth)).status_code == 404
    assert (await bare_client.get("/health")).status_code == 200  # this test's own, not another's
    response = await bare_client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = _samples(response.text)

    def delta(name: str, labels: frozenset[tuple[str, str]]) -> float:
        return after.get((name, labels), 0.0) - before.get((name, labels), 0.0)

    one = "/v1/entities/{entity_id}"
    assert delta(REQUESTS, _labels(method="GET", route=one, status="200")) == 3
    assert delta(REQUESTS, _labels(method="GET", route=one, status="404")) == 1
    assert delta(REQUESTS, _labels(method="GET", route="/v1/entities", status="401")) == 1
    assert delta(REQUESTS, _labels(method="GET", route="unmatched", status="404")) == 1
    assert delta(LATENCY + "_count", _labels(method="GET", route=one)) == 4
    assert delta(LATENCY + "_bucket", _labels(method="GET", route=one, le="+Inf")) == 4
    assert delta(LATENCY + "_sum", _labels(method="GET", route=one)) > 0
    # The label is the template: raw ids would make one time series per object.
    assert tenant.entity_id not in response.text
    routes = {dict(labels)["route"] for name, labels in after if name == REQUESTS}
    assert "/entities/{entity_id}" not in routes
    assert "/health" in routes


async def test_operations_endpoints_are_public_and_unversioned(
    bare_client: httpx.AsyncClient,
) -> None:
    for path in ("/health", "/ready", "/metrics"):
        response = await bare_client.get(path)
        assert response.status_code == 200, path
        assert "x-monite-version" not in response.headers
        assert "ratelimit-limit" not in response.headers
