"""``fundline import …``: receivables and payables from CSV files (docs/import.md).

The whole file is checked first; a bad row rejects it (exit 1, the bad lines on stderr) and
nothing is written. A good file is written in one transaction. Progress goes to stderr, the
summary to stdout.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.imports.csv_format import FileRejected
from fundline.imports.service import ImportSummary
from fundline.kit.money import to_major

app = typer.Typer(
    help="Import issued invoices (receivables) or bills (payables) from a CSV file.",
    no_args_is_help=True,
)

# Bad lines printed before "… and N more".
SHOWN_ERRORS = 50

FileArgument = Annotated[
    Path,
    typer.Argument(
        exists=True, dir_okay=False, readable=True, help="The CSV file (see docs/import.md)."
    ),
]
EntityOption = Annotated[
    uuid.UUID,
    typer.Option("--entity", help="The id of the entity to import into.", show_default=False),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Check the whole file and write nothing.")
]


class _Bars:
    """The service's progress as rich bars, one per phase, on stderr."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<11}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> _Bars:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def phase(self, description: str, total: int) -> None:
        self._task = self._progress.add_task(description, total=total)

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)


ImportFunction = Callable[..., Awaitable[ImportSummary]]


def _import(kind: str, file: Path, entity: uuid.UUID, dry_run: bool) -> None:
    from fundline.cli_support import run, settings_or_exit
    from fundline.imports import service

    do: ImportFunction = (
        service.import_receivables if kind == "receivables" else service.import_payables
    )
    settings = settings_or_exit()
    err = Console(stderr=True)
    rejected: FileRejected | None = None
    with _Bars(err) as bars:

        async def work(session: AsyncSession) -> ImportSummary:
            return await do(session, entity, file, dry_run=dry_run, progress=bars)

        try:
            summary = run(settings, work)
        except FileRejected as exc:
            rejected = exc
    if rejected is not None:
        _print_rejection(err, file, rejected)
        raise typer.Exit(1)
    _print_summary(summary, entity)


def _print_rejection(err: Console, file: Path, exc: FileRejected) -> None:
    bad = len({e.line for e in exc.errors})
    what = f"{bad} bad line(s) out of {exc.rows} rows" if exc.rows else "the file was refused"
    err.print(f"Error: {file}: {what}; nothing was imported.", markup=False, highlight=False)
    for error in exc.errors[:SHOWN_ERRORS]:
        err.print(f"  {error}", markup=False, highlight=False)
    if len(exc.errors) > SHOWN_ERRORS:
        err.print(f"  … and {len(exc.errors) - SHOWN_ERRORS} more", highlight=False)


def _print_summary(summary: ImportSummary, entity: uuid.UUID) -> None:
    if summary.dry_run:
        typer.echo(
            f"Dry run: all {summary.rows} rows are valid; nothing was written. "
            f"An import would create {summary.rows} {summary.kind}."
        )
    else:
        typer.echo(f"Imported {summary.rows} {summary.kind} into entity {entity}.")
    created = "to create" if summary.dry_run else "created"
    typer.echo(
        f"Counterparts: {summary.counterparts_created} {created}, "
        f"{summary.counterparts_reused} reused; addresses: {summary.addresses_created} {created}."
    )
    totals = ", ".join(f"{to_major(v, c):,} {c}" for c, v in summary.totals.items())
    typer.echo(f"Total amount: {totals}.")
    if summary.document_ids:
        first, last = summary.document_ids[0], summary.document_ids[-1]
        typer.echo(f"Document numbers: {first} to {last}.")
    if not summary.dry_run:
        typer.echo(f"Events: {summary.events} written to the outbox.")


@app.command("receivables")
def receivables(file: FileArgument, entity: EntityOption, dry_run: DryRunOption = False) -> None:
    """Create issued invoices, and the customers they name that the entity lacks."""
    _import("receivables", file, entity, dry_run)


@app.command("payables")
def payables(file: FileArgument, entity: EntityOption, dry_run: DryRunOption = False) -> None:
    """Create payables, and the vendors they name that the entity lacks."""
    _import("payables", file, entity, dry_run)
