"""Lending rows for the tests, made straight in the database: a business with an offer and its
plans, DRAFT financing invoices and the servicing steps that bring one to any status (for the
lending-core tests); financing invoices in any status without the Connect flow (for the lender
and sandbox tests); the credit policies they run under.
"""

from __future__ import annotations

import dataclasses
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.config import Mode
from fundline.kit import clock
from fundline.kit.db import Database
from fundline.lending import servicing
from fundline.lending.policy import PlanPolicy, Policy, default_policy_file, parse_policy
from fundline.lending.underwriting import pricing_plans
from fundline.models import (
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
    PricingPlan,
)
from tests.support.factories import Tenant

LIMIT = 1_000_000
FIXED_DURATION = PlanPolicy("FIXED_DURATION", 10_000, 300, 30)
MULTIPLE_DURATION = PlanPolicy("MULTIPLE_DURATION", 9_000, 400, 90, instalments=3)
FIXED_DATE = PlanPolicy("FIXED_DATE", 8_000, 250, None, grace_days=5)
PLANS = (FIXED_DURATION, MULTIPLE_DURATION, FIXED_DATE)

# The servicing steps after confirmation (NEW) that lead to each status.
PATHS: dict[str, tuple[str, ...]] = {
    "NEW": (),
    "FUNDED": ("fund",),
    "REJECTED": ("reject",),
    "LATE": ("fund", "late"),
    "DEFAULTED": ("fund", "late", "default"),
    "PAID": ("fund", "repay"),
}
STATUSES = ("DRAFT", *PATHS)


def sandbox_policy(**changes: Any) -> Policy:
    """The shipped sandbox policy with ``changes`` (e.g. ``review="manual"``)."""
    data = tomllib.loads(default_policy_file(Mode.SANDBOX).read_text())
    return dataclasses.replace(parse_policy(data), **changes)


MANUAL = sandbox_policy(review="manual", auto_fund=False)
AUTO = sandbox_policy()


def manual(policy: Policy, *, auto_fund: bool = False) -> Policy:
    """``policy`` with manual review: a confirmed invoice waits, NEW, for the operator."""
    return dataclasses.replace(policy, review="manual", auto_fund=auto_fund)


@contextmanager
def serving_policy(app: FastAPI, policy: Policy) -> Iterator[None]:
    """Run the app with another credit policy for a while."""
    loaded = app.state.policy
    app.state.policy = policy
    try:
        yield
    finally:
        app.state.policy = loaded


# A valid policy file: the policy tests change one line of it at a time.
GOOD_POLICY = """
currency = "USD"
[limit]
floor = 100
cap = 1000
share_bp = 1000
history_days = 90
[offers]
validity_days = 7
[requests]
ttl_seconds = 600
min_days_to_due = 7
[review]
mode = "manual"
auto_fund = false
[servicing]
default_after_days_late = 15
[[plans]]
repayment_type = "FIXED_DATE"
advance_rate_percentage = 9000
fee_percentage = 100
"""


async def make_offer(
    session: AsyncSession,
    tenant: Tenant,
    *,
    status: str = "CURRENT",
    total_amount: int = LIMIT,
    plans: tuple[PlanPolicy, ...] = PLANS,
    expires_in: timedelta = timedelta(days=30),
) -> FinancingOffer:
    """An offer of ``tenant``'s entity (its business created ONBOARDED on first use)."""
    entity_id = uuid.UUID(tenant.entity_id)
    business = await session.scalar(
        select(FinancingBusiness).where(FinancingBusiness.entity_id == entity_id)
    )
    now = clock.now()
    if business is None:
        business = FinancingBusiness(
            entity_id=entity_id, partner_id=tenant.partner_id, status="ONBOARDED", onboarded_at=now
        )
        session.add(business)
        await session.flush()
    issued = status not in ("NEW", "ACCEPTED", "EXPIRED")
    offer = FinancingOffer(
        business_id=business.id,
        entity_id=entity_id,
        status=status,
        currency="USD",
        total_amount=total_amount,
        reserved_amount=0,
        outstanding_amount=0,
        expires_at=now + expires_in,
        accepted_at=now if status != "NEW" else None,
        issued_at=now if issued else None,
    )
    session.add(offer)
    await session.flush()
    session.add_all(pricing_plans(offer, plans))
    await session.flush()
    return offer


async def plans_of(session: AsyncSession, offer: FinancingOffer) -> list[PricingPlan]:
    return list(
        await session.scalars(
            select(PricingPlan)
            .where(PricingPlan.offer_id == offer.id)
            .order_by(PricingPlan.position)
        )
    )


async def make_draft(
    session: AsyncSession,
    offer: FinancingOffer,
    *,
    total_amount: int = 100_000,
    due_in_days: int = 45,
    invoice_type: str = "receivable",
    invoice_id: uuid.UUID | None = None,
    request: FinancingRequest | None = None,
    ttl: timedelta = timedelta(hours=1),
) -> FinancingInvoice:
    """A DRAFT financing invoice on ``offer`` (in a new open request unless one is given)."""
    business = await session.get(FinancingBusiness, offer.business_id)
    assert business is not None
    if request is None:
        request = FinancingRequest(
            entity_id=offer.entity_id,
            partner_id=business.partner_id,
            status="open",
            expires_at=clock.now() + ttl,
        )
        session.add(request)
        await session.flush()
    invoice_id = invoice_id or uuid.uuid4()
    today = clock.today()
    fi = FinancingInvoice(
        partner_id=business.partner_id,
        entity_id=offer.entity_id,
        request_id=request.id,
        offer_id=offer.id,
        invoice_id=invoice_id,
        live_invoice_id=invoice_id,
        type=invoice_type,
        status="DRAFT",
        document_id=f"INV-{invoice_id.hex[:8].upper()}",
        issue_date=today,
        due_date=today + timedelta(days=due_in_days),
        total_amount=total_amount,
        currency="USD",
        payer_type="BUSINESS",
        payer_business_name="Globex Corp",
    )
    session.add(fi)
    await session.flush()
    return fi


async def walk(
    session: AsyncSession,
    fi: FinancingInvoice,
    status: str,
    *,
    plan: PricingPlan,
    requested_amount: int | None = None,
) -> FinancingInvoice:
    """Bring a DRAFT ``fi`` to ``status`` through the servicing functions (manual review)."""
    if status == "DRAFT":
        return fi
    fi = await servicing.confirm_invoice(
        session, fi, plan=plan, requested_amount=requested_amount, policy=MANUAL
    )
    for step in PATHS[status]:
        if step == "fund":
            fi = await servicing.fund(session, fi, cause="test: fund")
        elif step == "reject":
            fi = await servicing.reject(session, fi, cause="test: reject")
        elif step == "late":
            fi = await servicing.mark_late(session, fi, cause="test: late")
        elif step == "default":
            fi = await servicing.mark_defaulted(session, fi, cause="test: default")
        elif step == "repay":
            owed = (fi.repayment_amount or 0) - fi.repaid_amount
            fi = await servicing.record_repayment(session, fi, owed, cause="test: repay")
    assert fi.status == status
    return fi


# --- financing invoices in any status, for the lender and sandbox tests ------------------------
#
# Built with the rows above (an onboarded business, a CURRENT offer with one plan, an open
# request, a DRAFT financing invoice); every later step goes through ``lending.servicing`` so
# offers, ledger and history are what the real flow leaves.

FINANCED_LIMIT = 5_000_000
ADVANCE_RATE = 8000  # 80 %
FEE = 300  # 3 %
DURATION_DAYS = 30
PLAN = PlanPolicy("FIXED_DURATION", ADVANCE_RATE, FEE, DURATION_DAYS)


async def current_offer(
    session: AsyncSession, tenant: Tenant
) -> tuple[FinancingOffer, PricingPlan]:
    """The tenant entity's CURRENT offer and its plan; a new one (and the onboarded business on
    first use) when there is none, e.g. after a default turned the last one DEFAULTED."""
    offer = await session.scalar(
        select(FinancingOffer).where(
            FinancingOffer.entity_id == uuid.UUID(tenant.entity_id),
            FinancingOffer.status == "CURRENT",
        )
    )
    if offer is None:
        offer = await make_offer(session, tenant, total_amount=FINANCED_LIMIT, plans=(PLAN,))
    [plan] = await plans_of(session, offer)
    return offer, plan


async def make_financing_invoice(
    db: Database,
    tenant: Tenant,
    policy: Policy,
    *,
    status: str = "FUNDED",
    total_amount: int = 100_000,
    invoice_type: str = "receivable",
) -> uuid.UUID:
    """A financing invoice of ``tenant``'s entity in ``status``; returns its id."""
    async with db.session() as session, session.begin():
        offer, plan = await current_offer(session, tenant)
        fi = await make_draft(
            session,
            offer,
            total_amount=total_amount,
            invoice_type=invoice_type,
            ttl=timedelta(seconds=policy.request_ttl_seconds),
        )
        fi = await walk(session, fi, status, plan=plan)
        return fi.id


async def load_invoice(db: Database, financing_invoice_id: uuid.UUID) -> FinancingInvoice:
    async with db.session() as session:
        fi = await session.get(FinancingInvoice, financing_invoice_id)
        assert fi is not None
        return fi
