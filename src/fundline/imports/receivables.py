"""Import rows → receivables: each row one issued invoice of one line, through the
receivables' own rules (line amounts and totals, payment terms, the counterpart's copy)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.imports.counterparts import AddressKey, Resolved, chunks
from fundline.imports.csv_format import ReceivableRow, RowError, column_of, explain
from fundline.kit.errors import Unprocessable
from fundline.kit.money import from_major
from fundline.models import Receivable
from fundline.models.receivable import ReceivablesStatus
from fundline.receivables.document import (
    copied_counterpart,
    due_date_under,
    new_line,
    priced_lines,
    terms_document,
)
from fundline.receivables.schemas import InlinePaymentTerms, LineItem

# Model error locations → file columns.
LINE_COLUMNS = {
    "product.name": "product_name",
    "product.price.value": "unit_price",
    "product.description": "description",
    "product.measure_unit.name": "measure_unit",
    "quantity": "quantity",
    "tax_rate_value": "tax_rate",
    "line_items": "unit_price",
}

# The receivable columns copied_counterpart gives.
COUNTERPART_COPY = (
    "counterpart_id",
    "counterpart_name",
    "counterpart_type",
    "counterpart_billing_address_id",
    "counterpart_shipping_address_id",
    "counterpart",
    "file_language",
)
# The columns plan_invoice leaves to the write: the entity's, and the counterpart's copy.
LATER = ("entity_id", "issuer", *COUNTERPART_COPY)


def plan_invoice(row: ReceivableRow, now: datetime, problems: list[str]) -> dict[str, Any] | None:
    """The row's invoice with its line, totals and dates, or ``None`` with ``problems``."""
    today = now.date()
    if row.issue_date is not None and row.issue_date > today:
        problems.append(f"issue_date: {row.issue_date} is after today ({today})")
        return None
    issued = now if row.issue_date is None else datetime.combine(row.issue_date, time(), UTC)
    try:
        price = from_major(row.unit_price, row.currency)
    except ValueError as exc:
        problems.append(f"unit_price: {exc}")
        return None
    product: dict[str, Any] = {
        "name": row.product_name,
        "price": {"currency": row.currency, "value": price},
        "description": row.description,
        "measure_unit": {"name": row.measure_unit} if row.measure_unit else None,
    }
    if row.payment_terms_days is not None:
        days = row.payment_terms_days
        terms = {"name": f"Net {days}", "term_final": {"number_of_days": days}}
    else:
        terms = {"term_final": {"end_date": row.due_date}}
    try:
        item = LineItem.model_validate(
            {"quantity": row.quantity, "product": product, "tax_rate_value": row.tax_rate}
        )
        payment_terms = terms_document(InlinePaymentTerms.model_validate(terms))
    except ValidationError as exc:
        problems.append(explain(exc, LINE_COLUMNS))
        return None
    due = due_date_under(payment_terms, issued.date())
    assert due is not None  # terms always give one
    if due < issued.date():
        problems.append(f"due_date: {due} is before the issue date {issued.date()}")
        return None
    try:
        priced = priced_lines([new_line(item, 0, currency=row.currency)], details={}, loc=())
    except Unprocessable as exc:
        problems.append(f"{column_of(exc.loc, LINE_COLUMNS)}: {exc.message}")
        return None
    return {
        "id": uuid.uuid4(),
        "created_at": now,
        "updated_at": now,
        "type": "invoice",
        "status": ReceivablesStatus.ISSUED,
        "document_id": row.document_id,
        "currency": row.currency,
        "entity_user_id": None,
        **priced,
        "amount_paid": 0,
        "payment_terms": payment_terms,
        "issue_date": issued,
        "due_date": due,
        "paid_at": None,
        "comment": None,
        "details": {"memo": row.memo} if row.memo else {},
        **dict.fromkeys(LATER),
    }


def counterpart_copy(resolved: Resolved, address: AddressKey | None) -> dict[str, Any]:
    """The counterpart columns of an invoice to it at ``address``."""
    billing = resolved.addresses[address]
    assert billing is not None  # rows without a billing address were refused
    return copied_counterpart(resolved.counterpart, billing, None)


async def numbers_in_use(
    session: AsyncSession, entity_id: uuid.UUID, lines: dict[str, int]
) -> list[RowError]:
    """Rows giving a document_id one of the entity's receivables already has."""
    errors = []
    for chunk in chunks(list(lines)):
        used = await session.scalars(
            select(Receivable.document_id).where(
                Receivable.entity_id == entity_id, Receivable.document_id.in_(chunk)
            )
        )
        errors += [
            RowError(lines[n], f"document_id: {n!r} is already used by a receivable")
            for n in used
            if n is not None
        ]
    return errors


# --- payables --------------------------------------------------------------------------------
