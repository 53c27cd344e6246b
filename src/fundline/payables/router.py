from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response, status

from fundline.auth.deps import CallerDep, EntityDep, Session
from fundline.kit import clock
from fundline.kit.pagination import Paginator
from fundline.kit.routing import TransactionalRoute
from fundline.lending.provider import LenderDep
from fundline.models import Payable
from fundline.payables import service
from fundline.payables.schemas import (
    CommentPayload,
    CounterpartRawData,
    CreatePayableRequest,
    PartiallyPaidPayload,
    PayableListParams,
    PayablePaginationResponse,
    PayableResponse,
    PaymentTerms,
    SuggestedPaymentTerm,
    UpdatePayableRequest,
)
from fundline.payables.service import Action

# Monite's payable schemas declare no nullable fields, so every route leaves out a field
# without a value (response_model_exclude_none).
router = APIRouter(prefix="/payables", tags=["Payables"], route_class=TransactionalRoute)


def payable_out(payable: Payable) -> PayableResponse:
    terms, suggested = payable.payment_terms, payable.suggested_payment_term
    return PayableResponse(
        id=payable.id,
        created_at=payable.created_at,
        updated_at=payable.updated_at,
        entity_id=payable.entity_id,
        status=payable.status,
        amount_due=payable.amount_due,
        amount_paid=payable.amount_paid,
        amount_to_pay=service.amount_to_pay(payable, clock.today()),
        counterpart=(
            CounterpartRawData.model_validate(payable.counterpart_snapshot)
            if payable.counterpart_snapshot
            else None
        ),
        counterpart_id=payable.counterpart_id,
        counterpart_address_id=payable.counterpart_address_id,
        currency=payable.currency,
        description=payable.description,
        discount=payable.discount,
        document_id=payable.document_id,
        due_date=payable.due_date,
        issued_at=payable.issued_at,
        marked_as_paid_by_entity_user_id=payable.marked_as_paid_by_entity_user_id,
        marked_as_paid_with_comment=payable.marked_as_paid_with_comment,
        paid_at=payable.paid_at,
        partner_metadata=payable.partner_metadata,
        payment_terms=PaymentTerms.model_validate(terms) if terms else None,
        sender=payable.sender,
        subtotal=payable.subtotal,
        suggested_payment_term=SuggestedPaymentTerm.model_validate(suggested)
        if suggested
        else None,
        tax=payable.tax,
        tax_amount=payable.tax_amount,
        total_amount=payable.total_amount,
        total_amount_with_credit_notes=payable.total_amount,
        was_created_by_user_id=payable.was_created_by_user_id,
    )


@router.post(
    "",
    operation_id="post_payables",
    response_model=PayableResponse,
    response_model_exclude_none=True,
)
async def create_payable(
    session: Session, entity: EntityDep, caller: CallerDep, payload: CreatePayableRequest
) -> PayableResponse:
    """Create a payable from data (amounts in minor units, currency, vendor, dates).

    It is `new` when it has every essential field (total amount, currency, document_id,
    issued_at, due_date), else `draft` until a PATCH fills them in. `counterpart_id` must be
    one of the entity's counterparts (404 otherwise).
    """
    return payable_out(await service.create_payable(session, entity, caller, payload))


@router.get(
    "",
    response_model=PayablePaginationResponse,
    response_model_exclude_none=True,
    operation_id="get_payables",
)
async def list_payables(
    request: Request,
    session: Session,
    entity: EntityDep,
    params: Annotated[PayableListParams, Query()],
) -> PayablePaginationResponse:
    """List the entity's payables, with Monite's filters, sort and cursor pagination."""
    paginator = Paginator(request.app.state.signer, "payables")
    page = await service.list_payables(session, entity, paginator, params)
    return PayablePaginationResponse.of(page, [payable_out(p) for p in page.data])


@router.get(
    "/{payable_id}",
    operation_id="get_payables_id",
    response_model=PayableResponse,
    response_model_exclude_none=True,
)
async def get_payable(
    session: Session, entity: EntityDep, payable_id: uuid.UUID
) -> PayableResponse:
    """Get a payable by ID."""
    return payable_out(await service.get_payable(session, entity, payable_id))


@router.patch(
    "/{payable_id}",
    operation_id="patch_payables_id",
    response_model=PayableResponse,
    response_model_exclude_none=True,
)
async def update_payable(
    session: Session, entity: EntityDep, payable_id: uuid.UUID, payload: UpdatePayableRequest
) -> PayableResponse:
    """Change a `draft` or `new` payable (409 in any other status)."""
    return payable_out(await service.update_payable(session, entity, payable_id, payload))


@router.delete(
    "/{payable_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    operation_id="delete_payables_id",
)
async def delete_payable(session: Session, entity: EntityDep, payable_id: uuid.UUID) -> Response:
    """Delete a `draft` or `new` payable (409 in any other status)."""
    await service.delete_payable(session, entity, payable_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# The transitions that take nothing but the payable: one endpoint each, made alike.
_PLAIN_TRANSITIONS = {
    Action.SUBMIT_FOR_APPROVAL: "Start the approval of a `new` payable: it becomes "
    "`approve_in_progress`.",
    Action.APPROVE_PAYMENT_OPERATION: "Confirm a `new` or `approve_in_progress` payable for "
    "payment: `waiting_to_be_paid`.",
    Action.REJECT: "Decline a payable under approval (`approve_in_progress`): it becomes "
    "`rejected`.",
    Action.CANCEL: "Cancel a `draft` or `new` payable: it becomes `canceled`.",
}


def _plain_transition(action: Action) -> Callable[..., Awaitable[PayableResponse]]:
    async def endpoint(
        session: Session,
        entity: EntityDep,
        caller: CallerDep,
        lender: LenderDep,
        payable_id: uuid.UUID,
    ) -> PayableResponse:
        return payable_out(
            await service.transition(session, entity, caller, payable_id, action, lender=lender)
        )

    endpoint.__name__ = action.value
    endpoint.__doc__ = _PLAIN_TRANSITIONS[action]
    return endpoint


for _action in _PLAIN_TRANSITIONS:
    router.post(
        f"/{{payable_id}}/{_action.value}",
        operation_id=f"post_payables_id_{_action.value}",
        response_model=PayableResponse,
        response_model_exclude_none=True,
    )(_plain_transition(_action))


@router.post(
    "/{payable_id}/mark_as_partially_paid",
    operation_id="post_payables_id_mark_as_partially_paid",
    response_model=PayableResponse,
    response_model_exclude_none=True,
)
async def mark_as_partially_paid(
    session: Session,
    entity: EntityDep,
    caller: CallerDep,
    lender: LenderDep,
    payable_id: uuid.UUID,
    payload: PartiallyPaidPayload,
) -> PayableResponse:
    """Record the sum of payments so far on a `waiting_to_be_paid` or `partially_paid`
    payable; it must be more than 0, less than the total, and not below the last sum."""
    payable = await service.transition(
        session,
        entity,
        caller,
        payable_id,
        Action.MARK_AS_PARTIALLY_PAID,
        lender=lender,
        amount_paid=payload.amount_paid,
    )
    return payable_out(payable)


@router.post(
    "/{payable_id}/mark_as_paid",
    operation_id="post_payables_id_mark_as_paid",
    response_model=PayableResponse,
    response_model_exclude_none=True,
)
async def mark_as_paid(
    session: Session,
    entity: EntityDep,
    caller: CallerDep,
    lender: LenderDep,
    payable_id: uuid.UUID,
    payload: Annotated[CommentPayload | None, Body()] = None,
) -> PayableResponse:
    """Mark a `waiting_to_be_paid` or `partially_paid` payable as paid in full, with an
    optional comment on how and when it was paid."""
    payable = await service.transition(
        session,
        entity,
        caller,
        payable_id,
        Action.MARK_AS_PAID,
        lender=lender,
        comment=payload.comment if payload else None,
    )
    return payable_out(payable)
