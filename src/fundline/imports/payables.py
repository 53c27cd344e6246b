"""Import rows → payables, through the payables' own rules (derived amounts, totals that add
up, due dates from payment terms, `new` once complete)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.imports.counterparts import Resolution, chunks
from fundline.imports.csv_format import PayableRow, RowError, column_of, explain
from fundline.kit.errors import Unprocessable
from fundline.kit.money import from_major
from fundline.models import Entity, Payable
from fundline.payables.schemas import CreatePayableRequest
from fundline.payables.service import build_payable

# Model error locations → file columns.
PAYABLE_COLUMNS = {"tax": "tax_rate", "payment_terms": "payment_terms_days"}


async def plan_payable(
    session: AsyncSession, entity: Entity, row: PayableRow, now: datetime, problems: list[str]
) -> Payable | None:
    """The row's payable through the API's own rules (amounts derived, dates checked), or
    ``None`` with ``problems``."""
    known = len(problems)
    data: dict[str, Any] = {
        "currency": row.currency,
        "document_id": row.document_id,
        "tax": row.tax_rate,
        "issued_at": row.issued_at or now.date(),
        "due_date": row.due_date,
        "description": row.description,
    }
    for column in ("subtotal", "tax_amount", "total_amount"):
        value = getattr(row, column)
        if value is not None:
            try:
                data[column] = from_major(value, row.currency)
            except ValueError as exc:
                problems.append(f"{column}: {exc}")
    if row.payment_terms_days is not None:
        days = row.payment_terms_days
        data["payment_terms"] = {"name": f"Net {days}", "term_final": {"number_of_days": days}}
    if len(problems) > known:
        return None
    try:
        payload = CreatePayableRequest.model_validate(
            {k: v for k, v in data.items() if v is not None}
        )
        payable = await build_payable(session, entity, payload, created_by=None)
    except ValidationError as exc:
        problems.append(explain(exc, PAYABLE_COLUMNS))
        return None
    except Unprocessable as exc:
        problems.append(f"{column_of(exc.loc, PAYABLE_COLUMNS)}: {exc.message}")
        return None
    payable.created_at = payable.updated_at = now
    return payable


async def bills_on_record(
    session: AsyncSession, found: Resolution, lines: dict[tuple[str, str], int]
) -> list[RowError]:
    """Rows for a vendor's document_id the entity already has a payable for."""
    by_vendor: dict[uuid.UUID, str] = {
        r.counterpart.id: name for name, r in found.by_name.items() if not r.created
    }
    wanted = [(n, d) for n, d in lines if n in found.by_name and not found.by_name[n].created]
    errors: list[RowError] = []
    for chunk in chunks(wanted):
        ids = {found.by_name[n].counterpart.id for n, _ in chunk}
        rows = await session.execute(
            select(Payable.counterpart_id, Payable.document_id).where(
                Payable.counterpart_id.in_(ids),
                Payable.document_id.in_({d for _, d in chunk}),
            )
        )
        for counterpart_id, document_id in rows:
            assert counterpart_id is not None
            assert document_id is not None
            key = (by_vendor[counterpart_id], document_id)
            if key in lines:
                errors.append(
                    RowError(
                        lines[key],
                        f"document_id: {document_id!r} of {key[0]!r} is already a payable",
                    )
                )
    return errors
