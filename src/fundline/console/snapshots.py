"""Kept results of the console's whole-book pages (the portfolio, reconciliation), for books
too large to add up on every request.

A result that took ``live_under`` seconds (half a second) or more to compute is served for
``max_age`` seconds; after that the next request starts computing it again in the background
(one computation per key at a time) and is served the kept one meanwhile. A result that was quick
to compute is computed again for every request: a small book is always live. One per app and
page (``for_app``); each server process keeps its own. A page that serves a kept result says
when it was computed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.kit import clock
from fundline.kit.db import Database

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kept(Generic[T]):
    value: T
    seconds: float  # how long it took to compute
    computed_at: datetime  # real time
    kept: bool  # whether it is served from the kept results (its book is large)


class Snapshots(Generic[T]):
    def __init__(
        self,
        compute: Callable[[AsyncSession, str], Awaitable[T]],
        *,
        max_age: float = 60.0,
        live_under: float = 0.5,
    ) -> None:
        self.compute = compute
        self.max_age = max_age
        self.live_under = live_under
        self._kept: dict[str, tuple[float, Kept[T]]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    async def get(self, db: Database, session: AsyncSession, key: str) -> Kept[T]:
        found = self._kept.get(key)
        if found is None or found[1].seconds < self.live_under:
            return self._keep(key, *await self._timed(session, key))
        at, kept = found
        if time.monotonic() - at >= self.max_age and key not in self._refreshing:
            task = asyncio.create_task(self._refresh(db, key))
            self._refreshing[key] = task
            task.add_done_callback(lambda _: self._refreshing.pop(key, None))
        return kept

    async def settle(self) -> None:
        """Wait for the computations under way (tests, shutdown)."""
        await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    async def _timed(self, session: AsyncSession, key: str) -> tuple[T, float]:
        started = time.perf_counter()
        value = await self.compute(session, key)
        return value, time.perf_counter() - started

    def _keep(self, key: str, value: T, seconds: float) -> Kept[T]:
        kept = Kept(value, seconds, clock.system_now(), seconds >= self.live_under)
        self._kept[key] = (time.monotonic(), kept)
        return kept

    async def _refresh(self, db: Database, key: str) -> None:
        try:
            async with db.read_session() as session:
                self._keep(key, *await self._timed(session, key))
        except Exception:
            log.exception("%s could not be computed again for %r", self.compute.__name__, key)


def for_app(app: FastAPI, name: str, make: Callable[[], Snapshots[T]]) -> Snapshots[T]:
    """The app's kept results of one page (``app.state.<name>``), made on first use."""
    kept: Snapshots[T] | None = getattr(app.state, name, None)
    if kept is None:
        kept = make()
        setattr(app.state, name, kept)
    return kept
