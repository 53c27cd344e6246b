"""``fundline serve`` speaks: one start line (where, on what, how), and every line of its output
JSON (Alembic's, uvicorn's and Fundline's own), or readable lines with ``--log-format console``.

The live tests run the real command on a free port with a SQLite database of their own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from fundline.config import Mode, Settings
from fundline.operations.serving import (
    displayed_database_url,
    docs_path,
    listening_url,
    start_fields,
)
from tests.support.live import FUNDLINE, serving


def test_start_fields_hide_the_database_password() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://fundline:s3cr%40t-pw@db.internal:5432/fundline",
        mode=Mode.PRODUCTION,
        secret_key="k" * 40,
    )
    fields = start_fields(settings, url="http://0.0.0.0:8000", worker=False)
    assert fields == {
        "url": "http://0.0.0.0:8000",
        "database": "postgresql+asyncpg://fundline:***@db.internal:5432/fundline",
        "mode": "production",
        "lender": "builtin",
        "worker": False,
        "docs": "http://0.0.0.0:8000/docs",
    }
    assert "s3cr" not in json.dumps(fields)


def test_a_password_in_the_query_is_hidden_too() -> None:
    shown = displayed_database_url("postgresql+asyncpg://fundline@db/fundline?password=hunter2")
    assert "hunter2" not in shown
    assert shown.startswith("postgresql+asyncpg://fundline@db/fundline?password=")


def test_sqlite_url_is_shown_as_configured() -> None:
    assert displayed_database_url("sqlite+aiosqlite:///./fundline.db") == (
        "sqlite+aiosqlite:///./fundline.db"
    )


def test_docs_link_follows_the_app() -> None:
    assert docs_path(FastAPI()) == "/docs"
    assert docs_path(FastAPI(docs_url="/reference")) == "/reference"
    assert docs_path(FastAPI(docs_url=None)) is None
    own = APIRouter()
    own.add_api_route("/docs", lambda: "reference")
    served_apart = FastAPI(docs_url=None)
    served_apart.include_router(own)
    assert docs_path(served_apart) == "/docs"
    settings = Settings(database_url="sqlite+aiosqlite:///./fundline.db")
    assert start_fields(settings, url="http://h:1", worker=True, docs=None)["docs"] is None


def test_listening_url() -> None:
    assert listening_url("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert listening_url("::1", 9000) == "http://[::1]:9000"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FUNDLINE_")}
    return {**clean, "FUNDLINE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"}


def _exercise(url: str) -> None:
    """The first /ready (Alembic's revision check), a /v1 request, a refused one."""
    assert httpx.get(f"{url}/ready", timeout=30).status_code == 200
    version = {"x-monite-version": "2024-05-25"}
    assert httpx.get(f"{url}/v1/entities", headers=version, timeout=30).status_code == 401
    token = httpx.post(f"{url}/v1/auth/token", headers=version, content=b"{}", timeout=30)
    assert token.status_code == 422


def test_every_line_is_json(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serving(env, log=log) as url:
        _exercise(url)
    lines = log.read_text().splitlines()
    events: list[dict[str, Any]] = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}\n(whole output: {lines})")
    assert all({"event", "level", "timestamp"} <= set(e) for e in events)

    [started] = [e for e in events if e["event"] == "fundline_started"]
    assert started["url"] == url
    assert started["docs"] == f"{url}/docs"
    assert started["database"] == env["FUNDLINE_DATABASE_URL"]
    assert (started["mode"], started["lender"], started["worker"]) == ("sandbox", "builtin", True)
    assert started["level"] == "info"

    # Alembic spoke at start (the migrations) and again at the first /ready, as JSON.
    alembic = [i for i, e in enumerate(events) if e.get("logger") == "alembic.runtime.migration"]
    begun = events.index(started)
    assert alembic[0] < begun < alembic[-1]
    requests = [(e["path"], e["status"]) for e in events if e["event"] == "request"]
    assert ("/ready", 200) in requests
    assert ("/v1/auth/token", 422) in requests


def test_console_format_is_for_humans(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serving(env, log=log, args=["--log-format", "console"]) as url:
        _exercise(url)
    lines = log.read_text().splitlines()
    [started] = [line for line in lines if "fundline_started" in line]
    assert f"url={url} " in started
    assert "lender=builtin" in started
    assert "\x1b[" not in started  # no colours into a file
    for line in lines:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)


def test_the_setting_picks_the_format_too(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serving({**env, "FUNDLINE_LOG_FORMAT": "console"}, log=log):
        pass
    [started] = [line for line in log.read_text().splitlines() if "fundline_started" in line]
    assert "mode=sandbox" in started


def test_no_start_line_when_the_port_is_taken(env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [FUNDLINE, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 3
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert not [e for e in events if e["event"] == "fundline_started"]
    assert events[-1]["logger"] == "uvicorn.error"
    assert "address already in use" in events[-1]["event"]


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="SO_REUSEPORT is Linux's")
def test_workers_do_not_share_a_port_another_server_holds(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Each worker listens on a socket of its own with SO_REUSEPORT, which would let a second
    server on the port take a share of its connections: the port is checked free first."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [FUNDLINE, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 3, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events if "bind" in e["event"]] == ["fundline_bind_failed"]
    assert not [e for e in events if e["event"] == "fundline_started"]


def _events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def _answering_pids(url: str, wanted: set[str], *, seconds: float = 60) -> set[str]:
    """The pids ``/metrics`` names, each request on a new connection (so any process may
    accept it), until all of ``wanted`` answered or ``seconds`` passed."""
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    while not wanted <= seen and time.monotonic() < deadline:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        seen |= set(re.findall(r'fundline_server_process_info\{pid="(\d+)"', text))
    return seen


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_workers_share_the_port_and_a_dead_one_is_started_again(
    env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with serving(env, log=log, args=["--workers", "2"]) as url:
        deadline = time.monotonic() + 60
        while len([e for e in _events(log) if e["event"] == "fundline_started"]) < 2:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        [supervisor] = [e for e in _events(log) if e["event"] == "fundline_supervisor_started"]
        started = [e for e in _events(log) if e["event"] == "fundline_started"]
        children = {str(e["pid"]) for e in started}
        assert children == {str(pid) for pid in supervisor["processes"]}
        assert supervisor["pid"] not in supervisor["processes"]
        # A listening socket per process, where the kernel can balance between them.
        assert supervisor["sockets"] == (2 if hasattr(socket, "SO_REUSEPORT") else 1)
        # The embedded worker runs in one process only.
        assert sorted((e["process"], e["worker"]) for e in started) == [(0, True), (1, False)]
        assert _answering_pids(url, children) == children

        # A child killed outright is logged and replaced; the other kept serving.
        victim = next(e for e in started if e["process"] == 1)
        os.kill(victim["pid"], signal.SIGKILL)
        while not [e for e in _events(log) if e["event"] == "fundline_server_process_died"]:
            assert time.monotonic() < deadline + 60, log.read_text()
            time.sleep(0.2)
        while len([e for e in _events(log) if e["event"] == "fundline_started"]) < 3:
            assert time.monotonic() < deadline + 120, log.read_text()
            time.sleep(0.2)
        [died] = [e for e in _events(log) if e["event"] == "fundline_server_process_died"]
        assert (died["pid"], died["process"], died["exit"]) == (victim["pid"], 1, -9)
        [replacement] = [
            e
            for e in _events(log)
            if e["event"] == "fundline_started" and e["pid"] != victim["pid"] and e["process"] == 1
        ]
        assert replacement["worker"] is False
        now = (children - {str(victim["pid"])}) | {str(replacement["pid"])}
        assert _answering_pids(url, now) == now
    # serving() sent SIGTERM to the supervisor: every process stopped, the supervisor last.
    assert _events(log)[-1]["event"] == "fundline_supervisor_stopped"
    assert _events(log)[-1]["status"] == 0
    assert not [pid for pid in now if _alive(int(pid))]


def test_workers_stop_when_the_supervisor_is_killed(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serving(env, log=log, args=["--workers", "2", "--no-worker"]):
        deadline = time.monotonic() + 60
        while len([e for e in _events(log) if e["event"] == "fundline_started"]) < 2:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        [supervisor] = [e for e in _events(log) if e["event"] == "fundline_supervisor_started"]
        assert all(not e["worker"] for e in _events(log) if e["event"] == "fundline_started")
        os.kill(supervisor["pid"], signal.SIGKILL)
        while [pid for pid in supervisor["processes"] if _alive(pid)]:
            assert time.monotonic() < deadline + 30, "a server outlived its supervisor"
            time.sleep(0.2)
