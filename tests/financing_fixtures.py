"""Financing invoices in any status without the Connect flow, for the lender and sandbox tests.

Built with ``tests.lending_factories`` (an onboarded business, a CURRENT offer with one plan,
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
from fundline.lending.policy import PlanPolicy, Policy
from fundline.models import FinancingInvoice, FinancingOffer, OperatorKey, PricingPlan
from tests import lending_factories
from tests.factories import Tenant
from tests.lending_factories import make_draft, make_offer, plans_of, walk

LIMIT = 5_000_000
ADVANCE_RATE = 8000  # 80 %
FEE = 300  # 3 %
DURATION_DAYS = 30
PLAN = PlanPolicy("FIXED_DURATION", ADVANCE_RATE, FEE, DURATION_DAYS)
STATUSES = lending_factories.STATUSES


def manual(policy: Policy, *, auto_fund: bool = False) -> Policy:
    """``policy`` with manual review: a confirmed invoice waits, NEW, for the operator."""
    return dataclasses.replace(policy, review="manual", auto_fund=auto_fund)


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
        offer = await make_offer(session, tenant, total_amount=LIMIT, plans=(PLAN,))
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
