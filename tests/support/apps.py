"""The test apps' settings, and clients on an app whose every ``/v1`` response must conform to
Monite's spec (``tests/support/spec.py``)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from fundline.app import build_route_handlers, create_app
from fundline.config import Settings
from tests.support.spec import check_response

VERSION = "2024-05-25"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": "test-secret-key-" + "x" * 32,
        "rate_limit_per_second": 100_000,
        "auth_rate_limit_per_second": 100_000,
        "credential_failures_per_minute": 100_000,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)


def started_app(settings: Settings) -> FastAPI:
    """An app as a started server has it (its lifespan not run, but its routes' handlers
    built), for a test that counts requests in a one-second window: the building of the
    first request would take part of the window."""
    app = create_app(settings)
    build_route_handlers(app)
    return app


async def _check(response: httpx.Response) -> None:
    await response.aread()
    check_response(response)


def make_client(app: FastAPI, **headers: str) -> httpx.AsyncClient:
    """A client on the app; every ``/v1`` response it sees must conform to Monite's spec."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://fundline.test",
        headers={"x-monite-version": VERSION, **headers},
        event_hooks={"response": [_check]},
    )
