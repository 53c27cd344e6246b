"""Underwriting: the credit offer a business gets when it finishes onboarding.

The limit is ``limit.share_bp`` of what the entity invoiced in the policy's currency over the
last ``limit.history_days`` days (issued receivables, whatever their payment state), clamped
to ``[limit.floor, limit.cap]``. A business is declined — no offer, and the reason kept in
``business.decision_note`` — when its entity is not in the US, when an earlier credit line of
it defaulted, or when the limit comes to zero (no history and no floor).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.financing import record
from fundline.kit import clock
from fundline.kit.money import percent_of
from fundline.lending.policy import PlanPolicy, Policy
from fundline.models import Entity, FinancingBusiness, FinancingOffer, PricingPlan, Receivable
from fundline.models.financing import LIVE_OFFER_STATUSES, WCOfferStatus
from fundline.models.receivable import ReceivablesStatus
from fundline.webhooks import outbox

# Receivable statuses that count as invoicing history (issued, whether paid or not).
HISTORY_STATUSES = frozenset(
    {ReceivablesStatus.ISSUED, ReceivablesStatus.PARTIALLY_PAID, ReceivablesStatus.PAID}
)


async def underwrite(
    session: AsyncSession, business: FinancingBusiness, *, policy: Policy
) -> FinancingOffer | None:
    """Extend an offer (status ``NEW``, the policy's plans) or decline with a note.

    Idempotent: a business that already has a live offer gets that offer back.
    """
    entity = await session.get(Entity, business.entity_id)
    assert entity is not None  # a business is created for an existing entity
    previous = list(
        await session.scalars(
            select(FinancingOffer)
            .where(FinancingOffer.business_id == business.id)
            .order_by(FinancingOffer.created_at.desc())
        )
    )
    live = next((offer for offer in previous if offer.status in LIVE_OFFER_STATUSES), None)
    if live is not None:
        return live
    limit = 0
    note = _ineligible(entity, previous)
    if note is None:
        limit = min(await limit_from_history(session, entity, policy=policy), policy.limit_cap)
        if limit < 1:
            note = f"No invoices issued in {policy.currency} in the last {policy.history_days} days"
    if note is not None:
        await _decline(session, business, note)
        return None
    now = clock.now()
    offer = FinancingOffer(
        business_id=business.id,
        entity_id=business.entity_id,
        status=WCOfferStatus.NEW,
        currency=policy.currency,
        total_amount=limit,
        reserved_amount=0,
        outstanding_amount=0,
        expires_at=now + timedelta(days=policy.offer_validity_days),
    )
    session.add(offer)
    await session.flush()
    session.add_all(pricing_plans(offer, policy.plans))
    business.decision_note = None
    await session.flush()
    await outbox.record_event(
        session,
        business,
        offer,
        "created",
        data={"status": offer.status, "total_amount": limit, "currency": offer.currency},
    )
    return offer


def _ineligible(entity: Entity, previous: list[FinancingOffer]) -> str | None:
    if entity.country != "US":
        where = entity.country or "no country"
        return f"Financing is available to US businesses only; the entity's address is in {where}"
    if any(offer.status == WCOfferStatus.DEFAULTED for offer in previous):
        return "An earlier credit line of this business defaulted"
    return None


def pricing_plans(offer: FinancingOffer, plans: Sequence[PlanPolicy]) -> list[PricingPlan]:
    """The offer's pricing plans, in the policy's order."""
    return [
        PricingPlan(
            offer_id=offer.id,
            position=position,
            repayment_type=plan.repayment_type,
            advance_rate_percentage=plan.advance_rate_percentage,
            fee_percentage=plan.fee_percentage,
            repayment_duration_days=plan.repayment_duration_days,
            instalments=plan.instalments,
            grace_days=plan.grace_days,
        )
        for position, plan in enumerate(plans)
    ]


async def limit_from_history(session: AsyncSession, entity: Entity, *, policy: Policy) -> int:
    """The policy's share of the entity's recent invoicing, raised to the floor (not capped)."""
    since = clock.now() - timedelta(days=policy.history_days)
    invoiced = await session.scalar(
        select(func.coalesce(func.sum(Receivable.total_amount), 0)).where(
            Receivable.entity_id == entity.id,
            Receivable.type == "invoice",
            Receivable.status.in_(HISTORY_STATUSES),
            Receivable.currency == policy.currency,
            Receivable.issue_date >= since,
        )
    )
    return max(percent_of(int(invoiced or 0), policy.limit_share_bp), policy.limit_floor)


async def _decline(session: AsyncSession, business: FinancingBusiness, note: str) -> None:
    business.decision_note = note
    await session.flush()
    await record.business_event(
        session, business, "updated", {"status": business.status, "decision_note": note}
    )
