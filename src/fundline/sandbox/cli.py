"""``fundline sandbox …``: the sandbox clock, and starting the sandbox over (sandbox mode
only)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.cli_support import JsonOption, run, settings_or_exit
from fundline.config import Settings
from fundline.sandbox.schemas import MAX_ADVANCE_DAYS, ClockAdvanceResponse

app = typer.Typer(help="Sandbox helpers (only in sandbox mode).", no_args_is_help=True)
clock_app = typer.Typer(
    help="Show or move the sandbox clock every process of this deployment shares.",
    no_args_is_help=True,
)
app.add_typer(clock_app, name="clock")


def _sandbox_settings() -> Settings:
    settings = settings_or_exit()
    if not settings.is_sandbox:
        typer.echo(
            "Error: the sandbox exists only in sandbox mode; this deployment runs with "
            "FUNDLINE_MODE=production (its clock is real time, and its data is not a sandbox's).",
            err=True,
        )
        raise typer.Exit(2)
    return settings


def _print(state: ClockAdvanceResponse, as_json: bool, *, with_tick: bool) -> None:
    if as_json:
        exclude = None if with_tick else {"tick"}
        typer.echo(state.model_dump_json(indent=2, exclude=exclude))
        return
    console = Console()
    console.print(f"now: {state.now.isoformat(timespec='seconds')}")
    console.print(f"offset: {state.offset_seconds // 86_400} days ({state.offset_seconds} s)")
    if with_tick:
        done = ", ".join(f"{k}: {v}" for k, v in state.tick.items()) or "nothing to do"
        console.print(f"tick: {done}")


@clock_app.command("show")
def show(as_json: JsonOption = False) -> None:
    """Show the sandbox time and how far it is ahead of real time."""
    from fundline.sandbox import service

    settings = _sandbox_settings()
    state = run(settings, service.load_clock)
    out = ClockAdvanceResponse(
        now=state.now, today=state.now.date(), offset_seconds=state.offset_seconds, tick={}
    )
    _print(out, as_json, with_tick=False)


@clock_app.command("advance")
def advance(
    days: Annotated[
        int,
        typer.Option(
            min=1, max=MAX_ADVANCE_DAYS, help="Whole days to move forward.", show_default=False
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Move the clock forward and run servicing at once (expiries, LATE, DEFAULTED).

    Running servers take up the new time at their next /sandbox/v1 call or restart.
    """
    from fundline.lending.policy import load_policy
    from fundline.sandbox import service

    settings = _sandbox_settings()
    policy = load_policy(settings)

    async def work(session: AsyncSession) -> service.ClockState:
        return await service.advance_clock(session, days=days, policy=policy)

    state = run(settings, work)
    out = ClockAdvanceResponse(
        now=state.now,
        today=state.now.date(),
        offset_seconds=state.offset_seconds,
        tick=state.tick or {},
    )
    _print(out, as_json, with_tick=True)


@app.command("reset")
def reset(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Start the sandbox over: the clock back to real time, and every row deleted (partners,
    entities, invoices, financing, operator keys). Asks first."""
    from sqlalchemy.engine import make_url

    from fundline.sandbox import service

    settings = _sandbox_settings()
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    if not yes and not typer.confirm(
        f"This deletes every partner, entity, invoice and financing in {where} and puts the "
        "sandbox clock back to now. Continue?",
        default=False,
    ):
        typer.echo("Nothing was changed.", err=True)
        raise typer.Exit(1)

    async def work(session: AsyncSession) -> dict[str, int]:
        return await service.reset_sandbox(session, partner_id=None)

    deleted = run(settings, work)
    if as_json:
        typer.echo(json.dumps({"deleted": deleted}, indent=2))
        return
    total = sum(deleted.values())
    typer.echo(f"The sandbox starts over: {total} rows deleted, the clock is back at now.")
    for table, count in sorted(deleted.items()):
        typer.echo(f"  {table:<28} {count:>8}")
