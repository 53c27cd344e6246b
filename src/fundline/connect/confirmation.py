"""The confirmation form: for each invoice of a request, the plan and the amount chosen, what
they cost (the lending rules' quote), and the limit that would remain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fundline.connect import service
from fundline.connect.schemas import QuoteOut
from fundline.connect.steps import plan_title
from fundline.connect.widget import templates
from fundline.kit import money, pages
from fundline.lending.provider import ConnectLender, Quote
from fundline.models import ConnectSession, FinancingInvoice, FinancingOffer, PricingPlan


@dataclass
class Choice:
    """One invoice of the confirmation form: what was chosen and what it costs."""

    fi: FinancingInvoice
    owed: int
    quotes: list[QuoteOut]
    plan: QuoteOut
    include: bool
    amount_text: str
    requested: int | None = None
    quote: Quote | None = None
    error: str | None = None


async def choices(
    session: AsyncSession,
    drafts: Sequence[tuple[FinancingInvoice, int, list[QuoteOut]]],
    fields: dict[str, str] | None,
    *,
    widget: ConnectLender,
) -> list[Choice]:
    """The form's choices for each DRAFT invoice that can be financed (defaults: the first
    plan at its maximum), priced with the lending rules; a refused amount is kept with its
    message. Fields are named by invoice id (``invoices.<id>.amount``), never by position: the
    drafts may change while the form is on screen."""
    quoted = [(fi, owed, quotes) for fi, owed, quotes in drafts if quotes]
    plans = {
        p.id: p
        for offer_id in {fi.offer_id for fi, _, _ in quoted}  # once per offer, not per invoice
        for p in await service.plans_of(session, offer_id)
    }
    given = fields or {}
    result = []
    for fi, owed, quotes in quoted:
        prefix = f"invoices.{fi.invoice_id}."
        asked = given.get(prefix + "pricing_plan_id")
        found = next((q for q in quotes if str(q.pricing_plan_id) == asked), None)
        chosen = found or quotes[0]
        # One invoice has no checkbox: it is the one to confirm.
        include = fields is None or len(quoted) == 1 or given.get(prefix + "include") == "1"
        default_text = f"{money.to_major(chosen.max_requested_amount, fi.currency):,}"
        text = given.get(prefix + "amount", "").strip() if fields is not None else default_text
        choice = Choice(fi, owed, quotes, chosen, include, text)
        if include and asked and found is None:
            choice.error = "Choose one of the plans offered."
        elif include:
            try:
                requested = money.parse_major(choice.amount_text, fi.currency)
                choice.quote = widget.quote(
                    owed, plans[chosen.pricing_plan_id], requested_amount=requested
                )
                choice.requested = requested
            except money.AmountError:
                choice.error = f"Enter an amount such as {money.display(123456, fi.currency)}."
            except ValueError:  # an amount, but outside what the plan can finance
                low = money.display(1, fi.currency)
                high = money.display(chosen.max_requested_amount, fi.currency)
                choice.error = f"Enter an amount between {low} and {high}."
        result.append(choice)
    return result


def stale(choices: Sequence[Choice], fields: dict[str, str]) -> list[str]:
    """The invoice ids a posted form names that are no longer among the invoices to confirm
    (confirmed, paid or released since the form was shown)."""
    shown = {str(ch.fi.invoice_id) for ch in choices}
    named = {
        key.split(".")[1] for key in fields if key.startswith("invoices.") and key.count(".") == 2
    }
    return sorted(named - shown)


def refusal(choices: Sequence[Choice], offer: FinancingOffer, fields: dict[str, str]) -> str | None:
    """Why the form cannot be confirmed as posted, before anything is written; ``None`` when
    it can (the lending rules are applied again when it is)."""
    if stale(choices, fields):
        return "Your invoices changed while this page was open: check them again."
    taken = [ch for ch in choices if ch.include]
    if not taken:
        return "Choose at least one invoice to finance."
    if any(ch.error for ch in taken):
        return "Check the amounts marked below."
    if quote_context(choices, offer)["over_limit"]:
        available = money.display(offer.available_amount, offer.currency)
        return f"This is more than your available credit of {available}."
    return None


def quote_context(choices: Sequence[Choice], offer: FinancingOffer) -> dict[str, Any]:
    c = offer.currency
    taken = [ch for ch in choices if ch.include and ch.quote is not None]
    requested = sum(ch.quote.requested_amount for ch in taken if ch.quote)
    remaining = offer.available_amount - requested
    rows = []
    for ch in choices:
        row: dict[str, Any] = {
            "document_id": ch.fi.document_id,
            "skipped": not ch.include,
            "error": ch.error,
        }
        if ch.quote is not None and not ch.error:
            # The plan's repayment date does not depend on the amount: the quote's date holds.
            row.update(
                advance=money.display(ch.quote.principal_amount, c),
                repayment=money.display(ch.quote.repayment_amount, c),
                date=pages.day(ch.plan.repayment_date),
            )
        rows.append(row)
    return {
        "rows": rows,
        "advance": money.display(sum(ch.quote.principal_amount for ch in taken if ch.quote), c),
        "repayment": money.display(requested, c),
        "fee": money.display(sum(ch.quote.fee_amount for ch in taken if ch.quote), c),
        "remaining": money.display(max(0, remaining), c),
        "available": money.display(offer.available_amount, c),
        "over_limit": remaining < 0,
    }


def _plan_label(q: QuoteOut, plan: PricingPlan | None, currency: str) -> str:
    title = plan_title(plan) if plan else "Plan"
    fee = money.display_rate(plan.fee_percentage) if plan else ""
    return f"{title} · fee {fee} · up to {money.display(q.max_requested_amount, currency)}"


async def render(
    session: AsyncSession,
    choices: Sequence[Choice],
    offer: FinancingOffer,
    *,
    error: str | None = None,
) -> str:
    plans = {p.id: p for p in await service.plans_of(session, offer.id)}
    invoices = []
    for ch in choices:
        c = ch.fi.currency
        invoices.append(
            {
                "invoice_id": ch.fi.invoice_id,
                "document_id": ch.fi.document_id,
                "payer": ch.fi.payer_business_name
                or " ".join(p for p in (ch.fi.payer_first_name, ch.fi.payer_last_name) if p),
                "amount_due": money.display(ch.owed, c),
                "total": money.display(ch.fi.total_amount, c),
                "partly_paid": ch.owed < ch.fi.total_amount,
                "due_date": pages.day(ch.fi.due_date),
                "currency": c,
                "include": ch.include,
                "plan_id": ch.plan.pricing_plan_id,
                "quotes": [
                    {
                        "plan_id": q.pricing_plan_id,
                        "label": _plan_label(q, plans.get(q.pricing_plan_id), c),
                    }
                    for q in ch.quotes
                ],
                "max": money.display(ch.plan.max_requested_amount, c),
                "amount": ch.amount_text,
                "error": ch.error,
            }
        )
    return templates.get_template("invoices.html").render(
        invoices=invoices,
        error=error,
        total=money.display(offer.total_amount, offer.currency),
        available=money.display(offer.available_amount, offer.currency),
        quote=quote_context(choices, offer),
    )


async def drafts_and_offer(
    session: AsyncSession, connect_session: ConnectSession, *, widget: ConnectLender
) -> tuple[list[tuple[FinancingInvoice, int, list[QuoteOut]]], FinancingOffer | None]:
    _, drafts = await service.draft_invoices(session, connect_session, widget=widget)
    if not drafts:
        return [], None
    return drafts, await session.get(FinancingOffer, drafts[0][0].offer_id)
