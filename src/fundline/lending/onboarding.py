"""The built-in lender's onboarding: what each step does to a business.

A business is ``NEW`` from its first financing token, ``INPUT_REQUIRED`` once its user opens
the widget, and ``ONBOARDED`` when nothing is missing; then it is underwritten (an offer, or a
decline with its reason in ``decision_note``). Its details cannot change after that.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fundline.financing import record
from fundline.kit import clock
from fundline.kit.errors import Conflict
from fundline.lending.policy import Policy
from fundline.lending.underwriting import underwrite
from fundline.models import FinancingBusiness
from fundline.models.financing import WCBusinessStatus, missing_fields


async def start(session: AsyncSession, business: FinancingBusiness, *, policy: Policy) -> None:
    """What opening the widget does to the business: a NEW one starts onboarding, an
    ONBOARDED one is underwritten again (which keeps a live offer as it is)."""
    if business.status == WCBusinessStatus.NEW:
        await _set_status(session, business, WCBusinessStatus.INPUT_REQUIRED)
    elif business.status == WCBusinessStatus.ONBOARDED:
        await underwrite(session, business, policy=policy)


async def update(
    session: AsyncSession,
    business: FinancingBusiness,
    changes: dict[str, Any],
    *,
    policy: Policy,
) -> FinancingBusiness:
    """Merge ``changes`` (the widget's fields, JSON-ready) into the locked ``business``; once
    nothing is missing it is ONBOARDED and underwritten."""
    if business.status == WCBusinessStatus.ONBOARDED:
        raise Conflict("The business is already ONBOARDED; its details can no longer change")
    if "legal_name" in changes:
        business.legal_name = changes["legal_name"]
    if "ein" in changes:
        business.ein = changes["ein"]
    for nested in ("address", "owner"):
        if nested in changes:
            setattr(business, nested, {**(getattr(business, nested) or {}), **changes[nested]})
    bank = changes.get("bank_account", {})
    if "routing_number" in bank:
        business.bank_routing_number = bank["routing_number"]
    if "account_number" in bank:
        business.bank_account_number = bank["account_number"]
    await session.flush()
    await record.business_event(
        session, business, "updated", {"status": business.status, "fields": sorted(changes)}
    )
    if missing_fields(business):
        if business.status != WCBusinessStatus.INPUT_REQUIRED:
            await _set_status(session, business, WCBusinessStatus.INPUT_REQUIRED)
        return business
    business.onboarded_at = clock.now()
    await _set_status(session, business, WCBusinessStatus.ONBOARDED)
    await underwrite(session, business, policy=policy)
    return business


async def _set_status(
    session: AsyncSession, business: FinancingBusiness, status: WCBusinessStatus
) -> None:
    previous, business.status = business.status, status
    await session.flush()
    await record.business_event(
        session, business, "status_changed", {"status": status, "previous_status": previous}
    )
