"""The widget's steps as HTML, and the events that go with them: where the business stands
(onboarding, waiting or declined, the offer, servicing), and the figures each step shows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.connect import events, onboarding_form, service
from fundline.connect.widget import templates
from fundline.financing.listing import render
from fundline.financing.schemas import FinancingInvoice as FinancingInvoiceOut
from fundline.financing.service import get_business
from fundline.kit import clock, money, pages
from fundline.kit.errors import NotFound
from fundline.lending.provider import ConnectLender, Quote
from fundline.models import (
    ConnectSession,
    Counterpart,
    FinancingInvoice,
    FinancingOffer,
    PricingPlan,
    Receivable,
)
from fundline.models.financing import WCBusinessStatus, WCInvoiceStatus, WCOfferStatus
from fundline.models.receivable import OPEN_STATUSES


@dataclass
class View:
    html: str
    events: list[events.Event] = field(default_factory=list)

    def response(self) -> JSONResponse:
        return JSONResponse({"html": self.html, "events": self.events})


# --- the offer --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    document_id: str
    customer: str | None
    owed: int
    due_date: date


async def example_invoice(session: AsyncSession, offer: FinancingOffer) -> Example | None:
    """The business's own open invoice with the most still to be paid, in the offer's currency."""
    owed = Receivable.total_amount - Receivable.amount_paid
    row = (
        await session.execute(
            select(Receivable.document_id, Receivable.counterpart_name, owed, Receivable.due_date)
            .where(
                Receivable.entity_id == offer.entity_id,
                Receivable.type == "invoice",
                Receivable.status.in_(OPEN_STATUSES),
                Receivable.currency == offer.currency,
                owed > 0,
            )
            .order_by(owed.desc())
            .limit(1)
        )
    ).first()
    if row is None or row.due_date is None:
        return None
    return Example(row.document_id or "", row.counterpart_name, int(row[2]), row.due_date)


def plan_title(plan: PricingPlan) -> str:
    match plan.repayment_type:
        case "FIXED_DURATION":
            return f"Repay in {plan.repayment_duration_days} days"
        case "MULTIPLE_DURATION":
            return f"Repay in {plan.instalments} parts over {plan.repayment_duration_days} days"
        case _:
            return f"Repay {plan.grace_days} days after the invoice is due"


def _plan_sentence(
    quote: Quote, dates: Sequence[date], currency: str, *, lead: str = "receive"
) -> str:
    receive = money.display(quote.principal_amount, currency)
    repay = money.display(quote.repayment_amount, currency)
    if len(dates) == 1:
        return f"{lead.capitalize()} {receive} now, repay {repay} on {pages.day(dates[0])}."
    return (
        f"{lead.capitalize()} {receive} now, repay {repay} in {len(dates)} parts, "
        f"the last on {pages.day(dates[-1])}."
    )


async def offer_step(
    session: AsyncSession,
    offer: FinancingOffer,
    plans: Sequence[PricingPlan],
    *,
    widget: ConnectLender,
) -> str:
    example = await example_invoice(session, offer)
    today = clock.today()
    example_amount = money.from_major(10_000, offer.currency)
    owed = example.owed if example else example_amount
    invoice_due = example.due_date if example else today
    rows = []
    for plan in plans:
        try:
            q = widget.quote(owed, plan)
        except ValueError:
            continue
        dates = widget.due_dates(plan, funded_on=today, invoice_due_date=invoice_due)
        rows.append(
            {
                "title": plan_title(plan),
                "sentence": _plan_sentence(q, dates, offer.currency),
                "advance_rate": money.display_rate(plan.advance_rate_percentage),
                "fee_rate": money.display_rate(plan.fee_percentage),
                "fee": money.display(q.fee_amount, offer.currency),
                "instalments": len(dates),
            }
        )
    return templates.get_template("offer.html").render(
        offer_id=offer.id,
        total=money.display(offer.total_amount, offer.currency),
        expires=pages.day(offer.expires_at.date()),
        example=(
            {
                "document_id": example.document_id,
                "customer": example.customer,
                "amount": money.display(example.owed, offer.currency),
            }
            if example
            else None
        ),
        example_amount=money.display(example_amount, offer.currency),
        plans=rows,
    )


# --- servicing --------------------------------------------------------------------------------

OFFER_NOTES = {
    WCOfferStatus.LATE: "A repayment is past due: please pay it as soon as you can.",
    WCOfferStatus.DEFAULTED: "This credit line is in default; the lender will contact you.",
}


def _invoice_summary(out: FinancingInvoiceOut) -> str:
    c = out.currency
    if out.status == WCInvoiceStatus.REJECTED:
        return f"{money.display(out.total_amount, c)} invoice: the lender declined to finance it."
    if out.requested_amount is None:
        return f"{money.display(out.total_amount, c)} invoice, not yet confirmed."
    return (
        f"You receive {money.display(out.advance_amount or 0, c)} of this "
        f"{money.display(out.total_amount, c)} invoice and repay "
        f"{money.display(out.repayment_amount or 0, c)} "
        f"(fee {money.display(out.fee_amount or 0, c)})."
    )


async def servicing_step(
    session: AsyncSession,
    entity_id: uuid.UUID,
    *,
    confirmed: str | None = None,
    note: str | None = None,
) -> str:
    latest = await service.latest_offer(session, entity_id)
    offer = latest[0] if latest else None
    rows = list(
        await session.scalars(
            select(FinancingInvoice)
            .where(
                FinancingInvoice.entity_id == entity_id,
                FinancingInvoice.status != WCInvoiceStatus.DRAFT,
            )
            .order_by(FinancingInvoice.created_at.desc(), FinancingInvoice.id.desc())
            .limit(20)
        )
    )
    invoices = []
    for out in await render(session, rows):
        c = out.currency
        unpaid = [i for i in out.instalments if i.paid_amount < i.amount]
        nxt = (
            unpaid[0]
            if unpaid and out.status in (WCInvoiceStatus.FUNDED, WCInvoiceStatus.LATE)
            else None
        )
        invoices.append(
            {
                "document_id": out.document_id,
                "status": out.status.value,
                "summary": _invoice_summary(out),
                "next": (
                    f"{money.display(nxt.amount - nxt.paid_amount, c)} on {pages.day(nxt.due_date)}"
                    if nxt
                    else None
                ),
                "schedule": [
                    {
                        "date": pages.day(i.due_date),
                        "amount": money.display(i.amount, c),
                        "paid": money.display(i.paid_amount, c),
                    }
                    for i in out.instalments
                ],
            }
        )
    return templates.get_template("servicing.html").render(
        confirmed=confirmed,
        note=note,
        offer=(
            {
                "total": money.display(offer.total_amount, offer.currency),
                "used": money.display(offer.total_amount - offer.available_amount, offer.currency),
                "available": money.display(offer.available_amount, offer.currency),
                "status_note": OFFER_NOTES.get(offer.status),
            }
            if offer
            else None
        ),
        invoices=invoices,
    )


# --- where the business stands ----------------------------------------------------------------


async def current_step(
    session: AsyncSession, connect_session: ConnectSession, *, widget: ConnectLender
) -> View:
    business = await service.business_of(session, connect_session)
    latest = await service.latest_offer(session, connect_session.entity_id)
    offer, plans = latest if latest else (None, [])
    state = events.user_state(business, offer)
    waiting = templates.get_template("waiting.html")
    flags = {"declined": False, "accepted": False, "expired": False, "reason": ""}
    if business.status != WCBusinessStatus.ONBOARDED:
        html = onboarding_form.render(business)
    elif offer is None or offer.status in (WCOfferStatus.EXPIRED, WCOfferStatus.CLOSED):
        declined = bool(business.decision_note)
        html = waiting.render(
            **{
                **flags,
                "declined": declined,
                "expired": offer is not None and not declined,
                "reason": business.decision_note or "",
            }
        )
    elif offer.status == WCOfferStatus.NEW:
        html = await offer_step(session, offer, plans, widget=widget)
    elif offer.status == WCOfferStatus.ACCEPTED:
        total = money.display(offer.total_amount, offer.currency)
        html = waiting.render(**{**flags, "accepted": True, "offer_total": total})
    else:  # CURRENT, LATE, DEFAULTED
        html = await servicing_step(session, connect_session.entity_id)
    return View(html, [state.event()])


async def state_event(session: AsyncSession, entity_id: uuid.UUID) -> events.Event:
    business = await get_business(session, entity_id)
    if business is None:
        raise NotFound("Financing business not found")
    latest = await service.latest_offer(session, entity_id)
    return events.user_state(business, latest[0] if latest else None).event()


async def payor_emails(
    session: AsyncSession, rows: Sequence[FinancingInvoice]
) -> dict[uuid.UUID, str]:
    receivables = [fi.invoice_id for fi in rows if fi.type == "receivable"]
    if not receivables:
        return {}
    found = await session.execute(
        select(Receivable.id, Counterpart.email)
        .join(Counterpart, Counterpart.id == Receivable.counterpart_id)
        .where(Receivable.id.in_(receivables))
    )
    return {rid: email for rid, email in found if email}


async def with_state(
    session: AsyncSession, entity_id: uuid.UUID, html: str, *, before: Sequence[events.Event] = ()
) -> JSONResponse:
    """A step's answer: its HTML, ``before``'s events, then the business's state."""
    return View(html, [*before, await state_event(session, entity_id)]).response()
