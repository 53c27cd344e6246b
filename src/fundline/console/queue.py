"""``/lender/queue``: the financing invoices waiting for the operator's decision, across every
entity, oldest first, and the bulk actions on them.

Waiting means ``NEW``: confirmed by its business and not funded yet, either not approved
("to review") or approved and waiting to be funded ("approved, to fund": manual review
without ``auto_fund``). A page is one query (the invoice, its business and entity, its plan,
its offer's remaining limit) of at most ``PAGE_SIZE`` rows after a signed cursor.

A bulk action judges each selected invoice on its own (``actions.on_invoice``: a savepoint
each), so one refusal leaves the others done.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy import case, func, literal, select, text, tuple_

from fundline.console import actions
from fundline.console.invoices import REASON_MAX, payer_name, plan_terms
from fundline.console.names import business_name
from fundline.console.pages import PREFIX, Console, ConsoleDep
from fundline.kit.routing import TransactionalRoute
from fundline.kit.statements import AnySelect
from fundline.lending import locks
from fundline.models import Entity, FinancingBusiness, FinancingInvoice, FinancingOffer, PricingPlan
from fundline.models.financing import WCInvoiceStatus

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=TransactionalRoute)

PAGE_SIZE = 50
BULK_MAX = 2 * PAGE_SIZE  # invoices one bulk action may name: one transaction holds them all
CURSOR = "page:console_queue"
BULK: dict[str, actions.InvoiceAction] = {"approve": "approve", "fund": "fund", "reject": "reject"}
STAGES: dict[str, str] = {"all": "All waiting", "review": "To review", "fund": "Approved, to fund"}

# Oldest first: since the business confirmed it (every NEW invoice was confirmed: both lenders
# set confirmed_at as it leaves DRAFT), then creation, then id for a total order. The order
# of the partial index ``ix_financing_invoices_queue``, so a page reads its rows in order.
WAITING_SINCE = FinancingInvoice.confirmed_at
ORDER = (WAITING_SINCE, FinancingInvoice.created_at, FinancingInvoice.id)
# Written as a literal, as the index's predicate is: a prepared statement's generic plan can
# still use the partial indexes (a bound parameter would not prove the predicate).
WAITING = text(f"financing_invoices.status = '{WCInvoiceStatus.NEW.value}'")
AVAILABLE = (
    FinancingOffer.total_amount - FinancingOffer.reserved_amount - FinancingOffer.outstanding_amount
)


@dataclass(frozen=True)
class Waiting:
    """One row of the queue."""

    id: uuid.UUID
    document_id: str
    total_amount: int
    currency: str
    due_date: date
    payer: str
    business_id: uuid.UUID
    business: str
    approved: bool
    waiting_since: datetime
    created_at: datetime
    advance_rate_percentage: int | None
    fee_percentage: int | None
    repayment_type: str | None
    terms: str
    requested_amount: int | None
    fee_amount: int | None
    principal_amount: int | None
    repayment_amount: int | None
    repayment_date: date | None
    available_amount: int
    limit_currency: str


def waiting(stage: str) -> AnySelect:
    """The queue's rows in order; one query, joins only."""
    stmt: AnySelect = (
        select(
            FinancingInvoice.id,
            FinancingInvoice.document_id,
            FinancingInvoice.total_amount,
            FinancingInvoice.currency,
            FinancingInvoice.due_date,
            FinancingInvoice.payer_type,
            FinancingInvoice.payer_business_name,
            FinancingInvoice.payer_first_name,
            FinancingInvoice.payer_last_name,
            FinancingInvoice.approved_at,
            FinancingInvoice.created_at,
            WAITING_SINCE.label("waiting_since"),
            func.coalesce(
                PricingPlan.advance_rate_percentage, FinancingInvoice.advance_rate_percentage
            ).label("advance_rate_percentage"),
            func.coalesce(PricingPlan.fee_percentage, FinancingInvoice.fee_percentage).label(
                "fee_percentage"
            ),
            PricingPlan.repayment_type,
            PricingPlan.repayment_duration_days,
            PricingPlan.instalments,
            PricingPlan.grace_days,
            FinancingInvoice.requested_amount,
            FinancingInvoice.fee_amount,
            FinancingInvoice.principal_amount,
            FinancingInvoice.repayment_amount,
            FinancingInvoice.repayment_date,
            case((AVAILABLE > 0, AVAILABLE), else_=0).label("available_amount"),
            FinancingOffer.currency.label("limit_currency"),
            FinancingBusiness.id.label("business_id"),
            business_name().label("business"),
        )
        .join(FinancingOffer, FinancingOffer.id == FinancingInvoice.offer_id)
        .join(FinancingBusiness, FinancingBusiness.id == FinancingOffer.business_id)
        .join(Entity, Entity.id == FinancingInvoice.entity_id)
        .outerjoin(PricingPlan, PricingPlan.id == FinancingInvoice.pricing_plan_id)
        .where(WAITING)
        .order_by(*ORDER)
    )
    if stage == "review":
        stmt = stmt.where(FinancingInvoice.approved_at.is_(None))
    elif stage == "fund":
        stmt = stmt.where(FinancingInvoice.approved_at.is_not(None))
    return stmt


def _row(row: Any) -> Waiting:
    return Waiting(
        id=row.id,
        document_id=row.document_id,
        total_amount=row.total_amount,
        currency=row.currency,
        due_date=row.due_date,
        payer=payer_name(
            row.payer_type, row.payer_business_name, row.payer_first_name, row.payer_last_name
        ),
        business_id=row.business_id,
        business=row.business,
        approved=row.approved_at is not None,
        waiting_since=row.waiting_since,
        created_at=row.created_at,
        advance_rate_percentage=row.advance_rate_percentage,
        fee_percentage=row.fee_percentage,
        repayment_type=row.repayment_type,
        terms=plan_terms(
            row.repayment_type,
            row.repayment_duration_days,
            row.instalments or 1,
            row.grace_days or 0,
        ),
        requested_amount=row.requested_amount,
        fee_amount=row.fee_amount,
        principal_amount=row.principal_amount,
        repayment_amount=row.repayment_amount,
        repayment_date=row.repayment_date,
        available_amount=row.available_amount,
        limit_currency=row.limit_currency,
    )


@dataclass(frozen=True)
class QueuePage:
    rows: list[Waiting]
    next_cursor: str | None
    first: bool  # read from the oldest (no cursor)


@dataclass(frozen=True)
class Totals:
    """What waits, in one currency."""

    currency: str
    to_review: int
    to_fund: int
    requested_amount: int


async def read_page(console: Console, stage: str, cursor: str | None) -> QueuePage:
    """``PAGE_SIZE`` rows after ``cursor``, from the oldest without one (or with a cursor that
    is not ours)."""
    signer = console.request.app.state.signer
    after: tuple[Any, ...] | None = None
    if cursor:
        try:
            since, created, row_id = signer.loads(cursor, purpose=CURSOR)
            after = (
                datetime.fromisoformat(since),
                datetime.fromisoformat(created),
                uuid.UUID(row_id),
            )
        except (ValueError, TypeError):
            after = None
    stmt = waiting(stage)
    if after is not None:
        at, key = FinancingInvoice.created_at.type, FinancingInvoice.id.type
        bound = tuple_(literal(after[0], at), literal(after[1], at), literal(after[2], key))
        stmt = stmt.where(tuple_(*ORDER) > bound)
    found = [_row(r) for r in await console.session.execute(stmt.limit(PAGE_SIZE + 1))]
    rows = found[:PAGE_SIZE]
    next_cursor = None
    if len(found) > PAGE_SIZE:
        last = rows[-1]
        edge = [last.waiting_since.isoformat(), last.created_at.isoformat(), str(last.id)]
        next_cursor = signer.dumps(edge, purpose=CURSOR)
    return QueuePage(rows, next_cursor, after is None)


async def totals(console: Console) -> list[Totals]:
    """Everything waiting, per currency: one aggregate (COUNT, SUM ... GROUP BY currency)."""
    to_fund = func.count(FinancingInvoice.approved_at)
    rows = await console.session.execute(
        select(
            FinancingInvoice.currency,
            func.count() - to_fund,
            to_fund,
            func.coalesce(func.sum(FinancingInvoice.requested_amount), 0),
        )
        .where(WAITING)
        .group_by(FinancingInvoice.currency)
        .order_by(FinancingInvoice.currency)
    )
    return [Totals(c, int(review), int(fund), int(amount or 0)) for c, review, fund, amount in rows]


async def render(
    console: Console,
    *,
    stage: str = "all",
    cursor: str | None = None,
    results: list[actions.Result] | None = None,
    error: str | None = None,
    reason: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    results = results or []
    return console.render(
        "queue.html",
        status_code=status_code,
        page=await read_page(console, stage, cursor),
        totals=await totals(console),
        stage=stage,
        stages=STAGES,
        results=results,
        entries=[entry for result in results for entry in result.entries],
        error=error,
        reason=reason,
        reason_max=REASON_MAX,
        page_size=PAGE_SIZE,
    )


def _stage(value: str | None) -> str:
    return value if value in STAGES else "all"


@router.get("/queue")
async def queue_page(
    console: ConsoleDep, stage: str | None = None, after: str | None = None
) -> HTMLResponse:
    """The financing invoices waiting for a decision, oldest first, 50 a page."""
    return await render(console, stage=_stage(stage), cursor=after)


@router.post("/queue")
async def queue_action(console: ConsoleDep) -> HTMLResponse:
    """``action`` (approve, fund, reject with ``reason``) on each of the ``ids``, or on the one
    invoice of a row's button (``row=<action>:<id>``), each judged on its own; the queue again
    with what was done to each and the ledger postings funding made."""
    form = await console.form()
    stage = _stage(form.get("stage"))
    reason = (form.get("reason") or "").strip()
    row = form.get("row")
    if row:
        action, _, one = row.partition(":")
        given = [one]
    else:
        action, given = form.get("action") or "", form.all("ids")

    async def refuse(message: str) -> HTMLResponse:
        return await render(console, stage=stage, error=message, reason=reason, status_code=422)

    if action not in BULK:
        return await refuse(f"There is no action {action[:40]!r}: choose Approve, Fund or Reject")
    ids = list(dict.fromkeys(given))  # each once, in the order given
    if not ids:
        return await refuse("Select at least one invoice first (the boxes in the first column)")
    if len(ids) > BULK_MAX:
        return await refuse(f"Select at most {BULK_MAX} invoices at a time")
    if action == "reject" and not reason:
        return await refuse("Give the reason for rejecting (the Reason field)")
    if len(reason) > REASON_MAX:
        return await refuse(f"Keep the reason to {REASON_MAX} characters")
    results: list[actions.Result] = []
    valid: list[uuid.UUID] = []
    for one_id in ids:
        try:
            valid.append(uuid.UUID(one_id))
        except ValueError:
            results.append(actions.Result(one_id[:40], False, "not a financing invoice id"))
    await _lock(console, valid)
    for financing_invoice_id in valid:
        results.append(
            await actions.on_invoice(
                console, financing_invoice_id, BULK[action], reason=reason or None
            )
        )
    return await render(console, stage=stage, results=results)


async def _lock(console: Console, ids: list[uuid.UUID]) -> None:
    """Lock every selected invoice, then their offers, before acting on any: acting on them
    one by one would take invoice, offer, invoice, ... against the lock order
    (``lending.locks``). Each action's own locks are then already held."""
    if not ids:
        return
    fis = await locks.rows(
        console.session, select(FinancingInvoice).where(FinancingInvoice.id.in_(ids))
    )
    await locks.offers(console.session, sorted({fi.offer_id for fi in fis}))
