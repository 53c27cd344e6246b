"""`/connect/v1`: the Connect API the widget's pages call.

Not a Monite surface: no `x-monite-version`, no partner token. The bearer is a Connect
session, obtained by exchanging a one-time token at `POST /connect/v1/sessions`.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fundline.auth.deps import Session
from fundline.connect import service
from fundline.connect.schemas import (
    BankAccountOut,
    BusinessAddress,
    BusinessOwner,
    BusinessResponse,
    ConfirmInvoicesRequest,
    ConfirmInvoicesResponse,
    ConnectInvoice,
    ConnectInvoicesResponse,
    CreateSessionRequest,
    OffersResponse,
    Scope,
    SessionResponse,
    UpdateBusinessRequest,
)
from fundline.financing.listing import render
from fundline.financing.schemas import FinancingInvoiceType, FinancingOffer
from fundline.financing.service import offer_out, offers_with_plans
from fundline.kit import clock
from fundline.kit.errors import Unauthorized
from fundline.kit.routing import TransactionalRoute
from fundline.kit.tenancy import scope_to
from fundline.lending.provider import ConnectLender, LenderProvider
from fundline.models import ConnectSession, FinancingBusiness
from fundline.models.financing import missing_fields

CONNECT_PREFIX = "/connect/v1"

router = APIRouter(prefix=CONNECT_PREFIX, tags=["Connect"], route_class=TransactionalRoute)

connect_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ConnectSession",
    description="A Connect session's access token (POST /connect/v1/sessions).",
)


async def current_connect_session(
    session: Session,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(connect_bearer)],
) -> ConnectSession:
    """The Connect session named by `Authorization: Bearer`; 401 when missing or expired."""
    if credentials is None or not credentials.credentials.strip():
        raise Unauthorized("A Connect session bearer token is required")
    connect_session = await service.resolve_session(session, credentials.credentials.strip())
    scope_to(session, connect_session.entity_id)
    return connect_session


ConnectSessionDep = Annotated[ConnectSession, Depends(current_connect_session)]


async def current_widget(request: Request) -> ConnectLender:
    """The lender's side of this widget. Only a lender with one serves Connect at all
    (``create_app``), so this is always there."""
    lender: LenderProvider = request.app.state.lender
    assert lender.widget is not None, "Connect is mounted only for a lender with a widget"
    return lender.widget


WidgetDep = Annotated[ConnectLender, Depends(current_widget)]


@router.post("/sessions", response_model=SessionResponse, status_code=status.HTTP_201_CREATED)
async def create_session(
    request: Request, session: Session, widget: WidgetDep, payload: CreateSessionRequest
) -> SessionResponse:
    """Exchange a connect token (scope `onboarding`) or a session token (scope `invoices`)
    for a Connect session. Each token works once; a used or expired token is a 401. An
    onboarded business whose offer expired or was closed is underwritten again here. With
    `embed_origin`, an origin not registered for the token's partner is a 403."""
    access_token, connect_session = await service.open_session(
        session,
        payload.token,
        widget=widget,
        embed_origin=payload.embed_origin,
        sandbox=request.app.state.settings.is_sandbox,
    )
    return SessionResponse(
        access_token=access_token,
        expires_in=max(0, int((connect_session.expires_at - clock.now()).total_seconds())),
        entity_id=connect_session.entity_id,
        scope=Scope(connect_session.scope),
    )


async def _business_out(session: Session, business: FinancingBusiness) -> BusinessResponse:
    latest = await service.latest_offer(session, business.entity_id)
    account = business.bank_account_number
    return BusinessResponse(
        id=business.id,
        entity_id=business.entity_id,
        business_status=business.status,
        missing_fields=missing_fields(business),
        legal_name=business.legal_name,
        ein=business.ein,
        address=BusinessAddress.model_validate(business.address or {}),
        owner=BusinessOwner.model_validate(business.owner or {}),
        bank_account=BankAccountOut(
            routing_number=business.bank_routing_number,
            account_number_last4=account[-4:] if account else None,
        ),
        onboarded_at=business.onboarded_at,
        decision_note=business.decision_note,
        offer=offer_out(*latest) if latest else None,
    )


@router.get("/business", response_model=BusinessResponse)
async def get_business(session: Session, connect_session: ConnectSessionDep) -> BusinessResponse:
    """The business's onboarding data, what is still missing, and its newest offer."""
    return await _business_out(session, await service.business_of(session, connect_session))


@router.put("/business", response_model=BusinessResponse)
async def update_business(
    session: Session,
    connect_session: ConnectSessionDep,
    widget: WidgetDep,
    payload: UpdateBusinessRequest,
) -> BusinessResponse:
    """Give any subset of the onboarding data (EIN `NN-NNNNNNN`, an ABA routing number).
    `INPUT_REQUIRED` while anything is missing; complete → `ONBOARDED` and underwritten at
    once: the response carries the offer, or `decision_note` when none was extended."""
    business = await service.update_business(session, connect_session, payload, widget=widget)
    return await _business_out(session, business)


@router.get("/offers", response_model=OffersResponse)
async def list_offers(session: Session, connect_session: ConnectSessionDep) -> OffersResponse:
    """The business's offers, newest first, with their pricing plans."""
    offers = await offers_with_plans(session, connect_session.entity_id)
    return OffersResponse(offers=[offer_out(o, p) for o, p in offers])


@router.post("/offers/{offer_id}/accept", response_model=FinancingOffer)
async def accept_offer(
    session: Session, connect_session: ConnectSessionDep, widget: WidgetDep, offer_id: uuid.UUID
) -> FinancingOffer:
    """Accept a `NEW` offer: `ACCEPTED`, then `CURRENT` once the product is issued (at once
    under an automatic policy). Needs an `onboarding` session."""
    offer = await service.accept_offer(session, connect_session, offer_id, widget=widget)
    return offer_out(offer, await service.plans_of(session, offer.id))


@router.get("/invoices", response_model=ConnectInvoicesResponse)
async def list_invoices(
    session: Session, connect_session: ConnectSessionDep, widget: WidgetDep
) -> ConnectInvoicesResponse:
    """The request's invoices still to confirm (`DRAFT`), each with a quote per pricing plan.
    Quotes are based on `amount_due`, what the invoice still owes (less than `total_amount`
    once partly paid). Needs an `invoices` session."""
    request, drafts = await service.draft_invoices(session, connect_session, widget=widget)
    return ConnectInvoicesResponse(
        request_id=request.id,
        expires_at=request.expires_at,
        invoices=[
            ConnectInvoice(
                financing_invoice_id=fi.id,
                invoice_id=fi.invoice_id,
                type=FinancingInvoiceType(fi.type),
                document_id=fi.document_id,
                total_amount=fi.total_amount,
                amount_due=owed,
                currency=fi.currency,
                issue_date=fi.issue_date,
                due_date=fi.due_date,
                payer_type=fi.payer_type,
                payer_name=fi.payer_business_name
                or " ".join(p for p in (fi.payer_first_name, fi.payer_last_name) if p)
                or None,
                quotes=quotes,
            )
            for fi, owed, quotes in drafts
        ],
    )


@router.post(
    "/invoices/confirm",
    response_model=ConfirmInvoicesResponse,
    response_model_exclude_none=True,
)
async def confirm_invoices(
    session: Session,
    connect_session: ConnectSessionDep,
    widget: WidgetDep,
    payload: ConfirmInvoicesRequest,
) -> ConfirmInvoicesResponse:
    """Confirm invoices of the request with a plan and an amount (default: the plan's
    maximum). They become `NEW` with the limit reserved; an automatic policy funds them at
    once (`FUNDED`). All or nothing. Each invoice is rendered as `GET /v1/financing_invoices`
    renders it."""
    confirmed = await service.confirm_invoices(session, connect_session, payload, widget=widget)
    return ConfirmInvoicesResponse(invoices=await render(session, confirmed))
