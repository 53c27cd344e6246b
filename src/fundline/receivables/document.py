"""What an invoice shows: copies of its counterpart and issuer, its priced lines, its terms.

A receivable keeps these as documents on its row, copied when they are chosen, so later edits
of the counterpart or the entity do not rewrite an invoice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from fundline.kit.errors import NotFound, Unprocessable
from fundline.kit.money import MAX_AMOUNT
from fundline.kit.statements import Prepared
from fundline.models import Counterpart, CounterpartAddress, Entity, Receivable
from fundline.receivables.schemas import (
    DETAIL_FIELDS,
    CreateInvoiceRequest,
    InlinePaymentTerms,
    LineItem,
    ReceivableEntityBase,
    UpdateInvoice,
)
from fundline.receivables.totals import LineAmounts, document_totals, line_amounts

ADDRESS_FIELDS = ("id", "city", "country", "line1", "line2", "postal_code", "state")


def _address_document(address: CounterpartAddress) -> dict[str, Any]:
    return {name: getattr(address, name) for name in ADDRESS_FIELDS} | {"id": str(address.id)}


@dataclass(frozen=True, slots=True)
class ChosenCounterpart:
    """The counterpart a document names (its columns ``_CHOSEN`` reads) and the addresses asked
    for, each as the document shows it, ``None`` when it is not an address of that
    counterpart."""

    counterpart: dict[str, Any]
    billing_id: uuid.UUID
    billing: dict[str, Any] | None
    shipping_id: uuid.UUID | None
    shipping: dict[str, Any] | None


async def choose_counterpart(
    session: AsyncSession,
    entity: Entity,
    counterpart_id: uuid.UUID,
    billing_id: uuid.UUID,
    shipping_id: uuid.UUID | None,
) -> ChosenCounterpart:
    """The entity's counterpart and the two addresses, read in one statement; another entity's
    counterpart, or a deleted one, is a 404 (``chosen_columns`` checks the addresses)."""
    values = {
        "counterpart_id": counterpart_id,
        "entity_id": entity.id,
        "billing_id": billing_id,
        "shipping_id": shipping_id,  # None joins no address: ``= NULL`` is never true
    }
    found = await _CHOSEN.rows(session, values)
    if not found:
        raise NotFound("Counterpart not found")
    row = found[0]
    counterpart = dict(zip(_COUNTERPART_FIELDS, row, strict=False))
    width = len(_COUNTERPART_FIELDS)
    billing = _address_of(row[width : width + len(ADDRESS_FIELDS)])
    shipping = _address_of(row[width + len(ADDRESS_FIELDS) :])
    return ChosenCounterpart(counterpart, billing_id, billing, shipping_id, shipping)


def _address_of(values: Sequence[Any]) -> dict[str, Any] | None:
    """An outer-joined address as the document shows it; ``None`` when none joined."""
    if values[0] is None:
        return None
    return dict(zip(ADDRESS_FIELDS, values, strict=True)) | {"id": str(values[0])}


# Built once, past the ORM: it reads columns, not models (which would cost more to load than
# the statement takes to run), and states the entity itself.
_COUNTERPART_FIELDS = (
    "id",
    "type",
    # ``Counterpart.name``, kept equal to it by the model's flush hooks
    "counterpart_name",
    "tax_id",
    "external_reference",
    "language",
)
_COUNTERPARTS = Counterpart.__table__.c
_BILLING = aliased(CounterpartAddress, name="billing")
_SHIPPING = aliased(CounterpartAddress, name="shipping")
_CHOSEN = Prepared(
    select(
        *(_COUNTERPARTS[name] for name in _COUNTERPART_FIELDS),
        *(getattr(_BILLING, name).label(f"billing_{name}") for name in ADDRESS_FIELDS),
        *(getattr(_SHIPPING, name).label(f"shipping_{name}") for name in ADDRESS_FIELDS),
    )
    .select_from(Counterpart)
    .outerjoin(
        _BILLING,
        and_(
            _BILLING.id == bindparam("billing_id", type_=CounterpartAddress.id.type),
            _BILLING.counterpart_id == Counterpart.id,
        ),
    )
    .outerjoin(
        _SHIPPING,
        and_(
            _SHIPPING.id == bindparam("shipping_id", type_=CounterpartAddress.id.type),
            _SHIPPING.counterpart_id == Counterpart.id,
        ),
    )
    .where(
        Counterpart.id == bindparam("counterpart_id", type_=Counterpart.id.type),
        Counterpart.entity_id == bindparam("entity_id", type_=Counterpart.entity_id.type),
        Counterpart.deleted_at.is_(None),
    )
)


def chosen_columns(
    chosen: ChosenCounterpart, *, loc: tuple[str, ...] = ("body",)
) -> dict[str, Any]:
    """The receivable's columns that copy the counterpart as the document shows it (for an
    ``Insert``, or set on a draft); the addresses must be the counterpart's."""
    billing = _own_address(
        chosen, chosen.billing_id, chosen.billing, (*loc, "counterpart_billing_address_id")
    )
    shipping = (
        _own_address(
            chosen, chosen.shipping_id, chosen.shipping, (*loc, "counterpart_shipping_address_id")
        )
        if chosen.shipping_id is not None
        else None
    )
    return counterpart_columns(
        chosen.counterpart, chosen.billing_id, billing, chosen.shipping_id, shipping
    )


def _own_address(
    chosen: ChosenCounterpart,
    address_id: uuid.UUID,
    address: dict[str, Any] | None,
    loc: tuple[str | int, ...],
) -> dict[str, Any]:
    if address is None:
        raise Unprocessable(
            f"Address {address_id} is not an address of counterpart {chosen.counterpart['id']}",
            loc=loc,
        )
    return address


def copied_counterpart(
    counterpart: Counterpart, billing: CounterpartAddress, shipping: CounterpartAddress | None
) -> dict[str, Any]:
    """The receivable's columns that copy the counterpart and addresses (models, already known
    to be its own)."""
    shown = {name: getattr(counterpart, name) for name in _COUNTERPART_FIELDS}
    # The stored name is synced at flush: a counterpart not flushed yet has only this one.
    shown["counterpart_name"] = counterpart.name
    return counterpart_columns(
        shown,
        billing.id,
        _address_document(billing),
        shipping.id if shipping else None,
        _address_document(shipping) if shipping else None,
    )


def counterpart_columns(
    counterpart: dict[str, Any],
    billing_id: uuid.UUID,
    billing: dict[str, Any],
    shipping_id: uuid.UUID | None,
    shipping: dict[str, Any] | None,
) -> dict[str, Any]:
    """The receivable's columns that copy ``counterpart`` (its ``_COUNTERPART_FIELDS``) and
    its addresses (as the document shows them)."""
    return {
        "counterpart_id": counterpart["id"],
        "counterpart_name": counterpart["counterpart_name"],
        "counterpart_type": counterpart["type"],
        "counterpart_billing_address_id": billing_id,
        "counterpart_shipping_address_id": shipping_id if shipping else None,
        "counterpart": {
            "tax_id": counterpart["tax_id"],
            "external_reference": counterpart["external_reference"],
            "billing_address": billing,
            "shipping_address": shipping,
        },
        "file_language": counterpart["language"],
    }


def issuer_document(entity: Entity, overrides: ReceivableEntityBase | None) -> dict[str, Any]:
    """The entity as the document shows it, with the payload's ``entity`` overrides on top."""
    shown: dict[str, Any] = {
        "type": entity.type,
        "email": entity.email,
        "phone": entity.phone,
        "website": entity.website,
        "tax_id": entity.tax_id,
        "registration_number": entity.registration_number,
        "registration_authority": entity.registration_authority,
    }
    if entity.type == "organization":
        shown["name"] = (entity.organization or {}).get("legal_name")
    else:
        person = entity.individual or {}
        shown["first_name"] = person.get("first_name")
        shown["last_name"] = person.get("last_name")
    if overrides is not None:
        shown.update(overrides.model_dump(mode="json", exclude_none=True))
    address = {
        k: entity.address.get(k)
        for k in ("city", "country", "line1", "line2", "postal_code", "state")
    }
    return {"entity": shown, "entity_address": address}


def new_line(item: LineItem, index: int, *, currency: str) -> dict[str, Any]:
    product = item.product
    if product.price.currency != currency:
        raise Unprocessable(
            f"The product's price is in {product.price.currency}, the invoice in {currency}",
            loc=("body", "line_items", index, "product", "price", "currency"),
        )
    return {
        "id": str(uuid.uuid4()),
        "name": product.name,
        "description": product.description,
        "external_reference": product.external_reference,
        "ledger_account_id": str(product.ledger_account_id) if product.ledger_account_id else None,
        "measure_unit": product.measure_unit.model_dump() if product.measure_unit else None,
        "smallest_amount": (
            str(product.smallest_amount) if product.smallest_amount is not None else None
        ),
        "type": product.type.value,
        "price": product.price.value,
        "quantity": str(item.quantity),
        "tax_rate_value": item.tax_rate_value,
        "tax_rate_name": item.tax_rate_name,
    }


def apply_lines(
    receivable: Receivable, lines: list[dict[str, Any]], *, loc: tuple[str, ...] = ("body",)
) -> None:
    """Store ``lines`` with their amounts and recompute every total from them; errors point
    into the request at ``loc``."""
    columns = priced_lines(lines, details=receivable.details, loc=loc)
    for name, value in columns.items():
        setattr(receivable, name, value)


def priced_lines(
    lines: list[dict[str, Any]], *, details: dict[str, Any], loc: tuple[str, ...] = ("body",)
) -> dict[str, Any]:
    """The receivable's columns of ``lines``: the lines with their amounts and every total
    computed from them (``details`` says whether the invoice is VAT-exempt); errors point into
    the request at ``loc``."""
    vat_exempt = bool(details.get("vat_exempt"))
    priced: list[tuple[int, LineAmounts]] = []
    stored = []
    for index, line in enumerate(lines):
        rate = line["tax_rate_value"]
        if rate is None and not vat_exempt:
            raise Unprocessable(
                "tax_rate_value (basis points, 1000 = 10 %) is required unless vat_exempt",
                loc=(*loc, "line_items", index, "tax_rate_value"),
            )
        if vat_exempt and rate:
            raise Unprocessable(
                "A VAT-exempt invoice cannot charge tax",
                loc=(*loc, "line_items", index, "tax_rate_value"),
            )
        amounts = line_amounts(line["price"], Decimal(line["quantity"]), rate or 0)
        priced.append((rate or 0, amounts))
        stored.append(
            {
                **line,
                "total_before_vat": amounts.total_before_vat,
                "vat_amount": amounts.vat_amount,
                "total_after_vat": amounts.total_after_vat,
                "price_after_vat": amounts.price_after_vat,
            }
        )
    totals = document_totals(priced)
    if totals.total_amount > MAX_AMOUNT or any(a.price_after_vat > MAX_AMOUNT for _, a in priced):
        raise Unprocessable(
            f"The invoice's amounts exceed the largest amount allowed ({MAX_AMOUNT})",
            loc=(*loc, "line_items"),
        )
    return {
        "line_items": stored,
        "subtotal": totals.subtotal,
        "total_vat_amount": totals.total_vat_amount,
        "total_amount": totals.total_amount,
    }


def terms_document(terms: InlinePaymentTerms | None) -> dict[str, Any] | None:
    return None if terms is None else terms.model_dump(mode="json", exclude_none=True)


def due_date_under(terms: dict[str, Any] | None, issued_on: date) -> date | None:
    """The due date under ``terms`` for an invoice issued on ``issued_on``."""
    if terms is None:
        return None
    final = terms["term_final"]
    if final.get("end_date") is not None:
        return date.fromisoformat(final["end_date"])
    return issued_on + timedelta(days=int(final["number_of_days"]))


def merge_details(
    payload: CreateInvoiceRequest | UpdateInvoice, base: dict[str, Any]
) -> dict[str, Any]:
    given = payload.model_dump(mode="json", include=set(DETAIL_FIELDS) & payload.model_fields_set)
    return {k: v for k, v in {**base, **given}.items() if v is not None}
