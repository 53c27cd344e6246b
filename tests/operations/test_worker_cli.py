"""``fundline worker`` (the clock's work in its own process) and ``fundline serve`` with or
without the embedded worker."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fundline import app as app_module
from fundline.cli import app as cli_app
from fundline.kit.db import Database
from fundline.models import FinancingOffer
from fundline.operations import migrations
from tests.support.cli import as_json, cli_env, fundline
from tests.support.factories import Tenant
from tests.support.lending import make_offer
from tests.support.live import FUNDLINE


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return cli_env(database_url)


async def test_worker_once_does_one_beat(env: dict[str, str], db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant, status="NEW", expires_in=timedelta(days=-1))
    done = as_json(await fundline(env, "worker", "--once"))
    assert done["offers_expired"] == 1
    assert done["invoices_late"] == 0
    assert "idempotency_keys_purged" in done
    async with db.session() as session:
        stored = await session.get(FinancingOffer, offer.id)
        assert stored is not None
        assert stored.status == "EXPIRED"
    # Nothing is left to do on the next beat.
    again = as_json(await fundline(env, "worker", "--once"))
    assert again["offers_expired"] == 0


@pytest.mark.parametrize(("args", "embedded"), [((), True), (("--no-worker",), False)])
def test_serve_embeds_the_worker_unless_told_not_to(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, args: tuple[str, ...], embedded: bool
) -> None:
    made: list[bool] = []
    served: list[Any] = []

    def create_app(settings: Any, *, worker: bool = False) -> str:
        made.append(worker)
        return "the app"

    monkeypatch.setattr(app_module, "create_app", create_app)
    monkeypatch.setattr(migrations, "upgrade_sync", lambda url: None)
    monkeypatch.setattr("uvicorn.Server.run", lambda server, sockets=None: served.append(server))
    result = CliRunner().invoke(
        cli_app,
        ["serve", "--port", "9123", *args],
        env={
            "FUNDLINE_DATABASE_URL": sqlite_url,
            "FUNDLINE_SECRET_KEY": "test-secret-key-" + "x" * 32,
        },
    )
    assert result.exit_code == 0, result.output
    assert made == [embedded]
    [server] = served
    assert (server.config.app, server.config.port, server.worker) == ("the app", 9123, embedded)


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_worker_logs_in_the_configured_format(tmp_path: Path, log_format: str) -> None:
    """The worker's own process (here its migrations, Alembic's lines) follows the setting."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FUNDLINE_")}
    done = subprocess.run(
        [FUNDLINE, "worker", "--once"],
        env={
            **clean,
            "FUNDLINE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'worker.db'}",
            "FUNDLINE_LOG_FORMAT": log_format,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "offers_expired" in json.loads(done.stdout)
    lines = done.stderr.splitlines()
    upgrades = [line for line in lines if "Running upgrade" in line]
    assert upgrades
    if log_format == "json":
        assert all(json.loads(line)["level"] for line in lines)
    else:
        assert "[alembic.runtime.migration]" in upgrades[0]
        for line in lines:
            with pytest.raises(json.JSONDecodeError):
                json.loads(line)
