"""One lock order on every path (``lending/locks.py``), proven under load on PostgreSQL.

Rounds of concurrent transactions on one offer: the business confirms its drafts (Connect),
the operator funds, repays and closes the line, the payer pays part of a financed invoice, an
invoice is cancelled, and the sandbox resets the business, all at once. Each transaction runs
as its request would but without the route's retry, so a deadlock the database reports shows
up here, and each is held to the lock order (``locks.STRICT``). After every round the offer
holds no more than its limit and the ledger reconciles.

``FUNDLINE_LOCK_TEST_SECONDS`` runs it longer than the default few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.auth.service import Caller
from fundline.backoffice import service as backoffice
from fundline.connect import service as connect
from fundline.connect.schemas import ConfirmInvoice, ConfirmInvoicesRequest, Scope
from fundline.kit import clock
from fundline.kit.db import Database, is_retryable
from fundline.kit.errors import FundlineError
from fundline.lending import ledger, locks
from fundline.lending.builtin import BuiltinLender
from fundline.models import (
    ConnectSession,
    Entity,
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
)
from fundline.models.financing import WCInvoiceStatus
from fundline.receivables import lifecycle
from fundline.receivables.schemas import ReceivablePartiallyPaidPayload
from fundline.sandbox import service as sandbox
from tests.support.factories import Tenant, create_issued_invoice
from tests.support.lending import MANUAL, make_draft, make_offer, plans_of, walk

LENDER = BuiltinLender(lambda: MANUAL)

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)  # the figures of the run, with --log-cli-level=INFO

DURATION = float(os.environ.get("FUNDLINE_LOCK_TEST_SECONDS", "5"))
MIN_ROUNDS = 6  # two of each kind: a full line, a full line reset, a line of drafts
LIMIT = 500_000
EACH = 100_000  # at the plan's 100 % advance: room for five on the line
DRAFTS = 6  # in one request, waiting for the business: more than the line has room for

Op = Callable[[AsyncSession], Awaitable[Any]]


@dataclass
class Round:
    """One round's rows: the offer and what is financed on it when the round starts."""

    offer_id: uuid.UUID
    plan_id: uuid.UUID
    request_id: uuid.UUID
    drafts: list[FinancingInvoice] = field(default_factory=list)  # of one request
    waiting: list[FinancingInvoice] = field(default_factory=list)  # NEW, to fund
    funded: list[FinancingInvoice] = field(default_factory=list)  # FUNDED, to repay
    paying: uuid.UUID | None = None  # a receivable with a FUNDED financing, to pay in part
    canceling: uuid.UUID | None = None  # a receivable with a NEW financing, to cancel


async def _setup(db: Database, client: httpx.AsyncClient, tenant: Tenant, *, full: bool) -> Round:
    """A line with a request of drafts; when ``full``, invoices in every other state too (with
    them the line cannot be closed)."""
    # Each invoice's steps in a transaction of their own, as they would come.
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant, total_amount=LIMIT)
        plan = (await plans_of(session, offer))[0]  # FIXED_DURATION, 100 % advance
        first = await make_draft(session, offer, total_amount=EACH)
        request = await session.get(FinancingRequest, first.request_id)
        assert request is not None
        one = Round(offer.id, plan.id, request.id, drafts=[first])
        for _ in range(DRAFTS - 1):
            one.drafts.append(await make_draft(session, offer, total_amount=EACH, request=request))
    if not full:
        return one
    paying = await create_issued_invoice(client, tenant, amount=EACH)
    canceling = await create_issued_invoice(client, tenant, amount=EACH)
    for status, document, into in [
        ("NEW", None, one.waiting),
        ("FUNDED", None, one.funded),
        ("FUNDED", paying, one.funded),
        ("NEW", canceling, None),
    ]:
        async with db.session() as session, session.begin():
            line = await session.get(FinancingOffer, one.offer_id)
            assert line is not None
            invoice_id = uuid.UUID(document["id"]) if document else None
            draft = await make_draft(session, line, total_amount=EACH, invoice_id=invoice_id)
            plan = (await plans_of(session, line))[0]
            fi = await walk(session, draft, status, plan=plan)
            if into is not None:
                into.append(fi)
    one.paying, one.canceling = uuid.UUID(paying["id"]), uuid.UUID(canceling["id"])
    return one


def _ops(one: Round, tenant: Tenant, *, reset: bool) -> list[tuple[str, Op]]:
    """The round's transactions, named, shuffled: each is what one request does."""
    entity_id = uuid.UUID(tenant.entity_id)
    invoices_session = ConnectSession(
        token_hash="load",
        entity_id=entity_id,
        scope=Scope.INVOICES.value,
        request_id=one.request_id,
        created_at=clock.now(),
        expires_at=clock.now() + timedelta(hours=1),
    )

    def confirm(fis: list[FinancingInvoice]) -> tuple[str, Op]:
        chosen = [
            ConfirmInvoice(invoice_id=fi.invoice_id, pricing_plan_id=one.plan_id) for fi in fis
        ]
        payload = ConfirmInvoicesRequest(invoices=chosen)
        return "confirm", lambda s: connect.confirm_invoices(
            s, invoices_session, payload, widget=LENDER
        )

    def fund(fi: FinancingInvoice) -> tuple[str, Op]:
        return "fund", lambda s: backoffice.fund(s, fi.id, operator="load")

    def repay(fi: FinancingInvoice) -> tuple[str, Op]:
        return "repay", lambda s: backoffice.record_repayment(s, fi.id, EACH // 4, operator="load")

    async def entity(s: AsyncSession) -> Entity:
        found = await s.get(Entity, entity_id)
        assert found is not None
        return found

    def pay_part(receivable_id: uuid.UUID, amount_paid: int) -> tuple[str, Op]:
        payload = ReceivablePartiallyPaidPayload(amount_paid=amount_paid)

        async def op(s: AsyncSession) -> Any:
            return await lifecycle.mark_as_partially_paid(
                s, await entity(s), receivable_id, payload, lender=LENDER
            )

        return "pay part", op

    def cancel(receivable_id: uuid.UUID) -> tuple[str, Op]:
        async def op(s: AsyncSession) -> Any:
            return await lifecycle.cancel_receivable(
                s, await entity(s), receivable_id, lender=LENDER
            )

        return "cancel", op

    def close() -> tuple[str, Op]:
        return "close", lambda s: backoffice.close_offer(s, one.offer_id, operator="load")

    def reset_business() -> tuple[str, Op]:
        caller = Caller(partner_id=tenant.partner_id, client_id=uuid.uuid4(), token_hash="load")
        return "reset", lambda s: sandbox.reset_business(s, caller, entity_id)

    drafts = one.drafts
    ops = [
        confirm(drafts[0:2]),
        confirm(drafts[2:3]),
        confirm(drafts[3:5]),
        confirm(drafts[5:6]),
        *(fund(fi) for fi in one.waiting),
        *(repay(fi) for fi in one.funded),
        close(),
        close(),
    ]
    if one.paying is not None:
        ops += [pay_part(one.paying, 30_000), pay_part(one.paying, 60_000)]
    if one.canceling is not None:
        ops.append(cancel(one.canceling))
    if reset:
        ops.append(reset_business())
    random.shuffle(ops)
    return ops


async def _run(db: Database, name: str, op: Op, outcomes: Counter[str]) -> None:
    locks.STRICT.set(True)  # in this task's own context: a lock out of order fails the test
    await asyncio.sleep(random.uniform(0, 0.03))
    try:
        async with db.session() as session, session.begin():
            await op(session)
    except FundlineError as exc:
        outcomes[f"{name}: refused {exc.status_code}"] += 1
    except DBAPIError as exc:
        if not is_retryable(exc):
            raise
        log.warning("%s: %s\n%s", name, exc.orig, getattr(exc.orig, "detail", ""))
        outcomes["deadlocks"] += 1
    else:
        outcomes[f"{name}: done"] += 1


async def _overspent(db: Database, one: Round) -> bool:
    """Whether the offer holds more than its limit, or its counters went wrong; the ledger
    must reconcile either way."""
    async with db.session() as session:
        assert await ledger.reconcile(session) == []
        offer = await session.get(FinancingOffer, one.offer_id)
        if offer is None:  # reset
            return False
        if offer.status == "CLOSED":
            unsettled = await session.scalar(
                select(func.count()).where(
                    FinancingInvoice.offer_id == offer.id,
                    FinancingInvoice.status.in_((WCInvoiceStatus.DRAFT, WCInvoiceStatus.NEW)),
                )
            )
            assert unsettled == 0
        return (
            min(offer.reserved_amount, offer.outstanding_amount) < 0
            or offer.reserved_amount + offer.outstanding_amount > offer.total_amount
        )


@pytest.mark.usefixtures("postgres_only")
async def test_closing_confirming_funding_paying_and_resetting_at_once_never_deadlock(
    db: Database, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    outcomes: Counter[str] = Counter()
    rounds = overspent = transactions = 0
    started = time.monotonic()
    while time.monotonic() - started < DURATION or rounds < MIN_ROUNDS:
        kind = rounds % 3
        one = await _setup(db, client, tenant, full=kind != 2)
        ops = _ops(one, tenant, reset=kind == 1)
        await asyncio.gather(*(_run(db, name, op, outcomes) for name, op in ops))
        transactions += len(ops)
        overspent += await _overspent(db, one)
        rounds += 1
    log.info(
        "%d rounds, %d concurrent transactions in %.1f s: %d deadlocks, %d overspent; %s",
        rounds,
        transactions,
        time.monotonic() - started,
        outcomes["deadlocks"],
        overspent,
        dict(sorted(outcomes.items())),
    )
    assert (outcomes["deadlocks"], overspent) == (0, 0), dict(outcomes)
    # The load did what it is for: invoices confirmed, funded, repaid, paid in part and
    # cancelled, lines reset; closing was tried (it succeeds only while nothing is confirmed).
    for name in ("confirm", "fund", "repay", "pay part", "cancel", "reset"):
        assert outcomes[f"{name}: done"] > 0, dict(outcomes)
    assert outcomes["close: done"] + outcomes["close: refused 409"] > 0
