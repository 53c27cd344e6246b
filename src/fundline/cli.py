"""The ``fundline`` command."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Annotated

import typer

from fundline.backoffice.cli import app as lender_app
from fundline.cli_support import JsonOption, run, settings_or_exit
from fundline.config import Settings
from fundline.imports.cli import app as import_app
from fundline.kit.logging import LogFormat, configure_logging
from fundline.lending.kanmon.fake_cli import app as dev_app
from fundline.sandbox.cli import app as sandbox_app

app = typer.Typer(
    help="Fundline: an invoice-financing server that speaks the Monite API.", no_args_is_help=True
)
partner_app = typer.Typer(help="Manage partners (API customers).", no_args_is_help=True)
origins_app = typer.Typer(
    help="Manage the web origins a partner may embed the Connect widget from.",
    no_args_is_help=True,
)
operator_app = typer.Typer(help="Manage operator keys for the lender API.", no_args_is_help=True)
app.add_typer(partner_app, name="partner")
partner_app.add_typer(origins_app, name="origins")
app.add_typer(operator_app, name="operator")
app.add_typer(lender_app, name="lender")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(import_app, name="import")
app.add_typer(dev_app, name="dev")


LogFormatOption = Annotated[
    LogFormat | None,
    typer.Option(
        help="json: one JSON object per line (the default, or FUNDLINE_LOG_FORMAT); "
        "console: readable lines for a terminal.",
        show_default=False,
    ),
]


def _logging_settings(log_format: LogFormat | None) -> Settings:
    """The settings, with ``--log-format`` over ``FUNDLINE_LOG_FORMAT``, and logging set up
    from them: every line from here on (Alembic's during migrations too) in that format."""
    settings = settings_or_exit()
    if log_format is not None:
        settings = settings.model_copy(update={"log_format": log_format})
    configure_logging(settings.log_level, settings.log_format)
    logging.captureWarnings(True)  # a runtime warning becomes a log line, not loose text
    return settings


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
    worker: Annotated[
        bool,
        typer.Option(
            help="Run the background worker in this process too (the embedded default); "
            "turn it off when separate `fundline worker` processes run. With --workers, "
            "it runs in the first server process only."
        ),
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes sharing the port, about one per CPU core. Each has its own "
            "pools: up to 51 PostgreSQL connections with the default "
            "FUNDLINE_DATABASE_POOL_SIZE and FUNDLINE_DATABASE_MAX_OVERFLOW (see "
            "docs/operations.md). A process that dies is started again; SIGINT or SIGTERM "
            "stops them all.",
        ),
    ] = 1,
    log_format: LogFormatOption = None,
) -> None:
    """Apply pending migrations, then run the API server."""
    from fundline.operations.migrations import upgrade_sync
    from fundline.operations.serving import serve_app

    settings = _logging_settings(log_format)
    upgrade_sync(settings.database_url)
    if workers == 1:
        serve_app(settings, host=host, port=port, worker=worker)
        return
    from fundline.operations.supervisor import Supervisor

    supervisor = Supervisor(settings, host=host, port=port, workers=workers, worker=worker)
    raise typer.Exit(supervisor.run())


@app.command("worker")
def worker_command(
    once: Annotated[
        bool,
        typer.Option(help="Do one beat, send the webhooks due, print what was done, and exit."),
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve Prometheus metrics (webhook deliveries, the queue) on this port.",
            min=1,
            max=65535,
            show_default=False,
        ),
    ] = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run the background worker: offer and request expiry, lateness, defaults, housekeeping,
    and webhook delivery. Any number may run, on any hosts, against one PostgreSQL database.
    SIGTERM or Ctrl-C stops it gracefully: attempts in flight finish, the rest is released."""
    from fundline.kit.db import Database
    from fundline.kit.metrics import registry
    from fundline.lending.lenders import build_lender
    from fundline.operations import worker
    from fundline.operations.migrations import upgrade_sync

    settings = _logging_settings(log_format)
    upgrade_sync(settings.database_url)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, registry=registry)

    async def main() -> None:
        db = Database(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
        lender = build_lender(settings, db.sessions)
        try:
            if once:
                print(json.dumps(await worker.once(db, lender, settings)))
            else:
                await worker.until_signalled(db, lender, settings)
        finally:
            await lender.aclose()
            await db.dispose()

    asyncio.run(main())


@app.command()
def migrate() -> None:
    """Apply every pending database migration."""
    from fundline.operations.migrations import upgrade_sync

    settings = settings_or_exit()
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

    settings = settings_or_exit()
    upgrade_sync(settings.database_url)
    print(json.dumps(asyncio.run(_create_partner(settings, name))))


PartnerId = Annotated[uuid.UUID, typer.Argument(help="The partner's id.")]
Origin = Annotated[
    str, typer.Argument(help="scheme://host[:port], e.g. https://app.example.com (no path).")
]


def _migrated_settings() -> Settings:
    from fundline.operations.migrations import upgrade_sync

    settings = settings_or_exit()
    upgrade_sync(settings.database_url)
    return settings


@origins_app.command("add")
def origins_add(partner_id: PartnerId, origin: Origin) -> None:
    """Register an origin for the partner (normalized; adding one already there is fine)."""
    from fundline.connect.origins import ensure_origin

    row, created = run(
        _migrated_settings(), lambda session: ensure_origin(session, partner_id, origin)
    )
    if created:
        print(f"Added {row.origin} for partner {partner_id}")
    else:
        print(f"{row.origin} was already registered for partner {partner_id}")


@origins_app.command("list")
def origins_list(
    partner_id: PartnerId,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of lines.")] = False,
) -> None:
    """List the partner's origins, one per line, in order."""
    from fundline.connect.origins import list_origins

    rows = run(_migrated_settings(), lambda session: list_origins(session, partner_id))
    registered = [row.origin for row in rows]
    if as_json:
        print(json.dumps({"partner_id": str(partner_id), "origins": registered}))
        return
    for value in registered:
        print(value)


@origins_app.command("remove")
def origins_remove(partner_id: PartnerId, origin: Origin) -> None:
    """Unregister one of the partner's origins."""
    from fundline.connect.origins import normalize_origin, remove_origin

    run(_migrated_settings(), lambda session: remove_origin(session, partner_id, origin))
    print(f"Removed {normalize_origin(origin)} for partner {partner_id}")


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

    settings = settings_or_exit()
    upgrade_sync(settings.database_url)
    print(json.dumps({"operator_key": asyncio.run(_create_operator_key(settings, name))}))


@operator_app.command("list-keys")
def operator_list_keys(as_json: JsonOption = False) -> None:
    """List the operator keys: id, name, when made, when revoked (never the keys themselves)."""
    from fundline.backoffice import service

    keys = run(_migrated_settings(), service.operator_keys)
    rows = [
        {
            "id": str(key.id),
            "name": key.name,
            "created_at": key.created_at.isoformat(),
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        }
        for key in keys
    ]
    if as_json:
        print(json.dumps(rows))
        return
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "live"
        print(f"{row['id']}  {row['name']}  made {row['created_at']}  {state}")


@operator_app.command("revoke-key")
def operator_revoke_key(
    key_id: Annotated[
        uuid.UUID, typer.Argument(help="The key's id (`fundline operator list-keys`).")
    ],
) -> None:
    """Revoke an operator key at once: the lender API refuses it and its console sessions end."""
    from fundline.backoffice import service

    key, revoked = run(
        _migrated_settings(),
        lambda session: service.revoke_operator_key(session, key_id, operator="cli"),
    )
    print(f"{'Revoked' if revoked else 'Already revoked:'} operator key {key.id} ({key.name})")


@app.command()
def demo(
    base_url: Annotated[
        str, typer.Option(help="Where `fundline serve` listens, for the printed curl commands.")
    ] = "http://127.0.0.1:8000",
) -> None:
    """Seed a partner, a US business and invoices; finance one end to end (sandbox only)."""
    from rich.console import Console

    from fundline.operations.migrations import upgrade_sync
    from fundline.sandbox.demo import print_walkthrough, run_demo
    from fundline.sandbox.demo_seed import DemoError

    settings = settings_or_exit()
    console = Console()
    upgrade_sync(settings.database_url)
    try:
        result = asyncio.run(run_demo(settings, console=console))
    except DemoError as exc:
        console.print(f"[red]Demo stopped:[/red] {exc}")
        raise typer.Exit(1) from exc
    print_walkthrough(result, base_url=base_url, console=console)
