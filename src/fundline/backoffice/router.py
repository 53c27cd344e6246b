"""The lender API, ``/lender/v1``: every route needs an operator key (``Authorization: Bearer``).

The operator sees every entity's financing; these routes are not Monite's and carry no
``x-monite-*`` headers.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status

from fundline.auth.deps import Session
from fundline.backoffice import audit, service
from fundline.backoffice.deps import Operator, current_operator
from fundline.backoffice.schemas import (
    AuditListParams,
    AuditListResponse,
    FinancingInvoiceDetail,
    FinancingInvoiceListParams,
    FinancingOfferListParams,
    FinancingOfferListResponse,
    FinancingOfferView,
    LedgerListParams,
    LedgerListResponse,
    LenderFinancingInvoiceList,
    PartnerOriginCreate,
    PartnerOriginListResponse,
    PartnerOriginView,
    ReconciliationResponse,
    RejectRequest,
    RepaymentRequest,
)
from fundline.connect import origins
from fundline.kit.pagination import Paginator
from fundline.kit.routing import TransactionalRoute
from fundline.lending.deps import PolicyDep
from fundline.lending.policy import Policy

LENDER_PREFIX = "/lender/v1"

router = APIRouter(
    prefix=LENDER_PREFIX,
    tags=["Lender"],
    route_class=TransactionalRoute,
    dependencies=[Depends(current_operator)],  # authenticated by default: every route
)


@router.get("/financing_invoices", response_model=LenderFinancingInvoiceList)
async def list_financing_invoices(
    request: Request,
    session: Session,
    params: Annotated[FinancingInvoiceListParams, Query()],
) -> LenderFinancingInvoiceList:
    """List financing invoices of every entity, newest last by default; filter and page."""
    paginator = Paginator(request.app.state.signer, "lender_financing_invoices")
    return await service.list_financing_invoices(session, paginator, params)


@router.get("/financing_invoices/{financing_invoice_id}", response_model=FinancingInvoiceDetail)
async def get_financing_invoice(
    session: Session, financing_invoice_id: uuid.UUID
) -> FinancingInvoiceDetail:
    """A financing invoice with its instalments and status history."""
    return await service.describe_detail(
        session, await service.get_financing_invoice(session, financing_invoice_id)
    )


@router.post(
    "/financing_invoices/{financing_invoice_id}/approve", response_model=FinancingInvoiceDetail
)
async def approve_financing_invoice(
    session: Session, operator: Operator, policy: PolicyDep, financing_invoice_id: uuid.UUID
) -> FinancingInvoiceDetail:
    """Approve a NEW invoice. With `auto_fund` in the policy it is funded at once (FUNDED);
    otherwise it stays NEW with `approved: true` until it is funded."""
    fi = await service.approve(session, financing_invoice_id, policy=policy, operator=operator.name)
    return await service.describe_detail(session, fi)


@router.post(
    "/financing_invoices/{financing_invoice_id}/reject", response_model=FinancingInvoiceDetail
)
async def reject_financing_invoice(
    session: Session,
    operator: Operator,
    financing_invoice_id: uuid.UUID,
    payload: Annotated[RejectRequest | None, Body()] = None,
) -> FinancingInvoiceDetail:
    """Reject a NEW invoice (→ REJECTED); its reservation on the offer is released. The
    optional `reason` goes into its status history and the audit log."""
    fi = await service.reject(
        session,
        financing_invoice_id,
        operator=operator.name,
        reason=payload.reason if payload else None,
    )
    return await service.describe_detail(session, fi)


@router.post(
    "/financing_invoices/{financing_invoice_id}/fund", response_model=FinancingInvoiceDetail
)
async def fund_financing_invoice(
    session: Session, operator: Operator, financing_invoice_id: uuid.UUID
) -> FinancingInvoiceDetail:
    """Disburse a NEW invoice (→ FUNDED): fixes the schedule and posts the ledger entries."""
    fi = await service.fund(session, financing_invoice_id, operator=operator.name)
    return await service.describe_detail(session, fi)


@router.post(
    "/financing_invoices/{financing_invoice_id}/repayments",
    response_model=FinancingInvoiceDetail,
)
async def record_repayment(
    session: Session,
    operator: Operator,
    financing_invoice_id: uuid.UUID,
    payload: RepaymentRequest,
) -> FinancingInvoiceDetail:
    """Record a repayment of a FUNDED or LATE invoice; repaid in full it becomes PAID."""
    fi = await service.record_repayment(
        session, financing_invoice_id, payload.amount, operator=operator.name
    )
    return await service.describe_detail(session, fi)


@router.post(
    "/financing_invoices/{financing_invoice_id}/write_off", response_model=FinancingInvoiceDetail
)
async def write_off_financing_invoice(
    session: Session, operator: Operator, financing_invoice_id: uuid.UUID
) -> FinancingInvoiceDetail:
    """Write off what a LATE or DEFAULTED invoice still owes, as a credit loss."""
    fi = await service.write_off(session, financing_invoice_id, operator=operator.name)
    return await service.describe_detail(session, fi)


@router.get("/financing_offers", response_model=FinancingOfferListResponse)
async def list_financing_offers(
    request: Request,
    session: Session,
    params: Annotated[FinancingOfferListParams, Query()],
) -> FinancingOfferListResponse:
    """List the credit offers of every entity, oldest first by default; filter and page."""
    paginator = Paginator(request.app.state.signer, "lender_financing_offers")
    return await service.list_offers(session, paginator, params)


@router.post("/financing_offers/{offer_id}/issue", response_model=FinancingOfferView)
async def issue_financing_offer(
    session: Session, operator: Operator, offer_id: uuid.UUID
) -> FinancingOfferView:
    """Issue an ACCEPTED offer (→ CURRENT): its business can then request financing. The
    operator's step under manual review; an automatic policy issues on acceptance."""
    offer = await service.issue_offer(session, offer_id, operator=operator.name)
    return FinancingOfferView.model_validate(offer)


@router.post("/financing_offers/{offer_id}/close", response_model=FinancingOfferView)
async def close_financing_offer(
    session: Session, operator: Operator, offer_id: uuid.UUID
) -> FinancingOfferView:
    """Withdraw a NEW, ACCEPTED, CURRENT or LATE offer (→ CLOSED); 409 while any of its
    invoices is NEW, FUNDED or LATE. Its unconfirmed (DRAFT) invoices are released, and the
    business gets a new offer the next time underwriting runs."""
    offer = await service.close_offer(session, offer_id, operator=operator.name)
    return FinancingOfferView.model_validate(offer)


@router.get("/audit", response_model=AuditListResponse)
async def list_audit(
    request: Request, session: Session, params: Annotated[AuditListParams, Query()]
) -> AuditListResponse:
    """Every operator action (console, lender API, CLI), newest first by default: who did
    what to which object, its audited fields before and after, and when."""
    paginator = Paginator(request.app.state.signer, "lender_audit")
    return await audit.list_entries(session, paginator, params)


@router.get("/ledger", response_model=LedgerListResponse)
async def list_ledger(
    request: Request, session: Session, params: Annotated[LedgerListParams, Query()]
) -> LedgerListResponse:
    """Journal entries with their postings; filter by financing invoice or entity, and page."""
    paginator = Paginator(request.app.state.signer, "lender_ledger")
    return await service.list_ledger(session, paginator, params)


@router.get("/reconciliation", response_model=ReconciliationResponse)
async def reconciliation(session: Session) -> ReconciliationResponse:
    """Compare the ledger with the financing invoices; totals per account and currency."""
    return await service.reconciliation(session)


@router.get("/policy", response_model=Policy)
async def get_policy(policy: PolicyDep) -> Policy:
    """The credit policy this server loaded at start."""
    return policy


@router.get("/partners/{partner_id}/origins", response_model=PartnerOriginListResponse)
async def list_partner_origins(
    session: Session, partner_id: uuid.UUID
) -> PartnerOriginListResponse:
    """The web origins the partner may embed the Connect widget from, ordered by origin."""
    rows = await origins.list_origins(session, partner_id)
    return PartnerOriginListResponse(data=[PartnerOriginView.model_validate(r) for r in rows])


@router.post(
    "/partners/{partner_id}/origins",
    response_model=PartnerOriginView,
    status_code=status.HTTP_201_CREATED,
    responses={
        status.HTTP_200_OK: {"model": PartnerOriginView, "description": "Already registered"}
    },
)
async def add_partner_origin(
    session: Session, response: Response, partner_id: uuid.UUID, payload: PartnerOriginCreate
) -> PartnerOriginView:
    """Register a web origin the partner may embed the Connect widget from, normalized (lower
    case, no trailing slash, no default port). 201 with the new origin; 200 with the existing
    one when it was registered already; 422 when `origin` is not `http(s)://host[:port]`."""
    row, created = await origins.ensure_origin(session, partner_id, payload.origin)
    if not created:
        response.status_code = status.HTTP_200_OK
    return PartnerOriginView.model_validate(row)


@router.delete(
    "/partners/{partner_id}/origins/{origin_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def remove_partner_origin(
    session: Session, partner_id: uuid.UUID, origin_id: uuid.UUID
) -> Response:
    """Unregister one of the partner's origins; pages there can no longer embed the widget."""
    await origins.remove_origin_by_id(session, partner_id, origin_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
