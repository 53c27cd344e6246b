"""The ``fundline`` command run in-process (Typer's runner) on the test database, as the lender,
sandbox-clock, partner-origins and worker tests run it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from typer.testing import CliRunner, Result

from fundline.cli import app as cli_app
from tests.support.apps import make_settings


def cli_env(database_url: str) -> dict[str, str]:
    """The environment of a ``fundline`` run on the test database (the ``env`` fixture)."""
    settings = make_settings(database_url)
    assert settings.secret_key is not None
    return {
        "FUNDLINE_DATABASE_URL": database_url,
        "FUNDLINE_SECRET_KEY": settings.secret_key,
        "FUNDLINE_MODE": "sandbox",
        "FUNDLINE_LOG_LEVEL": "WARNING",
        "COLUMNS": "250",  # wide tables: no id folded over two lines
    }


async def fundline(env: dict[str, str], *args: str) -> Result:
    """Run ``fundline *args`` as a user would; in a thread, since it runs its own event loop."""

    def invoke() -> Result:
        return CliRunner().invoke(cli_app, list(args), env=env)

    return await asyncio.to_thread(invoke)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result.stdout


def as_json(result: Result) -> Any:
    return json.loads(ok(result))


def failed(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    return result.stderr
