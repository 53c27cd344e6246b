"""Kanmon behind the lender seam: Kanmon Public V2 mirrored into Fundline's record.

- ``POST /v1/financing_tokens`` creates Kanmon's business (``platformBusinessId`` = the
  entity's id) and user (``platformUserId`` = the calling entity user's id, or one stable
  ``<entity id>:partner`` user for a partner token) once each, remembered on the business
  row; a 409 duplicate from Kanmon is the one that exists, reused. It returns Kanmon's
  connect token.
- ``POST /v1/financing_invoices`` judges the invoices on the record (after reading Kanmon's
  offers), keeps the request and its ``DRAFT`` rows as the built-in lender does, and returns
  the session token of a Kanmon embedded session for them (the invoice flow for
  receivables, the accounts-payable flow for payables).
- Offers are read from Kanmon on every ``GET /v1/financing_offers`` and request; invoices
  are synced by the worker every ``FUNDLINE_KANMON_SYNC_SECONDS``, and at once when a partner
  lists them while a request of theirs waits for the user's confirmation in Kanmon.
- While Kanmon cannot be reached, writes answer 503 (``LenderUnavailable``) and reads answer
  from the record, with its age in ``x-fundline-lender-age``.

Calls to Kanmon run inside the request's transaction, within the client's time budget
(``client.py``): should Kanmon refuse, nothing the request wrote is kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fundline.config import Lender, Settings
from fundline.financing import record
from fundline.kit import clock
from fundline.kit.db import autocommits
from fundline.kit.errors import FundlineError, Unprocessable
from fundline.kit.tenancy import scope_to
from fundline.lending import locks
from fundline.lending.kanmon import invoices, mapping
from fundline.lending.kanmon.client import KanmonClient
from fundline.lending.kanmon.errors import KanmonError, LenderUnavailable, to_fundline_error
from fundline.models import (
    Entity,
    EntityUser,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
    PricingPlan,
)
from fundline.models.financing import WCInvoiceStatus
from fundline.webhooks import outbox

if TYPE_CHECKING:
    from fundline.financing.eligibility import InvoiceFacts
    from fundline.lending.provider import ConnectLender

log = structlog.get_logger("fundline.kanmon")

PRODUCTION_HOST = "api.kanmon.com"
SCRIPT_URL = "https://cdn.kanmon.dev/scripts/v2/kanmon-connect.js"
SANDBOX_SCRIPT_URL = "https://cdn.sandbox.kanmon.dev/scripts/v2/kanmon-connect.js"
# Kanmon's own rule for an invoice in a session: due at least 7 days ahead.
MIN_DAYS_TO_DUE = 7
# How long a request waits for the user's confirmation in Kanmon's widget before its drafts
# are released (Kanmon documents no lifetime for a session token).
REQUEST_TTL = timedelta(hours=24)
# A partner listing while a confirmation may have happened re-syncs at most this often.
EAGER_SYNC_SECONDS = 2.0


class KanmonLender:
    name = Lender.KANMON

    def __init__(
        self,
        client: KanmonClient,
        sessions: async_sessionmaker[AsyncSession],
        *,
        sync_seconds: float,
        sandbox_api: bool,
    ) -> None:
        self.client = client
        self.widget: ConnectLender | None = None  # Kanmon hosts its own
        self._sessions = sessions
        self._sync_every = timedelta(seconds=sync_seconds)
        self._sandbox_api = sandbox_api

    @classmethod
    def from_settings(
        cls, settings: Settings, sessions: async_sessionmaker[AsyncSession]
    ) -> KanmonLender:
        return cls(
            KanmonClient.from_settings(settings),
            sessions,
            sync_seconds=settings.kanmon_sync_seconds,
            # Only Kanmon's production API pairs with its production script.
            sandbox_api=httpx.URL(settings.kanmon_base_url).host != PRODUCTION_HOST,
        )

    @property
    def min_days_to_due(self) -> int:
        return MIN_DAYS_TO_DUE

    @property
    def request_ttl(self) -> timedelta:
        return REQUEST_TTL

    def connect_script_url(self, base_url: str) -> str:
        return SANDBOX_SCRIPT_URL if self._sandbox_api else SCRIPT_URL

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- tokens -----------------------------------------------------------------------------

    async def connect_token(
        self, session: AsyncSession, entity: Entity, *, user_id: uuid.UUID | None
    ) -> str:
        business = await self._business(session, entity)
        platform_user_id = await self._user(session, entity, business, user_id)
        answer = await self._call(
            self.client.create_connect_token({"platformUserId": platform_user_id})
        )
        return str(answer["connectToken"])

    async def session_token(
        self,
        session: AsyncSession,
        entity: Entity,
        request: FinancingRequest,
        invoices: Sequence[InvoiceFacts],
        *,
        user_id: uuid.UUID | None,
    ) -> str:
        kinds = {facts.type for facts in invoices}
        if len(kinds) != 1:
            raise Unprocessable(
                "Kanmon confirms receivables and payables in separate sessions: request "
                "financing for them separately",
                loc=("body", "invoices"),
            )
        kind = kinds.pop()
        await self._business(session, entity)
        body = {
            "platformBusinessId": str(entity.id),
            "data": {
                "component": mapping.SESSION_COMPONENT[kind],
                "invoices": [_session_invoice(facts) for facts in invoices],
            },
        }
        answer = await self._call(self.client.create_embedded_session(body))
        return str(answer["sessionToken"])

    async def _business(self, session: AsyncSession, entity: Entity) -> FinancingBusiness:
        """The entity's business in the record, and at Kanmon, created where missing."""
        stmt = select(FinancingBusiness).where(FinancingBusiness.entity_id == entity.id)
        business = await session.scalar(stmt)
        if business is None:
            business = FinancingBusiness(
                entity_id=entity.id, partner_id=entity.partner_id, lender_users=[]
            )
            try:
                async with session.begin_nested():
                    session.add(business)
            except IntegrityError:  # a concurrent first call created it
                business = await session.scalar(stmt)
                assert business is not None
            else:
                await record.business_event(
                    session, business, "created", {"status": business.status}
                )
        if business.lender_ref is None:
            business.lender_ref = await self._kanmon_business(entity)
            await session.flush()
        return business

    async def _kanmon_business(self, entity: Entity) -> str:
        platform_id = str(entity.id)
        try:
            created = await self._call(
                self.client.create_business(
                    {"platformBusinessId": platform_id, "metadata": {"source": "fundline"}}
                )
            )
            return str(created["id"])
        except _Duplicate:
            found = await self._call(
                self.client.get_businesses(platform_business_ids=[platform_id])
            )
            return str(found["businesses"][0]["id"])

    async def _user(
        self,
        session: AsyncSession,
        entity: Entity,
        business: FinancingBusiness,
        user_id: uuid.UUID | None,
    ) -> str:
        platform_user_id = str(user_id) if user_id is not None else f"{entity.id}:partner"
        known = list(business.lender_users or [])
        if platform_user_id in known:
            return platform_user_id
        body: dict[str, Any] = {
            "platformUserId": platform_user_id,
            "platformBusinessId": str(entity.id),
        }
        if user_id is not None:
            user = await session.get(EntityUser, user_id)
            if user is not None:
                body |= {"firstName": user.first_name}
                if user.last_name:
                    body["lastName"] = user.last_name
                if user.email:
                    body["email"] = user.email
        try:
            await self._call(self.client.create_user(body))
        except _Duplicate as exc:
            if exc.code == "UserAlreadyExistsWithEmailException":
                # Another Kanmon user has this email: ours is made without it (the user
                # gives one in Kanmon's widget).
                body.pop("email")
                try:
                    await self._call(self.client.create_user(body))
                except _Duplicate:
                    pass
            # Else made by an earlier call whose transaction did not commit: the same user.
        business.lender_users = [*known, platform_user_id]
        await session.flush()
        return platform_user_id

    # --- offers -----------------------------------------------------------------------------

    async def refresh_offers(self, session: AsyncSession, entity_id: uuid.UUID) -> datetime | None:
        if autocommits(session):  # a read's session: its writes and locks would not hold
            async with self._sessions() as own, own.begin():
                scope_to(own, entity_id)
                return await self._refresh_offers(own, entity_id)
        return await self._refresh_offers(session, entity_id)

    async def _refresh_offers(self, session: AsyncSession, entity_id: uuid.UUID) -> datetime | None:
        # Locked: two reads of one business at once mirror its offers one after the other
        # (the second sees the first's rows) instead of inserting the same rows twice.
        business = await locks.row(
            session, select(FinancingBusiness).where(FinancingBusiness.entity_id == entity_id)
        )
        if business is None or business.lender_ref is None:
            return None  # no business at Kanmon yet: Monite's NEW with no offers
        synced = business.lender_offers_synced_at
        try:
            async with session.begin_nested():
                await self._sync_offers(session, business)
        except LenderUnavailable:
            if synced is None:
                raise
            log.warning("kanmon_offers_stale", entity_id=str(entity_id))
            return synced
        return business.lender_offers_synced_at

    async def _sync_offers(self, session: AsyncSession, business: FinancingBusiness) -> None:
        platform_id = [str(business.entity_id)]
        found = await self._call(self.client.get_businesses(platform_business_ids=platform_id))
        offers = await self._call(
            self.client.all_pages(
                self.client.get_offers, "offers", platform_business_ids=platform_id
            )
        )
        products = await self._call(
            self.client.all_pages(
                self.client.get_issued_products, "issuedProducts", platform_business_ids=platform_id
            )
        )
        by_offer = {str(p.get("offerId")): p for p in products}
        now = clock.now()
        facts = []
        for offer in offers:
            try:
                mapped = mapping.offer_facts(offer, by_offer.get(str(offer.get("id"))), now=now)
            except (mapping.Unreadable, KeyError) as exc:
                log.warning("kanmon_offer_unreadable", offer=offer.get("id"), error=str(exc))
                continue
            if mapped is not None:
                facts.append(mapped)
        for mapped in facts:
            await self._mirror_offer(session, business, mapped)
        kanmon_business = (found.get("businesses") or [{}])[0]
        status = mapping.business_status(kanmon_business, has_offers=bool(facts))
        if status != business.status:
            previous, business.status = business.status, status
            await session.flush()
            await record.business_event(
                session, business, "status_changed", {"status": status, "previous_status": previous}
            )
        business.lender_offers_synced_at = clock.system_now()
        await session.flush()

    async def _mirror_offer(
        self, session: AsyncSession, business: FinancingBusiness, facts: mapping.OfferFacts
    ) -> None:
        offer = await session.get(FinancingOffer, facts.id)
        if offer is None:
            offer = FinancingOffer(
                id=facts.id,
                business_id=business.id,
                entity_id=business.entity_id,
                status=facts.status,
                currency="USD",  # Kanmon lends in dollars (amounts in cents)
                total_amount=facts.total_amount,
                reserved_amount=0,
                outstanding_amount=facts.total_amount - facts.available_amount,
                expires_at=facts.expires_at,
                accepted_at=facts.accepted_at,
                lender_ref=facts.ref,
                lender_product_ref=facts.product_ref,
            )
            session.add(offer)
            await session.flush()
            await outbox.record_event(
                session,
                business,
                offer,
                "created",
                data={
                    "status": offer.status,
                    "total_amount": offer.total_amount,
                    "currency": "USD",
                },
            )
        else:
            outstanding = facts.total_amount - facts.available_amount
            amounts = (offer.total_amount, offer.outstanding_amount)
            offer.total_amount, offer.outstanding_amount = facts.total_amount, outstanding
            offer.expires_at, offer.accepted_at = facts.expires_at, facts.accepted_at
            offer.lender_product_ref = facts.product_ref
            if facts.status != offer.status:
                await record.move_offer(session, offer, facts.status, cause="Kanmon")
            if amounts != (facts.total_amount, outstanding):
                await record.offer_amounts_changed(session, offer)
        for position, plan in enumerate(facts.plans):
            row = await session.get(PricingPlan, plan.id)
            if row is None:
                row = PricingPlan(id=plan.id, offer_id=offer.id, position=position)
                session.add(row)
            row.position = position
            row.repayment_type = plan.repayment_type
            row.advance_rate_percentage = plan.advance_rate_percentage
            row.fee_percentage = plan.fee_percentage
            row.repayment_duration_days = plan.repayment_duration_days
            row.instalments = plan.instalments
            row.grace_days = 0
        await session.flush()

    # --- invoices ---------------------------------------------------------------------------

    async def release_draft(
        self, session: AsyncSession, fi: FinancingInvoice, *, cause: str
    ) -> None:
        await record.release_draft(session, fi, cause=cause)

    async def refresh_invoices(self, entity_id: uuid.UUID) -> datetime | None:
        async with self._sessions() as session, session.begin():
            scope_to(session, entity_id)
            stmt = select(FinancingBusiness).where(FinancingBusiness.entity_id == entity_id)
            business = await session.scalar(stmt)
            if business is None or business.lender_ref is None:
                return None
            if not await self._sync_due(session, business):
                return business.lender_invoices_synced_at  # the common case: no lock taken
            business = await locks.row(session, stmt)  # one sync of a business at a time
            assert business is not None
            synced = business.lender_invoices_synced_at
            if not await self._sync_due(session, business):
                return synced  # another request synced it while this one waited
            try:
                async with session.begin_nested():
                    await self._sync_invoices(session, business)
            except FundlineError as exc:  # unreachable, or refused: the read goes on
                log.warning("kanmon_invoices_stale", entity_id=str(entity_id), error=str(exc))
                return synced
            return business.lender_invoices_synced_at

    async def _sync_due(self, session: AsyncSession, business: FinancingBusiness) -> bool:
        """Whether a list should sync first: never synced, or a request waits for its user's
        confirmation in Kanmon and the last sync is older than ``EAGER_SYNC_SECONDS``."""
        synced = business.lender_invoices_synced_at
        if synced is None:
            return True
        fresh = clock.system_now() - synced < timedelta(seconds=EAGER_SYNC_SECONDS)
        return not fresh and await _waiting(session, business.entity_id)

    async def _sync_invoices(
        self, session: AsyncSession, business: FinancingBusiness
    ) -> dict[str, int]:
        """Kanmon's invoices of the business into the record; what changed."""
        await self._sync_offers(session, business)  # the lines the invoices draw on
        listed = await self._call(
            self.client.all_pages(
                self.client.get_invoices,
                "invoices",
                platform_business_ids=[str(business.entity_id)],
            )
        )
        counts = {"kanmon_invoices_changed": 0, "kanmon_invoices_unmatched": 0}
        for invoice in listed:
            try:
                facts = mapping.invoice_facts(invoice)
            except (mapping.Unreadable, KeyError) as exc:
                log.warning("kanmon_invoice_unreadable", invoice=invoice.get("id"), error=str(exc))
                counts["kanmon_invoices_unmatched"] += 1
                continue
            changed = await invoices.apply(session, business, facts, invoice)
            if changed is None:
                counts["kanmon_invoices_unmatched"] += 1
            elif changed:
                counts["kanmon_invoices_changed"] += 1
        business.lender_invoices_synced_at = clock.system_now()
        await session.flush()
        return counts

    # --- the clock and the worker -----------------------------------------------------------

    async def tick(self, session: AsyncSession) -> dict[str, int]:
        """Requests the user never confirmed in Kanmon lapse, and their drafts are released."""
        return await record.expire_requests(session, clock.now())

    async def sync(self, sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
        """Every business whose invoices were last read longer ago than the sync interval, one
        transaction each; a business Kanmon fails on waits for the next beat."""
        cutoff = clock.system_now() - self._sync_every
        async with sessions() as session:
            due = list(
                await session.scalars(
                    select(FinancingBusiness.id).where(
                        FinancingBusiness.lender_ref.is_not(None),
                        (FinancingBusiness.lender_invoices_synced_at.is_(None))
                        | (FinancingBusiness.lender_invoices_synced_at < cutoff),
                    )
                )
            )
        totals = {
            "kanmon_businesses_synced": 0,
            "kanmon_invoices_changed": 0,
            "kanmon_invoices_unmatched": 0,
        }
        for business_id in due:
            try:
                counts = await self._sync_one(sessions, business_id)
            except LenderUnavailable as exc:
                log.warning("kanmon_sync_failed", business_id=str(business_id), error=str(exc))
                break  # Kanmon is down: the next beat tries again
            except FundlineError as exc:  # Kanmon refused this business: the others go on
                log.warning("kanmon_sync_failed", business_id=str(business_id), error=str(exc))
                continue
            if counts is not None:
                totals["kanmon_businesses_synced"] += 1
                for key in ("kanmon_invoices_changed", "kanmon_invoices_unmatched"):
                    totals[key] = totals.get(key, 0) + counts[key]
        return totals

    async def _sync_one(
        self, sessions: async_sessionmaker[AsyncSession], business_id: uuid.UUID
    ) -> dict[str, int] | None:
        async with sessions() as session, session.begin():
            business = await locks.row(
                session, select(FinancingBusiness).where(FinancingBusiness.id == business_id)
            )
            if business is None:
                return None
            scope_to(session, business.entity_id)
            return await self._sync_invoices(session, business)

    # --- documents --------------------------------------------------------------------------

    async def document_paid(
        self, session: AsyncSession, *, invoice_type: str, invoice_id: uuid.UUID
    ) -> None:
        await self._release_unconfirmed(session, invoice_type, invoice_id, "was paid")

    async def document_partly_paid(
        self, session: AsyncSession, *, invoice_type: str, invoice_id: uuid.UUID, amount: int
    ) -> None:
        """Repayment is Kanmon's business: the next sync shows what it makes of it."""

    async def document_canceled(
        self, session: AsyncSession, *, invoice_type: str, invoice_id: uuid.UUID, outcome: str
    ) -> None:
        await self._release_unconfirmed(session, invoice_type, invoice_id, f"was {outcome}")

    async def _release_unconfirmed(
        self, session: AsyncSession, invoice_type: str, invoice_id: uuid.UUID, what: str
    ) -> None:
        """A draft of a document that can no longer be financed is released; a financing
        Kanmon already holds is Kanmon's to settle (its status comes with the next sync)."""
        draft = await locks.row(
            session,
            select(FinancingInvoice).where(
                FinancingInvoice.invoice_id == invoice_id,
                FinancingInvoice.type == invoice_type,
                FinancingInvoice.status == WCInvoiceStatus.DRAFT,
            ),
        )
        if draft is not None:
            await record.release_draft(
                session, draft, cause=f"the {invoice_type} {what} before it was confirmed"
            )

    # ----------------------------------------------------------------------------------------

    async def _call(self, pending: Any) -> Any:
        """Await a client call; Kanmon's refusals become Fundline's errors, a duplicate on
        create is ``_Duplicate`` for the caller to reuse."""
        try:
            return await pending
        except KanmonError as exc:
            if exc.is_duplicate:
                raise _Duplicate(exc.error_code) from exc
            raise to_fundline_error(exc) from exc


class _Duplicate(Exception):
    """Kanmon already has the business or user a create asked for (``code`` says which)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _session_invoice(facts: InvoiceFacts) -> dict[str, Any]:
    """An invoice of an embedded session, with the data Kanmon needs to show it (a receivable's
    payor, a payable's payee: the other party)."""
    party = "payor" if facts.type == "receivable" else "payee"
    body: dict[str, Any] = {
        "platformInvoiceId": str(facts.id),
        "platformInvoiceNumber": facts.document_id,
        "invoiceAmountCents": facts.total_amount,
        "invoiceDueDate": facts.due_date.isoformat() if facts.due_date else None,
        "description": facts.description or f"Invoice {facts.document_id}",
        f"{party}Type": facts.payer_type,
    }
    if facts.issue_date is not None:
        body["invoiceIssuedDate"] = facts.issue_date.isoformat()
    if facts.payer_type == "BUSINESS" and facts.payer_business_name:
        body[f"{party}BusinessName"] = facts.payer_business_name
    if facts.payer_type == "INDIVIDUAL":
        if facts.payer_first_name:
            body[f"{party}FirstName"] = facts.payer_first_name
        if facts.payer_last_name:
            body[f"{party}LastName"] = facts.payer_last_name
    return {k: v for k, v in body.items() if v is not None}


async def _waiting(session: AsyncSession, entity_id: uuid.UUID) -> bool:
    """Whether a request of the entity waits for its user's confirmation at Kanmon."""
    found = await session.scalar(
        select(FinancingInvoice.id)
        .where(
            FinancingInvoice.entity_id == entity_id,
            FinancingInvoice.status == WCInvoiceStatus.DRAFT,
        )
        .limit(1)
    )
    return found is not None
