"""The console's businesses section: find a business, and see everything the lender knows of it.

- ``GET /lender/businesses?q=``: businesses by name (the onboarding's legal name or the entity's
  name, any part of it, any case) or EIN (digits, with or without the dash); without ``q`` the
  newest first. Fifty a page, each with its offers counted and summed in the same query.
- ``GET /lender/businesses/{id}``: its onboarding data (the bank account number masked to its
  last four digits), its offers with their use and actions, its financed invoices with their
  ledger balance, its last journal entries and its status history (from the events outbox).
- ``POST /lender/offers/{id}/issue`` and ``/close``: the lender API's actions
  (``actions.on_offer``); the answer is the business page with what was done.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import Field
from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from fundline.backoffice import service
from fundline.backoffice.schemas import JournalEntryView, PostingView
from fundline.console import actions
from fundline.console.pages import PREFIX, Console, ConsoleDep
from fundline.kit import money
from fundline.kit.pagination import ListParams, Order, Paginator
from fundline.kit.routing import TransactionalRoute
from fundline.lending.ledger import FINANCED_RECEIVABLE
from fundline.models import (
    Entity,
    Event,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    JournalEntry,
    Partner,
    Posting,
    PricingPlan,
)
from fundline.models.financing import WCOfferStatus

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=TransactionalRoute)

PAGE_SIZE = 50
# How much of one business its page shows: its newest offers, invoices, entries and events.
OFFERS_SHOWN = 50
INVOICES_SHOWN = 100
ENTRIES_SHOWN = 100
EVENTS_SHOWN = 100

# The offers whose total counts as the business's live limit: an open, issued credit line.
LIMIT_STATUSES = (WCOfferStatus.CURRENT, WCOfferStatus.LATE)
# What an operator may do to an offer in each status (the lender API decides; these only say
# which buttons to show).
CAN_ISSUE = frozenset({WCOfferStatus.ACCEPTED})
CAN_CLOSE = frozenset(
    {WCOfferStatus.NEW, WCOfferStatus.ACCEPTED, WCOfferStatus.CURRENT, WCOfferStatus.LATE}
)
# The events of the history: the business's own and its offers'.
BUSINESS_EVENTS = ("created", "status_changed", "updated")
OFFER_EVENTS = ("created", "status_changed")
LIKE_ESCAPE = "/"


class BusinessSearch(ListParams):
    q: str | None = Field(None, max_length=200, description="A name fragment, or an EIN.")
    order: Order = Order.DESC
    limit: int = Field(PAGE_SIZE, ge=1, le=PAGE_SIZE)


# --- the search --------------------------------------------------------------------------------


def entity_name() -> ColumnElement[Any]:
    """The entity's name in SQL: an organization's legal name, or an individual's first and
    last names (the entity keeps them as JSON documents)."""
    person = (
        Entity.individual["first_name"].as_string()
        + literal(" ")
        + func.coalesce(Entity.individual["last_name"].as_string(), "")
    )
    return func.coalesce(Entity.organization["legal_name"].as_string(), person)


def contains(
    column: ColumnElement[Any] | InstrumentedAttribute[Any], fragment: str
) -> ColumnElement[bool]:
    """``column`` holds ``fragment``, any case: ILIKE on PostgreSQL, ``lower() LIKE`` on
    SQLite, with the fragment's own ``%`` and ``_`` taken literally."""
    escaped = (
        fragment.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", f"{LIKE_ESCAPE}%")
        .replace("_", f"{LIKE_ESCAPE}_")
    )
    return column.ilike(f"%{escaped}%", escape=LIKE_ESCAPE)


def search_condition(q: str) -> ColumnElement[bool]:
    """A business whose legal name or entity name holds ``q``; or, when ``q`` is an EIN or a
    part of one (digits, perhaps a dash), whose EIN's digits hold its digits."""
    conditions = [contains(FinancingBusiness.legal_name, q), contains(entity_name(), q)]
    digits = re.sub(r"[\s-]", "", q)
    if digits.isascii() and digits.isdigit():
        conditions.append(func.replace(FinancingBusiness.ein, "-", "").contains(digits))
    return or_(*conditions)


def search_statement(q: str | None) -> Any:
    """Businesses with their entity's and partner's names and their offers' aggregates: the
    offers are counted and summed per business in a subquery (GROUP BY), joined once."""
    offers = (
        select(
            FinancingOffer.business_id.label("business_id"),
            func.count(FinancingOffer.id).label("offers"),
            func.sum(
                case(
                    (FinancingOffer.status.in_(LIMIT_STATUSES), FinancingOffer.total_amount),
                    else_=0,
                )
            ).label("live_limit"),
            func.sum(FinancingOffer.outstanding_amount).label("outstanding"),
            func.min(FinancingOffer.currency).label("currency"),
            func.count(func.distinct(FinancingOffer.currency)).label("currencies"),
        )
        .group_by(FinancingOffer.business_id)
        .subquery("offer_totals")
    )
    stmt = (
        select(
            FinancingBusiness.id,
            FinancingBusiness.created_at,
            FinancingBusiness.legal_name,
            FinancingBusiness.ein,
            FinancingBusiness.status,
            FinancingBusiness.entity_id,
            entity_name().label("entity_name"),
            Partner.name.label("partner_name"),
            func.coalesce(offers.c.offers, 0).label("offers"),
            func.coalesce(offers.c.live_limit, 0).label("live_limit"),
            func.coalesce(offers.c.outstanding, 0).label("outstanding"),
            offers.c.currency,
            func.coalesce(offers.c.currencies, 0).label("currencies"),
        )
        .join(Entity, Entity.id == FinancingBusiness.entity_id)
        .join(Partner, Partner.id == FinancingBusiness.partner_id)
        .outerjoin(offers, offers.c.business_id == FinancingBusiness.id)
    )
    if q:
        stmt = stmt.where(search_condition(q))
    return stmt


@dataclass(frozen=True)
class BusinessRow:
    id: uuid.UUID
    name: str
    ein: str
    status: str
    entity: str
    partner: str
    offers: int
    live_limit: int
    outstanding: int
    currency: str
    mixed_currencies: bool


def format_ein(ein: str | None) -> str:
    """An EIN as ``NN-NNNNNNN`` (however it was stored); empty when there is none."""
    if not ein:
        return ""
    digits = re.sub(r"\D", "", ein)
    return f"{digits[:2]}-{digits[2:]}" if len(digits) == 9 else ein


def _row(row: Any) -> BusinessRow:
    entity = row.entity_name or f"entity {str(row.entity_id)[:8]}"
    return BusinessRow(
        id=row.id,
        name=row.legal_name or entity,
        ein=format_ein(row.ein),
        status=str(row.status),
        entity=entity,
        partner=row.partner_name,
        offers=int(row.offers),
        live_limit=int(row.live_limit),
        outstanding=int(row.outstanding),
        currency=row.currency or "USD",
        mixed_currencies=int(row.currencies) > 1,
    )


@router.get("/businesses")
async def businesses_page(
    console: ConsoleDep, params: Annotated[BusinessSearch, Query()]
) -> HTMLResponse:
    """The search form and one page of businesses (the newest first)."""
    paginator = Paginator(console.request.app.state.signer, "console_businesses")
    params, cursor = paginator.resolve(params.model_copy(update={"limit": PAGE_SIZE}))
    q = (params.q or "").strip() or None
    page = await paginator.fetch(
        console.session,
        search_statement(q),
        params=params,
        cursor=cursor,
        sort_column=FinancingBusiness.created_at,
        id_column=FinancingBusiness.id,
    )
    return console.render(
        "businesses.html",
        q=q or "",
        rows=[_row(row) for row in page.data],
        next_token=page.next_pagination_token,
        prev_token=page.prev_pagination_token,
    )


# --- one business ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Onboarding:
    """What the business gave in onboarding, ready to show: never the whole account number."""

    legal_name: str | None
    ein: str
    address: dict[str, Any]
    owner: dict[str, Any]
    routing_number: str | None
    account_number: str | None  # masked: ``•••• 6789``
    account_last4: str | None
    onboarded_at: datetime | None
    decision_note: str | None


def last4(number: str | None) -> str | None:
    """The last four digits of an account number longer than four; of a shorter one, none."""
    return number[-4:] if number and len(number) > 4 else None


def mask_account(number: str | None) -> str | None:
    """``•••• 6789``: the last four digits of a longer number, nothing of a shorter one."""
    if not number:
        return None
    shown = last4(number)
    return f"•••• {shown}" if shown else "••••"


def onboarding(business: FinancingBusiness) -> Onboarding:
    return Onboarding(
        legal_name=business.legal_name,
        ein=format_ein(business.ein),
        address=dict(business.address or {}),
        owner=dict(business.owner or {}),
        routing_number=business.bank_routing_number,
        account_number=mask_account(business.bank_account_number),
        account_last4=last4(business.bank_account_number),
        onboarded_at=business.onboarded_at,
        decision_note=business.decision_note,
    )


@dataclass(frozen=True)
class OfferRow:
    offer: FinancingOffer
    plans: list[PricingPlan]
    can_issue: bool
    can_close: bool


@dataclass(frozen=True)
class InvoiceRow:
    invoice: FinancingInvoice
    ledger_balance: int  # what its financed-receivable postings sum to: what it still owes


@dataclass(frozen=True)
class InvoiceTotals:
    """The business's financed invoices of one status and currency: how many, how much."""

    status: str
    currency: str
    count: int
    total: int
    principal: int


@dataclass(frozen=True)
class EntryRow:
    entry: JournalEntryView
    document_id: str | None

    @property
    def postings(self) -> list[PostingView]:
        return self.entry.postings


@dataclass(frozen=True)
class HistoryRow:
    at: datetime
    subject: str  # "Business", or "Offer 1a2b3c4d"
    offer_id: uuid.UUID | None
    what: str  # created, status changed, details given, ...
    previous: str | None
    status: str | None
    note: str | None


async def _business(
    console: Console, business_id: uuid.UUID
) -> tuple[FinancingBusiness, Entity, str] | None:
    found = (
        await console.session.execute(
            select(FinancingBusiness, Entity, Partner.name)
            .join(Entity, Entity.id == FinancingBusiness.entity_id)
            .join(Partner, Partner.id == FinancingBusiness.partner_id)
            .where(FinancingBusiness.id == business_id)
        )
    ).one_or_none()
    return None if found is None else (found[0], found[1], found[2])


def _entity_label(entity: Entity) -> str:
    organization = entity.organization or {}
    individual = entity.individual or {}
    if organization.get("legal_name"):
        return str(organization["legal_name"])
    person = " ".join(str(individual[k]) for k in ("first_name", "last_name") if individual.get(k))
    return person or f"entity {str(entity.id)[:8]}"


async def _offers(console: Console, business: FinancingBusiness) -> list[OfferRow]:
    offers = list(
        await console.session.scalars(
            select(FinancingOffer)
            .where(FinancingOffer.business_id == business.id)
            .order_by(FinancingOffer.created_at.desc(), FinancingOffer.id.desc())
            .limit(OFFERS_SHOWN)
        )
    )
    plans: dict[uuid.UUID, list[PricingPlan]] = {offer.id: [] for offer in offers}
    if plans:
        for plan in await console.session.scalars(
            select(PricingPlan)
            .where(PricingPlan.offer_id.in_(plans))
            .order_by(PricingPlan.offer_id, PricingPlan.position)
        ):
            plans[plan.offer_id].append(plan)
    return [
        OfferRow(
            offer,
            plans[offer.id],
            can_issue=offer.status in CAN_ISSUE,
            can_close=offer.status in CAN_CLOSE,
        )
        for offer in offers
    ]


async def _invoices(
    console: Console, business: FinancingBusiness
) -> tuple[list[InvoiceRow], list[InvoiceTotals]]:
    """The newest financed invoices with their ledger balances, and a count and sum of all of
    them per status and currency (GROUP BY)."""
    invoices = list(
        await console.session.scalars(
            select(FinancingInvoice)
            .where(FinancingInvoice.entity_id == business.entity_id)
            .order_by(FinancingInvoice.created_at.desc(), FinancingInvoice.id.desc())
            .limit(INVOICES_SHOWN)
        )
    )
    balances: dict[uuid.UUID, int] = {}
    if invoices:
        rows = await console.session.execute(
            select(Posting.financing_invoice_id, func.sum(Posting.amount))
            .where(
                Posting.financing_invoice_id.in_([fi.id for fi in invoices]),
                Posting.account == FINANCED_RECEIVABLE,
            )
            .group_by(Posting.financing_invoice_id)
        )
        balances = {fi_id: int(total) for fi_id, total in rows if fi_id is not None}
    summary = [
        InvoiceTotals(str(status), currency, int(count), int(total), int(principal))
        for status, currency, count, total, principal in await console.session.execute(
            select(
                FinancingInvoice.status,
                FinancingInvoice.currency,
                func.count(FinancingInvoice.id),
                func.sum(FinancingInvoice.total_amount),
                func.sum(func.coalesce(FinancingInvoice.principal_amount, 0)),
            )
            .where(FinancingInvoice.entity_id == business.entity_id)
            .group_by(FinancingInvoice.status, FinancingInvoice.currency)
            .order_by(FinancingInvoice.status, FinancingInvoice.currency)
        )
    ]
    return [InvoiceRow(fi, balances.get(fi.id, 0)) for fi in invoices], summary


async def _ledger(console: Console, business: FinancingBusiness) -> list[EntryRow]:
    """The business's last journal entries, newest first, each with its postings."""
    found = list(
        await console.session.execute(
            select(JournalEntry, FinancingInvoice.document_id)
            .outerjoin(FinancingInvoice, FinancingInvoice.id == JournalEntry.financing_invoice_id)
            .where(JournalEntry.entity_id == business.entity_id)
            .order_by(JournalEntry.created_at.desc(), JournalEntry.id.desc())
            .limit(ENTRIES_SHOWN)
        )
    )
    views = await service.with_postings(console.session, [entry for entry, _ in found])
    return [
        EntryRow(view, document_id) for view, (_, document_id) in zip(views, found, strict=True)
    ]


def _history_row(event: Event, business_id: uuid.UUID) -> HistoryRow:
    data = event.object or {}
    action = event.action.partition(".")[2]
    is_business = event.object_type == "financing_business" and event.object_id == business_id
    subject = "Business" if is_business else f"Offer {str(event.object_id)[:8]}"
    note = data.get("cause") or data.get("decision_note") or data.get("reason")
    what = action.replace("_", " ")
    if action == "updated" and data.get("fields"):
        what = "details given"
        note = ", ".join(str(f) for f in data["fields"])
    elif action == "updated" and data.get("decision_note"):
        what = "declined"
    elif action == "created" and data.get("total_amount") is not None:
        currency = str(data.get("currency") or "USD")
        note = f"{money.display(int(data['total_amount']), currency)} offered"
    previous = data.get("previous_status") if action == "status_changed" else None
    return HistoryRow(
        at=event.created_at,
        subject=subject,
        offer_id=None if is_business else event.object_id,
        what=what,
        previous=str(previous) if previous else None,
        status=str(data["status"]) if data.get("status") else None,
        note=str(note) if note else None,
    )


async def _history(console: Console, business: FinancingBusiness) -> list[HistoryRow]:
    """The business's and its offers' status events from the outbox, newest first (one
    business per entity: the entity's offer events are its offers')."""
    events = await console.session.scalars(
        select(Event)
        .where(
            Event.entity_id == business.entity_id,
            or_(
                and_(
                    Event.object_type == "financing_business",
                    Event.object_id == business.id,
                    Event.action.in_([f"financing_business.{a}" for a in BUSINESS_EVENTS]),
                ),
                and_(
                    Event.object_type == "financing_offer",
                    Event.action.in_([f"financing_offer.{a}" for a in OFFER_EVENTS]),
                ),
            ),
        )
        .order_by(Event.created_at.desc(), Event.id.desc())
        .limit(EVENTS_SHOWN)
    )
    return [_history_row(event, business.id) for event in events]


def _parse_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def not_found(console: Console, what: str) -> HTMLResponse:
    return console.render("_business_not_found.html", status_code=404, what=what)


async def business_page(
    console: Console, business_id: uuid.UUID, *, results: Sequence[actions.Result] = ()
) -> HTMLResponse:
    found = await _business(console, business_id)
    if found is None:
        return not_found(console, "business")
    business, entity, partner = found
    invoices, invoice_summary = await _invoices(console, business)
    return console.render(
        "business.html",
        business=business,
        name=business.legal_name or _entity_label(entity),
        entity=_entity_label(entity),
        partner=partner,
        data=onboarding(business),
        offers=await _offers(console, business),
        invoices=invoices,
        invoice_summary=invoice_summary,
        entries=await _ledger(console, business),
        history=await _history(console, business),
        results=list(results),
        shown={
            "offers": OFFERS_SHOWN,
            "invoices": INVOICES_SHOWN,
            "entries": ENTRIES_SHOWN,
            "events": EVENTS_SHOWN,
        },
    )


@router.get("/businesses/{business_id}")
async def business_detail(console: ConsoleDep, business_id: str) -> HTMLResponse:
    parsed = _parse_id(business_id)
    if parsed is None:
        return not_found(console, "business")
    return await business_page(console, parsed)


# --- the offers' actions -----------------------------------------------------------------------


async def _offer_action(
    console: Console, offer_id: str, action: actions.OfferAction
) -> HTMLResponse:
    await console.form()  # the CSRF check, before anything else
    parsed = _parse_id(offer_id)
    offer = None if parsed is None else await console.session.get(FinancingOffer, parsed)
    if parsed is None or offer is None:
        return not_found(console, "offer")
    business_id = offer.business_id
    label = f"Offer {str(offer.id)[:8]} ({money.display(offer.total_amount, offer.currency)})"
    result = await actions.on_offer(console, parsed, action)
    return await business_page(
        console, business_id, results=[dataclasses.replace(result, label=label)]
    )


@router.post("/offers/{offer_id}/issue")
async def issue_offer(console: ConsoleDep, offer_id: str) -> HTMLResponse:
    """Open an ACCEPTED offer's credit line (the lender API's ``issue_offer``)."""
    return await _offer_action(console, offer_id, "issue_offer")


@router.post("/offers/{offer_id}/close")
async def close_offer(console: ConsoleDep, offer_id: str) -> HTMLResponse:
    """Withdraw an offer (the lender API's ``close_offer``: refused while invoices are live)."""
    return await _offer_action(console, offer_id, "close_offer")
