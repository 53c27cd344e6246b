"""The lender seam: what ``financing``, ``connect`` and the documents' domains ask of a lender.

Fundline keeps its own record of financing whoever lends: the ``financing_*`` tables that
``GET /v1/financing_invoices`` and ``/v1/financing_offers`` read. A provider keeps that record
true and hands out the tokens that open its widget:

- ``BuiltinLender`` (``lending/builtin.py``) *is* the record: its policy, underwriting,
  servicing and ledger write those tables, and its own Connect widget is ``widget``.
- ``KanmonLender`` (``lending/kanmon/provider.py``) mirrors Kanmon into them: it creates
  Kanmon's business and user, hands out Kanmon's connect and session tokens, and syncs Kanmon's
  offers and invoices. Kanmon hosts its own widget, so it has no ``widget``.

One is built at start from ``FUNDLINE_LENDER`` (``lending.lenders.build_lender``) and kept on
``app.state.lender``; ``LenderDep`` hands it to a route. Nothing outside ``lending`` imports a
provider's internals, except the built-in lender's own operator and sandbox surfaces
(``backoffice``, ``sandbox``), which are its and nobody else's (``tests/test_architecture.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fundline.config import Lender
from fundline.lending.pricing import Quote
from fundline.models import (
    Entity,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
    PricingPlan,
)

if TYPE_CHECKING:
    from fundline.financing.eligibility import InvoiceFacts

__all__ = ["ConnectLender", "LenderDep", "LenderProvider", "Quote"]


class LenderProvider(Protocol):
    """A lender behind Monite's four financing endpoints.

    Methods that take a session run in the request's transaction (so a lender error rolls back
    whatever the request wrote); a remote lender calls out from inside it, within its own time
    budget. Those that take none open their own transactions.
    """

    name: Lender
    # The built-in lender's Connect widget; ``None`` when the lender hosts its own.
    widget: ConnectLender | None

    @property
    def min_days_to_due(self) -> int:
        """How many days ahead an invoice must fall due to be financed."""
        ...

    @property
    def request_ttl(self) -> timedelta:
        """How long a financing request (its session token) stays open."""
        ...

    def connect_script_url(self, base_url: str) -> str:
        """The script a partner's page loads to open the widget the tokens are for."""
        ...

    async def connect_token(
        self, session: AsyncSession, entity: Entity, *, user_id: uuid.UUID | None
    ) -> str:
        """A new connect token for ``entity``; its business (and, at a remote lender, the
        user ``user_id``, or the entity's one partner user when ``None``) is created first
        when it does not exist yet."""
        ...

    async def refresh_offers(self, session: AsyncSession, entity_id: uuid.UUID) -> datetime | None:
        """Bring the entity's business and offers in the record up to date (in ``session``'s
        transaction, or one of its own when the session has none: a read's on PostgreSQL);
        returns when the state it holds was read from the lender (``None``: the record is the
        lender's own, always current)."""
        ...

    async def session_token(
        self,
        session: AsyncSession,
        entity: Entity,
        request: FinancingRequest,
        invoices: Sequence[InvoiceFacts],
        *,
        user_id: uuid.UUID | None,
    ) -> str:
        """The token that opens the confirmation of ``request``'s invoices in the widget."""
        ...

    async def release_draft(
        self, session: AsyncSession, fi: FinancingInvoice, *, cause: str
    ) -> None:
        """Free an unconfirmed ``DRAFT`` (its request lapsed, or its document changed)."""
        ...

    async def refresh_invoices(self, entity_id: uuid.UUID) -> datetime | None:
        """Called before the entity's financing invoices are read: sync them now if the lender
        may have news the record lacks (a confirmation in its widget). Returns when the record
        last matched the lender (``None``: always current). Never raises for an unreachable
        lender: the read answers from the record."""
        ...

    async def tick(self, session: AsyncSession) -> dict[str, int]:
        """What the passing of time does to the record, up to ``clock.now()`` (the worker's
        beat and the sandbox clock); returns what it changed."""
        ...

    async def sync(self, sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
        """The worker's periodic sync with a remote lender, in its own short transactions;
        returns what it changed."""
        ...

    # A receivable or payable changed; its financing follows (the document is locked).

    async def document_paid(
        self, session: AsyncSession, *, invoice_type: str, invoice_id: uuid.UUID
    ) -> None: ...

    async def document_partly_paid(
        self, session: AsyncSession, *, invoice_type: str, invoice_id: uuid.UUID, amount: int
    ) -> None: ...

    async def document_canceled(
        self, session: AsyncSession, *, invoice_type: str, invoice_id: uuid.UUID, outcome: str
    ) -> None: ...

    async def aclose(self) -> None: ...


class ConnectLender(Protocol):
    """The built-in lender's side of its Connect widget: onboarding, offers and confirmation
    as the business user does them. ``connect`` keeps the sessions, pages and scopes."""

    async def start_onboarding(self, session: AsyncSession, business: FinancingBusiness) -> None:
        """What opening the widget does to the business (onboarding starts, or a review)."""
        ...

    async def update_business(
        self, session: AsyncSession, business: FinancingBusiness, changes: dict[str, Any]
    ) -> FinancingBusiness:
        """Merge onboarding data (the business row locked); underwrite once complete."""
        ...

    async def accept_offer(self, session: AsyncSession, offer: FinancingOffer) -> FinancingOffer:
        """The user accepts ``offer`` (locked)."""
        ...

    def quote(self, owed: int, plan: PricingPlan, *, requested_amount: int | None = None) -> Quote:
        """What ``plan`` gives on an invoice owing ``owed``; ``ValueError`` if nothing."""
        ...

    def due_dates(
        self, plan: PricingPlan, *, funded_on: date, invoice_due_date: date
    ) -> list[date]:
        """The repayment dates of ``plan`` for money advanced on ``funded_on``."""
        ...

    async def amount_owed(self, session: AsyncSession, fi: FinancingInvoice) -> int:
        """What the document of ``fi`` still owes, the base of its quotes."""
        ...

    async def amounts_owed(
        self, session: AsyncSession, fis: Sequence[FinancingInvoice]
    ) -> dict[uuid.UUID, int]:
        """``amount_owed`` of each of ``fis``, by financing invoice id, read together."""
        ...

    async def confirm_invoice(
        self,
        session: AsyncSession,
        fi: FinancingInvoice,
        *,
        plan: PricingPlan,
        requested_amount: int | None,
    ) -> FinancingInvoice:
        """The user confirms the ``DRAFT`` ``fi`` (locked) with ``plan`` and an amount."""
        ...

    async def confirm_invoices(
        self,
        session: AsyncSession,
        chosen: Sequence[tuple[FinancingInvoice, PricingPlan, int | None]],
    ) -> list[FinancingInvoice]:
        """``confirm_invoice`` of each ``(fi, plan, requested amount)``, in order, together
        (the ``fi`` locked); all or none."""
        ...


async def current_lender(request: Request) -> LenderProvider:
    # Async, as every dependency is: FastAPI would run a sync one in its thread pool.
    lender: LenderProvider = request.app.state.lender
    return lender


LenderDep = Annotated[LenderProvider, Depends(current_lender)]
