"""Rows for the lending-core tests: a business with an offer and its plans, DRAFT financing
invoices, and the servicing steps that bring one to any status."""

from __future__ import annotations

import dataclasses
import tomllib
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.config import Mode
from fundline.kit import clock
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
from tests.factories import Tenant

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
