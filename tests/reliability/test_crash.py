"""Crashes: ``fundline serve`` killed with ``SIGKILL`` in the middle of a mixed write load, on
SQLite and on PostgreSQL, loses no acknowledged write and leaves nothing half-written.

The load is the financing flow, many invoices at once over four businesses: invoices created
and issued, financing requested, confirmed in Connect, funded by the operator, repaid (by the
lender's repayments, or by the invoice being marked paid). It is killed twice, each time after
a random number of acknowledged writes, with requests in flight. After each restart, before
any flow goes on, the database is audited (``tests/support/audit.py``): every write answered
2xx is there, nothing is half-written, every journal entry balances, reconciliation is clean
and every offer's ``available_amount`` is its limit less what its rows reserve and owe. Then
the flows resolve what the kill cut (sent again with the same ``Idempotency-Key``, or read
back), finish, and the final audit compares each flow's outcome with its rows exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from fundline.operations.migrations import upgrade
from tests.support import audit
from tests.support.fleet import Server, fundline_env, make_partners
from tests.support.load import Driver, Load, Outcome, emit, onboard, operator_headers, until

BUSINESSES = 4
FLOWS_AT_ONCE = 10  # invoice flows running at any time
IN_FLIGHT = 10  # requests in flight at most (PostgreSQL connections: one server's share)
KILLS = 2
# Each kill comes after this many more acknowledged writes (chosen by the seed).
ACKS_BEFORE_KILL = (50, 120)
PHASE_SECONDS = 40.0  # no phase, nor the drain, takes longer
RUN_SECONDS = 240.0  # nor a whole run


def acknowledged_at_least(driver: Driver, load: Load, wanted: int) -> Callable[[], bool]:
    """Whether ``wanted`` writes have been acknowledged (or a flow failed: stop waiting)."""
    return lambda: driver.figures.acknowledged >= wanted or bool(load.errors)


async def lender_view(url: str, operator: dict[str, str]) -> tuple[dict[str, Any], list[Any]]:
    """Reconciliation and every offer, from the lender API (not through the paused driver)."""
    async with httpx.AsyncClient(base_url=url, headers=operator, timeout=30) as http:
        reconciliation = await http.get("/lender/v1/reconciliation")
        offers = await http.get("/lender/v1/financing_offers")
    assert reconciliation.status_code == 200, reconciliation.text
    assert offers.status_code == 200, offers.text
    return reconciliation.json(), list(offers.json()["data"])


async def audit_now(
    url: str,
    database_url: str,
    operator: dict[str, str],
    driver: Driver,
    entity_ids: list[str],
    outcomes: list[Outcome] | None = None,
) -> tuple[audit.Audit, audit.Rows]:
    reconciliation, offers = await lender_view(url, operator)
    rows = await audit.load_rows(database_url, entity_ids)
    found = audit.check_all(rows, acks=driver.acks, offers_shown=offers, outcomes=outcomes)
    found.check(
        reconciliation["clean"] and not reconciliation["differences"],
        f"reconciliation: {reconciliation}",
    )
    return found, rows


async def crash_run(database_url: str, folder: Path, seed: int) -> list[str]:
    """The load on one server of ``database_url``, killed ``KILLS`` times, audited after each
    restart and at the end; its lines of figures (``emit``-ted as they come too)."""
    backend = database_url.split("+")[0]
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(f"{backend}: {line}")
        emit(lines[-1])

    partners, key = await make_partners(database_url, BUSINESSES)
    operator = operator_headers(key)
    env = fundline_env(
        database_url,
        # Not what is tested here: no request of the load should wait on a window.
        rate_limit_per_second="100000",
        auth_rate_limit_per_second="100000",
        # A key claimed by a request the kill cut is taken over after 2 s (default 90 s).
        idempotency_lock_seconds="2",
        worker_interval_seconds="0.5",  # the embedded worker beats through the load too
    )
    server = Server(env, folder / f"{backend}-server.log")
    began = time.monotonic()
    await asyncio.to_thread(server.start)
    say(f"server up in {time.monotonic() - began:.1f} s")
    driver = Driver([server.url], concurrency=IN_FLIGHT, seed=seed)
    load: Load | None = None
    try:
        businesses = await asyncio.gather(
            *(
                onboard(
                    driver, keys, name=f"Crash{i}", address=f"198.51.100.{i + 1}", operator=operator
                )
                for i, keys in enumerate(partners)
            )
        )
        entity_ids = [b.entity_id for b in businesses]
        say(f"onboarded {len(businesses)} businesses at {time.monotonic() - began:.1f} s")
        load = Load(driver, businesses, operator, parallel=FLOWS_AT_ONCE)
        load.start()
        for kill in range(1, KILLS + 1):
            wanted = driver.figures.acknowledged + driver.rng.randint(*ACKS_BEFORE_KILL)
            await until(
                acknowledged_at_least(driver, load, wanted),
                seconds=PHASE_SECONDS,
                what=f"{backend}: {wanted} acknowledged writes before kill {kill}",
            )
            assert not load.errors, load.errors
            driver.up.clear()  # nothing new is sent from here until the audit is done
            in_flight = driver.in_flight
            acknowledged = driver.figures.acknowledged
            server.kill()
            await asyncio.sleep(0.2)  # the requests the kill cut come back as lost
            killed = time.monotonic()
            await asyncio.to_thread(server.start)
            restarted = time.monotonic() - killed
            found, rows = await audit_now(server.url, database_url, operator, driver, entity_ids)
            say(
                f"kill {kill} at {killed - began:.1f} s (back in {restarted:.1f} s): after "
                f"{acknowledged} acknowledged writes, {in_flight} requests in flight; "
                f"{audit.claims_left(rows)} idempotency claims left by the kill; {found.line()}"
            )
            assert not found.failures, f"{backend}, kill {kill}: {found.failures}"
            driver.up.set()
        await load.drain(seconds=PHASE_SECONDS)
        assert not load.errors, load.errors
        found, rows = await audit_now(
            server.url, database_url, operator, driver, entity_ids, load.outcomes
        )
        reached = Counter(o.status for o in load.outcomes)
        short = Counter(o.note.split(":")[0] for o in load.outcomes if o.note)
        say(
            f"{server.kills} kills, {len(load.outcomes)} flows in "
            f"{time.monotonic() - began:.1f} s (ending {dict(sorted(reached.items()))}; "
            f"stopped short {dict(short)}); {driver.figures.line()}"
        )
        say(f"final audit: {found.line()}")
        assert not found.failures, f"{backend}, final: {found.failures}"
        assert audit.claims_left(rows) == 0
        assert driver.figures.server_errors == 0, driver.unexpected
        assert not driver.unexpected, driver.unexpected
        # The kills cut writes in flight: the test saw the case it is about.
        figures = driver.figures
        assert figures.lost > 0, figures.line()
        # Every write the kills cut was resolved: it had happened, or it had not.
        assert figures.lost == figures.lost_committed + figures.lost_not_committed
        assert server.log_lines('"level": "error"') == []  # no unhandled error, no failed beat
    finally:
        if load is not None and load.errors:
            emit(f"{backend}: flow errors: {load.errors[:5]}")
        await driver.aclose()
        await asyncio.to_thread(server.stop)
    return lines


async def test_sigkill_mid_load_loses_no_acknowledged_write(
    fresh_database: str, tmp_path: Path, seed: int
) -> None:
    """SQLite and PostgreSQL side by side (their restarts overlap: the test takes the time of
    one), each with its own server, load and kills."""
    sqlite = f"sqlite+aiosqlite:///{tmp_path / 'fundline.db'}"
    await upgrade(sqlite)
    runs = await asyncio.gather(
        asyncio.wait_for(crash_run(sqlite, tmp_path, seed), RUN_SECONDS),
        asyncio.wait_for(crash_run(fresh_database, tmp_path, seed + 1), RUN_SECONDS),
        return_exceptions=True,
    )
    failed = [r for r in runs if isinstance(r, BaseException)]
    if failed:
        raise failed[0]
