"""Servicing: the state machines of offers and financing invoices, and the clock that drives them.

Financing invoice: ``DRAFT`` → (confirm) ``NEW`` → (fund) ``FUNDED`` | (reject) ``REJECTED``;
``FUNDED`` → (late) ``LATE`` → (default) ``DEFAULTED``; ``FUNDED``/``LATE`` → (repaid in full)
``PAID``; a repayment that clears every overdue instalment brings ``LATE`` back to ``FUNDED``;
a write-off of a ``LATE``/``DEFAULTED`` invoice books the rest as a loss and leaves it
``DEFAULTED``. A ``DRAFT`` whose request expires is deleted (released), so its invoice can be
requested again.

Offer: ``NEW`` → (accept) ``ACCEPTED`` → (issue) ``CURRENT``; ``NEW`` → ``EXPIRED`` after its
validity. While issued, its status follows its invoices: ``DEFAULTED`` once any defaulted
(final), else ``LATE`` while any is late, else ``CURRENT``. ``CLOSED`` is the operator's
decision (``close_offer``): the line is withdrawn, allowed only while none of its invoices is
``NEW``, ``FUNDED`` or ``LATE``; a closed or expired line lets underwriting extend a new one.

Limits: ``available = total - reserved - outstanding``. Confirming reserves the requested
amount; funding turns the reservation into outstanding (the repayment amount); rejecting
releases it; repayments and write-offs reduce outstanding.

Every function locks what it changes, in the order of ``locks`` (an invoice before its offer),
records a status-history row and an outbox event, posts ledger entries where money moves, and
raises ``Conflict`` naming the current status on an illegal transition. None commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.financing import record
from fundline.kit import clock
from fundline.kit.errors import Conflict, NotFound, Unprocessable
from fundline.kit.statements import Insert, Update, written
from fundline.lending import ledger, locks, pricing
from fundline.lending.policy import Policy
from fundline.lending.schedule import build_schedule
from fundline.models import (
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
    FinancingStatusChange,
    Instalment,
    PricingPlan,
)
from fundline.models.financing import (
    FinancingRequestStatus,
    WCInvoiceStatus,
    WCOfferStatus,
)
from fundline.webhooks import outbox

# --- offers ----------------------------------------------------------------------------------


async def _post(
    session: AsyncSession,
    fi: FinancingInvoice,
    kind: str,
    memo: str,
    receivable: int,
    counter_account: str,
) -> None:
    """One two-line entry: ``receivable`` onto the invoice's receivable, the opposite onto
    ``counter_account``."""
    await ledger.post(
        session,
        entity_id=fi.entity_id,
        financing_invoice_id=fi.id,
        kind=kind,
        currency=fi.currency,
        memo=f"{fi.document_id}: {memo}",
        lines=[(ledger.FINANCED_RECEIVABLE, receivable), (counter_account, -receivable)],
    )


async def accept_offer(
    session: AsyncSession, offer: FinancingOffer, *, policy: Policy
) -> FinancingOffer:
    """``NEW`` → ``ACCEPTED``; under the auto-review policy issued at once (→ ``CURRENT``)."""
    offer = await locks.offer(session, offer.id)
    if offer.status == WCOfferStatus.NEW and offer.expires_at <= clock.now():
        raise Conflict(
            f"Financing offer is NEW but expired on {offer.expires_at.date().isoformat()}; "
            "it can no longer be accepted"
        )
    record.require_offer(offer, (WCOfferStatus.NEW,), "accepted")
    offer.accepted_at = clock.now()
    await record.move_offer(session, offer, WCOfferStatus.ACCEPTED)
    if policy.review == "auto":
        offer = await issue_offer(session, offer)
    return offer


async def issue_offer(session: AsyncSession, offer: FinancingOffer) -> FinancingOffer:
    """``ACCEPTED`` → ``CURRENT``: the credit line is open (the operator's step under manual
    review)."""
    offer = await locks.offer(session, offer.id)
    record.require_offer(offer, (WCOfferStatus.ACCEPTED,), "issued")
    offer.issued_at = clock.now()
    await record.move_offer(session, offer, WCOfferStatus.CURRENT)
    return offer


async def close_offer(
    session: AsyncSession, offer: FinancingOffer, *, cause: str
) -> FinancingOffer:
    """The operator withdraws the line (→ ``CLOSED``); its unconfirmed drafts are released."""
    offer, invoices = await locks.offer_and_live_invoices(session, offer.id)
    record.require_offer(
        offer,
        (WCOfferStatus.NEW, WCOfferStatus.ACCEPTED, WCOfferStatus.CURRENT, WCOfferStatus.LATE),
        "closed",
    )
    busy = sorted({fi.status for fi in invoices if fi.status != WCInvoiceStatus.DRAFT})
    if busy:
        raise Conflict(
            f"Financing offer is {offer.status} with invoices still {' and '.join(busy)}; "
            "it can be closed once they are settled"
        )
    for fi in invoices:
        await release_draft(session, fi, cause=f"offer closed: {cause}")
    await record.move_offer(session, offer, WCOfferStatus.CLOSED, cause=cause)
    return offer


# --- financing invoices ----------------------------------------------------------------------


async def confirm_invoice(
    session: AsyncSession,
    fi: FinancingInvoice,
    *,
    plan: PricingPlan,
    requested_amount: int | None,
    policy: Policy,
) -> FinancingInvoice:
    """``confirm_invoices`` of one invoice."""
    (confirmed,) = await confirm_invoices(session, [(fi, plan, requested_amount)], policy=policy)
    return confirmed


# What confirming writes on a financing invoice (besides its status).
_CONFIRMED = (
    "pricing_plan_id",
    "advance_rate_percentage",
    "fee_percentage",
    "requested_amount",
    "fee_amount",
    "principal_amount",
    "repayment_amount",
    "confirmed_at",
)
_CONFIRM = Update(FinancingInvoice, scope="entity_id")
_RESERVE = Update(FinancingOffer, scope="entity_id")
_REQUEST_CONFIRMED = Update(FinancingRequest, scope="entity_id")
_HISTORY = Insert(FinancingStatusChange)


async def confirm_invoices(
    session: AsyncSession,
    chosen: Sequence[tuple[FinancingInvoice, PricingPlan, int | None]],
    *,
    policy: Policy,
) -> list[FinancingInvoice]:
    """``DRAFT`` → ``NEW`` for each ``(invoice, plan, requested amount)``, in order: price it
    on the plan and reserve the amount on its offer. All of one entity; all or none (the
    caller's transaction rolls back on an error).

    The price is based on what the invoice still owes (``pricing.amount_owed``: less than its
    total once partly paid). ``requested_amount`` defaults to the plan's maximum,
    ``floor(owed * advance_rate / 10000)``. More than the offer has available (after the
    invoices before it) is a 409; an amount outside ``1 … max`` a 422. Under the auto-review
    policy each invoice is then approved (and, with ``auto_fund``, funded).

    Each invoice gets its history row and ``status_changed`` event, its offer an ``updated``
    event with the amounts after it; the invoices are written in one statement, their history
    and events in one each.
    """
    if not chosen:
        return []
    ids = [fi.id for fi, _, _ in chosen]
    if locks.held(session, FinancingInvoice, ids):
        # Locked by the caller in this transaction (the Connect confirmation does): current.
        fis = list({fi.id: fi for fi, _, _ in chosen}.values())
    else:
        fis = await locks.rows(
            session,
            select(FinancingInvoice).where(
                FinancingInvoice.entity_id == chosen[0][0].entity_id,
                FinancingInvoice.id.in_(ids),
            ),
        )
    by_id = {fi.id: fi for fi in fis}
    if len(by_id) < len({fi.id for fi, _, _ in chosen}):
        raise NotFound("Financing invoice not found")
    for fi, plan, _ in chosen:
        record.require(by_id[fi.id], (WCInvoiceStatus.DRAFT,), "confirmed")
        if plan.offer_id != fi.offer_id:
            raise Unprocessable(
                f"Pricing plan {plan.id} is not a plan of this invoice's offer",
                loc=("body", "pricing_plan_id"),
            )
    offers = {o.id: o for o in await locks.offers(session, sorted({fi.offer_id for fi in fis}))}
    owed = await pricing.amounts_owed(session, fis)
    now = clock.now()
    changes: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    reserved: dict[uuid.UUID, FinancingOffer] = {}
    for chosen_fi, plan, requested_amount in chosen:
        fi = by_id[chosen_fi.id]
        offer = offers[fi.offer_id]
        if offer.status != WCOfferStatus.CURRENT:
            raise Conflict(
                f"Financing offer is {offer.status}; invoices can be confirmed only on a "
                "CURRENT offer"
            )
        if offer.currency != fi.currency:
            raise Conflict(f"The invoice is in {fi.currency} and the offer in {offer.currency}")
        try:
            quote = pricing.quote(owed[fi.id], plan, requested_amount=requested_amount)
        except ValueError as exc:
            raise Unprocessable(str(exc), loc=("body", "requested_amount")) from None
        if quote.requested_amount > offer.available_amount:
            raise Conflict(
                f"Requested amount {quote.requested_amount} is more than the "
                f"{offer.available_amount} available on the financing offer"
            )
        # Held as written (below): the offers' UPDATE after the loop writes it.
        written(offer, {"reserved_amount": offer.reserved_amount + quote.requested_amount})
        reserved[offer.id] = offer
        values = dict(
            zip(
                _CONFIRMED,
                (
                    plan.id,
                    plan.advance_rate_percentage,
                    plan.fee_percentage,
                    quote.requested_amount,
                    quote.fee_amount,
                    quote.principal_amount,
                    quote.repayment_amount,
                    now,
                ),
                strict=True,
            )
        )
        changes.append({"id": fi.id, "status": WCInvoiceStatus.NEW, **values, "updated_at": now})
        history.append(
            record.change_row(fi.id, WCInvoiceStatus.DRAFT, WCInvoiceStatus.NEW, _CONFIRMED_BY, now)
        )
        events += [
            outbox.row(
                fi,
                FinancingInvoice,
                fi.id,
                "status_changed",
                record.invoice_data(fi, WCInvoiceStatus.NEW, previous=WCInvoiceStatus.DRAFT),
            ),
            outbox.row(
                outbox.Owner(fi.partner_id, offer.entity_id),
                FinancingOffer,
                offer.id,
                "updated",
                record.amounts_data(offer),
            ),
        ]
    requests = {
        request_id: request
        for request_id in dict.fromkeys(fi.request_id for fi in fis)  # each request once
        if (request := await session.get(FinancingRequest, request_id)) is not None
        and request.status == FinancingRequestStatus.OPEN
    }
    amounts: list[dict[str, Any]] = [
        {"id": o.id, "reserved_amount": o.reserved_amount, "updated_at": now}
        for o in reserved.values()
    ]
    confirmed_requests: list[dict[str, Any]] = [
        {"id": r.id, "status": FinancingRequestStatus.CONFIRMED, "updated_at": now}
        for r in requests.values()
    ]
    # Every object holds what the statements below write, told before they run (a failure
    # rolls back, which expires them): inside a savepoint, one flush then sees them all.
    for objects, rows in ((reserved, amounts), (requests, confirmed_requests), (by_id, changes)):
        for row in rows:
            written(objects[row["id"]], {k: v for k, v in row.items() if k != "id"})
    # The offers, the requests, then the invoices, as the unit of work wrote them; a row not
    # updated is an error, as in a flush.
    entity_id = fis[0].entity_id
    await _RESERVE.every(session, amounts, scope=entity_id)
    await _REQUEST_CONFIRMED.every(session, confirmed_requests, scope=entity_id)
    await _CONFIRM.rows(session, changes, scope=entity_id)
    await _HISTORY.rows(session, history)
    await outbox.write(session, events)
    confirmed = [by_id[fi.id] for fi, _, _ in chosen]
    if policy.review == "auto":
        confirmed = [
            await approve(session, fi, cause="approved by the auto-review policy", policy=policy)
            for fi in confirmed
        ]
    return confirmed


_CONFIRMED_BY = "confirmed by the business"


async def approve(
    session: AsyncSession, fi: FinancingInvoice, *, cause: str, policy: Policy
) -> FinancingInvoice:
    """Approve a ``NEW`` invoice (``approved_at``; it stays ``NEW``: Monite has no approved
    status) and fund it at once when the policy has ``auto_fund``. Once only: approving an
    approved invoice is a 409."""
    fi = await locks.invoice(session, fi.id)
    record.require(fi, (WCInvoiceStatus.NEW,), "approved")
    if fi.approved_at is not None:
        raise Conflict("Financing invoice is NEW and already approved; fund it to disburse")
    fi.approved_at = clock.now()
    await record.note(session, fi, cause=f"approved: {cause}")
    if policy.auto_fund:
        fi = await fund(session, fi, cause="funded at once by the policy (auto_fund)")
    return fi


async def fund(session: AsyncSession, fi: FinancingInvoice, *, cause: str) -> FinancingInvoice:
    """``NEW`` → ``FUNDED``: fix the repayment schedule, disburse, book the fee."""
    fi = await locks.invoice(session, fi.id)
    record.require(fi, (WCInvoiceStatus.NEW,), "funded")
    offer = await locks.offer(session, fi.offer_id)
    if offer.status not in (WCOfferStatus.CURRENT, WCOfferStatus.LATE):
        raise Conflict(f"Financing offer is {offer.status}; its invoices can no longer be funded")
    plan = await session.get(PricingPlan, fi.pricing_plan_id)
    assert plan is not None  # set, with the amounts, when the invoice was confirmed
    repayment, fee = fi.repayment_amount or 0, fi.fee_amount or 0
    principal = repayment - fee
    schedule = build_schedule(
        plan,
        repayment_amount=repayment,
        fee_amount=fee,
        funded_on=clock.today(),
        invoice_due_date=fi.due_date,
    )
    session.add_all(
        Instalment(
            financing_invoice_id=fi.id,
            sequence=item.sequence,
            due_date=item.due_date,
            amount=item.amount,
            fee_amount=item.fee_amount,
            principal_amount=item.principal_amount,
            paid_amount=0,
        )
        for item in schedule
    )
    fi.repayment_date = fi.next_due_date = schedule[0].due_date
    fi.funded_at = clock.now()
    offer.reserved_amount -= repayment
    offer.outstanding_amount += repayment
    if principal:
        await _post(session, fi, "disbursement", "advance paid out", principal, ledger.CASH)
    if fee:
        await _post(session, fi, "fee", "financing fee", fee, ledger.FEE_INCOME)
    await record.move(session, fi, WCInvoiceStatus.FUNDED, cause=cause)
    await record.offer_amounts_changed(session, offer)
    return fi


async def reject(session: AsyncSession, fi: FinancingInvoice, *, cause: str) -> FinancingInvoice:
    """``NEW`` → ``REJECTED``: the reservation is released."""
    fi = await locks.invoice(session, fi.id)
    record.require(fi, (WCInvoiceStatus.NEW,), "rejected")
    offer = await locks.offer(session, fi.offer_id)
    offer.reserved_amount -= fi.requested_amount or 0
    fi.closed_at = clock.now()
    await record.move(session, fi, WCInvoiceStatus.REJECTED, cause=cause)
    await record.offer_amounts_changed(session, offer)
    return fi


async def record_repayment(
    session: AsyncSession, fi: FinancingInvoice, amount: int, *, cause: str
) -> FinancingInvoice:
    """Take ``amount`` off what a ``FUNDED``/``LATE`` invoice owes, the earliest unpaid
    instalment first, fee before principal (the ledger entry's memo names the split);
    ``PAID`` (limit released) when nothing is left."""
    if type(amount) is not int or amount < 1:
        raise Unprocessable(
            "amount must be a positive integer of minor units", loc=("body", "amount")
        )
    fi = await locks.invoice(session, fi.id)
    record.require(fi, (WCInvoiceStatus.FUNDED, WCInvoiceStatus.LATE), "repaid")
    remaining = (fi.repayment_amount or 0) - fi.repaid_amount
    if amount > remaining:
        raise Unprocessable(
            f"amount {amount} is more than the {remaining} still owed", loc=("body", "amount")
        )
    offer = await locks.offer(session, fi.offer_id)
    instalments = await _instalments(session, fi.id)
    today = clock.today()
    was_overdue = _overdue(instalments, today)
    fee, principal = _apply(instalments, amount)
    fi.next_due_date = next_due(instalments)
    fi.repaid_amount += amount
    offer.outstanding_amount -= amount
    memo = f"repaid {amount} (fee {fee}, principal {principal}): {cause}"
    await _post(session, fi, "repayment", memo, -amount, ledger.CASH)
    if fi.repaid_amount == fi.repayment_amount:
        fi.closed_at = clock.now()
        await record.move(session, fi, WCInvoiceStatus.PAID, cause=cause)
    elif fi.status == WCInvoiceStatus.LATE and was_overdue and not _overdue(instalments, today):
        # Late because of the schedule, and the schedule is met again (an operator's "late"
        # with nothing overdue stays until the invoice is paid).
        await record.move(
            session, fi, WCInvoiceStatus.FUNDED, cause=f"{cause}; no instalment is overdue any more"
        )
    else:
        await record.note(session, fi, cause=f"repaid {amount}: {cause}")
    await record.sync_offer_status(session, offer)
    await record.offer_amounts_changed(session, offer)
    return fi


def next_due(instalments: Sequence[Instalment]) -> date | None:
    """The due date of the earliest instalment not paid in full (``FinancingInvoice.
    next_due_date``); ``None`` when all are paid."""
    return min((i.due_date for i in instalments if i.paid_amount < i.amount), default=None)


def _apply(instalments: Sequence[Instalment], amount: int) -> tuple[int, int]:
    """Pay ``amount`` into the instalments, the earliest unpaid first and, within each, its fee
    before its principal (an instalment's ``paid_amount`` covers its fee first). Returns the
    parts of ``amount`` that paid fees and principal."""
    left, fee = amount, 0
    for instalment in instalments:
        paying = min(left, instalment.amount - instalment.paid_amount)
        fee += min(paying, max(0, instalment.fee_amount - instalment.paid_amount))
        instalment.paid_amount += paying
        left -= paying
    assert left == 0  # never more than is owed: the caller checked
    return fee, amount - fee


async def mark_late(session: AsyncSession, fi: FinancingInvoice, *, cause: str) -> FinancingInvoice:
    """``FUNDED`` → ``LATE`` (its offer turns ``LATE`` too)."""
    fi = await locks.invoice(session, fi.id)
    record.require(fi, (WCInvoiceStatus.FUNDED,), "marked late")
    offer = await locks.offer(session, fi.offer_id)
    await record.move(session, fi, WCInvoiceStatus.LATE, cause=cause)
    await record.sync_offer_status(session, offer)
    return fi


async def mark_defaulted(
    session: AsyncSession, fi: FinancingInvoice, *, cause: str
) -> FinancingInvoice:
    """``LATE`` → ``DEFAULTED`` (its offer becomes ``DEFAULTED``); still owed until written off."""
    fi = await locks.invoice(session, fi.id)
    record.require(fi, (WCInvoiceStatus.LATE,), "marked defaulted")
    offer = await locks.offer(session, fi.offer_id)
    await record.move(session, fi, WCInvoiceStatus.DEFAULTED, cause=cause)
    await record.sync_offer_status(session, offer)
    return fi


async def write_off(session: AsyncSession, fi: FinancingInvoice, *, cause: str) -> FinancingInvoice:
    """Book what a ``LATE``/``DEFAULTED`` invoice still owes as a credit loss (→ ``DEFAULTED``)."""
    fi = await locks.invoice(session, fi.id)
    record.require(fi, (WCInvoiceStatus.LATE, WCInvoiceStatus.DEFAULTED), "written off")
    if fi.closed_at is not None:
        raise Conflict(f"Financing invoice is {fi.status} and already written off")
    offer = await locks.offer(session, fi.offer_id)
    remaining = (fi.repayment_amount or 0) - fi.repaid_amount
    await _post(session, fi, "write_off", cause, -remaining, ledger.CREDIT_LOSSES)
    offer.outstanding_amount -= remaining
    fi.closed_at = clock.now()
    if fi.status == WCInvoiceStatus.LATE:
        await record.move(session, fi, WCInvoiceStatus.DEFAULTED, cause=f"written off: {cause}")
    else:
        await record.note(session, fi, cause=f"written off {remaining}: {cause}")
    await record.sync_offer_status(session, offer)
    await record.offer_amounts_changed(session, offer)
    return fi


async def release_draft(session: AsyncSession, fi: FinancingInvoice, *, cause: str) -> None:
    """Delete an unconfirmed ``DRAFT`` (and its history), freeing its invoice for a new request."""
    await record.release_draft(session, fi, cause=cause)


# --- the clock -------------------------------------------------------------------------------


async def tick(session: AsyncSession, *, policy: Policy) -> dict[str, int]:
    """Everything the passing of time does, up to ``clock.now()``; returns what it changed.

    Offers past their validity expire; requests past their session expire and their drafts are
    released; a funded invoice with an instalment due before today and unpaid turns ``LATE``;
    a late one whose oldest unpaid instalment is more than ``default_after_days_late`` days
    overdue turns ``DEFAULTED``. Rows another worker holds are skipped (PostgreSQL's
    ``SKIP LOCKED``); the next tick takes them.
    """
    now, today = clock.now(), clock.today()
    counts = {
        "offers_expired": await _expire_offers(session, now),
        **await record.expire_requests(session, now),
        **await _mark_overdue(session, today, policy),
    }
    await session.flush()
    return counts


async def _expire_offers(session: AsyncSession, now: datetime) -> int:
    expired = await locks.claim(
        session,
        select(FinancingOffer).where(
            FinancingOffer.status == WCOfferStatus.NEW, FinancingOffer.expires_at <= now
        ),
    )
    for offer in expired:
        await record.move_offer(
            session, offer, WCOfferStatus.EXPIRED, cause="not accepted within its validity"
        )
    return len(expired)


async def _mark_overdue(session: AsyncSession, today: date, policy: Policy) -> dict[str, int]:
    days = policy.default_after_days_late
    cutoff = today - timedelta(days=days)
    late = await locks.claim(
        session, _with_unpaid_instalment((WCInvoiceStatus.FUNDED,), due_before=today)
    )
    # Funded or late, unpaid for longer than the policy allows: defaulted, once late.
    overdue = await locks.claim(
        session,
        _with_unpaid_instalment((WCInvoiceStatus.FUNDED, WCInvoiceStatus.LATE), due_before=cutoff),
    )
    # Their offers all at once, in order: locked one by one as each invoice moves, two ticks
    # (the worker's and a sandbox clock move) could take two offers in opposite orders.
    await locks.offers(session, sorted({fi.offer_id for fi in [*late, *overdue]}))
    for fi in late:
        await mark_late(session, fi, cause="an instalment fell due unpaid")
    defaulted = [fi for fi in overdue if fi.status == WCInvoiceStatus.LATE]
    for fi in defaulted:
        await mark_defaulted(session, fi, cause=f"an instalment unpaid more than {days} days")
    return {"invoices_late": len(late), "invoices_defaulted": len(defaulted)}


# --- reading ---------------------------------------------------------------------------------


async def load_details(
    session: AsyncSession, fis: Sequence[FinancingInvoice]
) -> dict[uuid.UUID, tuple[list[Instalment], list[FinancingStatusChange]]]:
    """Each invoice's instalments (by sequence) and status history (oldest first), two queries."""
    details: dict[uuid.UUID, tuple[list[Instalment], list[FinancingStatusChange]]] = {
        fi.id: ([], []) for fi in fis
    }
    if not details:
        return details
    ids = {"ids": list(details)}
    for instalment in await session.scalars(_INSTALMENTS_OF, ids):
        details[instalment.financing_invoice_id][0].append(instalment)
    for change in await session.scalars(_HISTORY_OF, ids):
        details[change.financing_invoice_id][1].append(change)
    return details


# Built once: every invoice answered reads them.
_INSTALMENTS_OF = (
    select(Instalment)
    .where(Instalment.financing_invoice_id.in_(bindparam("ids", expanding=True)))
    .order_by(Instalment.financing_invoice_id, Instalment.sequence)
)
_HISTORY_OF = (
    select(FinancingStatusChange)
    .where(FinancingStatusChange.financing_invoice_id.in_(bindparam("ids", expanding=True)))
    .order_by(FinancingStatusChange.at, FinancingStatusChange.id)
)


# --- helpers ---------------------------------------------------------------------------------


def _with_unpaid_instalment(
    statuses: tuple[WCInvoiceStatus, ...], *, due_before: date
) -> Select[FinancingInvoice]:
    """The ``statuses`` invoices with an instalment not paid in full due before ``due_before``:
    the earliest such instalment's due date is the invoice's ``next_due_date``, so the live
    book's index (``ix_financing_invoices_overdue``) finds them. (Read from the instalments,
    the tick cost PostgreSQL 1.3 s at a million invoices, every beat.) The statuses are
    literals, so a cached generic plan can still use that partial index. A ``FUNDED`` or
    ``LATE`` invoice is never closed (closed ones are paid, rejected or defaulted)."""
    listed: BindParameter[list[str]] = bindparam(
        "statuses", [s.value for s in statuses], literal_execute=True
    )
    return select(FinancingInvoice).where(
        FinancingInvoice.status.in_(listed),
        FinancingInvoice.closed_at.is_(None),
        FinancingInvoice.next_due_date < due_before,
    )


def _overdue(instalments: Sequence[Instalment], today: date) -> bool:
    return any(i.due_date < today and i.paid_amount < i.amount for i in instalments)


async def _instalments(session: AsyncSession, fi_id: uuid.UUID) -> list[Instalment]:
    return list(
        await session.scalars(
            select(Instalment)
            .where(Instalment.financing_invoice_id == fi_id)
            .order_by(Instalment.sequence)
        )
    )
