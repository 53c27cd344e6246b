"""The ``fundline`` command."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from pydantic import ValidationError

from fundline.config import Settings

app = typer.Typer(
    help="Fundline: an invoice-financing server that speaks the Monite API.", no_args_is_help=True
)
partner_app = typer.Typer(help="Manage partners (API customers).", no_args_is_help=True)
operator_app = typer.Typer(help="Manage operator keys for the lender API.", no_args_is_help=True)
app.add_typer(partner_app, name="partner")
app.add_typer(operator_app, name="operator")


def _settings() -> Settings:
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


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
) -> None:
    """Apply pending migrations, then run the API server."""
    import uvicorn

    from fundline.app import create_app
    from fundline.operations.migrations import upgrade_sync

    settings = _settings()
    upgrade_sync(settings.database_url)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)


@app.command()
def migrate() -> None:
    """Apply every pending database migration."""
    from fundline.operations.migrations import upgrade_sync

    settings = _settings()
    upgrade_sync(settings.database_url)
    typer.echo("Database is at the latest migration.", err=True)


async def _create_partner(settings: Settings, name: str) -> dict[str, str]:
    from fundline.auth.service import create_partner
    from fundline.kit.db import Database

    db = Database(settings.database_url)
    try:
        async with db.session() as session, session.begin():
            new = await create_partner(session, name=name)
    finally:
        await db.dispose()
    return {
        "partner_id": str(new.partner_id),
        "client_id": str(new.client_id),
        "client_secret": new.client_secret,
    }


@partner_app.command("create")
def partner_create(
    name: Annotated[str, typer.Option(help="The partner's display name.")],
) -> None:
    """Create a partner and its API client; prints the credentials as JSON (secret shown once)."""
    from fundline.operations.migrations import upgrade_sync

    settings = _settings()
    upgrade_sync(settings.database_url)
    print(json.dumps(asyncio.run(_create_partner(settings, name))))


async def _create_operator_key(settings: Settings, name: str) -> str:
    from fundline.kit import security
    from fundline.kit.db import Database
    from fundline.models import OperatorKey

    db = Database(settings.database_url)
    key = security.new_token("fko_")
    try:
        async with db.session() as session, session.begin():
            session.add(OperatorKey(name=name, key_hash=security.token_digest(key)))
    finally:
        await db.dispose()
    return key


@operator_app.command("create-key")
def operator_create_key(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
) -> None:
    """Create an operator key for the lender API; prints it as JSON (shown once)."""
    from fundline.operations.migrations import upgrade_sync

    settings = _settings()
    upgrade_sync(settings.database_url)
    print(json.dumps({"operator_key": asyncio.run(_create_operator_key(settings, name))}))
