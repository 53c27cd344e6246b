"""The four financing operations: tokens, offers, requesting financing, listing.

A request is all or nothing: every invoice is judged first (``eligibility``), and only when
all pass are the request, its DRAFT financing invoices and the tokens created. The unique
``live_invoice_id`` makes two concurrent requests for one invoice create one live financing.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
from fundline.kit.statements import Connection, Insert, Prepared
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
from fundline.models.financing import (
    FinancingRequestStatus,
    WCBusinessStatus,
    WCInvoiceStatus,
    WCOfferStatus,
)
from fundline.receivables.service import status_at

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
#
# A request reads each invoice's facts, its counterpart and any live financing of it in one
# statement per document type, the business and its offers in one more, and writes the
# request, its drafts, their history and their events in one statement each
# (``kit.statements``): no ORM objects for rows the server builds itself.

_ENTITY = bindparam("entity_id", type_=Receivable.entity_id.type)


def _live_of(document_id: Any) -> tuple[Any, ...]:
    """The joins to a document's live financing and its request (both of the entity)."""
    return (
        (
            FinancingInvoice,
            (FinancingInvoice.live_invoice_id == document_id)
            & (FinancingInvoice.entity_id == _ENTITY),
        ),
        (
            FinancingRequest,
            (FinancingRequest.id == FinancingInvoice.request_id)
            & (FinancingRequest.entity_id == _ENTITY),
        ),
    )


_LIVE_COLUMNS = (FinancingInvoice.status, FinancingRequest.expires_at)


@functools.cache
def _receivables_statement(n: int) -> Prepared:
    """The facts of ``n`` receivables of the entity, their counterpart and live financing."""
    ids = [bindparam(f"id_{i}", type_=Receivable.id.type) for i in range(n)]
    stmt = select(
        Receivable.id,
        Receivable.status,
        Receivable.document_id,
        Receivable.issue_date,
        Receivable.due_date,
        Receivable.total_amount,
        Receivable.currency,
        Receivable.details["memo"].as_string(),
        Receivable.counterpart_name,
        Counterpart.type,
        Counterpart.legal_name,
        Counterpart.first_name,
        Counterpart.last_name,
        *_LIVE_COLUMNS,
    ).outerjoin(
        Counterpart,
        (Counterpart.id == Receivable.counterpart_id) & (Counterpart.entity_id == _ENTITY),
    )
    for target, on in _live_of(Receivable.id):
        stmt = stmt.outerjoin(target, on)
    return Prepared(
        stmt.where(
            Receivable.entity_id == _ENTITY, Receivable.id.in_(ids), Receivable.type == "invoice"
        )
    )


@functools.cache
def _payables_statement(n: int) -> Prepared:
    """The facts of ``n`` payables of the entity, their vendor and live financing."""
    ids = [bindparam(f"id_{i}", type_=Payable.id.type) for i in range(n)]
    stmt = select(
        Payable.id,
        Payable.status,
        Payable.document_id,
        Payable.issued_at,
        Payable.due_date,
        Payable.total_amount,
        Payable.currency,
        Payable.description,
        Payable.counterpart_snapshot["name"].as_string(),
        Counterpart.type,
        Counterpart.legal_name,
        Counterpart.first_name,
        Counterpart.last_name,
        *_LIVE_COLUMNS,
    ).outerjoin(
        Counterpart,
        (Counterpart.id == Payable.counterpart_id) & (Counterpart.entity_id == _ENTITY),
    )
    for target, on in _live_of(Payable.id):
        stmt = stmt.outerjoin(target, on)
    return Prepared(stmt.where(Payable.entity_id == _ENTITY, Payable.id.in_(ids)))


# The business's status and each of its offers, newest first (no offer: one row of NULLs).
_BUSINESS_AND_OFFERS = Prepared(
    select(
        FinancingBusiness.status,
        FinancingOffer.id,
        FinancingOffer.status,
        FinancingOffer.currency,
    )
    .outerjoin(
        FinancingOffer,
        (FinancingOffer.entity_id == FinancingBusiness.entity_id)
        & (FinancingOffer.entity_id == _ENTITY),
    )
    .where(FinancingBusiness.entity_id == _ENTITY)
    .order_by(FinancingOffer.created_at.desc(), FinancingOffer.id.desc())
)

_REQUESTS = Insert(FinancingRequest)
_DRAFTS = Insert(FinancingInvoice)


@dataclass(frozen=True, slots=True)
class _Found:
    """One requested document as read: its facts, and the live financing it is in, if any."""

    facts: InvoiceFacts
    live_status: WCInvoiceStatus | None
    live_expires_at: datetime | None  # of the live financing's request


@dataclass(frozen=True, slots=True)
class _Offer:
    """What a request needs of the offer it is made under."""

    id: uuid.UUID
    status: WCOfferStatus
    currency: str


def _payer(
    kind: str | None,
    legal_name: str | None,
    first_name: str | None,
    last_name: str | None,
    fallback_name: str | None,
) -> dict[str, Any]:
    """The payer fields of a financing invoice, from the document's counterpart (``kind``
    ``None``: it has none, and the name the document kept stands in)."""
    if kind == "individual":
        return {
            "payer_type": "INDIVIDUAL",
            "payer_business_name": None,
            "payer_first_name": first_name,
            "payer_last_name": last_name,
        }
    if kind is None:
        name = fallback_name
    elif kind == "organization":
        name = legal_name or ""
    else:
        name = " ".join(part for part in (first_name, last_name) if part)
    return {
        "payer_type": "BUSINESS",
        "payer_business_name": name or None,
        "payer_first_name": None,
        "payer_last_name": None,
    }


async def _documents(
    session: AsyncSession, entity: Entity, kind: str, ids: list[uuid.UUID]
) -> dict[uuid.UUID, _Found]:
    """The entity's receivables or payables among ``ids``, as ``_Found`` by id."""
    if not ids:
        return {}
    statement = _receivables_statement if kind == "receivable" else _payables_statement
    values: dict[str, Any] = {f"id_{i}": value for i, value in enumerate(ids)}
    values["entity_id"] = entity.id
    today = clock.today()
    found = {}
    for row in await statement(len(ids)).rows(session, values):
        doc_id, status, number, issued, due, total, currency, text, name = row[:9]
        counterpart_kind, legal_name, first_name, last_name, live_status, live_expires_at = row[9:]
        if kind == "receivable":
            status = status_at(status, due, today)
            issued = issued.astimezone(UTC).date() if issued else None
            description, fallback = text or None, name
        else:
            description, fallback = text, name
        facts = InvoiceFacts(
            id=doc_id,
            type=kind,
            status=status,
            document_id=number,
            issue_date=issued,
            due_date=due,
            total_amount=total,
            currency=currency,
            description=description,
            **_payer(counterpart_kind, legal_name, first_name, last_name, fallback),
        )
        found[doc_id] = _Found(facts, live_status, live_expires_at)
    return found


async def _business_and_offer(
    session: AsyncSession, entity_id: uuid.UUID
) -> tuple[WCBusinessStatus | None, _Offer | None]:
    """The business's status and its newest CURRENT offer, else its newest offer."""
    rows = await _BUSINESS_AND_OFFERS.rows(session, {"entity_id": entity_id})
    if not rows:
        return None, None
    offers = [_Offer(o_id, o_status, currency) for _, o_id, o_status, currency in rows if o_id]
    current = next((o for o in offers if o.status == WCOfferStatus.CURRENT), None)
    return rows[0][0], current or (offers[0] if offers else None)


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
) -> tuple[list[InvoiceFacts], _Offer]:
    """The facts of every requested invoice and the offer to finance them under, when all
    of them and the entity pass; else ``IneligibleInvoices`` with every failure at once."""
    _reject_repeats(payload)
    found = {
        kind: await _documents(
            session, entity, kind, [i.id for i in payload.invoices if i.type.value == kind]
        )
        for kind in ("receivable", "payable")
    }
    now = clock.now()
    lapsed = [
        f.facts.id
        for by_id in found.values()
        for f in by_id.values()
        if f.live_status == WCInvoiceStatus.DRAFT
        and f.live_expires_at is not None
        and f.live_expires_at <= now
    ]
    if lapsed:
        await _release_lapsed_drafts(session, entity, lapsed, lender=lender)
    business_status, offer = await _business_and_offer(session, entity.id)
    today = clock.today()

    failures: list[Failure] = []
    chosen: list[InvoiceFacts] = []
    for item in payload.invoices:
        document = found[item.type.value].get(item.id)
        if document is None:
            failures.append(Failure(item.id, item.type.value, f"no {item.type.value} found", 404))
            continue
        reasons = invoice_reasons(
            document.facts,
            today=today,
            min_days_to_due=lender.min_days_to_due,
            offer_currency=offer.currency if offer is not None else None,
            live_status=None if item.id in lapsed else document.live_status,
        )
        failures += [Failure(item.id, item.type.value, r, 409) for r in reasons]
        chosen.append(document.facts)
    reasons = entity_reasons(
        country=entity.country,
        business_status=business_status,
        offer_status=offer.status if offer is not None else None,
    )
    if reasons or failures:
        raise IneligibleInvoices(reasons, failures)
    assert offer is not None
    return chosen, offer


def _draft(
    request: FinancingRequest, offer: _Offer, f: InvoiceFacts, created_at: datetime
) -> dict[str, Any]:
    """A DRAFT financing invoice of ``request``: a copy of the invoice as it was judged."""
    return {
        "id": uuid.uuid4(),
        "partner_id": request.partner_id,
        "entity_id": request.entity_id,
        "request_id": request.id,
        "offer_id": offer.id,
        "invoice_id": f.id,
        "live_invoice_id": f.id,
        "type": f.type,
        "status": WCInvoiceStatus.DRAFT,
        "document_id": f.document_id,
        "issue_date": f.issue_date,
        "due_date": f.due_date,
        "total_amount": f.total_amount,
        "currency": f.currency,
        "description": f.description,
        "payer_type": f.payer_type,
        "payer_business_name": f.payer_business_name,
        "payer_first_name": f.payer_first_name,
        "payer_last_name": f.payer_last_name,
        "created_at": created_at,
        "updated_at": created_at,
    }


async def _create_request(
    session: AsyncSession,
    entity: Entity,
    offer: _Offer,
    chosen: list[InvoiceFacts],
    *,
    lender: LenderProvider,
) -> FinancingRequest:
    """The request and a DRAFT financing invoice per judged invoice, each with its history
    row and event. Returns the request as written (not in the session)."""
    now = clock.now()
    request = FinancingRequest(
        id=uuid.uuid4(),
        entity_id=entity.id,
        partner_id=entity.partner_id,
        status=FinancingRequestStatus.OPEN,
        created_at=now,
        updated_at=now,
        expires_at=now + lender.request_ttl,
    )
    columns = ("id", "entity_id", "partner_id", "status", "created_at", "updated_at", "expires_at")
    await _REQUESTS.rows(session, [{name: getattr(request, name) for name in columns}])
    # A microsecond apart, in the order asked for: lists read them by ``created_at``.
    drafts = [
        _draft(request, offer, f, now + timedelta(microseconds=n)) for n, f in enumerate(chosen)
    ]
    try:
        await _DRAFTS.rows(session, drafts)
    except IntegrityError as exc:
        # A concurrent request for one of these invoices committed first.
        raise Conflict(
            "One of the invoices was requested for financing at the same time by another "
            "request; it is already in a live financing"
        ) from exc
    await record.created_many(session, entity, drafts, cause="financing requested")
    return request
