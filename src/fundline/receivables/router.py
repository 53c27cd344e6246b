"""`/v1/receivables`: Monite's accounts-receivable endpoints for invoices.

Responses leave absent optional fields out (``response_model_exclude_none``), as Monite does,
instead of sending null.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response, status

from fundline.auth.deps import CallerDep, EntityDep, Session
from fundline.kit import clock
from fundline.kit.pagination import Paginator
from fundline.kit.routing import TransactionalRoute
from fundline.lending.provider import LenderDep
from fundline.models import Receivable
from fundline.receivables import lifecycle, service
from fundline.receivables.responses import InvoiceResponse, ReceivablePaginationResponse
from fundline.receivables.schemas import (
    CreateInvoiceRequest,
    ReceivableListParams,
    ReceivablePaidPayload,
    ReceivablePartiallyPaidPayload,
    ReceivableUncollectiblePayload,
    UpdateReceivableRequest,
)
from fundline.receivables.totals import LineAmounts, document_totals

router = APIRouter(prefix="/receivables", tags=["Receivables"], route_class=TransactionalRoute)


def _line_out(line: dict[str, Any], currency: str, country: str) -> dict[str, Any]:
    return {
        "product": {
            "id": line["id"],
            "name": line["name"],
            "description": line["description"],
            "external_reference": line["external_reference"],
            "ledger_account_id": line["ledger_account_id"],
            "measure_unit": line["measure_unit"],
            "smallest_amount": line["smallest_amount"],
            "type": line["type"],
            "price": {"currency": currency, "value": line["price"]},
            "price_after_vat": {"currency": currency, "value": line["price_after_vat"]},
            "vat_rate": {
                "country": country,
                "value": line["tax_rate_value"] or 0,
                "name": line["tax_rate_name"],
            },
        },
        "quantity": Decimal(line["quantity"]),
        "total_before_vat": line["total_before_vat"],
        "total_after_vat": line["total_after_vat"],
    }


def invoice_out(receivable: Receivable, today: date) -> InvoiceResponse:
    """Monite's ``InvoiceResponsePayload`` of a receivable, its status read at ``today``."""
    issuer = receivable.issuer
    country = issuer["entity_address"].get("country") or "US"
    totals = document_totals(
        (
            line["tax_rate_value"] or 0,
            LineAmounts(
                line["total_before_vat"],
                line["vat_amount"],
                line["total_after_vat"],
                line["price_after_vat"],
            ),
        )
        for line in receivable.line_items
    )
    snapshot = receivable.counterpart
    data: dict[str, Any] = {
        **receivable.details,
        "id": receivable.id,
        "created_at": receivable.created_at,
        "updated_at": receivable.updated_at,
        "status": service.effective_status(receivable, today),
        "document_id": receivable.document_id,
        "currency": receivable.currency,
        "entity_user_id": receivable.entity_user_id,
        "entity": issuer["entity"],
        "entity_address": issuer["entity_address"],
        "counterpart_id": receivable.counterpart_id,
        "counterpart_name": receivable.counterpart_name,
        "counterpart_type": receivable.counterpart_type,
        "counterpart_tax_id": snapshot.get("tax_id"),
        "counterpart_external_reference": snapshot.get("external_reference"),
        "counterpart_billing_address": snapshot["billing_address"],
        "counterpart_shipping_address": snapshot.get("shipping_address"),
        "line_items": [
            _line_out(line, receivable.currency, country) for line in receivable.line_items
        ],
        "subtotal": receivable.subtotal,
        "discounted_subtotal": receivable.subtotal,
        "subtotal_after_vat": receivable.total_amount,
        "total_vat_amount": receivable.total_vat_amount,
        "total_vat_amounts": [
            {"amount": g.amount, "taxable_amount": g.taxable_amount, "value": g.rate}
            for g in totals.vat_groups
        ],
        "total_amount": receivable.total_amount,
        "total_amount_with_credit_notes": receivable.total_amount,
        "amount_paid": receivable.amount_paid,
        "amount_due": receivable.amount_due,
        "amount_to_pay": receivable.amount_due,
        "payment_terms": receivable.payment_terms,
        "issue_date": receivable.issue_date,
        "due_date": receivable.due_date,
        "paid_at": receivable.paid_at,
        "file_language": receivable.file_language,
        "comment": receivable.comment,
    }
    return InvoiceResponse.model_validate(data)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="post_receivables",
    response_model=InvoiceResponse,
    response_model_exclude_none=True,
)
async def create_receivable(
    session: Session, caller: CallerDep, entity: EntityDep, payload: CreateInvoiceRequest
) -> InvoiceResponse:
    """Create a draft invoice. Only `type: invoice` is supported (quotes and credit notes are
    refused with a 422); products are given inline on each line, tax as `tax_rate_value` in
    basis points, payment terms inline."""
    receivable = await service.create_receivable(session, entity, caller, payload)
    return invoice_out(receivable, clock.today())


@router.get(
    "",
    response_model=ReceivablePaginationResponse,
    operation_id="get_receivables",
    response_model_exclude_none=True,
)
async def list_receivables(
    request: Request,
    session: Session,
    entity: EntityDep,
    params: Annotated[ReceivableListParams, Query()],
) -> ReceivablePaginationResponse:
    """List the entity's invoices with Monite's filters; `status=overdue` finds open invoices
    whose due date has passed."""
    paginator = Paginator(request.app.state.signer, "receivables")
    page = await service.list_receivables(session, entity, paginator, params)
    today = clock.today()
    return ReceivablePaginationResponse.of(page, [invoice_out(r, today) for r in page.data])


@router.get(
    "/{receivable_id}",
    operation_id="get_receivables_id",
    response_model=InvoiceResponse,
    response_model_exclude_none=True,
)
async def get_receivable(
    session: Session, entity: EntityDep, receivable_id: uuid.UUID
) -> InvoiceResponse:
    """Get an invoice by ID."""
    receivable = await service.get_receivable(session, entity, receivable_id)
    return invoice_out(receivable, clock.today())


@router.patch(
    "/{receivable_id}",
    operation_id="patch_receivables_id",
    response_model=InvoiceResponse,
    response_model_exclude_none=True,
)
async def update_receivable(
    session: Session, entity: EntityDep, receivable_id: uuid.UUID, payload: UpdateReceivableRequest
) -> InvoiceResponse:
    """Change a draft invoice (`{"invoice": {...}}`); anything else is a 409."""
    receivable = await service.update_receivable(session, entity, receivable_id, payload)
    return invoice_out(receivable, clock.today())


@router.delete(
    "/{receivable_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    operation_id="delete_receivables_id",
)
async def delete_receivable(
    session: Session, entity: EntityDep, receivable_id: uuid.UUID
) -> Response:
    """Delete a draft invoice; an issued one can only be canceled."""
    await service.delete_receivable(session, entity, receivable_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{receivable_id}/issue",
    operation_id="post_receivables_id_issue",
    response_model=InvoiceResponse,
    response_model_exclude_none=True,
)
async def issue_receivable(
    session: Session, entity: EntityDep, receivable_id: uuid.UUID
) -> InvoiceResponse:
    """Issue a draft: it gets the entity's next number (`INV-00001`, …), today's issue date and
    the due date of its payment terms."""
    receivable = await lifecycle.issue_receivable(session, entity, receivable_id)
    return invoice_out(receivable, clock.today())


@router.post(
    "/{receivable_id}/mark_as_partially_paid",
    operation_id="post_receivables_id_mark_as_partially_paid",
    response_model=InvoiceResponse,
    response_model_exclude_none=True,
)
async def mark_as_partially_paid(
    session: Session,
    entity: EntityDep,
    receivable_id: uuid.UUID,
    payload: ReceivablePartiallyPaidPayload,
    lender: LenderDep,
) -> InvoiceResponse:
    """Record how much has been paid so far (the sum of all payments, below the total)."""
    receivable = await lifecycle.mark_as_partially_paid(
        session, entity, receivable_id, payload, lender=lender
    )
    return invoice_out(receivable, clock.today())


@router.post(
    "/{receivable_id}/mark_as_paid",
    operation_id="post_receivables_id_mark_as_paid",
    response_model=InvoiceResponse,
    response_model_exclude_none=True,
)
async def mark_as_paid(
    session: Session,
    entity: EntityDep,
    receivable_id: uuid.UUID,
    lender: LenderDep,
    payload: Annotated[ReceivablePaidPayload | None, Body()] = None,
) -> InvoiceResponse:
    """Mark an issued, overdue or partially paid invoice as paid in full."""
    receivable = await lifecycle.mark_as_paid(
        session, entity, receivable_id, payload, lender=lender
    )
    return invoice_out(receivable, clock.today())


@router.post(
    "/{receivable_id}/mark_as_uncollectible",
    operation_id="post_receivables_id_mark_as_uncollectible",
    response_model=InvoiceResponse,
    response_model_exclude_none=True,
)
async def mark_as_uncollectible(
    session: Session,
    entity: EntityDep,
    receivable_id: uuid.UUID,
    lender: LenderDep,
    payload: Annotated[ReceivableUncollectiblePayload | None, Body()] = None,
) -> InvoiceResponse:
    """Write off an overdue invoice as not expected to be paid."""
    receivable = await lifecycle.mark_as_uncollectible(
        session, entity, receivable_id, payload, lender=lender
    )
    return invoice_out(receivable, clock.today())


@router.post(
    "/{receivable_id}/cancel",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    operation_id="post_receivables_id_cancel",
)
async def cancel_receivable(
    session: Session, entity: EntityDep, receivable_id: uuid.UUID, lender: LenderDep
) -> Response:
    """Cancel an issued invoice on which nothing has been paid."""
    await lifecycle.cancel_receivable(session, entity, receivable_id, lender=lender)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
