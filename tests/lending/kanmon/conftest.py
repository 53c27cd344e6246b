"""The server's lender swapped for the Kanmon adapter, talking to an in-process fake Kanmon that
checks every request it gets against Kanmon's spec (``lending/kanmon/fake.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from fundline.lending.kanmon.client import KanmonClient
from fundline.lending.kanmon.fake import FakeKanmon
from fundline.lending.kanmon.provider import KanmonLender

API_KEY = "test-kanmon-key"


async def _no_wait(_: float) -> None:
    return None


@pytest.fixture
def fake() -> FakeKanmon:
    return FakeKanmon(api_keys=[API_KEY])


@pytest.fixture
async def kanmon(app: FastAPI, fake: FakeKanmon) -> AsyncIterator[KanmonLender]:
    """The app's lender is Kanmon for the test: the same routes, tenancy guard and lock
    order as every test app, the adapter behind them. At the end, no request the adapter
    sent may have broken Kanmon's spec."""
    client = KanmonClient(
        base_url="https://api.kanmon.dev",
        api_key=API_KEY,
        timeout=5.0,
        transport=fake.transport(),
        sleep=_no_wait,
        open_seconds=0.2,
    )
    lender = KanmonLender(client, app.state.db.sessions, sync_seconds=300, sandbox_api=True)
    saved = app.state.lender
    app.state.lender = lender
    try:
        yield lender
    finally:
        app.state.lender = saved
        await lender.aclose()
    assert fake.violations() == []
