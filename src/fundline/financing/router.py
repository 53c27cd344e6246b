"""`/v1/financing_*`: Monite's four financing endpoints.

Responses leave absent optional fields out (``response_model_exclude_none``), as Monite does:
its schemas declare them non-nullable, including the list's pagination tokens.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse, Response

from fundline.auth.deps import (
    EntityDep,
    EntityIdDep,
    Session,
    caller_of,
)
from fundline.financing import listing, service
from fundline.financing.eligibility import IneligibleInvoices
from fundline.financing.schemas import (
    FinancingInvoiceListParams,
    FinancingInvoiceListResponse,
    FinancingOffersResponse,
    FinancingPushInvoicesRequest,
    FinancingPushInvoicesResponse,
    FinancingTokenResponse,
)
from fundline.kit import clock
from fundline.kit.pagination import Paginator
from fundline.kit.routing import ReadConnection, TransactionalRoute, read_connection
from fundline.lending.provider import LenderDep, LenderProvider

router = APIRouter(tags=["Financing"], route_class=TransactionalRoute)

# How old, in whole seconds, the state a remote lender's reads answer from is.
LENDER_AGE_HEADER = "x-fundline-lender-age"
# The script a partner's page loads to open the lender's widget (Fundline's or Kanmon's).
SCRIPT_HEADER = "x-fundline-connect-script-url"


def lender_age(synced_at: datetime) -> str:
    return str(max(0, int((clock.system_now() - synced_at).total_seconds())))


@router.post(
    "/financing_tokens",
    response_model=FinancingTokenResponse,
    status_code=status.HTTP_201_CREATED,
    operation_id="post_financing_tokens",
)
async def create_financing_token(
    request: Request, response: Response, session: Session, entity: EntityDep, lender: LenderDep
) -> FinancingTokenResponse:
    """Create a one-time connect token for the lender's widget (Fundline's Connect, where it is
    valid 24 h, or Kanmon's). The first call creates the entity's financing business
    (`business_status` `NEW`), at Kanmon with its user. `x-fundline-connect-script-url` names
    the script that opens the widget the token is for."""
    token = await service.create_financing_token(
        session, entity, lender=lender, user_id=caller_of(request).entity_user_id
    )
    response.headers[SCRIPT_HEADER] = lender.connect_script_url(str(request.base_url))
    return FinancingTokenResponse(connect_token=token)


@router.get(
    "/financing_offers",
    response_model=FinancingOffersResponse,
    response_model_exclude_none=True,
    operation_id="get_financing_offers",
)
async def get_financing_offers(
    request: Request, session: Session, entity_id: EntityIdDep, lender: LenderDep
) -> Response:
    """The business's onboarding status and its offers, newest first. From a remote lender
    that cannot be reached, the last state read from it, with its age in seconds in
    `x-fundline-lender-age`."""
    synced_at = await lender.refresh_offers(session, entity_id)
    if session.in_transaction():
        # The lender wrote its latest word in this request's transaction (SQLite): read it
        # there. Otherwise the record is committed, and a driver connection reads it cheaper.
        body = await service.financing_offers(session, entity_id)
    else:
        async with read_connection(request) as conn:
            body = await service.financing_offers(conn, entity_id)
    # Already JSON, as the list's; the response model documents the shape.
    response = Response(body, media_type="application/json")
    if synced_at is not None:
        response.headers[LENDER_AGE_HEADER] = lender_age(synced_at)
    return response


@router.post(
    "/financing_invoices",
    response_model=FinancingPushInvoicesResponse,
    status_code=status.HTTP_201_CREATED,
    operation_id="post_financing_invoices",
    responses={404: {"description": "An invoice is unknown"}, 409: {"description": "Ineligible"}},
)
async def request_financing(
    request: Request,
    session: Session,
    entity: EntityDep,
    lender: LenderDep,
    payload: FinancingPushInvoicesRequest,
) -> FinancingPushInvoicesResponse | JSONResponse:
    """Request financing for 1 to 10 invoices. All must be eligible, or nothing is created and the
    error names each failing invoice and its reason (404 unknown, 409 not eligible). Returns a
    connect token and a session token that opens the confirmation of these invoices."""
    try:
        connect_token, session_token = await service.request_financing(
            session, entity, payload, lender=lender, user_id=caller_of(request).entity_user_id
        )
    except IneligibleInvoices as exc:
        return JSONResponse(exc.body(), status_code=exc.status_code)
    return FinancingPushInvoicesResponse(connect_token=connect_token, session_token=session_token)


@router.get(
    "/financing_invoices",
    response_model=FinancingInvoiceListResponse,
    response_model_exclude_none=True,
    operation_id="get_financing_invoices",
)
async def list_financing_invoices(
    request: Request,
    conn: ReadConnection,
    entity_id: EntityIdDep,
    params: Annotated[FinancingInvoiceListParams, Query()],
) -> Response:
    """The entity's invoices requested for financing, with Monite's filters. Date-time bounds
    on `issue_date` and `due_date` treat a date as its midnight UTC."""
    paginator = Paginator(request.app.state.signer, "financing_invoices")
    lender: LenderProvider = request.app.state.lender
    synced_at = await lender.refresh_invoices(entity_id)
    body = await listing.list_page(conn, entity_id, paginator, params)
    # Already JSON (the hot path renders rows straight to bytes); the response model documents
    # the shape, and the tests check every response against Monite's schema.
    response = Response(body, media_type="application/json")
    if synced_at is not None:
        response.headers[LENDER_AGE_HEADER] = lender_age(synced_at)
    return response
