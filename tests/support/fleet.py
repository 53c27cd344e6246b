"""Real ``fundline`` processes for the reliability tests: API servers that can be killed with
``SIGKILL`` and started again on the same port, and ``fundline worker`` processes beside them.

Each process writes its output to a log file of its own (kept for the secrets check, and read
back by the tests for ``unhandled_error`` lines). The environment is built from the test
process's own, so ``PYTHONPATH`` reaches every process, minus any ``FUNDLINE_`` setting the
caller did not choose. ``make_partners`` makes the API clients and the operator key they are
driven with.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from fundline.auth.service import create_partner
from fundline.kit.db import Database
from tests.support import secrets_in_logs
from tests.support.factories import make_operator_key
from tests.support.live import FUNDLINE, free_port
from tests.support.load import PartnerKeys

POLICY_FILE = Path(__file__).resolve().parents[1] / "reliability" / "policy.toml"
SECRET_KEY = "reliability-tests-secret-key-0123456789abcdef"
START_SECONDS = 60.0
STOP_SECONDS = 15.0


def fundline_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of every process of a test: production mode on ``database_url``, the
    reliability policy, one secret key for all; ``settings`` add ``FUNDLINE_<NAME>`` values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNDLINE_")}
    env.update(
        FUNDLINE_DATABASE_URL=database_url,
        FUNDLINE_MODE="production",
        FUNDLINE_SECRET_KEY=SECRET_KEY,
        FUNDLINE_POLICY_FILE=str(POLICY_FILE),
        FUNDLINE_LOG_LEVEL="WARNING",
    )
    env.update({f"FUNDLINE_{name.upper()}": value for name, value in settings.items()})
    return env


class Process:
    """One ``fundline`` command run in the background, its output appended to ``log``."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.args = [FUNDLINE, *args]
        self.env = env
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        secrets_in_logs.LOG_FILES.append(log)

    def spawn(self) -> None:
        assert self.popen is None or self.popen.poll() is not None, "already running"
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.starts += 1

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """``SIGKILL``: no shutdown, no flush, no rollback; whatever was in flight is cut."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=STOP_SECONDS)
        self.kills += 1

    def stop(self) -> int | None:
        """``SIGTERM`` and wait (``SIGKILL`` after ``STOP_SECONDS``); the exit code."""
        if self.popen is None or self.popen.poll() is not None:
            return None if self.popen is None else self.popen.returncode
        self.popen.terminate()
        try:
            return self.popen.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            return None

    def log_lines(self, marker: str) -> list[str]:
        """The lines of the log that contain ``marker``."""
        if not self.log.exists():
            return []
        return [
            line for line in self.log.read_text(errors="replace").splitlines() if marker in line
        ]


class Server(Process):
    """``fundline serve`` on a port of its own, the same across restarts."""

    def __init__(
        self, env: dict[str, str], log: Path, *, worker: bool = True, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
        super().__init__([*args] if worker else [*args, "--no-worker"], env, log)

    def wait_up(self, *, seconds: float = START_SECONDS) -> None:
        """Poll ``/health`` until it answers (the migrations run first)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.popen is not None
            if self.popen.poll() is not None:
                raise RuntimeError(
                    f"fundline serve exited with {self.popen.returncode}; see {self.log}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"fundline serve did not answer within {seconds:.0f} s; see {self.log}")

    def start(self) -> None:
        self.spawn()
        self.wait_up()


class Worker(Process):
    def __init__(self, env: dict[str, str], log: Path) -> None:
        super().__init__(["worker"], env, log)


@contextmanager
def running(
    servers: Sequence[Server], workers: Sequence[Worker] = ()
) -> Iterator[tuple[Sequence[Server], Sequence[Worker]]]:
    """Start every process at once (they come up in parallel), stop them all after."""
    with ExitStack() as stack:
        for process in (*servers, *workers):
            stack.callback(process.stop)
            process.spawn()
        for server in servers:
            server.wait_up()
        yield servers, workers


async def make_partners(database_url: str, count: int) -> tuple[list[PartnerKeys], str]:
    """``count`` partners with an API client each, and an operator key, made as ``fundline
    partner create`` and ``fundline operator create-key`` make them (the same functions, in
    this process: each command would cost a process start of seconds on a busy machine)."""
    db = Database(database_url)
    try:
        async with db.session() as session, session.begin():
            partners = [await create_partner(session, name=f"Platform {i}") for i in range(count)]
        operator = await make_operator_key(db, "reliability")
    finally:
        await db.dispose()
    return [PartnerKeys(str(p.client_id), p.client_secret) for p in partners], operator
