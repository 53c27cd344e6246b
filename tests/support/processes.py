"""Fundline as real processes for the fault tests: ``fundline serve`` and ``fundline worker``
on a database of their own, started, stopped, killed and started again by the test, their
output (JSON lines) in a log file each.

Everything here is async: the test's event loop runs the receiver, the API client and the
database reads while the processes run; nothing blocks it (a process is waited for by polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

import fundline
from tests.support.apps import VERSION
from tests.support.live import FUNDLINE, free_port

SRC = str(Path(fundline.__file__).resolve().parents[1])
SECRET_KEY = "fault-tests-secret-key-" + "x" * 32


def fundline_env(database_url: str, **settings: str | float) -> dict[str, str]:
    """The environment of a Fundline process on ``database_url``: this one's, with the
    ``FUNDLINE_`` settings replaced (``webhook_poll_seconds=0.05`` is
    ``FUNDLINE_WEBHOOK_POLL_SECONDS``), and this tree's ``src`` first on ``PYTHONPATH`` so the
    process runs the code under test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNDLINE_")}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = SRC if not path else f"{SRC}{os.pathsep}{path}"
    values: dict[str, str | float] = {
        "database_url": database_url,
        "mode": "sandbox",
        "secret_key": SECRET_KEY,
        "log_level": "INFO",
        "rate_limit_per_second": 100_000,
        "auth_rate_limit_per_second": 100_000,
        "webhook_allow_private": "127.0.0.1",
        **settings,
    }
    env.update({f"FUNDLINE_{k.upper()}": str(v) for k, v in values.items()})
    return env


class Process:
    """One ``fundline`` process; its stdout and stderr go to ``log``."""

    def __init__(self, name: str, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                [FUNDLINE, *args], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def lines(self) -> list[dict[str, Any]]:
        """The JSON lines it wrote (a line cut short by a kill is left out)."""
        found: list[dict[str, Any]] = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                data = json.loads(line)
                if isinstance(data, dict):
                    found.append(data)
        return found

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == event]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, signum: signal.Signals) -> None:
        if self.running:
            self.popen.send_signal(signum)

    async def exited(self, seconds: float) -> int:
        """Its exit code, once it has exited; ``TimeoutError`` after ``seconds``."""
        async with asyncio.timeout(seconds):
            while (code := self.popen.poll()) is None:
                await asyncio.sleep(0.02)
        return code

    async def stop(self, seconds: float = 20) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``seconds``."""
        if not self.running:
            return
        self.signal(signal.SIGTERM)
        try:
            await self.exited(seconds)
        except TimeoutError:
            self.popen.kill()
            await self.exited(10)


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    seconds: float,
    every: float = 0.05,
    what: str = "the condition",
) -> float:
    """Wait until ``check()`` is true; how long that took. Fails after ``seconds``."""
    started = time.monotonic()
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > seconds:
            raise AssertionError(f"{what} did not happen within {seconds:g} s")
        await asyncio.sleep(every)


class Fleet:
    """The processes of one test: every one still running at the end is killed, and their logs
    are kept in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: list[Process] = []

    def _log(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    async def server(
        self, env: dict[str, str], *, name: str = "server", worker: bool = True
    ) -> tuple[Process, str]:
        """``fundline serve`` on a free port; returns it and its URL once ``/health`` answers."""
        port = free_port()
        args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
        if not worker:
            args.append("--no-worker")
        process = self._start(name, args, env)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=1) as http:

            async def up() -> bool:
                if not process.running:
                    raise AssertionError(f"{name} exited:\n{process.output()}")
                with contextlib.suppress(httpx.TransportError):
                    return (await http.get(f"{url}/health")).status_code == 200
                return False

            await eventually(up, seconds=60, what=f"{name} answering")
        return process, url

    async def worker(self, env: dict[str, str], *, name: str = "worker") -> Process:
        """``fundline worker``, once it says it has started."""
        process = self._start(name, ["worker"], env)

        def started() -> bool:
            if not process.running:
                raise AssertionError(f"{name} exited:\n{process.output()}")
            return bool(process.logged("worker_started"))

        await eventually(started, seconds=60, what=f"{name} starting")
        return process

    def _start(self, name: str, args: Sequence[str], env: dict[str, str]) -> Process:
        process = Process(name, args, env, self._log(name))
        self.processes.append(process)
        return process

    async def close(self) -> None:
        for process in self.processes:
            if process.running:
                process.popen.kill()
        for process in self.processes:
            with contextlib.suppress(TimeoutError):
                await process.exited(10)


@contextlib.asynccontextmanager
async def fleet(folder: Path) -> AsyncIterator[Fleet]:
    processes = Fleet(folder)
    try:
        yield processes
    finally:
        await processes.close()


def live_client(url: str) -> httpx.AsyncClient:
    """A client of a live server; the factories' relative paths (``/v1/…``) work with it."""
    return httpx.AsyncClient(
        base_url=url, headers={"x-monite-version": VERSION}, timeout=httpx.Timeout(30)
    )
