"""The operator's actions on financing invoices, and the views of the portfolio and ledger.

Shared by the lender API and ``fundline lender …``: every function takes the session first and
flushes; the caller commits. State changes go through ``lending.servicing``, which owns the
state machine, the ledger postings, the history and the events.

Approval: Monite's statuses have no "approved" state. An operator approves a NEW invoice once
(``servicing.approve``): with ``auto_fund`` in the policy it is funded at once (→ FUNDED);
without, it stays NEW, marked approved (``approved_at``), until the operator funds it. Funding
a NEW invoice directly is allowed too: deciding to disburse implies approval.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.backoffice import audit
from fundline.backoffice.schemas import (
    AccountTotal,
    FinancingInvoiceDetail,
    FinancingInvoiceListParams,
    FinancingInvoiceView,
    FinancingOfferListParams,
    FinancingOfferListResponse,
    FinancingOfferView,
    InstalmentView,
    JournalEntryView,
    LedgerListParams,
    LedgerListResponse,
    LenderFinancingInvoiceList,
    PostingView,
    ReconciliationResponse,
    StatusChangeView,
)
from fundline.kit import clock
from fundline.kit.errors import NotFound
from fundline.kit.filters import apply_filters
from fundline.kit.pagination import ListParams, Page, Paginator
from fundline.lending import ledger, servicing
from fundline.lending.policy import Policy
from fundline.models import (
    ConsoleSession,
    FinancingInvoice,
    FinancingOffer,
    JournalEntry,
    OperatorKey,
    Posting,
)
from fundline.models.financing import WCInvoiceStatus

INVOICE_COLUMNS: dict[str, Any] = {
    "status": FinancingInvoice.status,
    "entity_id": FinancingInvoice.entity_id,
    "partner_id": FinancingInvoice.partner_id,
    "type": FinancingInvoice.type,
    "created_at": FinancingInvoice.created_at,
}
OFFER_COLUMNS: dict[str, Any] = {
    "status": FinancingOffer.status,
    "entity_id": FinancingOffer.entity_id,
    "created_at": FinancingOffer.created_at,
}
LEDGER_COLUMNS: dict[str, Any] = {
    "financing_invoice_id": JournalEntry.financing_invoice_id,
    "entity_id": JournalEntry.entity_id,
    "kind": JournalEntry.kind,
    "created_at": JournalEntry.created_at,
}


def cause(action: str, operator: str) -> str:
    """The history's cause of an operator's action (the column holds 255 characters)."""
    return f"{action} by operator {operator}"[:255]


async def get_financing_invoice(
    session: AsyncSession, financing_invoice_id: uuid.UUID
) -> FinancingInvoice:
    """Any entity's financing invoice (servicing locks it before changing it)."""
    fi = await session.scalar(
        select(FinancingInvoice).where(FinancingInvoice.id == financing_invoice_id)
    )
    if fi is None:
        raise NotFound("Financing invoice not found")
    return fi


_DERIVED = frozenset({"approved", "outstanding_amount"})
_COPIED = tuple(name for name in FinancingInvoiceView.model_fields if name not in _DERIVED)


def _view(fi: FinancingInvoice) -> dict[str, Any]:
    return {
        **{name: getattr(fi, name) for name in _COPIED},
        "approved": fi.approved_at is not None and fi.status == WCInvoiceStatus.NEW,
        "outstanding_amount": ledger.expected_outstanding(fi),
    }


def describe(fis: Sequence[FinancingInvoice]) -> list[FinancingInvoiceView]:
    return [FinancingInvoiceView.model_validate(_view(fi)) for fi in fis]


async def describe_detail(session: AsyncSession, fi: FinancingInvoice) -> FinancingInvoiceDetail:
    instalments, history = (await servicing.load_details(session, [fi]))[fi.id]
    return FinancingInvoiceDetail.model_validate(
        {
            **_view(fi),
            "instalments": [InstalmentView.model_validate(i) for i in instalments],
            "history": [StatusChangeView.model_validate(h) for h in history],
        }
    )


async def _page(
    session: AsyncSession,
    paginator: Paginator,
    params: ListParams,
    model: type[FinancingInvoice | FinancingOffer | JournalEntry],
    columns: dict[str, Any],
) -> Page[Any]:
    """One page of ``model``'s rows across every entity, filtered, by creation time."""
    params, cursor = paginator.resolve(params)
    stmt: Select[Any] = apply_filters(select(model), params, columns)
    return await paginator.fetch(
        session,
        stmt,
        params=params,
        cursor=cursor,
        sort_column=model.created_at,
        id_column=model.id,
    )


async def list_financing_invoices(
    session: AsyncSession, paginator: Paginator, params: FinancingInvoiceListParams
) -> LenderFinancingInvoiceList:
    page = await _page(session, paginator, params, FinancingInvoice, INVOICE_COLUMNS)
    return LenderFinancingInvoiceList.of(page, describe(page.data))


async def approve(
    session: AsyncSession, financing_invoice_id: uuid.UUID, *, policy: Policy, operator: str
) -> FinancingInvoice:
    """Approve a NEW invoice once: funded at once when the policy auto-funds, else it stays
    NEW, marked approved."""
    fi = await get_financing_invoice(session, financing_invoice_id)
    before = audit.snapshot(fi)
    fi = await servicing.approve(session, fi, cause=f"by operator {operator}", policy=policy)
    await audit.change(session, operator, "approve", fi, before)
    return fi


async def reject(
    session: AsyncSession,
    financing_invoice_id: uuid.UUID,
    *,
    operator: str,
    reason: str | None = None,
) -> FinancingInvoice:
    """Reject a NEW invoice; ``reason`` goes into its history and the audit log."""
    fi = await get_financing_invoice(session, financing_invoice_id)
    before = audit.snapshot(fi)
    why = cause("rejected", operator) + (f": {reason}" if reason else "")
    fi = await servicing.reject(session, fi, cause=why)
    await audit.change(session, operator, "reject", fi, before, note=reason)
    return fi


async def fund(
    session: AsyncSession, financing_invoice_id: uuid.UUID, *, operator: str
) -> FinancingInvoice:
    fi = await get_financing_invoice(session, financing_invoice_id)
    before = audit.snapshot(fi)
    fi = await servicing.fund(session, fi, cause=cause("funded", operator))
    await audit.change(session, operator, "fund", fi, before)
    return fi


async def record_repayment(
    session: AsyncSession, financing_invoice_id: uuid.UUID, amount: int, *, operator: str
) -> FinancingInvoice:
    """Record money received; servicing refuses (422) more than what is still owed."""
    fi = await get_financing_invoice(session, financing_invoice_id)
    before = audit.snapshot(fi)
    fi = await servicing.record_repayment(
        session, fi, amount, cause=cause("repayment recorded", operator)
    )
    await audit.change(session, operator, "record_repayment", fi, before, note=f"amount {amount}")
    return fi


async def write_off(
    session: AsyncSession, financing_invoice_id: uuid.UUID, *, operator: str
) -> FinancingInvoice:
    fi = await get_financing_invoice(session, financing_invoice_id)
    before = audit.snapshot(fi)
    fi = await servicing.write_off(session, fi, cause=cause("written off", operator))
    await audit.change(session, operator, "write_off", fi, before)
    return fi


async def get_offer(session: AsyncSession, offer_id: uuid.UUID) -> FinancingOffer:
    offer = await session.get(FinancingOffer, offer_id)
    if offer is None:
        raise NotFound("Financing offer not found")
    return offer


async def list_offers(
    session: AsyncSession, paginator: Paginator, params: FinancingOfferListParams
) -> FinancingOfferListResponse:
    page = await _page(session, paginator, params, FinancingOffer, OFFER_COLUMNS)
    return FinancingOfferListResponse.of(
        page, [FinancingOfferView.model_validate(offer) for offer in page.data]
    )


async def issue_offer(
    session: AsyncSession, offer_id: uuid.UUID, *, operator: str
) -> FinancingOffer:
    """Open an ACCEPTED offer's credit line (→ CURRENT): the operator's step under manual review."""
    offer = await get_offer(session, offer_id)
    before = audit.snapshot(offer)
    offer = await servicing.issue_offer(session, offer)
    await audit.change(session, operator, "issue_offer", offer, before)
    return offer


async def close_offer(
    session: AsyncSession, offer_id: uuid.UUID, *, operator: str
) -> FinancingOffer:
    """Withdraw a line (→ CLOSED) once none of its invoices is NEW, FUNDED or LATE."""
    offer = await get_offer(session, offer_id)
    before = audit.snapshot(offer)
    offer = await servicing.close_offer(session, offer, cause=cause("closed", operator))
    await audit.change(session, operator, "close_offer", offer, before)
    return offer


async def list_ledger(
    session: AsyncSession, paginator: Paginator, params: LedgerListParams
) -> LedgerListResponse:
    """Journal entries, oldest first by default, each with its postings (debits first)."""
    page = await _page(session, paginator, params, JournalEntry, LEDGER_COLUMNS)
    return LedgerListResponse.of(page, await with_postings(session, page.data))


async def with_postings(
    session: AsyncSession, entries: Sequence[JournalEntry]
) -> list[JournalEntryView]:
    """``entries``, in their order, each with its postings (debits first): one query for all."""
    postings: dict[uuid.UUID, list[PostingView]] = {entry.id: [] for entry in entries}
    if postings:
        rows = await session.scalars(
            select(Posting)
            .where(Posting.entry_id.in_(postings))
            .order_by(Posting.entry_id, Posting.amount.desc(), Posting.account)
        )
        for posting in rows:
            postings[posting.entry_id].append(PostingView.model_validate(posting))
    return [
        JournalEntryView.model_validate(
            {
                **{k: getattr(entry, k) for k in JournalEntryView.model_fields if k != "postings"},
                "postings": postings[entry.id],
            }
        )
        for entry in entries
    ]


async def reconciliation(session: AsyncSession) -> ReconciliationResponse:
    differences = await ledger.reconcile(session)
    totals = [
        AccountTotal(currency=currency, account=account, amount=amount)
        for (account, currency), amount in sorted(
            (await ledger.balances(session)).items(), key=lambda item: (item[0][1], item[0][0])
        )
    ]
    balance: dict[str, int] = {}
    for total in totals:
        balance[total.currency] = balance.get(total.currency, 0) + total.amount
    unbalanced = sorted(currency for currency, amount in balance.items() if amount != 0)
    return ReconciliationResponse(
        clean=not differences and not unbalanced,
        differences=differences,
        totals=totals,
        unbalanced_currencies=unbalanced,
    )


async def operator_keys(session: AsyncSession) -> list[OperatorKey]:
    """Every operator key, oldest first (never the key itself: only its digest is kept)."""
    return list(
        await session.scalars(select(OperatorKey).order_by(OperatorKey.created_at, OperatorKey.id))
    )


async def revoke_operator_key(
    session: AsyncSession, key_id: uuid.UUID, *, operator: str
) -> tuple[OperatorKey, bool]:
    """Revoke a key at once: the lender API refuses it and its console sessions end. Returns
    the key and whether this call revoked it (``False``: it already was)."""
    key = await session.get(OperatorKey, key_id)
    if key is None:
        raise NotFound(f"No operator key {key_id}")
    if key.revoked_at is not None:
        return key, False
    key.revoked_at = clock.system_now()
    await session.execute(delete(ConsoleSession).where(ConsoleSession.operator_key_id == key.id))
    await audit.record(
        session,
        operator=operator,
        action="revoke_key",
        object_type="operator_key",
        object_id=key.id,
        before={"revoked_at": None},
        after={"revoked_at": key.revoked_at.isoformat()},
        note=key.name,
    )
    return key, True
