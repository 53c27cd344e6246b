"""Bulk import: a CSV file of receivables or payables into one entity, in one transaction.

Every row is checked first, through the same rules as the API (``imports.receivables`` and
``imports.payables`` turn rows into documents with the domains' own functions), then against
the database (counterparts found by name, document numbers already used). Any bad row rejects
the file with the list of bad lines and nothing is written. Otherwise the rows are written as
Core INSERTs of a thousand rows per execute, not one ORM round trip each: counterparts and
addresses first, then the documents, each batch with its outbox events. The caller commits.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Table, insert, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.imports.counterparts import (
    AddressKey,
    CounterpartBook,
    Resolution,
    chunks,
    resolve,
)
from fundline.imports.csv_format import (
    PAYABLES,
    RECEIVABLES,
    Cells,
    FileRejected,
    PayableRow,
    ReceivableRow,
    RowError,
    parse_row,
    read_file,
)
from fundline.imports.payables import bills_on_record, plan_payable
from fundline.imports.receivables import counterpart_copy, numbers_in_use, plan_invoice
from fundline.kit import clock
from fundline.kit.db import Base
from fundline.kit.errors import Conflict, NotFound
from fundline.models import Counterpart, CounterpartAddress, Entity, Payable, Receivable
from fundline.models.payable import PayableStatus
from fundline.payables.service import counterpart_snapshot
from fundline.receivables.document import issuer_document
from fundline.receivables.lifecycle import reserve_document_ids
from fundline.webhooks import outbox

# Rows per INSERT batch (SQLAlchemy splits further to stay under the bind-parameter limit).
BATCH = 1000
# Validation progress is reported every this many rows.
TICK = 500

RowT = TypeVar("RowT", ReceivableRow, PayableRow)
PlannedT = TypeVar("PlannedT")


class Progress(Protocol):
    """Where an import reports how far it is (the CLI draws bars)."""

    def phase(self, description: str, total: int) -> None: ...

    def advance(self, amount: int) -> None: ...


class _Silent:
    def phase(self, description: str, total: int) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass


SILENT: Progress = _Silent()


@dataclass
class ImportSummary:
    kind: str
    rows: int
    dry_run: bool
    counterparts_created: int
    counterparts_reused: int
    addresses_created: int
    totals: dict[str, int]  # currency → sum of total_amount, minor units
    events: int = 0  # outbox rows written (0 in a dry run)
    document_ids: list[str] = field(default_factory=list)  # numbers given, in row order


async def get_entity(session: AsyncSession, entity_id: uuid.UUID) -> Entity:
    """Any partner's entity: the operator runs imports."""
    entity = await session.get(Entity, entity_id)
    if entity is None:
        raise NotFound(f"Entity {entity_id} not found")
    return entity


# --- checking rows ---------------------------------------------------------------------------


async def _check_rows(
    rows: list[tuple[int, Cells]],
    model: type[RowT],
    plan: Callable[[int, RowT, AddressKey | None, list[str]], Awaitable[PlannedT | None]],
    errors: list[RowError],
    book: CounterpartBook,
    progress: Progress,
) -> list[PlannedT]:
    """Check each row on its own: parsed as ``model``, its counterpart noted in ``book``, then
    planned (``plan`` adds the row's problems to the list it is given). A row with problems
    is added to ``errors``; the good rows' plans are returned, in order."""
    planned: list[PlannedT] = []
    progress.phase("Validating", len(rows))
    for done, (line, cells) in enumerate(rows, 1):
        row = parse_row(model, cells)
        if isinstance(row, str):
            errors.append(RowError(line, row))
        else:
            problems, address = book.add(line, row)
            document = await plan(line, row, address, problems)
            if problems:
                errors.append(RowError(line, "; ".join(problems)))
            elif document is not None:
                planned.append(document)
        _advance(progress, done, len(rows))
    return planned


def _advance(progress: Progress, done: int, total: int) -> None:
    """Report validation every ``TICK`` rows, and the remainder at the last row."""
    if done % TICK == 0 or done == total:
        progress.advance(TICK if done % TICK == 0 else done % TICK)


# --- receivables -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Invoice:
    line: int
    values: dict[str, Any]  # the receivable's columns, but for its counterpart and entity
    counterpart: str
    address: AddressKey | None


async def import_receivables(
    session: AsyncSession,
    entity_id: uuid.UUID,
    path: Path,
    *,
    dry_run: bool = False,
    progress: Progress = SILENT,
) -> ImportSummary:
    """Create an ``issued`` invoice for each row of ``path`` (and the counterparts and
    addresses it names that the entity lacks). Raises ``FileRejected`` if any row is bad."""
    entity = await get_entity(session, entity_id)
    now = clock.now()
    rows, errors = read_file(path, RECEIVABLES)
    book = CounterpartBook(customer=True)
    invoices, numbered_by_hand = await _plan_invoices(rows, errors, book, now, progress)

    found = await resolve(session, entity, book, now=now)
    errors += found.errors
    errors += await numbers_in_use(session, entity.id, numbered_by_hand)
    errors += _without_billing_address(invoices, found)
    if errors:
        raise FileRejected(errors, rows=len(rows))

    summary = _summary("receivables", len(rows), dry_run, found, [i.values for i in invoices])
    if dry_run:
        return summary
    summary.document_ids += await _complete_invoices(
        session, entity, found, invoices, numbered_by_hand
    )
    summary.events = await _write(
        session, entity, found, Receivable, [i.values for i in invoices], progress
    )
    return summary


async def _plan_invoices(
    rows: list[tuple[int, Cells]],
    errors: list[RowError],
    book: CounterpartBook,
    now: datetime,
    progress: Progress,
) -> tuple[list[_Invoice], dict[str, int]]:
    """The good rows' invoices, and each document_id the file gives → its line."""
    numbered_by_hand: dict[str, int] = {}

    async def plan(
        line: int, row: ReceivableRow, address: AddressKey | None, problems: list[str]
    ) -> _Invoice | None:
        planned = plan_invoice(row, now, problems)
        if row.document_id is not None:
            first = numbered_by_hand.setdefault(row.document_id, line)
            if first != line:
                problems.append(f"document_id: {row.document_id!r} is also on line {first}")
        return None if planned is None else _Invoice(line, planned, row.counterpart_name, address)

    invoices = await _check_rows(rows, ReceivableRow, plan, errors, book, progress)
    return invoices, numbered_by_hand


def _without_billing_address(invoices: list[_Invoice], found: Resolution) -> list[RowError]:
    """Rows naming an existing counterpart that has no default billing address, and giving
    none: an invoice must have one."""
    errors = []
    for invoice in invoices:
        resolved = found.by_name.get(invoice.counterpart)
        if resolved is not None and resolved.addresses[invoice.address] is None:
            errors.append(
                RowError(
                    invoice.line,
                    f"counterpart {invoice.counterpart!r} has no default billing address: "
                    "give the address columns",
                )
            )
    return errors


async def _complete_invoices(
    session: AsyncSession,
    entity: Entity,
    found: Resolution,
    invoices: list[_Invoice],
    numbered_by_hand: dict[str, int],
) -> list[str]:
    """Give each invoice its entity, issuer and counterpart copy, and a reserved number
    when the file gave none; returns the numbers given, in row order."""
    numbers = iter(
        await reserve_document_ids(
            session,
            entity.id,
            sum(i.values["document_id"] is None for i in invoices),
            skip=numbered_by_hand.keys(),
        )
    )
    shown = {"entity_id": entity.id, "issuer": issuer_document(entity, None)}
    # Rows for one counterpart and address share one copy, built once.
    copies: dict[tuple[str, AddressKey | None], dict[str, Any]] = {}
    given: list[str] = []
    for invoice in invoices:
        copy = copies.get((invoice.counterpart, invoice.address))
        if copy is None:
            copy = copies[invoice.counterpart, invoice.address] = counterpart_copy(
                found.by_name[invoice.counterpart], invoice.address
            )
        invoice.values |= shown | copy
        if invoice.values["document_id"] is None:
            number = invoice.values["document_id"] = next(numbers)
            given.append(number)
    return given


# --- payables -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Bill:
    line: int
    values: dict[str, Any]  # the payable's columns, checked, amounts and due date derived
    counterpart: str
    address: AddressKey | None
    status: PayableStatus


async def import_payables(
    session: AsyncSession,
    entity_id: uuid.UUID,
    path: Path,
    *,
    dry_run: bool = False,
    progress: Progress = SILENT,
) -> ImportSummary:
    """Create a payable in the row's ``status`` for each row of ``path`` (and the vendors and
    addresses it names that the entity lacks). Raises ``FileRejected`` if any row is bad."""
    entity = await get_entity(session, entity_id)
    now = clock.now()
    rows, errors = read_file(path, PAYABLES)
    book = CounterpartBook(customer=False)
    bills, seen = await _plan_bills(session, entity, rows, errors, book, now, progress)

    found = await resolve(session, entity, book, now=now)
    errors += found.errors
    errors += await bills_on_record(session, found, seen)
    if errors:
        raise FileRejected(errors, rows=len(rows))

    summary = _summary("payables", len(rows), dry_run, found, [b.values for b in bills])
    if dry_run:
        return summary
    _complete_bills(found, bills)
    summary.events = await _write(
        session, entity, found, Payable, [b.values for b in bills], progress
    )
    return summary


async def _plan_bills(
    session: AsyncSession,
    entity: Entity,
    rows: list[tuple[int, Cells]],
    errors: list[RowError],
    book: CounterpartBook,
    now: datetime,
    progress: Progress,
) -> tuple[list[_Bill], dict[tuple[str, str], int]]:
    """The good rows' bills, and each (counterpart, document_id) → its first line."""
    seen: dict[tuple[str, str], int] = {}

    async def plan(
        line: int, row: PayableRow, address: AddressKey | None, problems: list[str]
    ) -> _Bill | None:
        payable = await plan_payable(session, entity, row, now, problems)
        first = seen.setdefault((row.counterpart_name, row.document_id), line)
        if first != line:
            problems.append(
                f"document_id: {row.document_id!r} of {row.counterpart_name!r} is also "
                f"on line {first}"
            )
        if payable is None:
            return None
        return _Bill(line, _values(payable), row.counterpart_name, address, row.status)

    bills = await _check_rows(rows, PayableRow, plan, errors, book, progress)
    return bills, seen


def _complete_bills(found: Resolution, bills: list[_Bill]) -> None:
    """Point each bill at its resolved vendor and address, and put it in its row's status."""
    for bill in bills:
        resolved = found.by_name[bill.counterpart]
        vendor_address = resolved.addresses[bill.address]
        bill.values["counterpart_id"] = resolved.counterpart.id
        bill.values["counterpart_address_id"] = vendor_address.id if vendor_address else None
        if bill.status != bill.values["status"]:
            # Past review, as approve_payment_operation leaves it.
            bill.values["counterpart_snapshot"] = counterpart_snapshot(resolved.counterpart)
            bill.values["status"] = bill.status


# --- writing ---------------------------------------------------------------------------------


def _summary(
    kind: str,
    rows: int,
    dry_run: bool,
    found: Resolution,
    documents: Sequence[dict[str, Any]],
) -> ImportSummary:
    totals: Counter[str] = Counter()
    for document in documents:
        totals[document["currency"]] += document["total_amount"]
    return ImportSummary(
        kind=kind,
        rows=rows,
        dry_run=dry_run,
        counterparts_created=len(found.new_counterparts),
        counterparts_reused=found.reused,
        addresses_created=len(found.new_addresses),
        totals=dict(sorted(totals.items())),
    )


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _values(obj: Base) -> dict[str, Any]:
    """The column values of an unsaved ORM object (None where unset), for a Core INSERT."""
    given = inspect(obj).dict  # read directly: no attribute instrumentation per value
    return {key: given.get(key) for key in obj.__table__.columns.keys()}


async def _write(
    session: AsyncSession,
    entity: Entity,
    found: Resolution,
    model: type[Receivable | Payable],
    documents: Sequence[dict[str, Any]],
    progress: Progress,
) -> int:
    """Insert the new counterparts, addresses and ``documents`` (column values of ``model``),
    each with its ``created`` event, in batches; returns the number of events written."""
    try:
        return await _insert(session, entity, found, model, documents, progress)
    except IntegrityError as exc:
        # Checked moments ago: another writer got in between (the same document number).
        raise Conflict(
            f"The entity's {model.__tablename__} changed while the file was imported "
            f"({exc.orig}); nothing was imported: run the import again"
        ) from exc


async def _insert(
    session: AsyncSession,
    entity: Entity,
    found: Resolution,
    model: type[Receivable | Payable],
    documents: Sequence[dict[str, Any]],
    progress: Progress,
) -> int:
    table = _table(model)
    missing = set(table.columns.keys()) - set(documents[0]) if documents else set()
    assert not missing, f"no value for {missing}"  # a NULL would be silently wrong
    progress.phase("Importing", len(documents))
    counterparts = [_values(c) for c in found.new_counterparts]
    addresses = [_values(a) for a in found.new_addresses]
    events = 0
    for kind, rows, data in (
        (Counterpart, counterparts, lambda _: None),
        (
            CounterpartAddress,
            addresses,
            lambda row: {"counterpart_id": str(row["counterpart_id"])},
        ),
        (model, documents, lambda row: {"status": row["status"]}),
    ):
        for batch in chunks(rows, BATCH):
            await session.execute(insert(_table(kind)), batch)
            events += await outbox.record_events(
                session, entity, kind, "created", ((row["id"], data(row)) for row in batch)
            )
            if rows is documents:
                progress.advance(len(batch))
    return events
