"""``fundline sandbox …``: the sandbox clock from the command line (sandbox mode only)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.config import Settings
from fundline.lender.cli import JsonOption, run, settings_or_exit
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
            "Error: the sandbox clock exists only in sandbox mode; this deployment runs with "
            "FUNDLINE_MODE=production, whose clock is real time.",
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
