"""``/lender/invoices/{id}``: one financing invoice, everything the operator needs to judge or
service it (facts, plan, instalments, status history, ledger), and the actions its status
allows, each posted to ``/lender/invoices/{id}/{action}`` and run by ``console.actions``.

Which forms are shown follows the servicing rules (``lending.servicing``), but only to spare
the operator a form that would be refused: servicing still decides every action.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from fundline.backoffice import service
from fundline.backoffice.schemas import FinancingInvoiceDetail, JournalEntryView
from fundline.console import actions
from fundline.console.names import business_name
from fundline.console.pages import PREFIX, Console, ConsoleDep
from fundline.kit import money
from fundline.kit.routing import TransactionalRoute
from fundline.models import (
    Entity,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    JournalEntry,
    PricingPlan,
)
from fundline.models.financing import WCInvoiceStatus

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=TransactionalRoute)

# The URL's action names, as the console's actions call them.
ACTIONS: dict[str, actions.InvoiceAction] = {
    "approve": "approve",
    "reject": "reject",
    "fund": "fund",
    "repayment": "record_repayment",
    "write_off": "write_off",
}
REASON_MAX = 500  # what the audit log keeps of a note (and the lender API accepts)


def payer_name(
    payer_type: str, business_name: str | None, first_name: str | None, last_name: str | None
) -> str:
    if payer_type == "BUSINESS":
        return business_name or ""
    return " ".join(part for part in (first_name, last_name) if part)


def plan_terms(
    repayment_type: str | None, duration_days: int | None, instalments: int, grace_days: int
) -> str:
    """How a plan is repaid, in words."""
    if repayment_type == "FIXED_DURATION":
        return f"{duration_days} days after funding"
    if repayment_type == "MULTIPLE_DURATION":
        return f"{instalments} instalments over {duration_days} days"
    if repayment_type == "FIXED_DATE":
        return f"the invoice's due date + {grace_days} days" if grace_days else "the due date"
    return ""


@dataclass
class InvoicePage:
    fi: FinancingInvoiceDetail
    business_id: uuid.UUID
    business: str
    payer: str
    plan: PricingPlan | None
    offer: FinancingOffer
    approved_at: datetime | None
    entries: list[JournalEntryView]

    @property
    def terms(self) -> str:
        if self.plan is None:
            return ""
        p = self.plan
        return plan_terms(p.repayment_type, p.repayment_duration_days, p.instalments, p.grace_days)

    @property
    def allowed(self) -> set[str]:
        """The actions the invoice's status allows (servicing's rules, see the docstring)."""
        status = self.fi.status
        if status == WCInvoiceStatus.NEW:
            return {"fund", "reject"} if self.fi.approved else {"approve", "fund", "reject"}
        allowed = set()
        if status in (WCInvoiceStatus.FUNDED, WCInvoiceStatus.LATE):
            allowed.add("repayment")
        if (
            status in (WCInvoiceStatus.LATE, WCInvoiceStatus.DEFAULTED)
            and self.fi.closed_at is None
        ):
            allowed.add("write_off")
        return allowed


@dataclass
class Posted:
    """What the operator typed into the page's forms, kept to show it again with its error."""

    reason: str = ""
    amount: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


async def load(console: Console, financing_invoice_id: uuid.UUID) -> InvoicePage | None:
    session = console.session
    row = (
        await session.execute(
            select(
                FinancingInvoice,
                FinancingOffer,
                PricingPlan,
                FinancingBusiness.id.label("business_id"),
                business_name().label("business"),
            )
            .join(FinancingOffer, FinancingOffer.id == FinancingInvoice.offer_id)
            .join(FinancingBusiness, FinancingBusiness.id == FinancingOffer.business_id)
            .join(Entity, Entity.id == FinancingInvoice.entity_id)
            .outerjoin(PricingPlan, PricingPlan.id == FinancingInvoice.pricing_plan_id)
            .where(FinancingInvoice.id == financing_invoice_id)
        )
    ).one_or_none()
    if row is None:
        return None
    fi: FinancingInvoice = row.FinancingInvoice
    return InvoicePage(
        fi=await service.describe_detail(session, fi),
        business_id=row.business_id,
        business=row.business,
        payer=payer_name(
            fi.payer_type, fi.payer_business_name, fi.payer_first_name, fi.payer_last_name
        ),
        plan=row.PricingPlan,
        offer=row.FinancingOffer,
        approved_at=fi.approved_at,
        entries=await ledger_entries(console, financing_invoice_id),
    )


async def ledger_entries(
    console: Console, financing_invoice_id: uuid.UUID
) -> list[JournalEntryView]:
    """The invoice's journal entries, oldest first, each with its postings (debits first)."""
    entries = await console.session.scalars(
        select(JournalEntry)
        .where(JournalEntry.financing_invoice_id == financing_invoice_id)
        .order_by(JournalEntry.created_at, JournalEntry.id)
    )
    return await service.with_postings(console.session, list(entries))


def _id(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def missing(console: Console) -> HTMLResponse:
    return console.render("invoice.html", status_code=404, page=None)


async def render(
    console: Console,
    page: InvoicePage,
    *,
    results: list[actions.Result] | None = None,
    posted: Posted | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    results = results or []
    return console.render(
        "invoice.html",
        status_code=status_code,
        page=page,
        fi=page.fi,
        results=results,
        entries=[entry for result in results for entry in result.entries],
        posted=posted or Posted(),
        owed_text=_major(page.fi.outstanding_amount, page.fi.currency),
    )


def _major(amount: int, currency: str) -> str:
    """An amount as the amount field shows it (and ``parse_major`` reads it): ``1,234.56``."""
    return f"{money.to_major(amount, currency):,}"


@router.get("/invoices/{financing_invoice_id}")
async def invoice_page(console: ConsoleDep, financing_invoice_id: str) -> HTMLResponse:
    """One financing invoice: facts, plan, instalments, history, ledger and its actions."""
    found = _id(financing_invoice_id)
    page = await load(console, found) if found else None
    if page is None:
        return missing(console)
    return await render(console, page)


@router.post("/invoices/{financing_invoice_id}/{action}")
async def invoice_action(
    console: ConsoleDep, financing_invoice_id: str, action: str
) -> HTMLResponse:
    """Run ``action`` (approve, reject, fund, repayment, write_off) on the invoice; the page
    again with what was done and the ledger postings it made."""
    form = await console.form()
    found = _id(financing_invoice_id)
    page = await load(console, found) if found else None
    if found is None or page is None:
        return missing(console)
    if action not in ACTIONS:
        return await render(
            console,
            page,
            status_code=404,
            results=[actions.Result(page.fi.document_id, False, f"No action {action!r} here")],
        )
    posted = Posted(reason=(form.get("reason") or "").strip(), amount=form.get("amount"))
    amount: int | None = None
    if action == "reject":
        if not posted.reason:
            posted.errors["reason"] = "Give the reason for rejecting it"
        elif len(posted.reason) > REASON_MAX:
            posted.errors["reason"] = f"Keep the reason to {REASON_MAX} characters"
    if action == "repayment":
        try:
            amount = money.parse_major(posted.amount or "", page.fi.currency)
        except ValueError as exc:
            posted.errors["amount"] = str(exc)
    if posted.errors:
        return await render(console, page, posted=posted, status_code=422)
    result = await actions.on_invoice(
        console, found, ACTIONS[action], amount=amount, reason=posted.reason or None
    )
    page = await load(console, found)
    assert page is not None  # no action deletes a financing invoice
    # A refused action keeps what was typed; a done one starts the forms afresh.
    return await render(console, page, results=[result], posted=None if result.ok else posted)
