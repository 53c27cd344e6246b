"""The Connect API's rules: exchanging one-time tokens for sessions, onboarding the business,
accepting offers, and confirming the invoices of one financing request.

A connect token opens an ``onboarding`` session (business, offers); a session token opens an
``invoices`` session limited to its own request. Tokens work once: the exchange marks the
token used with a conditional UPDATE, so two concurrent exchanges cannot both succeed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.connect import origins
from fundline.connect.schemas import (
    ConfirmInvoice,
    ConfirmInvoicesRequest,
    QuoteOut,
    Scope,
    UpdateBusinessRequest,
)
from fundline.financing.service import get_business, offers_with_plans
from fundline.kit import clock
from fundline.kit.errors import Conflict, Forbidden, NotFound, Unauthorized, Unprocessable
from fundline.kit.security import new_token, token_digest
from fundline.kit.statements import Prepared
from fundline.kit.tenancy import scope_to
from fundline.lending import locks
from fundline.lending.provider import ConnectLender
from fundline.models import (
    ConnectSession,
    ConnectToken,
    Entity,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
    PricingPlan,
)
from fundline.models.financing import REQUIRED_FIELDS as REQUIRED_FIELDS  # the form's fields
from fundline.models.financing import FinancingRequestStatus, WCInvoiceStatus

ONBOARDING_SESSION_TTL = timedelta(hours=1)
BAD_TOKEN = "The token is invalid, expired or already used"


# --- sessions ---------------------------------------------------------------------------------


def not_registered(origin: str) -> str:
    return (
        f"The page's origin {origin or '(none)'} is not registered to embed this partner's "
        "financing widget; the operator registers it with `fundline partner origins add`"
    )


async def partner_of_token(session: AsyncSession, token: str) -> uuid.UUID:
    """The partner whose entity a live (unused, unexpired) token belongs to; the token is
    only looked at. 401 for any other token."""
    partner_id = await session.scalar(
        select(Entity.partner_id)
        .join(ConnectToken, ConnectToken.entity_id == Entity.id)
        .where(
            ConnectToken.token_hash == token_digest(token),
            ConnectToken.used_at.is_(None),
            ConnectToken.expires_at > clock.now(),
        )
    )
    if partner_id is None:
        raise Unauthorized(BAD_TOKEN)
    return partner_id


async def open_session(
    session: AsyncSession,
    token: str,
    *,
    widget: ConnectLender,
    embed_origin: str | None = None,
    sandbox: bool = False,
) -> tuple[str, ConnectSession]:
    """Exchange a one-time token for a session; returns the access token and the session.

    With ``embed_origin`` (the widget opens the session for a page), that origin must be
    registered for the token's partner, or be local in sandbox mode; else 403.

    An onboarding session of an onboarded business whose offer expired or was closed has it
    underwritten again, so a returning business gets a new offer (or the reason it does not).
    """
    now = clock.now()
    row = await _claim_token(session, token, now=now)
    scope_to(session, row.entity_id)  # the token named its entity: the rest is in its scope
    if embed_origin is not None:
        await _require_origin(session, row, embed_origin, sandbox=sandbox)
    expires_at: datetime
    if row.kind == "session":
        scope, expires_at = Scope.INVOICES, await _open_request_expiry(session, row, now=now)
    else:
        scope, expires_at = Scope.ONBOARDING, now + ONBOARDING_SESSION_TTL
        await _start_onboarding(session, row, widget=widget)
    access_token = new_token("fcs_")
    connect_session = ConnectSession(
        token_hash=token_digest(access_token),
        entity_id=row.entity_id,
        scope=scope.value,
        request_id=row.request_id,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(connect_session)
    await session.flush()
    return access_token, connect_session


async def _claim_token(session: AsyncSession, token: str, *, now: datetime) -> ConnectToken:
    """Mark a live token used and return it; 401 for any other. The conditional UPDATE is
    what lets only one of two concurrent exchanges of a token succeed."""
    digest = token_digest(token)
    claimed = cast(
        CursorResult[Any],
        await session.execute(
            update(ConnectToken)
            .where(
                ConnectToken.token_hash == digest,
                ConnectToken.used_at.is_(None),
                ConnectToken.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        ),
    )
    if claimed.rowcount != 1:
        raise Unauthorized(BAD_TOKEN)
    row = await session.scalar(
        select(ConnectToken)
        .where(ConnectToken.token_hash == digest)
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


async def _require_origin(
    session: AsyncSession, row: ConnectToken, embed_origin: str, *, sandbox: bool
) -> None:
    """403 unless the page embedding the widget may embed the token's partner."""
    entity = await session.get(Entity, row.entity_id)
    if entity is None or not await origins.origin_allowed(
        session, entity.partner_id, embed_origin, sandbox=sandbox
    ):
        raise Forbidden(not_registered(embed_origin))


async def _open_request_expiry(
    session: AsyncSession, row: ConnectToken, *, now: datetime
) -> datetime:
    """When the session token's request expires, which ends its session too; 401 when the
    request is no longer open."""
    request = await session.get(FinancingRequest, row.request_id)
    if (
        request is None
        or request.status == FinancingRequestStatus.EXPIRED
        or request.expires_at <= now
    ):
        raise Unauthorized("The financing request of this token is no longer open")
    return request.expires_at


async def _start_onboarding(
    session: AsyncSession, row: ConnectToken, *, widget: ConnectLender
) -> None:
    """What opening the widget does to the token's business is the lender's to say."""
    business = await get_business(session, row.entity_id)
    if business is None:
        raise Unauthorized("The business of this token no longer exists")
    await widget.start_onboarding(session, business)


async def resolve_session(session: AsyncSession, access_token: str) -> ConnectSession:
    """The live session behind a bearer token; 401 when unknown or expired. The session is
    only read (a plain read, built once): the one returned is not in ``session``."""
    rows = await _SESSION.mappings(session, {"token_hash": token_digest(access_token)})
    found = ConnectSession(**rows[0]) if rows else None
    if found is None or found.expires_at <= clock.now():
        raise Unauthorized("The Connect session is invalid or has expired")
    return found


_SESSION = Prepared(
    select(ConnectSession).where(
        ConnectSession.token_hash == bindparam("token_hash", type_=ConnectSession.token_hash.type)
    )
)


def require_scope(connect_session: ConnectSession, scope: Scope) -> None:
    if connect_session.scope != scope.value:
        raise Forbidden(
            f"This needs a Connect session with scope {scope.value}; "
            f"this session's scope is {connect_session.scope}"
        )


# --- the business -----------------------------------------------------------------------------


async def business_of(
    session: AsyncSession, connect_session: ConnectSession, *, lock: bool = False
) -> FinancingBusiness:
    stmt = select(FinancingBusiness).where(FinancingBusiness.entity_id == connect_session.entity_id)
    business = await (locks.row(session, stmt) if lock else session.scalar(stmt))
    if business is None:
        raise NotFound("Financing business not found")
    return business


async def update_business(
    session: AsyncSession,
    connect_session: ConnectSession,
    payload: UpdateBusinessRequest,
    *,
    widget: ConnectLender,
) -> FinancingBusiness:
    """Merge the given fields; once nothing is missing the business is ONBOARDED and
    underwritten (an offer, or a decline with its reason in ``decision_note``)."""
    require_scope(connect_session, Scope.ONBOARDING)
    business = await business_of(session, connect_session, lock=True)
    changes = payload.model_dump(mode="json", exclude_none=True)
    return await widget.update_business(session, business, changes)


async def latest_offer(
    session: AsyncSession, entity_id: uuid.UUID
) -> tuple[FinancingOffer, list[PricingPlan]] | None:
    offers = await offers_with_plans(session, entity_id)
    return offers[0] if offers else None


# --- offers -----------------------------------------------------------------------------------


async def accept_offer(
    session: AsyncSession,
    connect_session: ConnectSession,
    offer_id: uuid.UUID,
    *,
    widget: ConnectLender,
) -> FinancingOffer:
    require_scope(connect_session, Scope.ONBOARDING)
    offer = await locks.row(
        session,
        select(FinancingOffer).where(
            FinancingOffer.id == offer_id,
            FinancingOffer.entity_id == connect_session.entity_id,
        ),
    )
    if offer is None:
        raise NotFound("Financing offer not found")
    return await widget.accept_offer(session, offer)


async def plans_of(session: AsyncSession, offer_id: uuid.UUID) -> list[PricingPlan]:
    """The offer's plans in their order, only read (a plain read): they are not in
    ``session``."""
    return [PricingPlan(**row) for row in await _PLANS.mappings(session, {"offer_id": offer_id})]


# The statements of the Connect pages and confirmation, built once (building one on every call
# costs more than SQLAlchemy's cached compilation saves).
_PLANS = Prepared(
    select(PricingPlan)
    .where(PricingPlan.offer_id == bindparam("offer_id", type_=PricingPlan.offer_id.type))
    .order_by(PricingPlan.position)
)


# --- invoices ---------------------------------------------------------------------------------


async def _request_of(
    session: AsyncSession, connect_session: ConnectSession, *, lock: bool = False
) -> FinancingRequest:
    require_scope(connect_session, Scope.INVOICES)
    values = {"request_id": connect_session.request_id, "entity_id": connect_session.entity_id}
    request = await (
        locks.row(session, _REQUEST, values) if lock else session.scalar(_REQUEST, values)
    )
    if request is None:
        raise NotFound("Financing request not found")
    return request


_REQUEST = select(FinancingRequest).where(
    FinancingRequest.id == bindparam("request_id", type_=FinancingRequest.id.type),
    FinancingRequest.entity_id == bindparam("entity_id", type_=FinancingRequest.entity_id.type),
)


def quotes_for(
    fi: FinancingInvoice, owed: int, plans: Sequence[PricingPlan], *, widget: ConnectLender
) -> list[QuoteOut]:
    """What each plan would give for this invoice at its maximum, funded today; the maximum is
    the plan's advance rate of ``owed``, what the invoice still owes. A plan that can finance
    nothing of it (a maximum below one minor unit) is left out."""
    today = clock.today()
    quotes = []
    for plan in plans:
        try:
            q = widget.quote(owed, plan)
        except ValueError:
            continue
        dates = widget.due_dates(plan, funded_on=today, invoice_due_date=fi.due_date)
        quotes.append(
            QuoteOut(
                pricing_plan_id=plan.id,
                max_requested_amount=q.max_requested_amount,
                requested_amount=q.requested_amount,
                fee_amount=q.fee_amount,
                advance_amount=q.principal_amount,
                repayment_amount=q.repayment_amount,
                repayment_date=dates[-1],
                instalments=len(dates),
            )
        )
    return quotes


async def draft_invoices(
    session: AsyncSession, connect_session: ConnectSession, *, widget: ConnectLender
) -> tuple[FinancingRequest, list[tuple[FinancingInvoice, int, list[QuoteOut]]]]:
    """The session's request and its DRAFT invoices, each with what it still owes and a quote
    per plan."""
    request = await _request_of(session, connect_session)
    drafts = list(
        await session.scalars(
            select(FinancingInvoice)
            .where(
                FinancingInvoice.request_id == request.id,
                FinancingInvoice.status == WCInvoiceStatus.DRAFT,
            )
            .order_by(FinancingInvoice.created_at, FinancingInvoice.id)
        )
    )
    plans: dict[uuid.UUID, list[PricingPlan]] = {}
    quoted = []
    for fi in drafts:
        if fi.offer_id not in plans:
            plans[fi.offer_id] = await plans_of(session, fi.offer_id)
        owed = await widget.amount_owed(session, fi)
        quoted.append((fi, owed, quotes_for(fi, owed, plans[fi.offer_id], widget=widget)))
    return request, quoted


async def confirm_invoices(
    session: AsyncSession,
    connect_session: ConnectSession,
    payload: ConfirmInvoicesRequest,
    *,
    widget: ConnectLender,
) -> list[FinancingInvoice]:
    """Confirm some or all of the request's DRAFT invoices with a plan and an amount.

    Every item is checked before any is confirmed; one failure confirms none (the request's
    transaction rolls back).
    """
    request = await _request_of(session, connect_session, lock=True)
    if request.status == FinancingRequestStatus.EXPIRED or request.expires_at <= clock.now():
        raise Conflict("The financing request has expired; request financing again")
    drafts = await _locked_invoices(session, request, [i.invoice_id for i in payload.invoices])
    plans: dict[uuid.UUID, list[PricingPlan]] = {}
    # What each document still owes, read once, where an amount is asked for.
    owed = await widget.amounts_owed(
        session,
        [
            drafts[i.invoice_id]
            for i in payload.invoices
            if i.requested_amount is not None and i.invoice_id in drafts
        ],
    )
    chosen: list[tuple[FinancingInvoice, PricingPlan, int | None]] = []
    seen: set[uuid.UUID] = set()
    for index, item in enumerate(payload.invoices):
        loc = ("body", "invoices", index)
        if item.invoice_id in seen:
            raise Unprocessable(
                f"Invoice {item.invoice_id} is listed more than once", loc=(*loc, "invoice_id")
            )
        seen.add(item.invoice_id)
        fi, plan = await _checked_choice(
            session, drafts.get(item.invoice_id), item, loc, plans=plans, owed=owed, widget=widget
        )
        chosen.append((fi, plan, item.requested_amount))

    # The lender marks the request confirmed; drafts left out are released when it expires.
    return await widget.confirm_invoices(session, chosen)


async def _locked_invoices(
    session: AsyncSession, request: FinancingRequest, ids: list[uuid.UUID]
) -> dict[uuid.UUID, FinancingInvoice]:
    """The request's financing invoices of these invoices, locked (after the request), by
    invoice id."""
    return {
        fi.invoice_id: fi
        for fi in await locks.rows(
            session, _REQUEST_INVOICES, {"request_id": request.id, "invoice_ids": ids}
        )
    }


_REQUEST_INVOICES = select(FinancingInvoice).where(
    FinancingInvoice.request_id == bindparam("request_id", type_=FinancingInvoice.request_id.type),
    FinancingInvoice.invoice_id.in_(bindparam("invoice_ids", expanding=True)),
)


async def _checked_choice(
    session: AsyncSession,
    fi: FinancingInvoice | None,
    item: ConfirmInvoice,
    loc: tuple[str | int, ...],
    *,
    plans: dict[uuid.UUID, list[PricingPlan]],
    owed: dict[uuid.UUID, int],
    widget: ConnectLender,
) -> tuple[FinancingInvoice, PricingPlan]:
    """The DRAFT and the plan ``item`` chooses for it, once the plan is one of its offer's and
    the amount within that plan's maximum; else the error to answer with. ``plans`` keeps
    each offer's plans once read; ``owed`` is what each draft asked an amount of still owes."""
    if fi is None:
        raise NotFound(f"Invoice {item.invoice_id} is not part of this financing request")
    if fi.status != WCInvoiceStatus.DRAFT:
        raise Conflict(f"Invoice {item.invoice_id} is already {fi.status}")
    if fi.offer_id not in plans:
        plans[fi.offer_id] = await plans_of(session, fi.offer_id)
    plan = next((p for p in plans[fi.offer_id] if p.id == item.pricing_plan_id), None)
    if plan is None:
        raise Unprocessable(
            f"Pricing plan {item.pricing_plan_id} is not a plan of this invoice's offer",
            loc=(*loc, "pricing_plan_id"),
        )
    if item.requested_amount is not None:
        ceiling = widget.quote(owed[fi.id], plan).max_requested_amount
        if item.requested_amount > ceiling:
            raise Unprocessable(
                f"requested_amount {item.requested_amount} is above this plan's maximum "
                f"{ceiling} for invoice {item.invoice_id}",
                loc=(*loc, "requested_amount"),
            )
    return fi, plan
