"""Fundline's own lender behind the provider seam (``lending/provider.py``).

Its record is the lender: the policy (``policy``), underwriting, pricing, servicing and the
ledger write the ``financing_*`` tables directly, and its Connect widget (``connect``) works
on them through ``widget``, which is this object too. Its tokens are Fundline's own one-time
Connect tokens; only their digests are stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fundline.config import Lender
from fundline.financing import record
from fundline.kit import clock
from fundline.kit.security import new_token, token_digest
from fundline.kit.statements import Insert, Prepared
from fundline.lending import documents, onboarding, pricing, schedule, servicing
from fundline.lending.policy import Policy
from fundline.models import (
    ConnectToken,
    Entity,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
    PricingPlan,
)

if TYPE_CHECKING:
    from fundline.financing.eligibility import InvoiceFacts
    from fundline.lending.provider import ConnectLender

CONNECT_TOKEN_TTL = timedelta(hours=24)
SCRIPT_PATH = "/connect/v1/connect.js"


class BuiltinLender:
    """The built-in lender. ``policy`` is read at each use, so a server's policy can be
    swapped (the tests do) without building another lender."""

    name = Lender.BUILTIN

    def __init__(self, policy: Callable[[], Policy]) -> None:
        self._policy = policy
        self.widget: ConnectLender | None = self

    @property
    def policy(self) -> Policy:
        return self._policy()

    @property
    def min_days_to_due(self) -> int:
        return self.policy.min_days_to_due

    @property
    def request_ttl(self) -> timedelta:
        return timedelta(seconds=self.policy.request_ttl_seconds)

    def connect_script_url(self, base_url: str) -> str:
        return base_url.rstrip("/") + SCRIPT_PATH

    # --- the seam ---------------------------------------------------------------------------

    async def connect_token(
        self, session: AsyncSession, entity: Entity, *, user_id: uuid.UUID | None
    ) -> str:
        """Creates the entity's financing business on its first call (``NEW``)."""
        if not await _HAS_BUSINESS.rows(session, {"entity_id": entity.id}):
            await _business(session, entity)
        now = clock.now()
        return await issue_token(
            session,
            kind="connect",
            entity_id=entity.id,
            created_at=now,
            expires_at=now + CONNECT_TOKEN_TTL,
        )

    async def refresh_offers(self, session: AsyncSession, entity_id: uuid.UUID) -> datetime | None:
        return None  # the record is this lender's own

    async def session_token(
        self,
        session: AsyncSession,
        entity: Entity,
        request: FinancingRequest,
        invoices: Sequence[InvoiceFacts],
        *,
        user_id: uuid.UUID | None,
    ) -> str:
        """Opens Connect on ``request`` alone, and lives as long as it does."""
        return await issue_token(
            session,
            kind="session",
            entity_id=entity.id,
            created_at=request.created_at,
            expires_at=request.expires_at,
            request_id=request.id,
        )

    async def release_draft(
        self, session: AsyncSession, fi: FinancingInvoice, *, cause: str
    ) -> None:
        await servicing.release_draft(session, fi, cause=cause)

    async def refresh_invoices(self, entity_id: uuid.UUID) -> datetime | None:
        return None

    async def tick(self, session: AsyncSession) -> dict[str, int]:
        return await servicing.tick(session, policy=self.policy)

    async def sync(self, sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
        return {}

    async def document_paid(
        self, session: AsyncSession, *, invoice_type: str, invoice_id: uuid.UUID
    ) -> None:
        await documents.paid(session, invoice_type=invoice_type, invoice_id=invoice_id)

    async def document_partly_paid(
        self, session: AsyncSession, *, invoice_type: str, invoice_id: uuid.UUID, amount: int
    ) -> None:
        await documents.partly_paid(
            session, invoice_type=invoice_type, invoice_id=invoice_id, amount=amount
        )

    async def document_canceled(
        self, session: AsyncSession, *, invoice_type: str, invoice_id: uuid.UUID, outcome: str
    ) -> None:
        await documents.canceled(
            session, invoice_type=invoice_type, invoice_id=invoice_id, outcome=outcome
        )

    async def aclose(self) -> None:
        return None

    # --- its Connect widget -----------------------------------------------------------------

    async def start_onboarding(self, session: AsyncSession, business: FinancingBusiness) -> None:
        await onboarding.start(session, business, policy=self.policy)

    async def update_business(
        self, session: AsyncSession, business: FinancingBusiness, changes: dict[str, Any]
    ) -> FinancingBusiness:
        return await onboarding.update(session, business, changes, policy=self.policy)

    async def accept_offer(self, session: AsyncSession, offer: FinancingOffer) -> FinancingOffer:
        return await servicing.accept_offer(session, offer, policy=self.policy)

    def quote(
        self, owed: int, plan: PricingPlan, *, requested_amount: int | None = None
    ) -> pricing.Quote:
        return pricing.quote(owed, plan, requested_amount=requested_amount)

    def due_dates(
        self, plan: PricingPlan, *, funded_on: date, invoice_due_date: date
    ) -> list[date]:
        return list(
            schedule.due_dates(plan, funded_on=funded_on, invoice_due_date=invoice_due_date)
        )

    async def amount_owed(self, session: AsyncSession, fi: FinancingInvoice) -> int:
        return await pricing.amount_owed(session, fi)

    async def amounts_owed(
        self, session: AsyncSession, fis: Sequence[FinancingInvoice]
    ) -> dict[uuid.UUID, int]:
        return await pricing.amounts_owed(session, fis)

    async def confirm_invoice(
        self,
        session: AsyncSession,
        fi: FinancingInvoice,
        *,
        plan: PricingPlan,
        requested_amount: int | None,
    ) -> FinancingInvoice:
        return await servicing.confirm_invoice(
            session, fi, plan=plan, requested_amount=requested_amount, policy=self.policy
        )

    async def confirm_invoices(
        self,
        session: AsyncSession,
        chosen: Sequence[tuple[FinancingInvoice, PricingPlan, int | None]],
    ) -> list[FinancingInvoice]:
        return await servicing.confirm_invoices(session, chosen, policy=self.policy)


async def issue_token(
    session: AsyncSession,
    *,
    kind: str,
    entity_id: uuid.UUID,
    created_at: datetime,
    expires_at: datetime,
    request_id: uuid.UUID | None = None,
) -> str:
    """A new one-time Connect token (``connect`` or ``session``); only its digest is stored."""
    token = new_token("fct_" if kind == "connect" else "fst_")
    await _TOKENS.rows(
        session,
        [
            {
                "token_hash": token_digest(token),
                "kind": kind,
                "entity_id": entity_id,
                "request_id": request_id,
                "created_at": created_at,
                "expires_at": expires_at,
            }
        ],
    )
    return token


_TOKENS = Insert(ConnectToken)
_HAS_BUSINESS = Prepared(
    select(FinancingBusiness.id).where(
        FinancingBusiness.entity_id
        == bindparam("entity_id", type_=FinancingBusiness.entity_id.type)
    )
)


async def _business(session: AsyncSession, entity: Entity) -> FinancingBusiness:
    """The entity's financing business, created (with its event) if it has none."""
    stmt = select(FinancingBusiness).where(FinancingBusiness.entity_id == entity.id)
    business = await session.scalar(stmt)
    if business is not None:
        return business
    business = FinancingBusiness(entity_id=entity.id, partner_id=entity.partner_id)
    try:
        async with session.begin_nested():
            session.add(business)
    except IntegrityError:
        # A concurrent first call created it: use that one.
        found = await session.scalar(stmt)
        assert found is not None
        return found
    await record.business_event(session, business, "created", {"status": business.status})
    return business
