"""What an invoice shows: copies of its counterpart and issuer, its priced lines, its terms.

A receivable keeps these as documents on its row, copied when they are chosen, so later edits
of the counterpart or the entity do not rewrite an invoice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from fundline.kit.errors import NotFound, Unprocessable
from fundline.kit.money import MAX_AMOUNT
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


def _address_document(address: CounterpartAddress) -> dict[str, Any]:
    return {
        "id": str(address.id),
        "city": address.city,
        "country": address.country,
        "line1": address.line1,
        "line2": address.line2,
        "postal_code": address.postal_code,
        "state": address.state,
    }


@dataclass(frozen=True, slots=True)
class ChosenCounterpart:
    """The counterpart a document names and the addresses asked for, each ``None`` when it is
    not an address of that counterpart."""

    counterpart: Counterpart
    billing_id: uuid.UUID
    billing: CounterpartAddress | None
    shipping_id: uuid.UUID | None
    shipping: CounterpartAddress | None


async def choose_counterpart(
    session: AsyncSession,
    entity: Entity,
    counterpart_id: uuid.UUID,
    billing_id: uuid.UUID,
    shipping_id: uuid.UUID | None,
) -> ChosenCounterpart:
    """The entity's counterpart and the two addresses, read in one statement; another entity's
    counterpart, or a deleted one, is a 404 (``copy_chosen`` checks the addresses)."""
    values = {
        "counterpart_id": counterpart_id,
        "entity_id": entity.id,
        "billing_id": billing_id,
        "shipping_id": shipping_id,  # None joins no address: ``= NULL`` is never true
    }
    found = (await session.execute(_CHOSEN, values)).first()
    if found is None:
        raise NotFound("Counterpart not found")
    return ChosenCounterpart(found[0], billing_id, found[1], shipping_id, found[2])


# Built once: a statement of aliased entities costs more to build than to run.
_BILLING = aliased(CounterpartAddress)
_SHIPPING = aliased(CounterpartAddress)
_CHOSEN = (
    select(Counterpart, _BILLING, _SHIPPING)
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


def copy_chosen(
    receivable: Receivable, chosen: ChosenCounterpart, *, loc: tuple[str, ...] = ("body",)
) -> None:
    """Copy the counterpart as the document shows it; addresses must be the counterpart's."""
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
    copy_counterpart(receivable, chosen.counterpart, billing, shipping)


def _own_address(
    chosen: ChosenCounterpart,
    address_id: uuid.UUID,
    address: CounterpartAddress | None,
    loc: tuple[str | int, ...],
) -> CounterpartAddress:
    if address is None:
        raise Unprocessable(
            f"Address {address_id} is not an address of counterpart {chosen.counterpart.id}",
            loc=loc,
        )
    return address


def copy_counterpart(
    receivable: Receivable,
    counterpart: Counterpart,
    billing: CounterpartAddress,
    shipping: CounterpartAddress | None,
) -> None:
    """Copy the counterpart and addresses, already known to be its own, onto the document."""
    receivable.counterpart_id = counterpart.id
    receivable.counterpart_name = counterpart.name
    receivable.counterpart_type = counterpart.type
    receivable.counterpart_billing_address_id = billing.id
    receivable.counterpart_shipping_address_id = shipping.id if shipping else None
    receivable.counterpart = {
        "tax_id": counterpart.tax_id,
        "external_reference": counterpart.external_reference,
        "billing_address": _address_document(billing),
        "shipping_address": _address_document(shipping) if shipping else None,
    }
    receivable.file_language = counterpart.language


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
    vat_exempt = bool(receivable.details.get("vat_exempt"))
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
    receivable.line_items = stored
    receivable.subtotal = totals.subtotal
    receivable.total_vat_amount = totals.total_vat_amount
    receivable.total_amount = totals.total_amount


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
