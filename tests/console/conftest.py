"""A browser-like client of the console: HTTPS (its cookie is ``Secure``), following nothing,
signed in with a fresh operator key."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from fundline.console import portfolio, reconciliation, snapshots
from fundline.kit.db import Database
from tests.support.factories import make_operator_key


@dataclass
class Operator:
    client: httpx.AsyncClient
    key: str

    async def page(self, path: str) -> str:
        response = await self.client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        return response.text

    async def csrf(self, path: str = "/lender/audit") -> str:
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', await self.page(path))
        assert found, "no CSRF field on the page"
        return found.group(1)

    async def post(self, path: str, data: dict[str, str | list[str]]) -> httpx.Response:
        return await self.client.post(path, data={"csrf": await self.csrf(), **data})


def console_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://fundline.test"
    )


@pytest.fixture(autouse=True)
def live_reports(app: FastAPI) -> None:
    """Whole-book pages computed for every request: the app outlives a test, and the kept
    results of one test must not show in the next (``console/snapshots.py``)."""
    app.state.portfolio_snapshots = portfolio.Snapshots(live_under=math.inf)
    app.state.reconciliation_snapshots = snapshots.Snapshots(
        reconciliation.report, live_under=math.inf
    )


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with console_client(app) as client:
        yield client


@pytest.fixture
async def operator(app: FastAPI, db: Database) -> AsyncIterator[Operator]:
    key = await make_operator_key(db, "ana")
    async with console_client(app) as client:
        response = await client.post("/lender/sign-in", data={"key": key, "next": "/lender/audit"})
        assert response.status_code == 303, response.text
        yield Operator(client, key)
