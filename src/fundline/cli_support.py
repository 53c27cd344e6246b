"""What every ``fundline`` command module shares: settings, one transaction, ``--json``.

Beside ``cli.py`` rather than in ``kit/``: ``run`` acts at the sandbox clock, which belongs to
the sandbox domain. Each command module imports from here, never from another command module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.config import Settings
from fundline.kit.errors import FundlineError

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def settings_or_exit() -> Settings:
    """The settings from the environment; a bad one prints a line per problem and exits 2."""
    try:
        return Settings()
    except ValidationError as exc:
        # One line per problem, naming the variable; never the input (it may hold a secret).
        for error in exc.errors(include_url=False, include_input=False, include_context=False):
            field = "_".join(str(part) for part in error["loc"])
            where = f"FUNDLINE_{field.upper()}: " if field else ""
            message = error["msg"].removeprefix("Value error, ")
            typer.echo(f"Configuration error: {where}{message}", err=True)
        raise typer.Exit(2) from exc


def run(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction (committed when it returns); a domain error exits 1."""
    from fundline.kit.db import Database
    from fundline.sandbox.service import load_clock

    async def main() -> T:
        db = Database(settings.database_url)
        try:
            async with db.session() as session, session.begin():
                if settings.is_sandbox:
                    await load_clock(session)  # act at the deployment's sandbox time
                return await work(session)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except FundlineError as exc:
        typer.echo(f"Error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
