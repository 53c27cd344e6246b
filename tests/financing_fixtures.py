"""Financing invoices in any status without the Connect flow, for the lender and sandbox tests.

Rows are inserted through the models (an onboarded business, a CURRENT offer with one plan,
an open request, a DRAFT financing invoice); every later step goes through
``lending.servicing`` so offers, ledger and history are what the real flow leaves.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.kit import clock, security
from fundline.kit.db import Database
from fundline.lending import servicing
from fundline.lending.policy import Policy
from fundline.models import (
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
    OperatorKey,
    PricingPlan,
)
from tests.factories import Tenant

LIMIT = 5_000_000
ADVANCE_RATE = 8000  # 80 %
FEE = 300  # 3 %
DURATION_DAYS = 30

# The path of servicing calls after confirmation (NEW) that leads to each status.
PATHS: dict[str, tuple[str, ...]] = {
    "NEW": (),
    "FUNDED": ("fund",),
    "REJECTED": ("reject",),
    "LATE": ("fund", "late"),
    "DEFAULTED": ("fund", "late", "default"),
    "PAID": ("fund", "repay"),
}
STATUSES = ("DRAFT", *PATHS)


def manual(policy: Policy, *, auto_fund: bool = False) -> Policy:
    """``policy`` with manual review: a confirmed invoice waits, NEW, for the operator."""
    return dataclasses.replace(policy, review="manual", auto_fund=auto_fund)


async def current_offer(
    session: AsyncSession, tenant: Tenant
) -> tuple[FinancingOffer, PricingPlan]:
    """The tenant entity's CURRENT offer and its plan; a new one (and the onboarded business on
    first use) when there is none, e.g. after a default turned the last one DEFAULTED."""
    entity_id = uuid.UUID(tenant.entity_id)
    offer = await session.scalar(
        select(FinancingOffer).where(
            FinancingOffer.entity_id == entity_id, FinancingOffer.status == "CURRENT"
        )
    )
    if offer is not None:
        plan = await session.scalar(select(PricingPlan).where(PricingPlan.offer_id == offer.id))
        assert plan is not None
        return offer, plan
    now = clock.now()
    business = await session.scalar(
        select(FinancingBusiness).where(FinancingBusiness.entity_id == entity_id)
    )
    if business is None:
        business = FinancingBusiness(
            entity_id=entity_id,
            partner_id=tenant.partner_id,
            status="ONBOARDED",
            legal_name="Fixture Business LLC",
            onboarded_at=now,
        )
        session.add(business)
        await session.flush()
    offer = FinancingOffer(
        business_id=business.id,
        entity_id=entity_id,
        status="CURRENT",
        currency="USD",
        total_amount=LIMIT,
        reserved_amount=0,
        outstanding_amount=0,
        expires_at=now + timedelta(days=30),
        accepted_at=now,
        issued_at=now,
    )
    session.add(offer)
    await session.flush()
    plan = PricingPlan(
        offer_id=offer.id,
        position=0,
        repayment_type="FIXED_DURATION",
        advance_rate_percentage=ADVANCE_RATE,
        fee_percentage=FEE,
        repayment_duration_days=DURATION_DAYS,
        instalments=1,
        grace_days=0,
    )
    session.add(plan)
    await session.flush()
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
        today = clock.today()
        request = FinancingRequest(
            entity_id=offer.entity_id,
            partner_id=tenant.partner_id,
            status="open",
            expires_at=clock.now() + timedelta(seconds=policy.request_ttl_seconds),
        )
        session.add(request)
        await session.flush()
        invoice_id = uuid.uuid4()
        fi = FinancingInvoice(
            partner_id=tenant.partner_id,
            entity_id=offer.entity_id,
            request_id=request.id,
            offer_id=offer.id,
            invoice_id=invoice_id,
            live_invoice_id=invoice_id,
            type=invoice_type,
            status="DRAFT",
            document_id=f"INV-{invoice_id.hex[:8].upper()}",
            issue_date=today,
            due_date=today + timedelta(days=45),
            total_amount=total_amount,
            currency="USD",
            payer_type="BUSINESS",
            payer_business_name="Globex Corp",
        )
        session.add(fi)
        await session.flush()
        if status == "DRAFT":
            return fi.id
        fi = await servicing.confirm_invoice(
            session, fi, plan=plan, requested_amount=None, policy=manual(policy)
        )
        assert fi.status == "NEW", fi.status
        for step in PATHS[status]:
            if step == "fund":
                fi = await servicing.fund(session, fi, cause="fixture")
            elif step == "reject":
                fi = await servicing.reject(session, fi, cause="fixture")
            elif step == "late":
                fi = await servicing.mark_late(session, fi, cause="fixture")
            elif step == "default":
                fi = await servicing.mark_defaulted(session, fi, cause="fixture")
            else:
                owed = (fi.repayment_amount or 0) - fi.repaid_amount
                fi = await servicing.record_repayment(session, fi, owed, cause="fixture")
        assert fi.status == status, fi.status
        return fi.id


async def load_invoice(db: Database, financing_invoice_id: uuid.UUID) -> FinancingInvoice:
    async with db.session() as session:
        fi = await session.get(FinancingInvoice, financing_invoice_id)
        assert fi is not None
        return fi


async def make_operator_key(db: Database, name: str = "ops", *, revoked: bool = False) -> str:
    key = security.new_token("fko_")
    async with db.session() as session, session.begin():
        session.add(
            OperatorKey(
                name=name,
                key_hash=security.token_digest(key),
                revoked_at=clock.now() if revoked else None,
            )
        )
    return key
