"""Fixtures of the webhook tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI

from fundline.kit.db import Database
from fundline.webhooks.addresses import UrlRules
from fundline.webhooks.worker import DeliveryWorker
from tests.support.webhooks import (
    LOOPBACK,
    PUBLIC_ADDRESS,
    PUBLIC_HOST,
    FakeClock,
    a_worker,
    use_resolver,
)


@pytest.fixture(autouse=True)
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test depends on the machine's DNS: the partner's host resolves to a public address,
    other names do not resolve (``localhost`` as well: tests of it resolve it themselves)."""
    use_resolver(monkeypatch, {PUBLIC_HOST: [PUBLIC_ADDRESS]})


@pytest.fixture
def loopback(app: FastAPI) -> Iterator[None]:
    """Subscriptions may point at loopback receivers (``FUNDLINE_WEBHOOK_ALLOW_PRIVATE``)."""
    kept = app.state.webhook_urls
    app.state.webhook_urls = UrlRules(sandbox=True, allow=LOOPBACK)
    yield
    app.state.webhook_urls = kept


@pytest.fixture
async def worker(db: Database) -> AsyncIterator[DeliveryWorker]:
    """A delivery worker allowed to reach loopback, with a short timeout and no jitter; the
    test drives it (``run_until_idle``)."""
    async with a_worker(db) as made:
        yield made


@pytest.fixture
def fake_clock() -> FakeClock:
    """Business time that stands still until the test moves it."""
    return FakeClock()


@pytest.fixture
async def timed_worker(db: Database, fake_clock: FakeClock) -> AsyncIterator[DeliveryWorker]:
    """The ``worker``, on ``fake_clock``: its schedule can be checked to the microsecond."""
    async with a_worker(db, now=fake_clock.now) as made:
        yield made
