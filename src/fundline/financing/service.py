"""The four financing operations: tokens, offers, requesting financing, listing.

A request is all or nothing: every invoice is judged first (``eligibility``), and only when
all pass are the request, its DRAFT financing invoices and the tokens created. The unique
``live_invoice_id`` makes two concurrent requests for one invoice create one live financing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import orjson
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.financing import record, schemas
from fundline.financing.eligibility import (
    Failure,
    IneligibleInvoices,
    InvoiceFacts,
    entity_reasons,
    invoice_reasons,
)
from fundline.kit import clock
from fundline.kit.errors import Conflict, Unprocessable
from fundline.kit.statements import Connection, Prepared
from fundline.lending import locks
from fundline.lending.provider import LenderProvider
from fundline.models import (
    Counterpart,
    Entity,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
    Payable,
    PricingPlan,
    Receivable,
)
from fundline.models.financing import WCBusinessStatus, WCInvoiceStatus, WCOfferStatus
from fundline.receivables.service import effective_status

# --- tokens -----------------------------------------------------------------------------------


async def get_business(session: AsyncSession, entity_id: uuid.UUID) -> FinancingBusiness | None:
    return await session.scalar(
        select(FinancingBusiness).where(FinancingBusiness.entity_id == entity_id)
    )


async def create_financing_token(
    session: AsyncSession, entity: Entity, *, lender: LenderProvider, user_id: uuid.UUID | None
) -> str:
    """A new connect token; the lender creates the entity's business on the first call."""
    return await lender.connect_token(session, entity, user_id=user_id)


# --- offers -----------------------------------------------------------------------------------


async def _offers(session: AsyncSession, entity_id: uuid.UUID) -> Sequence[FinancingOffer]:
    """The entity's offers, newest first."""
    return (
        await session.scalars(
            select(FinancingOffer)
            .where(FinancingOffer.entity_id == entity_id)
            .order_by(FinancingOffer.created_at.desc(), FinancingOffer.id.desc())
        )
    ).all()


async def offers_with_plans(
    session: AsyncSession, entity_id: uuid.UUID
) -> list[tuple[FinancingOffer, list[PricingPlan]]]:
    """The entity's offers, newest first, each with its plans in order."""
    offers = await _offers(session, entity_id)
    if not offers:
        return []
    plans = (
        await session.scalars(
            select(PricingPlan)
            .where(PricingPlan.offer_id.in_([o.id for o in offers]))
            .order_by(PricingPlan.offer_id, PricingPlan.position)
        )
    ).all()
    by_offer: dict[uuid.UUID, list[PricingPlan]] = {o.id: [] for o in offers}
    for plan in plans:
        by_offer[plan.offer_id].append(plan)
    return [(o, by_offer[o.id]) for o in offers]


def plan_out(plan: PricingPlan) -> schemas.PricingPlan:
    return schemas.PricingPlan(
        id=plan.id,
        advance_rate_percentage=plan.advance_rate_percentage,
        fee_percentage=plan.fee_percentage,
        repayment_type=schemas.WCRepaymentType(plan.repayment_type),
        repayment_duration_days=plan.repayment_duration_days,
        instalments=plan.instalments,
        grace_days=plan.grace_days,
    )


def offer_out(offer: FinancingOffer, plans: Sequence[PricingPlan]) -> schemas.FinancingOffer:
    return schemas.FinancingOffer(
        id=offer.id,
        status=offer.status,
        total_amount=offer.total_amount,
        available_amount=offer.available_amount,
        currency=offer.currency,
        pricing_plans=[plan_out(p) for p in plans],
        expires_at=offer.expires_at,
    )


_OFFERS = Prepared(
    select(
        FinancingBusiness.status,
        FinancingOffer.id,
        FinancingOffer.status,
        FinancingOffer.total_amount,
        FinancingOffer.reserved_amount,
        FinancingOffer.outstanding_amount,
        FinancingOffer.currency,
        FinancingOffer.expires_at,
        PricingPlan.id,
        PricingPlan.advance_rate_percentage,
        PricingPlan.fee_percentage,
        PricingPlan.repayment_type,
        PricingPlan.repayment_duration_days,
        PricingPlan.instalments,
        PricingPlan.grace_days,
    )
    .outerjoin(FinancingOffer, FinancingOffer.entity_id == FinancingBusiness.entity_id)
    .outerjoin(PricingPlan, PricingPlan.offer_id == FinancingOffer.id)
    .where(
        FinancingBusiness.entity_id
        == bindparam("entity_id", type_=FinancingBusiness.entity_id.type)
    )
    .order_by(FinancingOffer.created_at.desc(), FinancingOffer.id.desc(), PricingPlan.position),
    for_json=True,
)


async def financing_offers(conn: Connection, entity_id: uuid.UUID) -> bytes:
    """``FinancingOffersResponse`` as JSON: the business's status and its offers, newest first,
    each with its plans in order. One statement (the business, its offers, their plans) and
    the rows straight to JSON, as the list does; absent optional fields are left out."""
    rows = await _OFFERS.rows(conn, {"entity_id": entity_id})
    if not rows:  # no business yet: Monite's NEW, with no offers
        return orjson.dumps({"business_status": WCBusinessStatus.NEW.value, "offers": []})
    offers: list[dict[str, Any]] = []
    for row in rows:
        offer_id = row[1]
        if offer_id is None:  # a business without offers
            break
        if not offers or offers[-1]["id"] != offer_id:
            total, reserved, outstanding = row[3], row[4], row[5]
            offers.append(
                {
                    "id": offer_id,
                    "status": row[2],
                    "total_amount": total,
                    "available_amount": max(0, total - reserved - outstanding),
                    "currency": row[6],
                    "pricing_plans": [],
                    "expires_at": row[7],
                }
            )
        if row[8] is not None:
            plan = dict(zip(_PLAN_FIELDS, row[8:], strict=True))
            if plan["repayment_duration_days"] is None:
                del plan["repayment_duration_days"]
            offers[-1]["pricing_plans"].append(plan)
    body = {"business_status": rows[0][0], "offers": offers}
    # asyncpg hands back its own UUID type, which orjson does not know: ``str`` renders it.
    return orjson.dumps(body, default=str, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)


_PLAN_FIELDS = (
    "id",
    "advance_rate_percentage",
    "fee_percentage",
    "repayment_type",
    "repayment_duration_days",
    "instalments",
    "grace_days",
)


async def current_offer(session: AsyncSession, entity_id: uuid.UUID) -> FinancingOffer | None:
    """The entity's newest CURRENT offer, else its newest offer of any status."""
    offers = await _offers(session, entity_id)
    return next(
        (o for o in offers if o.status == WCOfferStatus.CURRENT), offers[0] if offers else None
    )


# --- requesting financing ---------------------------------------------------------------------


def _payer(counterpart: Counterpart | None, fallback_name: str | None) -> dict[str, Any]:
    if counterpart is not None and counterpart.type == "individual":
        return {
            "payer_type": "INDIVIDUAL",
            "payer_business_name": None,
            "payer_first_name": counterpart.first_name,
            "payer_last_name": counterpart.last_name,
        }
    name = counterpart.name if counterpart is not None else fallback_name
    return {
        "payer_type": "BUSINESS",
        "payer_business_name": name or None,
        "payer_first_name": None,
        "payer_last_name": None,
    }


async def _counterparts(
    session: AsyncSession, ids: set[uuid.UUID | None]
) -> dict[uuid.UUID, Counterpart]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.scalars(select(Counterpart).where(Counterpart.id.in_(wanted)))
    return {c.id: c for c in rows}


async def _receivable_facts(
    session: AsyncSession, entity: Entity, ids: list[uuid.UUID]
) -> dict[uuid.UUID, InvoiceFacts]:
    if not ids:
        return {}
    rows = (
        await session.scalars(
            select(Receivable).where(
                Receivable.entity_id == entity.id,
                Receivable.id.in_(ids),
                Receivable.type == "invoice",
            )
        )
    ).all()
    people = await _counterparts(session, {r.counterpart_id for r in rows})
    today = clock.today()
    return {
        r.id: InvoiceFacts(
            id=r.id,
            type="receivable",
            status=effective_status(r, today),
            document_id=r.document_id,
            issue_date=r.issue_date.astimezone(UTC).date() if r.issue_date else None,
            due_date=r.due_date,
            total_amount=r.total_amount,
            currency=r.currency,
            description=r.details.get("memo") or None,
            **_payer(people.get(r.counterpart_id), r.counterpart_name),
        )
        for r in rows
    }


async def _payable_facts(
    session: AsyncSession, entity: Entity, ids: list[uuid.UUID]
) -> dict[uuid.UUID, InvoiceFacts]:
    if not ids:
        return {}
    rows = (
        await session.scalars(
            select(Payable).where(Payable.entity_id == entity.id, Payable.id.in_(ids))
        )
    ).all()
    vendors = await _counterparts(session, {p.counterpart_id for p in rows})
    return {
        p.id: InvoiceFacts(
            id=p.id,
            type="payable",
            status=p.status,
            document_id=p.document_id,
            issue_date=p.issued_at,
            due_date=p.due_date,
            total_amount=p.total_amount,
            currency=p.currency,
            description=p.description,
            **_payer(
                vendors.get(p.counterpart_id) if p.counterpart_id else None,
                (p.counterpart_snapshot or {}).get("name"),
            ),
        )
        for p in rows
    }


async def _release_lapsed_drafts(
    session: AsyncSession, entity: Entity, ids: list[uuid.UUID], *, lender: LenderProvider
) -> None:
    """DRAFTs whose request has expired free their invoices now, not at the next worker beat.
    (Should this request fail, the release is rolled back with it.)"""
    lapsed = await locks.rows(
        session,
        select(FinancingInvoice)
        .join(FinancingRequest, FinancingRequest.id == FinancingInvoice.request_id)
        .where(
            FinancingInvoice.entity_id == entity.id,
            FinancingInvoice.live_invoice_id.in_(ids),
            FinancingInvoice.status == WCInvoiceStatus.DRAFT,
            FinancingRequest.expires_at <= clock.now(),
        ),
    )
    for fi in lapsed:
        await lender.release_draft(session, fi, cause="its request expired")


async def _live_statuses(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, WCInvoiceStatus]:
    rows = await session.execute(
        select(FinancingInvoice.live_invoice_id, FinancingInvoice.status).where(
            FinancingInvoice.live_invoice_id.in_(ids)
        )
    )
    return {invoice_id: status for invoice_id, status in rows if invoice_id is not None}


async def request_financing(
    session: AsyncSession,
    entity: Entity,
    payload: schemas.FinancingPushInvoicesRequest,
    *,
    lender: LenderProvider,
    user_id: uuid.UUID | None,
) -> tuple[str, str]:
    """Judge every invoice; if all pass, create the request and its DRAFT financing invoices,
    and have the lender open its confirmation.

    Returns ``(connect_token, session_token)``. Raises ``IneligibleInvoices`` naming every
    failure, with nothing created.
    """
    await lender.refresh_offers(session, entity.id)  # judged on the lender's latest word
    chosen, offer = await _judge(session, entity, payload, lender=lender)
    request = await _create_request(session, entity, offer, chosen, lender=lender)
    session_token = await lender.session_token(session, entity, request, chosen, user_id=user_id)
    connect_token = await lender.connect_token(session, entity, user_id=user_id)
    return connect_token, session_token


def _reject_repeats(payload: schemas.FinancingPushInvoicesRequest) -> None:
    """An invoice listed twice is a malformed request (422), not an ineligible invoice."""
    seen: set[uuid.UUID] = set()
    for index, item in enumerate(payload.invoices):
        if item.id in seen:
            raise Unprocessable(
                f"Invoice {item.id} is listed more than once", loc=("body", "invoices", index, "id")
            )
        seen.add(item.id)


async def _judge(
    session: AsyncSession,
    entity: Entity,
    payload: schemas.FinancingPushInvoicesRequest,
    *,
    lender: LenderProvider,
) -> tuple[list[InvoiceFacts], FinancingOffer]:
    """The facts of every requested invoice and the offer to finance them under, when all
    of them and the entity pass; else ``IneligibleInvoices`` with every failure at once."""
    _reject_repeats(payload)
    ids = [i.id for i in payload.invoices]
    found = {
        "receivable": await _receivable_facts(
            session, entity, [i.id for i in payload.invoices if i.type == "receivable"]
        ),
        "payable": await _payable_facts(
            session, entity, [i.id for i in payload.invoices if i.type == "payable"]
        ),
    }
    await _release_lapsed_drafts(session, entity, ids, lender=lender)
    live = await _live_statuses(session, ids)
    business = await get_business(session, entity.id)
    offer = await current_offer(session, entity.id)
    today = clock.today()

    failures: list[Failure] = []
    chosen: list[InvoiceFacts] = []
    for item in payload.invoices:
        facts = found[item.type.value].get(item.id)
        if facts is None:
            failures.append(Failure(item.id, item.type.value, f"no {item.type.value} found", 404))
            continue
        reasons = invoice_reasons(
            facts,
            today=today,
            min_days_to_due=lender.min_days_to_due,
            offer_currency=offer.currency if offer is not None else None,
            live_status=live.get(item.id),
        )
        failures += [Failure(item.id, item.type.value, r, 409) for r in reasons]
        chosen.append(facts)
    reasons = entity_reasons(
        country=entity.country,
        business_status=business.status if business is not None else None,
        offer_status=offer.status if offer is not None else None,
    )
    if reasons or failures:
        raise IneligibleInvoices(reasons, failures)
    assert offer is not None
    return chosen, offer


def _draft(request: FinancingRequest, offer: FinancingOffer, f: InvoiceFacts) -> FinancingInvoice:
    """A DRAFT financing invoice of ``request``: a copy of the invoice as it was judged."""
    return FinancingInvoice(
        partner_id=request.partner_id,
        entity_id=request.entity_id,
        request_id=request.id,
        offer_id=offer.id,
        invoice_id=f.id,
        live_invoice_id=f.id,
        type=f.type,
        status=WCInvoiceStatus.DRAFT,
        document_id=f.document_id,
        issue_date=f.issue_date,
        due_date=f.due_date,
        total_amount=f.total_amount,
        currency=f.currency,
        description=f.description,
        payer_type=f.payer_type,
        payer_business_name=f.payer_business_name,
        payer_first_name=f.payer_first_name,
        payer_last_name=f.payer_last_name,
    )


async def _create_request(
    session: AsyncSession,
    entity: Entity,
    offer: FinancingOffer,
    chosen: list[InvoiceFacts],
    *,
    lender: LenderProvider,
) -> FinancingRequest:
    """The request and a DRAFT financing invoice per judged invoice, each with its event."""
    now = clock.now()
    request = FinancingRequest(
        entity_id=entity.id,
        partner_id=entity.partner_id,
        created_at=now,
        expires_at=now + lender.request_ttl,
    )
    session.add(request)
    await session.flush()
    financed = [_draft(request, offer, f) for f in chosen]
    session.add_all(financed)
    try:
        await session.flush()
    except IntegrityError as exc:
        # A concurrent request for one of these invoices committed first.
        raise Conflict(
            "One of the invoices was requested for financing at the same time by another "
            "request; it is already in a live financing"
        ) from exc
    for fi in financed:
        await record.created(session, fi, cause="financing requested")
    return request
