"""Fundline's record of financing, whoever lends: status changes with their history row and
event, for financing invoices, offers and businesses. The built-in lender's servicing and the
Kanmon adapter's sync both write it through here. (Row locks, and their order, are
``lending.locks``; the ledger is the built-in lender's, ``lending.ledger``.)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.kit import clock
from fundline.kit.errors import Conflict
from fundline.kit.statements import Insert
from fundline.lending import locks
from fundline.models import (
    Entity,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
    FinancingStatusChange,
)
from fundline.models.financing import (
    LIVE_STATUSES,
    FinancingRequestStatus,
    WCInvoiceStatus,
    WCOfferStatus,
)
from fundline.webhooks import outbox


def require(fi: FinancingInvoice, allowed: tuple[WCInvoiceStatus, ...], doing: str) -> None:
    if fi.status not in allowed:
        raise Conflict(
            f"Financing invoice is {fi.status}; it can be {doing} only when {' or '.join(allowed)}"
        )


def require_offer(offer: FinancingOffer, allowed: tuple[WCOfferStatus, ...], doing: str) -> None:
    if offer.status not in allowed:
        raise Conflict(
            f"Financing offer is {offer.status}; it can be {doing} only when {' or '.join(allowed)}"
        )


async def move(
    session: AsyncSession, fi: FinancingInvoice, status: WCInvoiceStatus, *, cause: str
) -> None:
    """Set the status, record the transition and its event; a settled invoice is no longer
    live, so its document may be financed again."""
    before = fi.status
    fi.status = status
    if status not in LIVE_STATUSES:
        fi.live_invoice_id = None
    session.add(_change(fi, before, status, cause))
    await session.flush()
    await _invoice_event(session, fi, "status_changed", {"previous_status": before})


async def created(session: AsyncSession, fi: FinancingInvoice, *, cause: str) -> None:
    """A new (``DRAFT``) financing invoice: its first history row and its ``created`` event."""
    session.add(_change(fi, None, fi.status, cause))
    await session.flush()
    await _invoice_event(session, fi, "created", {})


async def created_many(
    session: AsyncSession, entity: Entity, drafts: Sequence[Mapping[str, Any]], *, cause: str
) -> None:
    """``created`` for many new financing invoices of ``entity`` at once, given as the rows
    just written (``kit.statements.Insert``): their history rows and events in one statement
    each."""
    now = clock.now()
    await _HISTORY.rows(
        session, [change_row(fi["id"], None, fi["status"], cause, now) for fi in drafts]
    )
    await outbox.record_events(
        session,
        entity,
        FinancingInvoice,
        "created",
        (
            (
                fi["id"],
                {
                    "status": fi["status"],
                    "invoice_id": str(fi["invoice_id"]),
                    "type": fi["type"],
                    "repaid_amount": fi.get("repaid_amount", 0),
                },
            )
            for fi in drafts
        ),
    )


_HISTORY = Insert(FinancingStatusChange)


async def note(session: AsyncSession, fi: FinancingInvoice, *, cause: str) -> None:
    """A change that keeps the status (approval, partial repayment, write-off)."""
    session.add(_change(fi, fi.status, fi.status, cause))
    await session.flush()
    await _invoice_event(session, fi, "updated", {})


def _change(
    fi: FinancingInvoice, before: WCInvoiceStatus | None, after: WCInvoiceStatus, cause: str
) -> FinancingStatusChange:
    return FinancingStatusChange(**change_row(fi.id, before, after, cause, clock.now()))


def change_row(
    fi_id: uuid.UUID,
    before: WCInvoiceStatus | None,
    after: WCInvoiceStatus,
    cause: str,
    at: datetime,
) -> dict[str, Any]:
    """A history row of a financing invoice's transition (for ``kit.statements.Insert``)."""
    return {
        "financing_invoice_id": fi_id,
        "from_status": before,
        "to_status": after,
        "cause": cause[:255],
        "at": at,
    }


def invoice_data(
    fi: FinancingInvoice, status: WCInvoiceStatus, *, previous: WCInvoiceStatus | None = None
) -> dict[str, Any]:
    """What a financing invoice's event says of it, once its status is ``status``."""
    data: dict[str, Any] = {
        "status": status,
        "invoice_id": str(fi.invoice_id),
        "type": fi.type,
        "repaid_amount": fi.repaid_amount,
    }
    if previous is not None:
        data["previous_status"] = previous
    return data


def amounts_data(offer: FinancingOffer) -> dict[str, Any]:
    """What an offer's ``updated`` event says when its amounts changed."""
    return {
        "status": offer.status,
        "total_amount": offer.total_amount,
        "available_amount": offer.available_amount,
    }


async def _invoice_event(
    session: AsyncSession, fi: FinancingInvoice, action: str, data: dict[str, Any]
) -> None:
    await outbox.record_event(session, fi, fi, action, data={**invoice_data(fi, fi.status), **data})


async def move_offer(
    session: AsyncSession,
    offer: FinancingOffer,
    status: WCOfferStatus,
    *,
    cause: str | None = None,
) -> None:
    before = offer.status
    offer.status = status
    await session.flush()
    data: dict[str, Any] = {"status": status, "previous_status": before}
    if cause is not None:
        data["cause"] = cause[:255]
    await _offer_event(session, offer, "status_changed", data)


async def sync_offer_status(session: AsyncSession, offer: FinancingOffer) -> None:
    """An issued offer's status follows its invoices: DEFAULTED > LATE > CURRENT."""
    if offer.status not in (WCOfferStatus.CURRENT, WCOfferStatus.LATE):
        return
    await session.flush()
    troubled = set(
        await session.scalars(
            select(FinancingInvoice.status)
            .where(
                FinancingInvoice.offer_id == offer.id,
                FinancingInvoice.status.in_((WCInvoiceStatus.LATE, WCInvoiceStatus.DEFAULTED)),
            )
            .distinct()
        )
    )
    status = (
        WCOfferStatus.DEFAULTED
        if WCInvoiceStatus.DEFAULTED in troubled
        else WCOfferStatus.LATE
        if WCInvoiceStatus.LATE in troubled
        else WCOfferStatus.CURRENT
    )
    if status != offer.status:
        await move_offer(session, offer, status, cause="follows its invoices")


async def offer_amounts_changed(session: AsyncSession, offer: FinancingOffer) -> None:
    await session.flush()
    await _offer_event(session, offer, "updated", amounts_data(offer))


async def _offer_event(
    session: AsyncSession, offer: FinancingOffer, action: str, data: dict[str, Any]
) -> None:
    partner_id = await session.scalar(
        select(FinancingBusiness.partner_id).where(FinancingBusiness.id == offer.business_id)
    )
    assert partner_id is not None
    owner = outbox.Owner(partner_id, offer.entity_id)
    await outbox.record_event(session, owner, offer, action, data=data)


async def business_event(
    session: AsyncSession, business: FinancingBusiness, action: str, data: dict[str, Any]
) -> None:
    """The outbox event of a change to a financing business (onboarding, a decision)."""
    await outbox.record_event(session, business, business, action, data=data)


async def release_draft(session: AsyncSession, fi: FinancingInvoice, *, cause: str) -> None:
    """Delete an unconfirmed ``DRAFT`` (and its history), freeing its invoice for a new request."""
    fi = await locks.invoice(session, fi.id)
    require(fi, (WCInvoiceStatus.DRAFT,), "released")
    await session.execute(
        delete(FinancingStatusChange).where(FinancingStatusChange.financing_invoice_id == fi.id)
    )
    await session.delete(fi)
    await session.flush()
    await outbox.record_event(
        session,
        fi,
        fi,
        "deleted",
        data={
            "status": WCInvoiceStatus.DRAFT,
            "invoice_id": str(fi.invoice_id),
            "cause": cause[:255],
        },
    )


async def expire_requests(session: AsyncSession, now: datetime) -> dict[str, int]:
    """Open requests past their time expire, and their unconfirmed drafts are released (rows
    another transaction holds are left for the next tick)."""
    expired_requests = select(FinancingRequest.id).where(FinancingRequest.expires_at <= now)
    drafts = await locks.claim(
        session,
        select(FinancingInvoice).where(
            FinancingInvoice.status == WCInvoiceStatus.DRAFT,
            FinancingInvoice.request_id.in_(expired_requests),
        ),
    )
    for fi in drafts:
        await release_draft(session, fi, cause="the financing request expired unconfirmed")
    requests = await locks.claim(
        session,
        select(FinancingRequest).where(
            FinancingRequest.status == FinancingRequestStatus.OPEN,
            FinancingRequest.expires_at <= now,
        ),
    )
    for request in requests:
        request.status = FinancingRequestStatus.EXPIRED
    return {"requests_expired": len(requests), "drafts_released": len(drafts)}
